import os
from collections import Counter

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.trainer import (Example, SupervisedConfig, SupervisedTrainer, TrainerCallbacks,
                                       parse_examples, stratified_split)

SMALL = FeaturizerConfig(dim=4096)


class Recorder(TrainerCallbacks):
    def __init__(self, checkpoint_dir=None, stop_after_steps=None):
        self.checkpoint_dir = checkpoint_dir
        self.stop_after_steps = stop_after_steps
        self.events = []
        self.steps = 0

    def on_event(self, kind, payload):
        self.events.append((kind, payload))
        if kind == "step":
            self.steps += 1

    def should_stop(self):
        return self.stop_after_steps is not None and self.steps >= self.stop_after_steps

    def of(self, kind):
        return [p for k, p in self.events if k == kind]


def _strip_time(history):
    return [{k: v for k, v in h.items() if k != "elapsed_s"} for h in history]


def test_beats_majority_baseline_on_held_out_data(intents):
    train, test = intents(0), intents(1, per_intent=30)
    rec = Recorder()
    result = SupervisedTrainer(SupervisedConfig(), train, callbacks=rec).train()  # documented defaults
    predictions = [label for label, _ in result.model.predict([e.input for e in test])]
    accuracy = np.mean([p == e.expected_output for p, e in zip(predictions, test)])
    majority = Counter(e.expected_output for e in train).most_common(1)[0][0]
    baseline = np.mean([e.expected_output == majority for e in test])
    assert accuracy - baseline >= 0.40, (accuracy, baseline)
    assert accuracy >= 0.85
    epochs = rec.of("epoch")
    assert len(epochs) == 10 == len(result.history)
    assert set(epochs[0]) == {"epoch", "total_epochs", "step", "total_steps", "loss", "accuracy", "validation_loss",
                              "validation_accuracy", "learning_rate", "elapsed_s"}
    assert epochs[-1]["step"] == epochs[-1]["total_steps"] == result.metrics["steps"]
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert set(result.metrics) == {"loss", "accuracy", "validation_loss", "validation_accuracy", "epochs_run",
                                   "steps", "best_epoch", "stopped_early", "cost_usd", "tokens_processed",
                                   "compute_seconds", "temperature", "ece_before", "ece_after", "calibration_examples",
                                   "out_of_scope_threshold", "out_of_scope_examples", "held_out_in_scope_accuracy",
                                   "held_out_in_scope_abstained", "refit"}
    assert result.metrics["refit"] is False  # small data: no refit, the validation split stays held out
    # every input is charged once per pass: 10 epochs of training plus 10 validation passes
    words = lambda es: sum(len(e.input.split()) for e in es)  # noqa: E731
    assert result.metrics["tokens_processed"] == 10 * (words(result.train_examples) +
                                                       words(result.validation_examples))
    assert [p["value"] for p in rec.of("metric") if p["name"] == "tokens_processed"][-1] == \
        result.metrics["tokens_processed"]
    assert len([p for p in rec.of("metric") if p["name"] == "cost_usd"]) == 10
    assert not rec.of("status")  # job states belong to the host; the trainer only logs
    # "training finished", then the calibration and threshold lines
    assert "training finished" in rec.of("log")[-3]["message"] and "threshold" in rec.of("log")[-1]["message"]
    assert any("baseline" in p["message"] for p in rec.of("log"))


def test_same_seed_same_metrics(intents):
    data = intents(0, per_intent=15)
    cfg = SupervisedConfig(epochs=4, featurizer=SMALL, dropout=0.3, seed=7)
    a = SupervisedTrainer(cfg, data).train()
    b = SupervisedTrainer(cfg, data).train()
    assert _strip_time(a.history) == _strip_time(b.history)
    for (W1, b1), (W2, b2) in zip(a.model.params, b.model.params):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)
    c = SupervisedTrainer(SupervisedConfig(epochs=4, featurizer=SMALL, dropout=0.3, seed=8), data).train()
    assert _strip_time(c.history) != _strip_time(a.history)


def test_early_stopping_restores_best_weights(intents):
    # Random labels: the model memorises the training set and validation loss rises.
    rng = np.random.default_rng(0)
    data = [Example(e.input, f"label{rng.integers(4)}") for e in intents(3, per_intent=20)]
    cfg = SupervisedConfig(epochs=60, learning_rate=0.01, scheduler_type="constant", patience=2,
                           featurizer=SMALL, hidden_sizes=(32,))
    result = SupervisedTrainer(cfg, data).train()
    assert result.metrics["stopped_early"] is True
    assert result.metrics["epochs_run"] < 60
    best = min(h["validation_loss"] for h in result.history)
    assert result.metrics["validation_loss"] == pytest.approx(best, rel=1e-5)
    assert result.history[result.metrics["best_epoch"] - 1]["validation_loss"] == best


def test_should_stop_writes_checkpoint(intents, tmp_path):
    rec = Recorder(str(tmp_path), stop_after_steps=5)
    cfg = SupervisedConfig(epochs=5, featurizer=SMALL)
    result = SupervisedTrainer(cfg, intents(0, per_intent=15), callbacks=rec).train()
    assert result.stopped is True
    assert result.metrics["steps"] == 5
    ckpt = result.checkpoints[-1]  # after the epoch-1 "best" one
    assert [c.kind for c in result.checkpoints] == ["best", "cancel"]
    assert ckpt.kind == "cancel" and os.path.exists(ckpt.path) and ckpt.step == 5
    assert rec.of("checkpoint")[-1]["path"] == ckpt.path
    assert "stopped on request" in rec.of("log")[-1]["message"]
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]


def test_interval_best_and_final_checkpoints(intents, tmp_path):
    rec = Recorder(str(tmp_path))
    cfg = SupervisedConfig(epochs=4, checkpoint_interval=2, featurizer=SMALL, early_stopping=False)
    result = SupervisedTrainer(cfg, intents(0, per_intent=10), callbacks=rec).train()
    kinds = [c.kind for c in result.checkpoints]
    assert "interval" in kinds and "best" in kinds and kinds[-1] == "final"
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "epoch-0002.npz", "final.npz"]
    assert all(c.best == (c.kind == "best") for c in result.checkpoints)
    assert {"loss", "validation_loss"} <= set(result.checkpoints[-1].metrics)


def test_step_validation_frequency(intents):
    rec = Recorder()
    cfg = SupervisedConfig(epochs=2, batch_size=8, validation_frequency="step", validation_steps=3, featurizer=SMALL)
    SupervisedTrainer(cfg, intents(0, per_intent=10), callbacks=rec).train()
    val_points = [p for p in rec.of("metric") if p["name"] == "validation_loss"]
    assert len(val_points) > 2
    assert any(p["step"] % 3 == 0 and p["step"] != rec.of("epoch")[0]["step"] for p in val_points)


def test_curriculum_stages(intents):
    data = intents(0, per_intent=10)
    for i, e in enumerate(data):
        e.level = 1 + i % 3
    rec = Recorder()
    cfg = SupervisedConfig.from_dict({"curriculum": {"enabled": True, "stages": [{"level": 1, "duration": 2},
                                                                                 {"level": 3, "duration": 1}]},
                                      "validationSplit": 0.0, "batchSize": 10, "featurizer": SMALL.to_dict()})
    result = SupervisedTrainer(cfg, data, callbacks=rec).train()
    assert cfg.total_epochs == 3 and len(result.history) == 3
    steps = [h["step"] for h in result.history]
    n1 = sum(e.level == 1 for e in data)
    assert steps[0] == -(-n1 // 10) and steps[2] - steps[1] == -(-len(data) // 10)
    assert sum("curriculum stage" in p["message"] for p in rec.of("log")) == 2
    assert result.history[0]["validation_loss"] is None
    for e in data:
        e.level += 1  # now no example has level 1
    with pytest.raises(InvalidArgument) as err:
        SupervisedTrainer(cfg, data)
    assert err.value.field == "curriculum.stages[0].level"


def test_incorrect_feedback_pushes_output_down(intents):
    data = intents(0, per_intent=15)
    cfg = SupervisedConfig(epochs=5, featurizer=SMALL, validation_split=0.0, learning_rate=0.01)
    probe = "please cancel my order"
    base = SupervisedTrainer(cfg, data).train().model
    negatives = [Example(probe, "cancel_order", "incorrect", weight=5.0)] * 5
    pushed = SupervisedTrainer(cfg, data + negatives).train().model
    col = base.label_map.index("cancel_order")
    assert pushed.predict_proba([probe])[0, col] < base.predict_proba([probe])[0, col]


def test_stratified_split_is_proportional_and_seeded(intents):
    data = intents(0, per_intent=40)
    train, val = stratified_split(data, 0.2, np.random.default_rng(0))
    assert len(val) == 48 and len(train) == 192
    assert set(Counter(e.expected_output for e in val).values()) == {8}
    again = stratified_split(data, 0.2, np.random.default_rng(0))[1]
    assert [e.input for e in val] == [e.input for e in again]
    tiny_train, tiny_val = stratified_split(data[:2], 0.01, np.random.default_rng(0))
    assert len(tiny_val) == 1 and len(tiny_train) == 1


@pytest.mark.parametrize("config,field", [
    ({"epochs": -1}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"learningRate": 0}, "learningRate"),
    ({"learningRate": 1.5}, "learningRate"),
    ({"learning_rate": 1.5}, "learning_rate"),
    ({"batchSize": "x"}, "batchSize"),
    ({"batchSize": 0}, "batchSize"),
    ({"optimizer": "foo"}, "optimizer"),
    ({"schedulerType": "exp"}, "schedulerType"),
    ({"validation": {"split": 1.0}}, "validation.split"),
    ({"validation": {"frequency": "hourly"}}, "validation.frequency"),
    ({"earlyStopping": "yes"}, "earlyStopping"),
    ({"patience": 0}, "patience"),
    ({"hiddenSizes": [64, 0]}, "hiddenSizes[1]"),
    ({"hiddenSizes": [True]}, "hiddenSizes[0]"),
    ({"dropout": 1.0}, "dropout"),
    ({"weightDecay": -0.1}, "weightDecay"),
    ({"seed": -3}, "seed"),
    ({"curriculum": {"enabled": True, "stages": []}}, "curriculum.stages"),
    ({"curriculum": {"enabled": True, "stages": [{"level": 0, "duration": 1}]}}, "curriculum.stages[0].level"),
    ({"curriculum": {"enabled": True, "stages": [{"level": 1, "duration": "2"}]}}, "curriculum.stages[0].duration"),
    ({"batchSize": 16, "batch_size": 32}, "batch_size"),
    ({"featurizer": {"dim": 1}}, "featurizer.dim"),
])
def test_bad_config_names_the_field(config, field):
    with pytest.raises(InvalidArgument) as err:
        SupervisedConfig.from_dict(config)
    assert err.value.field == field


def test_config_accepts_both_spellings_and_ignores_caller_keys():
    cfg = SupervisedConfig.from_dict({"method": "supervised", "trainingType": "x", "dataset": "ds-1",
                                      "epochs": 3.0, "batch_size": 8, "learningRate": 0.01,
                                      "validation": {"split": 0.1, "frequency": "step"}, "earlyStopping": False,
                                      "hiddenSizes": [16, 8], "optimizer": "SGD", "momentum": 0.5,
                                      "schedulerType": "cosine", "warmupSteps": 2, "weightDecay": 0.01, "seed": 4})
    assert (cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.validation_split) == (3, 8, 0.01, 0.1)
    assert cfg.validation_frequency == "step" and cfg.early_stopping is False
    assert cfg.hidden_sizes == (16, 8) and cfg.optimizer == "sgd" and cfg.scheduler_type == "cosine"
    assert SupervisedConfig.from_dict(cfg.to_dict()) == cfg
    assert SupervisedConfig.from_dict({}) == SupervisedConfig()
    assert all(text for text in SupervisedConfig.help().values())


@pytest.mark.parametrize("item,field", [
    ({"input": "", "expected_output": "a"}, "examples[1].input"),
    ({"input": "hi"}, "examples[1].expected_output"),
    ({"input": "hi", "expectedOutput": " "}, "examples[1].expectedOutput"),
    ({"input": "hi", "expected_output": "a", "feedback": "great"}, "examples[1].feedback"),
    ({"input": "hi", "expected_output": "a", "weight": 0}, "examples[1].weight"),
    ({"input": "hi", "expected_output": "a", "weight": float("nan")}, "examples[1].weight"),
    ({"input": "hi", "expected_output": "a", "difficulty": 0}, "examples[1].difficulty"),
])
def test_bad_examples_name_the_field(item, field):
    with pytest.raises(InvalidArgument) as err:
        parse_examples([{"input": "ok", "expected_output": "a"}, item])
    assert err.value.field == field


def test_parse_examples_accepts_aliases():
    [e] = parse_examples([{"input": "hi", "expectedOutput": "greet", "feedback": "partial", "weight": 2,
                           "difficulty": 3.0, "metadata": {"src": "x"}}])
    assert (e.expected_output, e.feedback, e.weight, e.level, e.metadata) == ("greet", "partial", 2.0, 3, {"src": "x"})


def test_trainer_accepts_dicts_and_rejects_empty():
    items = [{"input": f"hello {i}", "expected_output": "greet" if i % 2 else "bye"} for i in range(6)]
    result = SupervisedTrainer(SupervisedConfig(epochs=1, featurizer=SMALL), items).train()
    assert result.model.labels in (["greet", "bye"], ["bye", "greet"])
    with pytest.raises(InvalidArgument) as err:
        SupervisedTrainer(SupervisedConfig(), [])
    assert err.value.field == "examples"


def test_duck_typed_callbacks(intents, tmp_path):
    """Hosts may pass any object with on_event / should_stop / checkpoint_dir (no base class)."""
    class Plain:
        def __init__(self):
            self.checkpoint_dir = str(tmp_path)
            self.kinds = []

        def on_event(self, kind, payload):
            self.kinds.append(kind)

        def should_stop(self):
            return self.kinds.count("step") >= 2

    cb = Plain()
    result = SupervisedTrainer(SupervisedConfig(epochs=2, featurizer=SMALL), intents(0, per_intent=10), None, cb).train()
    assert result.stopped and result.checkpoints[-1].kind == "cancel"
    assert set(cb.kinds) <= {"epoch", "step", "metric", "checkpoint", "status", "log"}


def test_curriculum_early_stopping_waits_for_final_stage(intents):
    rng = np.random.default_rng(1)
    data = [Example(e.input, f"label{rng.integers(4)}", level=1 + i % 2) for i, e in enumerate(intents(3, per_intent=20))]
    cfg = SupervisedConfig.from_dict({"curriculum": {"enabled": True, "stages": [{"level": 1, "duration": 6},
                                                                                 {"level": 2, "duration": 40}]},
                                      "patience": 1, "learningRate": 0.01, "schedulerType": "constant",
                                      "hiddenSizes": [32], "featurizer": SMALL.to_dict()})
    result = SupervisedTrainer(cfg, data).train()
    assert result.metrics["stopped_early"] is True
    assert 6 < result.metrics["epochs_run"] < 46
