"""The exported policy graph computes what the NumPy policy computes (ONNX Runtime, 1e-5)."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.grpo import (GRPOConfig, GRPOTrainer, ToolEnvironment, TrainingQuery, load_policy_onnx,
                                    policy_onnx_bytes, rollout)
from tests.grpo.tasks import make_tasks


@pytest.fixture(scope="module", params=[(16,), (), (12, 8)], ids=["mlp", "linear", "deep"])
def policy_and_config(request):
    cfg = GRPOConfig(n_iterations=8, batch_size=8, n_trajectories_per_query=4, learning_rate=0.05,
                     max_steps_per_trajectory=5, hidden_sizes=request.param, featurizer=FeaturizerConfig(dim=512))
    return GRPOTrainer(cfg, make_tasks(24, 0)).train().policy, cfg


def real_step_features(policy, cfg):
    queries = [TrainingQuery.parse(t, "q") for t in make_tasks(12, 5, held_out=True)]
    env = ToolEnvironment(cfg.catalog, cfg.max_steps_per_trajectory)
    batch = rollout(policy, env, queries, policy.encode_queries([q.query for q in queries]), 2,
                    np.random.default_rng(0))
    texts = [queries[g].query for g in batch.qidx]
    return batch, policy.features(texts, batch.S)


def test_onnxruntime_matches_numpy(policy_and_config, tmp_path):
    policy, cfg = policy_and_config
    batch, X = real_step_features(policy, cfg)
    assert X.shape == (len(batch.actions), policy.input_dim)
    path = str(tmp_path / "policy.onnx")
    policy.export_onnx(path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": X})[0]
    expected = policy.probabilities(X)
    assert got.shape == (len(X), len(policy.actions)) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # ... and what training computes (split first layer) agrees with both
    logits, _ = policy.forward(batch.Q, batch.qidx, batch.S)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), atol=1e-5, rtol=0)
    assert not np.allclose(expected, 1.0 / len(policy.actions), atol=1e-3)  # a trained, non-uniform policy


def test_metadata_and_round_trip(policy_and_config):
    policy, _ = policy_and_config
    data = policy_onnx_bytes(policy)
    meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert json.loads(meta["labels"]) == policy.actions and policy.actions[-1] == "finish"
    layout = json.loads(meta["policy_layout"])
    assert layout["query_dim"] + layout["state_dim"] == policy.input_dim
    assert len(layout["state_features"]) == layout["state_dim"]
    assert json.loads(meta["training_metadata"])["model_kind"] == "policy"
    served = OnnxModel.from_bytes(data)            # the serving loader accepts it (labels, featurizer)
    assert served.labels == policy.actions and served.featurizer_config == policy.featurizer_config
    back = load_policy_onnx(data)
    assert back.actions == policy.actions and back.hidden_sizes == policy.hidden_sizes
    assert all(np.array_equal(a, b) for a, b in zip(back.mlp.arrays(), policy.mlp.arrays()))
    with pytest.raises(ValueError):
        load_policy_onnx(b"not onnx")
