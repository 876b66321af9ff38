"""The GRPO loss and its hand-written gradient, checked against central differences."""
import numpy as np
import pytest
import scipy.sparse as sp

from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.grpo import ToolPolicy, group_advantages, grpo_objective, trajectory_step_weights
from trainhouse.core.trainer.mlp import MLP, log_softmax

ACTIONS = ["search", "summarizer", "calculator", "finish"]


def float64_policy(hidden, seed):
    rng = np.random.default_rng(seed)
    p = ToolPolicy.init(ACTIONS, FeaturizerConfig(dim=32, char_ngrams=(2, 3)), hidden, rng)
    # full-scale output weights so probabilities are far from uniform
    params = [(W.astype(np.float64) * (30.0 if i == len(p.mlp.params) - 1 else 1.0), b.astype(np.float64) + 0.1)
              for i, (W, b) in enumerate(p.mlp.params)]
    return ToolPolicy(MLP(params), ACTIONS, p.featurizer_config)


def batch(policy, seed, n_rows=40, n_traj=9):
    rng = np.random.default_rng(seed)
    Q = policy.encode_queries(["find articles about bees", "what is 2 plus 3", "summarize the orders table"])
    qidx = rng.integers(0, Q.shape[0], n_rows)
    S = (rng.random((n_rows, 2 * policy.n_tools + 1)) < 0.4).astype(np.float32)
    actions = rng.integers(0, len(ACTIONS), n_rows)
    traj = np.sort(np.concatenate([np.arange(n_traj), rng.integers(0, n_traj, n_rows - n_traj)]))
    weights = trajectory_step_weights(traj, n_traj)
    adv = rng.standard_normal(n_traj)[traj]
    logits, _ = policy.forward(Q, qidx, S)
    logp = log_softmax(logits)
    # the sampling policy differs from the current one: ratios land on both sides of the clip range
    logp_old = logp[np.arange(n_rows), actions] + rng.normal(0.0, 0.4, n_rows)
    ref_logp = log_softmax(logits + rng.normal(0.0, 1.0, logits.shape))
    return Q, qidx, S, actions, weights, adv, logp_old, ref_logp, traj


def loss_and_grads(policy, data, estimator, clip=0.2, beta=0.3):
    Q, qidx, S, actions, weights, adv, logp_old, ref_logp, _ = data
    logits, cache = policy.forward(Q, qidx, S)
    loss, dlogits, stats = grpo_objective(logits, actions, weights, adv, logp_old, ref_logp,
                                          clip_epsilon=clip, kl_coef=beta, kl_estimator=estimator)
    return loss, policy.backward(cache, dlogits), stats


def max_relative_error(policy, data, estimator, eps=1e-6):
    _, grads, _ = loss_and_grads(policy, data, estimator)
    worst = 0.0
    for (W, b), (dW, db) in zip(policy.mlp.params, grads):
        for arr, g in ((W, dW), (b, db)):
            num = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + eps
                plus = loss_and_grads(policy, data, estimator)[0]
                arr[idx] = old - eps
                minus = loss_and_grads(policy, data, estimator)[0]
                arr[idx] = old
                num[idx] = (plus - minus) / (2 * eps)
            denom = np.linalg.norm(g) + np.linalg.norm(num)
            if denom > 0:
                worst = max(worst, float(np.linalg.norm(g - num) / denom))
    return worst


@pytest.mark.parametrize("estimator", ["k3", "exact"])
@pytest.mark.parametrize("hidden", [(6,), (), (5, 4)], ids=["mlp", "linear", "deep"])
def test_gradient_check(estimator, hidden):
    policy = float64_policy(hidden, seed=len(hidden))
    data = batch(policy, seed=7)
    _, _, stats = loss_and_grads(policy, data, estimator)
    assert 0.05 < stats["clip_fraction"] < 0.95, "both branches of the clipped objective must be exercised"
    assert stats["kl"] > 0
    assert max_relative_error(policy, data, estimator) < 1e-6


def test_loss_value_matches_the_formula():
    policy = float64_policy((6,), seed=3)
    Q, qidx, S, actions, weights, adv, logp_old, ref_logp, traj = data = batch(policy, seed=11)
    loss, _, _ = loss_and_grads(policy, data, "k3", clip=0.2, beta=0.3)
    logits, _ = policy.forward(Q, qidx, S)
    lp = log_softmax(logits)[np.arange(len(actions)), actions]
    rho = np.exp(lp - logp_old)
    surr = np.minimum(rho * adv, np.clip(rho, 0.8, 1.2) * adv)
    r = np.exp(ref_logp[np.arange(len(actions)), actions] - lp)
    kl = r - np.log(r) - 1
    per_row = -surr + 0.3 * kl
    # the mean over each trajectory's steps, then the mean over trajectories
    expected = np.mean([per_row[traj == i].mean() for i in np.unique(traj)])
    assert loss == pytest.approx(float(expected), rel=1e-12)


def test_split_forward_equals_dense_mlp_forward():
    policy = float64_policy((6,), seed=5)
    Q, qidx, S, *_ = batch(policy, seed=2)
    logits, _ = policy.forward(Q, qidx, S)
    dense = np.concatenate([Q.toarray()[qidx], S], axis=1)
    ref, _ = policy.mlp.forward(dense)
    np.testing.assert_allclose(logits, ref, rtol=1e-10, atol=1e-10)


def test_first_update_ratio_is_one_and_nothing_is_clipped():
    policy = float64_policy((6,), seed=1)
    Q, qidx, S, actions, weights, adv, _, ref_logp, _ = batch(policy, seed=4)
    logits, _ = policy.forward(Q, qidx, S)
    logp_old = log_softmax(logits)[np.arange(len(actions)), actions]
    _, _, stats = grpo_objective(logits, actions, weights, adv, logp_old, ref_logp, clip_epsilon=0.2, kl_coef=0.0)
    assert stats["clip_fraction"] == 0.0 and stats["ratio_mean"] == pytest.approx(1.0)


def test_group_advantages():
    rewards = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.0]])
    adv, zero = group_advantages(rewards)
    assert zero.tolist() == [False, True, False]
    np.testing.assert_allclose(adv[0], [1, -1, -1, 1], atol=1e-3)
    np.testing.assert_allclose(adv[1], 0.0)
    np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=1e-12)
    none, _ = group_advantages(rewards, "none")
    np.testing.assert_allclose(none[2], [-0.125, -0.125, 0.375, -0.125])
    batch_scaled, _ = group_advantages(rewards, "batch")
    np.testing.assert_allclose(batch_scaled[2], none[2] / (rewards.std() + 1e-4))
    single, zero1 = group_advantages(np.array([[0.3], [1.0]]))
    assert zero1.all() and not single.any()


def test_step_weights_average_per_trajectory_then_batch():
    traj = np.array([0, 0, 0, 1, 2, 2])
    w = trajectory_step_weights(traj, 3)
    np.testing.assert_allclose(w, [1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 6, 1 / 6])
    assert sp.issparse(float64_policy((), 0).encode_queries(["x"]))
