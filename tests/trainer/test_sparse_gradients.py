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


@pytest.mark.parametrize("name,kw", [("adam", {}), ("adam", {"weight_decay": 0.01}), ("adamw", {"weight_decay": 0.05}),
                                     ("sgd", {"momentum": 0.0}), ("sgd", {"momentum": 0.9}),
                                     ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01})])
def test_row_sparse_updates_are_the_dense_algorithm(name, kw, monkeypatch):
    """Default path: a RowSparse gradient gives the same parameters as its dense equivalent (the
    row-blocked Adam update included: 50 rows x 3 columns span several blocks of 16 elements)."""
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
    for step in range(1500):
        g = first if step == 0 else later
        opt.step([p], [g], 1e-3)
        try:  # the reference: no flushing
            optimizers.FLUSH_EVERY = 10 ** 9
            ref_opt.step([reference], [g], 1e-3)
        finally:
            optimizers.FLUSH_EVERY = saved
    state = opt.m + opt.v if name == "adam" else opt.velocity
    tiny = np.finfo(np.float32).tiny
    assert all(not np.any((a != 0) & (np.abs(a) < tiny)) for a in state)  # no subnormals
    assert any(np.any(a == 0) for a in state)  # the stale rows were flushed
    ref_state = ref_opt.m + ref_opt.v if name == "adam" else ref_opt.velocity
    assert any(np.any((a != 0) & (np.abs(a) < tiny)) for a in ref_state)  # without the guard they would be
    assert np.array_equal(p, reference)
