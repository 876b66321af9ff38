"""The sparse first layer, every loss and the row-sparse optimizer paths, checked numerically."""
import numpy as np
import pytest

from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer, SparseRows
from trainhouse.core.trainer import MLP, gradient_check, make_optimizer, numerical_gradient_check
from trainhouse.core.trainer.mlp import policy_loss_and_grads
from trainhouse.core.trainer.sparse_ops import RowSparse, dense

TEXTS = ["reset my password", "cancel the order please", "where is my parcel", "refund my card",
         "talk to a human", "change payment method", "", "order order order"]


def _sparse_problem(hidden, seed=0, dim=64, k=4):
    rng = np.random.default_rng(seed)
    X = HashingFeaturizer(FeaturizerConfig(dim=dim, char_ngrams=(0, 0), word_ngrams=(1, 2))).transform_sparse(TEXTS)
    X = SparseRows(X.indptr, X.indices, X.values.astype(np.float64), dim)
    mlp = MLP.init(dim, hidden, k, rng, dtype=np.float64)
    for _, b in mlp.params:
        b[...] = rng.normal(0, 0.1, b.shape)
    n = len(TEXTS)
    return mlp, X, rng.integers(0, k, n), rng.uniform(0.2, 2.0, n), np.array([i % 3 == 0 for i in range(n)]), rng


@pytest.mark.parametrize("hidden", [(), (6,), (5, 4)])
def test_sparse_input_matches_dense(hidden):
    mlp, X, y, coef, neg, _ = _sparse_problem(hidden)
    from trainhouse.core.trainer import loss_and_grads
    ls, gs, zs = loss_and_grads(mlp, X, y, coef, neg)
    ld, gd, zd = loss_and_grads(mlp, X.to_dense(dtype=np.float64), y, coef, neg)
    assert isinstance(gs[0][0], RowSparse) and not isinstance(gd[0][0], RowSparse)
    assert set(gs[0][0].rows.tolist()) == set(np.unique(X.indices).tolist())
    np.testing.assert_allclose(zs, zd, rtol=1e-12, atol=1e-12)
    assert ls == pytest.approx(ld, rel=1e-12)
    for (a, b), (c, d) in zip(gs, gd):
        np.testing.assert_allclose(dense(a), c, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, d, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hidden", [(), (6,), (5, 4)])
def test_gradient_check_sparse_first_layer(hidden):
    mlp, X, y, coef, neg, _ = _sparse_problem(hidden, seed=1)
    assert numerical_gradient_check(mlp, X, y, coef, neg) < 1e-4
    assert numerical_gradient_check(mlp, X, y, coef, neg, l2=0.05) < 1e-4


def test_gradient_check_anchor_regulariser():
    mlp, X, y, coef, neg, rng = _sparse_problem((5,), seed=2)
    anchor = [(W + rng.normal(0, 0.3, W.shape), b) for W, b in mlp.params]
    assert numerical_gradient_check(mlp, X, y, coef, neg, anchor=anchor, anchor_strength=0.7) < 1e-4


@pytest.mark.parametrize("hidden,entropy", [((), 0.0), ((6,), 0.0), ((6,), 0.3), ((5, 4), 0.1)])
def test_gradient_check_policy_gradient_loss(hidden, entropy):
    mlp, X, actions, _, _, rng = _sparse_problem(hidden, seed=3)
    advantages = rng.uniform(-1, 1, len(actions))
    weights = rng.uniform(0.1, 3.0, len(actions))   # importance weights x record weights
    masks = [(rng.random((len(actions), h)) >= 0.3) / 0.7 for h in mlp.hidden_sizes]

    def fn(m):
        loss, grads, _ = policy_loss_and_grads(m, X, actions, advantages, weights, entropy_coef=entropy,
                                               masks=masks)
        return loss, grads
    assert gradient_check(mlp, fn) < 1e-4


@pytest.mark.parametrize("name,kw", [("sgd", {"momentum": 0.0}), ("sgd", {"momentum": 0.9}),
                                     ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
                                     ("adam", {"weight_decay": 0.01})])
def test_row_sparse_updates_are_the_dense_algorithm(name, kw, monkeypatch):
    """Default path: a RowSparse gradient gives the same parameters as its dense equivalent, bit
    for bit (the row-blocked update included: 50 rows x 3 columns span several blocks of 16
    elements). Adam without coupled decay keeps scaled moments instead: see the reference test below."""
    from trainhouse.core.trainer import optimizers
    monkeypatch.setattr(optimizers, "_CHUNK", 16)
    rng = np.random.default_rng(0)
    p_sparse = rng.standard_normal((50, 3)).astype(np.float32)
    p_dense = p_sparse.copy()
    o_sparse, o_dense = make_optimizer(name, **kw), make_optimizer(name, **kw)
    for _ in range(6):
        rows = np.unique(rng.integers(0, 50, 7))
        g = RowSparse(rows, rng.standard_normal((len(rows), 3)).astype(np.float32), (50, 3))
        o_sparse.step([p_sparse], [g], 0.01)
        o_dense.step([p_dense], [g.to_dense()], 0.01)
    assert np.array_equal(p_sparse, p_dense)  # bit for bit: the same operations on every element


def reference_adam(p: np.ndarray, grads: list[np.ndarray], lrs: list[float], beta1: float = 0.9, beta2: float = 0.999,
                   eps: float = 1e-8, decoupled: float = 0.0) -> np.ndarray:
    """Textbook dense Adam / AdamW (PyTorch's torch.optim formulas), in float64, no tricks."""
    p = p.astype(np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g.astype(np.float64)
        if decoupled:
            p = p * (1 - lr * decoupled)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("name,kw", [("adam", {}), ("adamw", {"weight_decay": 0.05}),
                                     ("adam", {"weight_decay": 0.01})])
@pytest.mark.parametrize("as_dense", [False, True])
def test_default_adam_is_dense_adam(name, kw, as_dense):
    """The default (exact) Adam path equals a straightforward float64 dense Adam on a problem where
    most rows go hundreds of steps without gradient (across several scale folds, RENORM_EVERY),
    row-sparse or dense gradients alike, up to float32 rounding."""
    from trainhouse.core.trainer import optimizers
    rng = np.random.default_rng(3)
    shape = (60, 4)
    p0 = rng.standard_normal(shape).astype(np.float32)
    bias0 = rng.standard_normal(4).astype(np.float32)
    p, bias = p0.copy(), bias0.copy()
    opt = make_optimizer(name, **kw)
    steps = 3 * optimizers.RENORM_EVERY + 17
    grads, bias_grads, lrs = [], [], []
    for t in range(steps):
        hot = rng.integers(0, 3, 2)                    # rows 0-2 often
        cold = rng.integers(3, 60, 1) if t % 50 == 0 else np.zeros(0, np.int64)  # the rest rarely
        wide = rng.choice(np.arange(3, 60), 40, replace=False) if t % 7 == 0 else np.zeros(0, np.int64)
        rows = np.unique(np.concatenate([hot, cold, wide]))  # wide: most rows (the whole-array branch)
        g = RowSparse(rows.astype(np.int64), rng.standard_normal((len(rows), 4)).astype(np.float32), shape)
        gb = rng.standard_normal(4).astype(np.float32)
        lr = 0.01 * (1 - t / steps) + 1e-4            # a moving learning rate, as under a scheduler
        opt.step([p, bias], [g.to_dense() if as_dense else g, gb], lr)
        grads.append(g.to_dense())
        bias_grads.append(gb)
        lrs.append(lr)
    decoupled = kw.get("weight_decay", 0.0) if name == "adamw" else 0.0
    if name == "adam" and kw.get("weight_decay"):   # coupled L2: g + wd * p, p the weights before the step
        ref = p0.astype(np.float64)
        m, v = np.zeros_like(ref), np.zeros_like(ref)
        for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
            g = g + kw["weight_decay"] * ref
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            ref = ref - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    else:
        ref = reference_adam(p0, grads, lrs, decoupled=decoupled)
    assert np.max(np.abs(p - ref)) < 2e-5
    assert np.max(np.abs(bias - reference_adam(bias0, bias_grads, lrs))) < 2e-5
    touched = np.flatnonzero(np.any(np.array(grads) != 0, axis=(0, 2)))
    if not kw:  # (weight decay moves every row)
        assert np.flatnonzero(np.abs(p - p0).max(axis=1) > 0).tolist() == touched.tolist()


def test_scaled_adam_state_resumes_bit_exactly():
    """A checkpoint of the scaled moments (taken between two scale folds) resumes bit-exactly."""
    rng = np.random.default_rng(4)
    shape = (30, 3)
    p1 = rng.standard_normal(shape).astype(np.float32)
    o1 = make_optimizer("adam")

    def grad() -> RowSparse:
        rows = np.unique(rng.integers(0, 30, 4)).astype(np.int64)
        return RowSparse(rows, rng.standard_normal((len(rows), 3)).astype(np.float32), shape)
    for _ in range(70):
        o1.step([p1], [grad()], 0.01)
    p2 = p1.copy()
    o2 = make_optimizer("adam")
    o2.load_state_dict(o1.state_dict())
    assert o2.scales == o1.scales and o1.scales[0] is not None
    for _ in range(80):
        g = grad()
        o1.step([p1], [g], 0.01)
        o2.step([p2], [g], 0.01)
    assert np.array_equal(p1, p2)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_lazy_sparse_updates_touch_only_present_rows(name):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((40, 3)).astype(np.float32)
    exact = p.copy()
    wd = 0.01 if name == "adamw" else 0.0  # coupled L2 (adam/sgd) makes every row's gradient nonzero
    lazy_opt = make_optimizer(name, sparse_updates=True, weight_decay=wd)
    dense_opt = make_optimizer(name, weight_decay=wd)
    g1 = RowSparse(np.array([1, 5]), np.ones((2, 3), np.float32), (40, 3))
    g2 = RowSparse(np.array([7]), np.ones((1, 3), np.float32), (40, 3))
    before = p.copy()
    for g in (g1, g2):
        lazy_opt.step([p], [g], 0.1)
        dense_opt.step([exact], [g], 0.1)
    moved = np.flatnonzero(np.any(p != before, axis=1))
    assert moved.tolist() == [1, 5, 7]          # only rows that had a gradient
    if name != "sgd" or dense_opt.momentum:     # dense momentum keeps moving rows 1 and 5 at step 2
        assert not np.array_equal(p, exact)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_decayed_moments_never_become_subnormal_and_weights_are_unaffected(name):
    """A row seen once, then never again: its moments decay toward 0 but are flushed at 1e-30
    before they turn subnormal; the weights are bit-identical to an unflushed reference run."""
    from trainhouse.core.trainer import optimizers
    p = np.ones((4, 2), np.float32)
    reference = p.copy()
    opt, ref_opt = make_optimizer(name), make_optimizer(name)
    first = RowSparse(np.array([0, 1, 2, 3]), np.full((4, 2), 0.5, np.float32), (4, 2))
    later = RowSparse(np.array([3]), np.full((1, 2), 0.5, np.float32), (4, 2))
    saved = optimizers.FLUSH_EVERY
    tiny = np.finfo(np.float32).tiny

    def subnormal(o) -> bool:
        return any(np.any((a != 0) & (np.abs(a) < tiny)) for a in (o.m + o.v if name == "adam" else o.velocity))
    ref_had_subnormals = False
    for step in range(1500):
        g = first if step == 0 else later
        opt.step([p], [g], 1e-3)
        assert not subnormal(opt)
        try:  # the reference: no flushing
            optimizers.FLUSH_EVERY = 10 ** 9
            ref_opt.step([reference], [g], 1e-3)
        finally:
            optimizers.FLUSH_EVERY = saved
        ref_had_subnormals = ref_had_subnormals or subnormal(ref_opt)
    state = opt.m + opt.v if name == "adam" else opt.velocity
    assert any(np.any(a == 0) for a in state)  # the stale rows were flushed
    assert ref_had_subnormals  # without the guard they would have been subnormal for a while
    assert np.array_equal(p, reference)
