"""analyzeAndOptimize's suggested sweep is one CreateSweep accepts, spanning current and suggested values."""
from __future__ import annotations

from services.evaluation.sweep_suggestion import suggested_sweep
from services.training.sweeps import parse_create
from trainhouse.v1 import example_pb2, sweep_pb2, training_job_pb2, training_service_pb2


def test_suggestions_become_a_sweep_createsweep_accepts():
    cfg = {"epochs": 10, "learning_rate": 0.01, "hidden_sizes": [64], "options": {"weight_decay": 0.0, "dropout": 0.1}}
    suggestions = [{"config_changes": {"epochs": 15, "hiddenSizes": [128]}},
                   {"config_changes": {"dropout": 0.6, "weightDecay": 0.0001, "earlyStopping": True}},
                   {"config_changes": {"featurizer": {"dim": 8192}}}]
    sweep = suggested_sweep("agent-x", training_job_pb2.TrainingConfig(epochs=10), cfg, suggestions,
                            ["maximize_accuracy", "minimize_latency"])
    params = {p.field: p for p in sweep.space}
    assert set(params) == {"epochs", "hidden_sizes", "dropout", "weight_decay"}  # featurizer: not a sweep field
    assert params["epochs"].range.low <= 10 and params["epochs"].range.high >= 15 and params["epochs"].range.integer
    assert params["dropout"].range.high < 1  # inside the field's range [0, 1)
    assert params["weight_decay"].range.log and 0 < params["weight_decay"].range.low < 0.0001
    assert len(params["hidden_sizes"].choices.values) == 2
    assert sweep.objective.metric == "validation_accuracy"
    assert sweep.objective.direction == sweep_pb2.SWEEP_DIRECTION_MAXIMIZE
    examples = [example_pb2.Example(input=f"text {i}", expected_output=f"out{i % 2}") for i in range(6)]
    spec, _ = parse_create(training_service_pb2.CreateSweepRequest(sweep=sweep, examples=examples), 5)
    assert spec.sampler == "tpe" and spec.stopping.rule == "median" and len(spec.space) == 4


def test_no_searchable_change_no_sweep():
    assert suggested_sweep("agent-x", None, {}, [{"config_changes": {"featurizer": {"dim": 8192}}}], []) is None
