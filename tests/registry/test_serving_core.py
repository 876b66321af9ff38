"""The serving decisions the registry's Predict and the gateway's replica share (core/serving.py)."""
from __future__ import annotations

import numpy as np

from trainhouse.core.serving import Route, Served, invalid_output


def test_invalid_output_is_what_allclose_and_the_shape_checks_say() -> None:
    ok = np.array([[0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    assert invalid_output(ok, 2, 2) is None
    assert invalid_output(ok + np.float32(0.0005), 2, 2) is None           # within 1e-3 of 1 per row
    assert "do not sum to 1" in invalid_output(ok + np.float32(0.002), 2, 2)
    assert "do not sum to 1" in invalid_output(np.array([[1.1, -0.1]], dtype=np.float32), 1, 2)
    assert "non-finite" in invalid_output(np.array([[np.nan, 1.0]]), 1, 2)
    assert "shape" in invalid_output(ok, 3, 2)
    for rows in (np.random.default_rng(0).dirichlet(np.ones(5), 50) + d for d in (0.0, 2e-4, 3e-4)):
        assert (invalid_output(rows, 50, 5) is None) == bool(np.allclose(rows.sum(axis=1), 1.0, atol=1e-3))


def test_a_route_splits_request_keys_stably() -> None:
    stable, candidate = Served("a", "v1", "/p1", "s1"), Served("a", "v2", "/p2", "s2")
    half = Route(stable, candidate, "dep-1", 50.0)
    sides = {key: half.pick("a", key)[1] for key in (f"user-{i}" for i in range(200))}
    assert {half.pick("a", key)[1] for key in sides} == {"stable", "candidate"}
    assert all(half.pick("a", key)[1] == side for key, side in sides.items())      # a key keeps its side
    assert 70 < sum(side == "candidate" for side in sides.values()) < 130
    assert Route(stable, candidate, "dep-1", 0.0).pick("a", "user-1") == (stable, "stable")
    assert Route(stable, candidate, "dep-1", 100.0).pick("a", "") == (candidate, "candidate")
    assert Route(stable).pick("a", "") == (stable, "stable")
