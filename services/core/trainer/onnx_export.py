"""Export a ``TrainedModel`` to an ONNX graph that ONNX Runtime serves.

The graph takes the featurizer's output (``features``, float32 [N, dim]) and returns
``probabilities`` (float32 [N, n_outputs]): ``Gemm -> Relu`` per hidden layer, a final ``Gemm``,
``Div`` by the fitted temperature and ``Softmax(axis=-1)``; exactly the NumPy eval-mode forward
(dropout is training-only). The out-of-scope threshold travels in ``metadata_props``.
Text featurization stays outside the graph (string hashing is not an ONNX op), so the label map
and featurizer settings travel in ``metadata_props`` and ``OnnxModel`` rebuilds the same
``HashingFeaturizer`` from them.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.onnx_model import (META_EXTRA, META_FEATURIZER, META_HIDDEN, META_LABELS, META_THRESHOLD,
                                      META_TEMPERATURE)
from trainhouse.core.trainer.examples import LabelMap
from trainhouse.core.trainer.mlp import TrainedModel
from trainhouse.core.files import write_atomic

OPSET = 17
IR_VERSION = 8  # the IR version introduced with opset 17: loadable by every ORT >= 1.12


def build_onnx(model: TrainedModel) -> onnx.ModelProto:
    """The checked ``ModelProto`` for ``model``."""
    nodes, inits = [], []
    current = "features"
    n_layers = len(model.params)
    for i, (W, b) in enumerate(model.params):
        inits.append(numpy_helper.from_array(np.asarray(W, dtype=np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(np.asarray(b, dtype=np.float32), f"b{i}"))
        out = "logits" if i == n_layers - 1 else f"z{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [out], name=f"dense{i}"))
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            current = f"h{i}"
    # Temperature scaling (calibration.py): the served probabilities are the calibrated ones.
    inits.append(numpy_helper.from_array(np.asarray(model.temperature, dtype=np.float32), "temperature"))
    nodes.append(helper.make_node("Div", ["logits", "temperature"], ["scaled_logits"], name="temperature_scaling"))
    nodes.append(helper.make_node("Softmax", ["scaled_logits"], ["probabilities"], name="softmax", axis=-1))
    dim = int(model.params[0][0].shape[0])
    n_out = int(model.params[-1][0].shape[1])
    graph = helper.make_graph(
        nodes, "trainhouse_mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_out])],
        initializer=inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="trainhouse", ir_version=IR_VERSION)
    helper.set_model_props(proto, {
        META_LABELS: json.dumps(model.label_map.to_list(), ensure_ascii=False),
        META_FEATURIZER: json.dumps(model.featurizer_config.to_dict()),
        META_HIDDEN: json.dumps(list(model.hidden_sizes)),
        META_EXTRA: json.dumps(model.metadata, ensure_ascii=False, default=str),
        META_TEMPERATURE: json.dumps(float(model.temperature)),
        META_THRESHOLD: json.dumps(float(model.out_of_scope_threshold)),
    })
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model: TrainedModel, path: str) -> None:
    """Write ``model`` as ONNX to ``path`` (atomically: temp file in the same directory, then rename)."""
    write_atomic(path, build_onnx(model).SerializeToString())


def load_trained_model(data: bytes) -> TrainedModel:
    """Read a trainhouse ONNX model back into a ``TrainedModel``: weights from the ``W{i}`` /
    ``b{i}`` initializers, catalog, featurizer and hidden sizes from ``metadata_props``.

    The inverse of ``build_onnx``; transfer learning starts from the bytes the registry serves.
    Raises ``ValueError`` when the bytes are not a trainhouse MLP.
    """
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise ValueError(f"not an ONNX model: {exc}") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    if META_LABELS not in meta or META_FEATURIZER not in meta:
        raise ValueError("not a trainhouse model: label map or featurizer metadata missing")
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    hidden = tuple(int(h) for h in json.loads(meta.get(META_HIDDEN, "[]")))
    params = []
    for i in range(len(hidden) + 1):
        if f"W{i}" not in inits or f"b{i}" not in inits:
            raise ValueError(f"not a trainhouse MLP: initializer W{i}/b{i} missing")
        params.append((np.array(inits[f"W{i}"], dtype=np.float32), np.array(inits[f"b{i}"], dtype=np.float32)))
    labels = json.loads(meta[META_LABELS])
    for i, (W, b) in enumerate(params):
        expected_out = hidden[i] if i < len(hidden) else len(labels)
        if W.ndim != 2 or W.shape[1] != expected_out or b.shape != (expected_out,):
            raise ValueError(f"layer {i} has shape {W.shape}, expected (*, {expected_out})")
        if i and W.shape[0] != params[i - 1][0].shape[1]:
            raise ValueError(f"layer {i} input width {W.shape[0]} does not match layer {i - 1}")
    featurizer = FeaturizerConfig.from_dict(json.loads(meta[META_FEATURIZER]))
    if params[0][0].shape[0] != featurizer.dim:
        raise ValueError(f"first layer has {params[0][0].shape[0]} inputs, the featurizer {featurizer.dim}")
    metadata = json.loads(meta.get(META_EXTRA, "{}"))
    return TrainedModel(params=params, label_map=LabelMap.from_list(labels), featurizer_config=featurizer,
                        hidden_sizes=hidden, metadata=metadata if isinstance(metadata, dict) else {},
                        temperature=float(json.loads(meta.get(META_TEMPERATURE, "1.0"))),
                        out_of_scope_threshold=float(json.loads(meta.get(META_THRESHOLD, "0.0"))))


def export_onnx_bytes(model: TrainedModel) -> bytes:
    """Serialized ONNX model, for stores that keep artefacts as blobs."""
    return build_onnx(model).SerializeToString()
