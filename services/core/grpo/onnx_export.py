"""ONNX export of a GRPO policy: full step features -> action probabilities.

The graph is the classifier's (``Gemm -> Relu`` per hidden layer, ``Gemm``, ``Softmax``; opset 17,
initializers ``W{i}``/``b{i}``), with input ``features`` float32 [N, D + 2T + 1] and output
``probabilities`` float32 [N, n_actions]. The features are the query's hashed n-grams (D, the
featurizer in the metadata) followed by the state vector of ``environment.Episode.state_vector``.

Metadata (``metadata_props``, JSON values): ``labels`` = the actions (tools, ``finish`` last),
``featurizer`` = the *query* featurizer, ``hidden_sizes``, ``training_metadata`` (with
``"model_kind": "policy"``) and ``policy_layout`` = {query_dim, state_dim, tools, state_features}.
Because the input is wider than the featurizer's dim, a text-only server must not feed it bare
featurizer output: ``policy_layout`` tells it to append the state vector (``ToolPolicy.features``).
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.files import write_atomic
from trainhouse.core.grpo.environment import state_dim
from trainhouse.core.grpo.policy import ToolPolicy
from trainhouse.core.trainer.mlp import MLP
from trainhouse.core.trainer.onnx_export import IR_VERSION, OPSET

# The keys services/core/onnx_model.py reads (same strings as the classifier export).
META_LABELS = "labels"
META_FEATURIZER = "featurizer"
META_HIDDEN = "hidden_sizes"
META_EXTRA = "training_metadata"
META_POLICY = "policy_layout"


def policy_layout(policy: ToolPolicy) -> dict:
    tools = policy.actions[:-1]
    return {"query_dim": policy.query_dim, "state_dim": state_dim(policy.n_tools), "tools": tools,
            "state_features": [f"called_ok:{t}" for t in tools] + [f"last_tool:{t}" for t in tools] + ["last_failed"]}


def build_policy_onnx(policy: ToolPolicy) -> onnx.ModelProto:
    nodes, inits = [], []
    current = "features"
    params = policy.mlp.params
    for i, (W, b) in enumerate(params):
        inits.append(numpy_helper.from_array(np.asarray(W, dtype=np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(np.asarray(b, dtype=np.float32), f"b{i}"))
        out = "logits" if i == len(params) - 1 else f"z{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [out], name=f"dense{i}"))
        if i < len(params) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            current = f"h{i}"
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "trainhouse_tool_policy",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", policy.input_dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(policy.actions)])],
        initializer=inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="trainhouse", ir_version=IR_VERSION)
    extra = {"paradigm": "grpo", "model_kind": "policy", **policy.metadata}
    helper.set_model_props(proto, {
        META_LABELS: json.dumps(policy.actions),
        META_FEATURIZER: json.dumps(policy.featurizer_config.to_dict()),
        META_HIDDEN: json.dumps(list(policy.hidden_sizes)),
        META_EXTRA: json.dumps(extra, ensure_ascii=False, default=str),
        META_POLICY: json.dumps(policy_layout(policy)),
    })
    onnx.checker.check_model(proto)
    return proto


def policy_onnx_bytes(policy: ToolPolicy) -> bytes:
    return build_policy_onnx(policy).SerializeToString()


def export_policy_onnx(policy: ToolPolicy, path: str) -> None:
    """Write the policy as ONNX to ``path`` atomically (temp file in the same directory, rename)."""
    write_atomic(path, policy_onnx_bytes(policy))


def load_policy_onnx(data: bytes) -> ToolPolicy:
    """The inverse of ``build_policy_onnx`` (weights exact): evaluate a served policy in NumPy."""
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise ValueError(f"not an ONNX model: {exc}") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    if META_POLICY not in meta or META_LABELS not in meta or META_FEATURIZER not in meta:
        raise ValueError("not a trainhouse tool policy: policy_layout, labels or featurizer metadata missing")
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    hidden = json.loads(meta.get(META_HIDDEN, "[]"))
    params = []
    for i in range(len(hidden) + 1):
        if f"W{i}" not in inits or f"b{i}" not in inits:
            raise ValueError(f"initializer W{i}/b{i} missing")
        params.append((np.array(inits[f"W{i}"], dtype=np.float32), np.array(inits[f"b{i}"], dtype=np.float32)))
    extra = json.loads(meta.get(META_EXTRA, "{}"))
    extra = {k: v for k, v in extra.items() if k not in ("paradigm", "model_kind")} if isinstance(extra, dict) else {}
    return ToolPolicy(MLP(params), json.loads(meta[META_LABELS]),
                      FeaturizerConfig.from_dict(json.loads(meta[META_FEATURIZER])), extra)
