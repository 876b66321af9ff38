import math

import numpy as np
import pytest

from trainhouse.core.trainer import SGD, Adam, AdamW, make_optimizer, make_scheduler


def _quadratic(seed=0, n=6):
    """f(x) = 1/2 x^T A x - b^T x with A symmetric positive definite (condition number ~10)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = Q @ np.diag(np.linspace(1.0, 10.0, n)) @ Q.T
    b = rng.normal(size=n)
    x_star = np.linalg.solve(A, b)
    f = lambda x: 0.5 * x @ A @ x - b @ x  # noqa: E731
    return A, b, f, f(x_star)


@pytest.mark.parametrize("name,lr,kwargs", [
    ("adam", 0.05, {}),
    ("adamw", 0.05, {"weight_decay": 1e-4}),
    ("sgd", 0.02, {"momentum": 0.9}),
    ("sgd", 0.02, {"momentum": 0.9, "nesterov": True}),
    ("sgd", 0.05, {"momentum": 0.0}),
])
def test_optimizer_minimises_convex_quadratic(name, lr, kwargs):
    A, b, f, f_star = _quadratic()
    x = np.zeros((len(b), 1))  # 2-D so weight decay applies to it
    opt = make_optimizer(name, **kwargs)
    gap0 = f(x[:, 0]) - f_star
    for _ in range(500):
        opt.step([x], [A @ x - b[:, None]], lr)
    assert f(x[:, 0]) - f_star < 1e-3 * gap0


def test_adamw_decay_is_decoupled_and_spares_biases():
    W, bias = np.ones((2, 2), np.float32), np.ones(2, np.float32)
    opt = AdamW(weight_decay=0.1)
    opt.step([W, bias], [np.zeros_like(W), np.zeros_like(bias)], lr=0.5)
    assert np.allclose(W, 1 - 0.5 * 0.1) and np.array_equal(bias, np.ones(2))
    assert W.dtype == np.float32


def test_state_dict_resume_is_exact():
    A, b, _, _ = _quadratic(1)
    for cls in (Adam, AdamW, lambda: SGD(momentum=0.9, nesterov=True)):
        x1 = np.zeros((len(b), 1), np.float32)
        o1 = cls()
        for _ in range(10):
            o1.step([x1], [(A @ x1 - b[:, None]).astype(np.float32)], 0.01)
        x2 = x1.copy()
        o2 = cls()
        o2.load_state_dict(o1.state_dict())
        for _ in range(5):
            o1.step([x1], [(A @ x1 - b[:, None]).astype(np.float32)], 0.01)
            o2.step([x2], [(A @ x2 - b[:, None]).astype(np.float32)], 0.01)
        assert np.array_equal(x1, x2)


def test_unknown_optimizer():
    with pytest.raises(ValueError):
        make_optimizer("rmsprop")


def test_constant_and_linear():
    s = make_scheduler("constant", 0.1, total_steps=10)
    assert [s.lr_at(i) for i in (0, 5, 9)] == [0.1, 0.1, 0.1]
    s = make_scheduler("linear", 0.1, total_steps=10)
    assert s.lr_at(0) == pytest.approx(0.1)
    assert s.lr_at(5) == pytest.approx(0.05)
    assert s.lr_at(9) == pytest.approx(0.01)
    assert s.lr_at(10) == 0.0


def test_cosine():
    s = make_scheduler("cosine", 1.0, total_steps=100)
    assert s.lr_at(0) == pytest.approx(1.0)
    assert s.lr_at(50) == pytest.approx(0.5)
    assert s.lr_at(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert s.lr_at(100) == pytest.approx(0.0, abs=1e-12)


def test_step_schedule():
    s = make_scheduler("step", 0.1, total_steps=100, step_size=10, gamma=0.5)
    assert [s.lr_at(i) for i in (0, 9, 10, 25, 99)] == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.1 * 0.5 ** 9])


def test_warmup_then_linear():
    s = make_scheduler("linear", 0.1, total_steps=14, warmup_steps=4)
    assert [s.lr_at(i) for i in range(4)] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert s.lr_at(4) == pytest.approx(0.1)
    assert s.lr_at(9) == pytest.approx(0.05)


def test_scheduler_state_is_the_step_counter():
    s = make_scheduler("cosine", 0.1, total_steps=20, warmup_steps=2)
    for _ in range(7):
        s.step()
    t = make_scheduler("cosine", 0.1, total_steps=20, warmup_steps=2)
    t.load_state_dict(s.state_dict())
    assert t.current_lr == s.current_lr == s.lr_at(7)
