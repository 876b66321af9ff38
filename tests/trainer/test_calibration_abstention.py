"""Issue #19 behaviour on real parts (real trainer, real ONNX Runtime, real HWU64 requests): calibrated
probabilities, abstention on intents the model never saw, defaults chosen from the data."""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from trainhouse.core.abstention import abstains, abstention_score, in_scope_ranking
from trainhouse.core.configs import SupervisedConfig
from trainhouse.core.configs.training import auto_settings
from trainhouse.core.onnx_model import OnnxModel
from trainhouse.core.trainer import SupervisedTrainer
from trainhouse.core.trainer.calibration import expected_calibration_error
from trainhouse.core.trainer.examples import OUT_OF_SCOPE, Example
from trainhouse.core.trainer.onnx_export import export_onnx_bytes
from trainhouse.core.trainer.supervised_trainer import resolve_config
from tests.intents import hwu64_subset, make_examples


def _split(rows: list[dict], test_share: float, seed: int) -> tuple[list[dict], list[dict]]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    cut = int(len(rows) * (1 - test_share))
    return rows[:cut], rows[cut:]


def _examples(rows: list[dict]) -> list[Example]:
    return [Example(input=r["input"], expected_output=r["expected_output"]) for r in rows]


@pytest.fixture(scope="module")
def overconfident():
    """An MLP driven to over-confidence (high learning rate, many epochs, no early stopping) on
    630 HWU64 requests, and 210 requests it never saw."""
    train, test = _split(hwu64_subset(), 0.25, seed=0)
    cfg = SupervisedConfig(epochs=40, learning_rate=0.05, early_stopping=False, validation_split=0.25, refit=False,
                           dropout=0.0, weight_decay=0.0, seed=1)
    return SupervisedTrainer(cfg, train).train(), test


def test_temperature_scaling_lowers_ece_on_unseen_examples(overconfident):
    result, test = overconfident
    model = result.model
    assert model.temperature > 1.0, "an over-confident model is cooled down"
    y = np.asarray([model.label_map.index(e["expected_output"]) for e in test])
    texts = [e["input"] for e in test]
    raw = dataclasses.replace(model, temperature=1.0).predict_proba(texts)
    calibrated = model.predict_proba(texts)
    before, after = expected_calibration_error(raw, y), expected_calibration_error(calibrated, y)
    assert after <= before, (before, after)
    assert (raw.argmax(axis=1) == calibrated.argmax(axis=1)).all()  # temperature changes no ranking
    m = result.metrics
    assert m["temperature"] == model.temperature and m["ece_after"] <= m["ece_before"]


def test_onnx_serves_the_calibrated_probabilities(overconfident):
    result, test = overconfident
    model = dataclasses.replace(result.model, temperature=2.5, out_of_scope_threshold=0.3)
    served = OnnxModel.from_bytes(export_onnx_bytes(model))
    assert served.temperature == 2.5 and served.out_of_scope_threshold == 0.3
    texts = [e["input"] for e in test]
    ours, onnx = model.predict_proba(texts), served.predict_proba(texts)
    assert np.abs(ours - onnx).max() <= 1e-5
    assert np.abs(onnx - dataclasses.replace(model, temperature=1.0).predict_proba(texts)).max() > 1e-2


def test_an_intent_left_out_of_training_abstains_more_than_known_ones():
    rows = hwu64_subset()
    intents = sorted({r["expected_output"] for r in rows})
    unknown = set(intents[::5])  # 5 of 21 intents never trained on
    known = [r for r in rows if r["expected_output"] not in unknown]
    train, test_in = _split(known, 0.2, seed=3)
    test_oos = [r for r in rows if r["expected_output"] in unknown]
    result = SupervisedTrainer(SupervisedConfig(seed=3, epochs=20, learning_rate=0.005), train).train()
    model = result.model
    assert 0 < model.out_of_scope_threshold < 1
    abstain = lambda rs: model.out_of_scope_threshold > model.predict_proba([r["input"] for r in rs]).max(axis=1)  # noqa: E731
    in_rate, oos_rate = abstain(test_in).mean(), abstain(test_oos).mean()
    assert oos_rate > in_rate + 0.05, (in_rate, oos_rate)
    assert result.metrics["out_of_scope_examples"] == 0


def test_out_of_scope_examples_are_trained_as_an_output_and_catch_unseen_intents_better():
    """Larson et al.'s oos-train, with an honest split: intents relabelled __out_of_scope__ are
    trained on and choose the threshold; *other* intents, never seen in any form, are the test.
    The OOS-trained version abstains on more of the unseen intents than one trained without OOS
    data, and the served ONNX model abstains on exactly the rows the trainer's model does."""
    rows = hwu64_subset()
    intents = sorted({r["expected_output"] for r in rows})
    unseen, marked = set(intents[::6]), set(intents[3::6])  # disjoint groups of left-out intents
    known = [r for r in rows if r["expected_output"] not in unseen | marked]
    train, test_in = _split(known, 0.2, seed=3)
    test_oos = [r for r in rows if r["expected_output"] in unseen]
    oos_rows = [{**r, "expected_output": OUT_OF_SCOPE} for r in rows if r["expected_output"] in marked]
    cfg = SupervisedConfig(seed=3, epochs=20, learning_rate=0.005)
    plain = SupervisedTrainer(cfg, train).train().model
    result = SupervisedTrainer(cfg, train + oos_rows).train()
    model, m = result.model, result.metrics
    assert OUT_OF_SCOPE in model.labels and not (marked & set(model.labels))
    assert m["out_of_scope_examples"] == len(oos_rows) and m["held_out_out_of_scope_examples"] > 0
    assert m["held_out_out_of_scope_recall"] > 0 and "held_out_accuracy_with_out_of_scope" in m

    def recall(version) -> float:
        probs = version.predict_proba([r["input"] for r in test_oos])
        return float(abstains(probs, version.labels, version.out_of_scope_threshold).mean())

    assert recall(model) > recall(plain) + 0.1, (recall(model), recall(plain))
    texts = [r["input"] for r in test_in + test_oos]
    served = OnnxModel.from_bytes(export_onnx_bytes(model))
    ours = abstains(model.predict_proba(texts), model.labels, model.out_of_scope_threshold)
    assert (served.out_of_scope(served.predict_proba(texts)) == ours).all()


def test_abstention_score_never_ranks_the_reserved_output_as_an_intent():
    labels = ["a", OUT_OF_SCOPE, "b"]
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.2, 0.1, 0.7]])
    assert abstention_score(probs, labels).tolist() == [0.5, -1.0, 0.7]
    assert [[labels[i] for i in row] for row in in_scope_ranking(probs, labels)] == [["a", "b"], ["b", "a"], ["b", "a"]]
    assert abstains(probs, labels, 0.0).tolist() == [False, True, False]  # 0: only when the top output is OOS
    assert abstains(probs, labels, 0.6).tolist() == [True, True, False]
    assert abstains(probs[:, [0, 2]], ["a", "b"], 0.0).tolist() == [False, False, False]


def test_auto_defaults_follow_the_size_of_the_data():
    tiny = resolve_config(SupervisedConfig(), _examples(make_examples(5)))
    large = resolve_config(SupervisedConfig(), _examples(make_examples(600)))  # 2,400 examples, 4 outputs
    assert tiny.is_resolved and large.is_resolved
    assert tiny.hidden_sizes == (64,) and tiny.featurizer.dim == 2 ** 14 and tiny.learning_rate == 0.001
    assert tiny.refit is False
    assert large.hidden_sizes == () and large.featurizer.dim == 2 ** 17 and large.learning_rate == 0.01
    assert large.refit is True and large.sparse_updates is True
    # promotion keeps the validation split held out; fields the caller set are kept
    assert resolve_config(SupervisedConfig(), _examples(make_examples(600)), promotion=True).refit is False
    assert resolve_config(SupervisedConfig(hidden_sizes=(32,)), _examples(make_examples(600))).hidden_sizes == (32,)
    # many outputs: the output layer stays small enough for one gRPC message
    wide = auto_settings(30_000, 300)["featurizer"]
    assert wide.dim * 300 * 4 <= 32 * 1024 * 1024


def test_served_outputs_are_what_predict_answers() -> None:
    """The promotion gate scores versions with served_outputs: the best catalogue output, or
    __out_of_scope__ where the version abstains (its own column on top, or below the threshold)."""
    from trainhouse.core.abstention import served_outputs

    labels = ["billing", OUT_OF_SCOPE, "refund"]
    probs = np.array([[0.7, 0.2, 0.1],     # confident billing
                      [0.2, 0.5, 0.3],     # out of scope on top
                      [0.31, 0.3, 0.39]])  # refund, but below a 0.4 threshold
    assert list(served_outputs(probs, labels, 0.4)) == ["billing", OUT_OF_SCOPE, OUT_OF_SCOPE]
    assert list(served_outputs(probs, labels, 0.0)) == ["billing", OUT_OF_SCOPE, "refund"]
    # A version that never learned the reserved output abstains on its threshold only.
    plain = probs[:, [0, 2]]
    assert list(served_outputs(plain, ["billing", "refund"], 0.0)) == ["billing", "refund", "refund"]
    assert list(served_outputs(plain, ["billing", "refund"], 0.65)) == ["billing", OUT_OF_SCOPE, OUT_OF_SCOPE]
