"""He-normal initialisation: float32 weights drawn in float32 (Box-Muller) are normal with the He
standard deviation, and the same seed gives the same weights."""
import numpy as np
from scipy import stats

from trainhouse.core.trainer import MLP


def test_float32_init_is_he_normal_and_deterministic():
    fan_in = 4096
    a = MLP.init(fan_in, (64,), 5, np.random.default_rng([7, 1]))
    b = MLP.init(fan_in, (64,), 5, np.random.default_rng([7, 1]))
    assert all(np.array_equal(x, y) for x, y in zip(a.arrays(), b.arrays()))
    W = a.params[0][0]
    assert W.dtype == np.float32 and W.shape == (fan_in, 64)
    z = W.astype(np.float64).ravel() / np.sqrt(2.0 / fan_in)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3            # the shape of a normal, not just its moments
    assert np.all(a.params[0][1] == 0) and a.params[1][0].shape == (64, 5)
    other = MLP.init(fan_in, (64,), 5, np.random.default_rng([8, 1]))
    assert not np.array_equal(other.params[0][0], W)


def test_odd_sized_layers_and_float64():
    mlp = MLP.init(7, (3,), 1, np.random.default_rng(0))     # 21 and 3 weights: odd counts
    assert [W.shape for W, _ in mlp.params] == [(7, 3), (3, 1)] and all(np.isfinite(W).all() for W, _ in mlp.params)
    w64 = MLP.init(7, (3,), 1, np.random.default_rng(0), dtype=np.float64).params[0][0]
    assert w64.dtype == np.float64
    assert np.array_equal(w64, np.random.default_rng(0).standard_normal((7, 3)) * np.sqrt(2.0 / 7))
