import numpy as np
import pytest

from trainhouse.core.trainer import MLP, PARTIAL_WEIGHT, feedback_loss, loss_and_grads, numerical_gradient_check
from trainhouse.core.trainer.examples import Example, LabelMap, encode_targets


def _problem(hidden, seed=0, n=7, dim=9, k=4):
    rng = np.random.default_rng(seed)
    mlp = MLP.init(dim, hidden, k, rng, dtype=np.float64)
    # Non-zero biases so ReLU kinks are not all at the same place.
    for _, b in mlp.params:
        b[...] = rng.normal(0, 0.1, b.shape)
    X = rng.normal(size=(n, dim))
    y = rng.integers(0, k, size=n)
    coef = rng.uniform(0.2, 2.0, size=n)                 # per-example weights
    negative = np.array([i % 3 == 0 for i in range(n)])  # some "incorrect" (unlikelihood) rows
    return mlp, X, y, coef, negative


@pytest.mark.parametrize("hidden", [(), (6,), (5, 4)])
def test_gradients_positive_only(hidden):
    mlp, X, y, coef, _ = _problem(hidden)
    err = numerical_gradient_check(mlp, X, y, np.ones_like(coef), np.zeros(len(y), bool))
    assert err < 1e-4


@pytest.mark.parametrize("hidden", [(), (5, 4)])
def test_gradients_with_unlikelihood_weights_and_l2(hidden):
    mlp, X, y, coef, negative = _problem(hidden, seed=1)
    assert negative.any() and (~negative).any()
    assert numerical_gradient_check(mlp, X, y, coef, negative) < 1e-4
    assert numerical_gradient_check(mlp, X, y, coef, negative, l2=0.05) < 1e-4


def test_gradients_with_fixed_dropout_masks():
    mlp, X, y, coef, negative = _problem((6, 5), seed=2)
    rng = np.random.default_rng(3)
    p = 0.3
    masks = [(rng.random((len(y), h)) >= p) / (1 - p) for h in mlp.hidden_sizes]
    assert numerical_gradient_check(mlp, X, y, coef, negative, masks=masks) < 1e-4


def test_dropout_is_train_only_and_inverted():
    mlp, X, *_ = _problem((50,), seed=4, n=2000)
    eval_logits, _ = mlp.forward(X)
    again, _ = mlp.forward(X)
    assert np.array_equal(eval_logits, again)
    train_logits, cache = mlp.forward(X, dropout=0.5, rng=np.random.default_rng(0))
    assert not np.array_equal(train_logits, eval_logits)
    # Inverted dropout keeps the expected activation: the mean over many rows stays close.
    h_eval = np.maximum(X @ mlp.params[0][0] + mlp.params[0][1], 0)
    assert cache["acts"][1].mean() == pytest.approx(h_eval.mean(), rel=0.05)


def test_unlikelihood_is_finite_at_extreme_logits():
    logits = np.array([[60.0, -60.0, 0.0], [-60.0, 60.0, 0.0]])
    y = np.array([0, 0])
    loss, grad, per = feedback_loss(logits, y, np.ones(2), np.array([True, True]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert per[0] == pytest.approx(60.0, rel=1e-6)  # -log(1 - p_y) with p_y ~ 1 - e^-60
    assert per[1] == pytest.approx(0.0, abs=1e-20)
    assert grad[0, 0] > 0  # descending pushes the logit of the wrong output down


def test_single_output_incorrect_contributes_nothing():
    loss, grad, _ = feedback_loss(np.zeros((1, 1)), np.array([0]), np.ones(1), np.array([True]))
    assert loss == 0.0 and not grad.any()


def test_partial_feedback_is_half_weight():
    lm = LabelMap(["a", "b"])
    t = encode_targets([Example("x", "a", "partial", 2.0), Example("x", "b", "incorrect"), Example("x", "a")], lm)
    assert t.coef.tolist() == [2.0 * PARTIAL_WEIGHT, 1.0, 1.0]
    assert t.negative.tolist() == [False, True, False]
    assert t.y.tolist() == [0, 1, 0]


def test_weights_scale_the_loss():
    mlp, X, y, coef, negative = _problem((4,), seed=5)
    l1, g1, _ = loss_and_grads(mlp, X, y, coef, negative)
    l2, g2, _ = loss_and_grads(mlp, X, y, 3 * coef, negative)
    assert l2 == pytest.approx(3 * l1)
    assert np.allclose(g2[0][0], 3 * g1[0][0])


def test_state_dict_round_trip():
    mlp, *_ = _problem((5, 4), seed=6)
    other = MLP.init(9, (5, 4), 4, np.random.default_rng(99), dtype=np.float64)
    other.load_state_dict(mlp.state_dict())
    for (W, b), (W2, b2) in zip(mlp.params, other.params):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    with pytest.raises(ValueError):
        MLP.init(9, (3,), 4, np.random.default_rng(0)).load_state_dict(mlp.state_dict())


def test_he_init_scale():
    mlp = MLP.init(4096, (256,), 3, np.random.default_rng(0))
    W = mlp.params[0][0]
    assert W.dtype == np.float32
    assert W.std() == pytest.approx(np.sqrt(2 / 4096), rel=0.02)
    assert not mlp.params[0][1].any()
