"""The GRPO objective (DeepSeekMath, Shao et al. 2024; TRL ``GRPOTrainer``) with its gradient.

For trajectories i = 1..N (N = queries x group size) with steps t = 1..|o_i|, the loss minimised is

    L = (1/N) sum_i (1/|o_i|) sum_t [ -min(rho_it A_i, clip(rho_it, 1-eps, 1+eps) A_i) + beta * KL_it ]

* ``rho_it = pi_theta(a_it | s_it) / pi_old(a_it | s_it)``: the ratio to the policy that sampled
  the step (identical to pi_theta on the first update of a batch, so clipping only bites from the
  second of ``updates_per_batch`` updates on);
* ``A_i``: the group-normalised reward of trajectory i (every step shares it: outcome supervision);
* ``KL_it`` to the frozen reference policy pi_ref (the initial policy), either
  - ``k3`` (the paper's and TRL's per-sample estimator): r - log r - 1 with r = pi_ref(a)/pi_theta(a),
    dKL/dlog pi_theta(a) = 1 - r; or
  - ``exact``: sum_k pi_theta(k) (log pi_theta(k) - log pi_ref(k)) over all actions,
    dKL/dz_k = pi_theta(k) (log pi_theta(k) - log pi_ref(k) - KL).

Gradient of the surrogate w.r.t. log pi_theta(a): ``rho * A`` where the unclipped term is the
minimum, 0 where the clipped one is (it is constant there). Then
``d log pi(a) / dz = onehot(a) - softmax(z)``. Everything is computed in float64 from the logits
and the gradient cast back to the logits' dtype; ``tests/grpo/test_objective.py`` checks it
against central differences.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from trainhouse.core.configs.grpo import SCALE_REWARDS
from trainhouse.core.trainer.mlp import log_softmax


def trajectory_step_weights(traj_of_row: np.ndarray, n_trajectories: int) -> np.ndarray:
    """w_r = 1 / (N * |o_i|) for row r of trajectory i: the per-sequence mean, then the batch mean."""
    lengths = np.bincount(traj_of_row, minlength=n_trajectories).astype(np.float64)
    return 1.0 / (n_trajectories * lengths[traj_of_row])


def grpo_objective(logits: np.ndarray, actions: np.ndarray, weights: np.ndarray, advantages: np.ndarray,
                   logp_old: np.ndarray, ref_logp: np.ndarray, *, clip_epsilon: float, kl_coef: float,
                   kl_estimator: str = "k3") -> tuple[float, np.ndarray, dict[str, float]]:
    """(loss, dLoss/dlogits, stats) for one batch of steps.

    ``logits`` (R, A); ``actions``, ``weights`` (``trajectory_step_weights``), ``advantages`` (of the
    step's trajectory) and ``logp_old`` (log-prob of the action under the sampling policy) are (R,);
    ``ref_logp`` is the reference policy's full log-distribution (R, A).
    """
    n = logits.shape[0]
    rows = np.arange(n)
    z = logits.astype(np.float64)
    logp = log_softmax(z)
    p = np.exp(logp)
    lp_a = logp[rows, actions]
    adv = advantages.astype(np.float64)
    w = weights.astype(np.float64)
    ratio = np.exp(lp_a - logp_old)
    clipped = np.clip(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon)
    unclipped_term = ratio * adv
    clipped_term = clipped * adv
    use_unclipped = unclipped_term <= clipped_term
    surrogate = np.where(use_unclipped, unclipped_term, clipped_term)
    dsurr = np.where(use_unclipped, unclipped_term, 0.0)          # d surrogate / d log pi(a)

    onehot = np.zeros_like(p)
    onehot[rows, actions] = 1.0
    dlogp_a = onehot - p                                            # d log pi(a) / dz
    if kl_estimator == "k3":
        log_r = ref_logp[rows, actions] - lp_a
        r = np.exp(log_r)
        kl = r - log_r - 1.0
        g = w * (-dsurr + kl_coef * (1.0 - r))
        dlogits = g[:, None] * dlogp_a
    elif kl_estimator == "exact":
        diff = logp - ref_logp
        kl = (p * diff).sum(axis=1)
        dlogits = (w * -dsurr)[:, None] * dlogp_a + (kl_coef * w)[:, None] * (p * (diff - kl[:, None]))
    else:
        raise ValueError(f"unknown kl_estimator {kl_estimator!r}")
    loss = float(np.sum(w * (-surrogate + kl_coef * kl)))
    entropy = -(p * logp).sum(axis=1)
    stats: dict[str, Any] = {
        "kl": float(kl.mean()) if n else 0.0,
        "clip_fraction": float((~use_unclipped).mean()) if n else 0.0,
        "ratio_mean": float(ratio.mean()) if n else 1.0,
        "entropy": float(entropy.mean()) if n else 0.0,
        "surrogate": float(np.sum(w * surrogate)),
    }
    return loss, dlogits.astype(logits.dtype, copy=False), stats


def group_advantages(rewards: np.ndarray, scale: str = "group", eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Advantages from rewards (n_groups, G): ``r - mean(group)``, divided by ``std + eps`` where

    * ``scale="group"``: std of the group (GRPO as published; TRL's default),
    * ``scale="batch"``: std of all rewards of the batch,
    * ``scale="none"``: not divided (Dr. GRPO, Liu et al. 2025): tiny reward differences stay tiny
      instead of being blown up to unit scale, which matters for shaped rewards like ``step_cost``.

    ``std`` is the population standard deviation (defined for G = 1, where it is 0). Returns the
    advantages and a per-group mask of zero-spread groups (all rewards equal: zero advantage, no
    learning signal; TRL logs their fraction as ``frac_reward_zero_std``).
    """
    mean = rewards.mean(axis=1, keepdims=True)
    std = rewards.std(axis=1, keepdims=True)
    zero = np.isclose(std[:, 0], 0.0, atol=1e-12)
    centered = rewards - mean
    if scale == "group":
        adv = centered / (std + eps)
    elif scale == "batch":
        adv = centered / (float(rewards.std()) + eps)
    elif scale == "none":
        adv = centered
    else:
        raise ValueError(f"unknown reward scaling {scale!r}; expected one of {', '.join(SCALE_REWARDS)}")
    adv[zero] = 0.0
    return adv, zero
