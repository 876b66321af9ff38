import json

import numpy as np
import onnx
import pytest

from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.trainer import SupervisedConfig, SupervisedTrainer, export_onnx, export_onnx_bytes


@pytest.fixture(scope="module", params=[(32, 16), ()], ids=["mlp", "linear"])
def trained(request, intents):
    cfg = SupervisedConfig(epochs=3, hidden_sizes=request.param, learning_rate=0.01,
                           featurizer=FeaturizerConfig(dim=2048, char_ngrams=(2, 4)))
    return SupervisedTrainer(cfg, intents(0, per_intent=15)).train().model


def test_numpy_and_onnxruntime_agree(trained, intents, tmp_path):
    path = str(tmp_path / "model.onnx")
    export_onnx(trained, path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    assert [o.name for o in proto.graph.output] == ["probabilities"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["labels"]) == trained.labels  # the registry reads these two keys
    assert FeaturizerConfig.from_dict(json.loads(meta["featurizer"])) == trained.featurizer_config
    texts = [e.input for e in intents(5, per_intent=5)] + ["", "completely unrelated words", "?"]
    expected = trained.predict_proba(texts)
    for served in (OnnxModel.from_path(path), OnnxModel.from_bytes(export_onnx_bytes(trained))):
        got = served.predict_proba(texts)
        assert got.shape == (len(texts), len(trained.labels)) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        assert served.labels == trained.labels
        assert served.featurizer_config == trained.featurizer_config
        assert served.hidden_sizes == trained.hidden_sizes
        assert [label for label, _ in served.predict(texts)] == [label for label, _ in trained.predict(texts)]
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)


def test_not_a_trainhouse_model():
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ValueError):
        OnnxModel.from_bytes(model.SerializeToString())
