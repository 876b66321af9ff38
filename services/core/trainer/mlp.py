"""The learned scorer: an MLP (ReLU, inverted dropout) with a softmax over the output catalog.

Forward and backward are written by hand in NumPy so that the exact computation exported to
ONNX is the one that was trained; ``numerical_gradient_check`` keeps the backward pass honest.

Loss, averaged over the N examples of a batch (``coef`` = weight, halved for "partial"):

* positive (correct/partial): ``coef * -log p_y``                (cross-entropy)
* "incorrect":                ``coef * -log(1 - p_y)``           (unlikelihood: push p_y down)
* plus ``l2/2 * sum ||W||^2`` over weight matrices (not biases) when ``l2 > 0``.

Both terms are computed from logits in log-space so they stay finite when p_y -> 0 or 1.

The input may be a dense array or hashed ``SparseRows``: then the first layer is a sparse
product and its weight gradient a ``RowSparse`` (see sparse_ops.py); everything after the
first layer is dense. The policy-gradient loss of the reinforcement trainer and the L2 pull
toward an anchor (few-shot) live here too, so one gradient check covers every loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer, SparseRows
from trainhouse.core.trainer.examples import LabelMap
from trainhouse.core.trainer.sparse_ops import RowSparse, dense, sparse_matmul, sparse_weight_grad

Params = list[tuple[np.ndarray, np.ndarray]]
Grads = list[tuple["np.ndarray | RowSparse", np.ndarray]]
Inputs = "np.ndarray | SparseRows"


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _box_muller_f32(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Standard normal float32 samples: ``sqrt(-2 ln u1) * (cos, sin)(2 pi u2)`` for float32 uniforms
    ``u1`` in (0, 1] and ``u2`` in [0, 1) (tails cut at ~5.8 sigma by the 24-bit uniforms, no matter
    for an initialisation). Deterministic for a given generator state."""
    n = int(np.prod(shape))
    half = (n + 1) // 2
    u = rng.random(2 * half, dtype=np.float32)
    radius, angle = u[:half], u[half:]
    np.subtract(np.float32(1.0), radius, out=radius)
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle *= np.float32(2.0 * np.pi)
    out = np.empty(2 * half, dtype=np.float32)
    np.cos(angle, out=out[:half])
    np.sin(angle, out=out[half:])
    out[:half] *= radius
    out[half:] *= radius
    return out[:n].reshape(shape)


class MLP:
    """Parameters ``[(W1, b1), ..., (WL, bL)]``; W has shape (fan_in, fan_out).

    Empty ``hidden_sizes`` gives a linear softmax model (multinomial logistic regression).
    """

    def __init__(self, params: Params):
        if not params:
            raise ValueError("an MLP needs at least one layer")
        self.params = [(np.asarray(W), np.asarray(b)) for W, b in params]

    @classmethod
    def init(cls, input_dim: int, hidden_sizes: Sequence[int], n_outputs: int,
             rng: np.random.Generator, dtype: Any = np.float32) -> "MLP":
        """He-normal weights (std sqrt(2/fan_in), right for ReLU), zero biases.

        float32 weights are drawn in float32 by the Box-Muller transform (as ``torch.randn`` does),
        not as float64 normals converted: for the (16384, 64) hashed layer that is 5-6 ms instead of
        12 ms on every run (issue #20: at batch 64 the init was ~8% of a 2-epoch job). float64
        weights (gradient checks) are drawn as before."""
        sizes = [input_dim, *hidden_sizes, n_outputs]
        params: Params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            if np.dtype(dtype) == np.float32:
                W = _box_muller_f32(rng, (fan_in, fan_out))
                W *= np.float32(np.sqrt(2.0 / fan_in))
            else:
                W = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
            params.append((W, np.zeros(fan_out, dtype=dtype)))
        return cls(params)

    @property
    def input_dim(self) -> int:
        return int(self.params[0][0].shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.params[-1][0].shape[1])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(int(W.shape[1]) for W, _ in self.params[:-1])

    def arrays(self) -> list[np.ndarray]:
        """Flat ``[W1, b1, W2, b2, ...]`` (the same objects, so optimizers update in place)."""
        return [a for pair in self.params for a in pair]

    def copy(self) -> "MLP":
        return MLP([(W.copy(), b.copy()) for W, b in self.params])

    # -- forward / backward -------------------------------------------------------------------
    def forward(self, X: Any, *, dropout: float = 0.0, rng: np.random.Generator | None = None,
                masks: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Logits and the cache backward needs.

        Train mode is ``dropout > 0`` (masks drawn from ``rng``) or explicit ``masks`` (one per
        hidden layer, already scaled by 1/(1-p): inverted dropout, so eval needs no rescaling).
        """
        acts = [X]
        pre: list[np.ndarray] = []
        used_masks: list[np.ndarray | None] = []
        h = X
        for i, (W, b) in enumerate(self.params[:-1]):
            z = _affine(h, W, b)
            h = np.maximum(z, 0)
            mask = None
            if masks is not None:
                mask = masks[i]
            elif dropout > 0.0:
                if rng is None:
                    raise ValueError("dropout needs an rng")
                keep = rng.random(h.shape, dtype=np.float32) >= dropout
                mask = keep.astype(h.dtype) * h.dtype.type(1.0 / (1.0 - dropout))
            if mask is not None:
                h = h * mask
            pre.append(z)
            used_masks.append(mask)
            acts.append(h)
        W, b = self.params[-1]
        logits = _affine(h, W, b)
        return logits, {"acts": acts, "pre": pre, "masks": used_masks}

    def backward(self, cache: dict[str, Any], dlogits: np.ndarray, first_layer: int = 0) -> Grads:
        """Gradients of the loss w.r.t. every (W, b) of layers >= ``first_layer`` (frozen layers
        below it cost nothing), given dLoss/dlogits. W1's is a ``RowSparse`` when the input was
        ``SparseRows``."""
        acts, pre, masks = cache["acts"], cache["pre"], cache["masks"]
        grads: Grads = []
        dz = dlogits
        for layer in range(len(self.params) - 1, first_layer - 1, -1):
            W, _ = self.params[layer]
            a_in = acts[layer]
            if isinstance(a_in, SparseRows):
                grads.append((sparse_weight_grad(a_in, dz), dz.sum(axis=0)))
            else:
                grads.append((a_in.T @ dz, dz.sum(axis=0)))
            if layer == first_layer:
                break
            da = dz @ W.T
            if masks[layer - 1] is not None:
                da = da * masks[layer - 1]
            dz = da * (pre[layer - 1] > 0)
        grads.reverse()
        return grads

    def predict_proba(self, X: Any) -> np.ndarray:
        """Eval-mode probabilities (no dropout)."""
        logits, _ = self.forward(X)
        return softmax(logits)

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"weights": [W for W, _ in self.params], "biases": [b for _, b in self.params]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights, biases = state["weights"], state["biases"]
        if len(weights) != len(self.params):
            raise ValueError("layer count mismatch")
        for (W, b), W2, b2 in zip(self.params, weights, biases):
            if W.shape != W2.shape or b.shape != b2.shape:
                raise ValueError("parameter shape mismatch")
            W[...] = W2
            b[...] = b2

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "MLP":
        return cls([(np.array(W), np.array(b)) for W, b in zip(state["weights"], state["biases"])])


def feedback_loss(logits: np.ndarray, y: np.ndarray, coef: np.ndarray,
                  negative: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean feedback loss over the batch, dLoss/dlogits, and per-example losses (unweighted).

    Unlikelihood gradient, with q = softmax over the classes other than y:
    d/dz_y = p_y, d/dz_k = -p_y * q_k (k != y); finite even when p_y -> 1.
    With a single output, 1 - p_y is identically 0: nothing can be pushed down, so an
    "incorrect" example contributes no loss and no gradient.
    """
    n, k = logits.shape
    rows = np.arange(n)
    logp = log_softmax(logits)
    p = np.exp(logp)
    onehot = np.zeros_like(logits)
    onehot[rows, y] = 1.0
    per_example = -logp[rows, y]
    grad = p - onehot
    if negative.any():
        neg = np.flatnonzero(negative)
        zn = logits[neg]
        if k > 1:
            masked = zn.copy()
            masked[np.arange(len(neg)), y[neg]] = -np.inf
            log_q = log_softmax(masked)  # -inf at y
            # -log(1 - p_y) = logsumexp(z) - logsumexp(z without y)
            m = zn.max(axis=1, keepdims=True)
            lse_all = (np.log(np.exp(zn - m).sum(axis=1, keepdims=True)) + m)[:, 0]
            mm = masked.max(axis=1, keepdims=True)
            lse_rest = (np.log(np.exp(masked - mm).sum(axis=1, keepdims=True)) + mm)[:, 0]
            per_example[neg] = lse_all - lse_rest
            py = p[neg, y[neg]][:, None]
            g = -py * np.exp(log_q)
            g[np.arange(len(neg)), y[neg]] = py[:, 0]
            grad[neg] = g
        else:
            per_example[neg] = 0.0
            grad[neg] = 0.0
    coef = coef.astype(logits.dtype, copy=False)
    loss = float((coef * per_example).sum() / n)
    dlogits = grad * (coef / n)[:, None]
    return loss, dlogits.astype(logits.dtype, copy=False), per_example


def _affine(h: Any, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    if isinstance(h, SparseRows):
        return sparse_matmul(h, W) + b
    return h @ W + b


def entropy_and_grad(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row entropy H = -sum p log p of softmax(logits) and dH/dlogits = -p * (log p + H)."""
    logp = log_softmax(logits)
    p = np.exp(logp)
    H = -(p * logp).sum(axis=1)
    return H, -p * (logp + H[:, None])


def policy_gradient_loss(logits: np.ndarray, actions: np.ndarray, advantages: np.ndarray,
                         weights: np.ndarray, entropy_coef: float = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """REINFORCE surrogate for a softmax policy, averaged over the batch:

    ``L = -(1/N) sum_i w_i * A_i * log pi(a_i | x_i)  -  entropy_coef * (1/N) sum_i H(pi(.|x_i))``

    ``A_i`` (reward minus baseline) and ``w_i`` (importance weight) are constants of the step
    (computed from the policy *before* the update, like PPO's ratio denominators), so
    ``dL/dz = -(1/N) w A (onehot(a) - p) - (entropy_coef/N) dH/dz``.
    Returns (loss, dL/dlogits, per-example log pi(a|x)).
    """
    n = logits.shape[0]
    rows = np.arange(n)
    logp = log_softmax(logits)
    p = np.exp(logp)
    coef = (weights * advantages).astype(logits.dtype, copy=False)
    logp_a = logp[rows, actions]
    loss = -float((coef * logp_a).sum() / n)
    grad = p.copy()
    grad[rows, actions] -= 1.0
    grad *= (coef / n)[:, None]
    if entropy_coef:
        H, dH = entropy_and_grad(logits)
        loss -= entropy_coef * float(H.sum() / n)
        grad -= (entropy_coef / n) * dH
    return loss, grad.astype(logits.dtype, copy=False), logp_a


def add_regularizers(mlp: MLP, loss: float, grads: Grads, *, l2: float = 0.0,
                     anchor: Params | None = None, anchor_strength: float = 0.0,
                     first_layer: int = 0) -> tuple[float, Grads]:
    """``+ l2/2 sum ||W||^2`` and ``+ anchor_strength/2 sum ||W - W_anchor||^2`` over the weight
    matrices (not biases) of the trained layers (>= ``first_layer``, aligned with ``grads``).
    Either makes W's gradient dense (every entry is pulled)."""
    params = mlp.params[first_layer:]
    if l2 > 0.0:
        loss += 0.5 * l2 * float(sum(np.sum(W.astype(np.float64) ** 2) for W, _ in params))
        grads = [(dense(dW) + l2 * W, db) for (dW, db), (W, _) in zip(grads, params)]
    if anchor is not None and anchor_strength > 0.0:
        anchor = anchor[first_layer:]
        loss += 0.5 * anchor_strength * float(sum(np.sum((W.astype(np.float64) - A) ** 2)
                                                  for (W, _), (A, _) in zip(params, anchor)))
        grads = [(dense(dW) + anchor_strength * (W - A).astype(W.dtype, copy=False), db)
                 for (dW, db), (W, _), (A, _) in zip(grads, params, anchor)]
    return loss, grads


def loss_and_grads(mlp: MLP, X: Any, y: np.ndarray, coef: np.ndarray, negative: np.ndarray, *,
                   l2: float = 0.0, dropout: float = 0.0, rng: np.random.Generator | None = None,
                   masks: Sequence[np.ndarray] | None = None, anchor: Params | None = None,
                   anchor_strength: float = 0.0, first_layer: int = 0) -> tuple[float, Grads, np.ndarray]:
    """One forward/backward pass of the feedback loss: (loss incl. regularizers, gradients of
    layers >= ``first_layer``, logits)."""
    logits, cache = mlp.forward(X, dropout=dropout, rng=rng, masks=masks)
    loss, dlogits, _ = feedback_loss(logits, y, coef, negative)
    grads = mlp.backward(cache, dlogits, first_layer)
    loss, grads = add_regularizers(mlp, loss, grads, l2=l2, anchor=anchor, anchor_strength=anchor_strength,
                                   first_layer=first_layer)
    return loss, grads, logits


def policy_loss_and_grads(mlp: MLP, X: Any, actions: np.ndarray, advantages: np.ndarray, weights: np.ndarray, *,
                          entropy_coef: float = 0.0, l2: float = 0.0, dropout: float = 0.0,
                          rng: np.random.Generator | None = None,
                          masks: Sequence[np.ndarray] | None = None) -> tuple[float, Grads, np.ndarray]:
    """One forward/backward pass of ``policy_gradient_loss``: (loss, gradients, logits)."""
    logits, cache = mlp.forward(X, dropout=dropout, rng=rng, masks=masks)
    loss, dlogits, _ = policy_gradient_loss(logits, actions, advantages, weights, entropy_coef)
    grads = mlp.backward(cache, dlogits)
    loss, grads = add_regularizers(mlp, loss, grads, l2=l2)
    return loss, grads, logits


def gradient_check(mlp: MLP, loss_fn: Callable[[MLP], tuple[float, Grads]], eps: float = 1e-6) -> float:
    """Largest relative error ||g_analytic - g_numeric|| / (||g_analytic|| + ||g_numeric||) over
    all parameter arrays, central differences on every entry of ``loss_fn(mlp) -> (loss, grads)``.

    Use float64 parameters and small shapes; keep ``loss_fn`` deterministic (fixed dropout masks).
    """
    _, grads = loss_fn(mlp)
    worst = 0.0
    for (W, b), (dW, db) in zip(mlp.params, grads):
        for arr, g in ((W, dense(dW)), (b, db)):
            num = np.zeros_like(arr, dtype=np.float64)
            it = np.nditer(arr, flags=["multi_index"])
            for _ in it:
                idx = it.multi_index
                old = arr[idx]
                arr[idx] = old + eps
                plus = loss_fn(mlp)[0]
                arr[idx] = old - eps
                minus = loss_fn(mlp)[0]
                arr[idx] = old
                num[idx] = (plus - minus) / (2 * eps)
            denom = np.linalg.norm(g) + np.linalg.norm(num)
            if denom > 0:
                worst = max(worst, float(np.linalg.norm(g - num) / denom))
    return worst


def numerical_gradient_check(mlp: MLP, X: Any, y: np.ndarray, coef: np.ndarray, negative: np.ndarray, *,
                             l2: float = 0.0, masks: Sequence[np.ndarray] | None = None,
                             eps: float = 1e-6, anchor: Params | None = None, anchor_strength: float = 0.0) -> float:
    """``gradient_check`` of the feedback loss (see ``loss_and_grads``); X may be ``SparseRows``."""
    def fn(m: MLP) -> tuple[float, Grads]:
        loss, grads, _ = loss_and_grads(m, X, y, coef, negative, l2=l2, masks=masks, anchor=anchor,
                                        anchor_strength=anchor_strength)
        return loss, grads
    return gradient_check(mlp, fn, eps)


@dataclass
class TrainedModel:
    """What a training run produces and export/serving consume: weights plus everything needed
    to reproduce predictions (label map, featurizer settings)."""

    params: Params
    label_map: LabelMap
    featurizer_config: FeaturizerConfig
    hidden_sizes: tuple[int, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    # Logits are divided by it before the softmax (temperature scaling, calibration.py).
    temperature: float = 1.0
    # An abstention score (services/core/abstention.py) below it answers out of scope; 0 = only when
    # the top output is __out_of_scope__ (never for a version trained without it).
    out_of_scope_threshold: float = 0.0

    def __post_init__(self) -> None:
        self._mlp = MLP(self.params)
        self._featurizer = HashingFeaturizer(self.featurizer_config)

    @property
    def labels(self) -> list[str]:
        return self.label_map.to_list()

    def _proba(self, X: Any) -> np.ndarray:
        logits, _ = self._mlp.forward(X)
        if self.temperature != 1.0:
            logits = logits / np.float32(self.temperature)
        return softmax(logits)

    def predict_proba_features(self, X: np.ndarray) -> np.ndarray:
        return self._proba(X.astype(np.float32, copy=False))

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Eval-mode probabilities, shape (len(texts), n_outputs), featurized in bounded batches."""
        rows = self._featurizer.transform_sparse(texts)
        out = np.zeros((len(rows), self._mlp.n_outputs), dtype=np.float32)
        for start in range(0, len(rows), batch_size):
            idx = np.arange(start, min(start + batch_size, len(rows)))
            out[idx] = self._proba(rows.take(idx))
        return out

    @classmethod
    def from_onnx_bytes(cls, data: bytes) -> "TrainedModel":
        """The model an exported ONNX file holds (weights, catalog, featurizer, metadata)."""
        from trainhouse.core.trainer.onnx_export import load_trained_model
        return load_trained_model(data)

    @classmethod
    def from_onnx_model(cls, model: Any) -> "TrainedModel":
        """From a served ``trainhouse.core.onnx_model.OnnxModel`` (its source bytes or file)."""
        return cls.from_onnx_bytes(model.onnx_bytes())

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        probs = self.predict_proba(texts)
        best = probs.argmax(axis=1)
        return [(self.label_map.label(int(j)), float(probs[i, j])) for i, j in enumerate(best)]
