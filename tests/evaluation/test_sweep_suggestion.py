"""analyzeAndOptimize's suggested sweep is one CreateSweep accepts, spanning current and suggested values,
and start_sweep starts it."""
from __future__ import annotations

import time

import grpc
import httpx
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.evaluation.sweep_suggestion import suggested_sweep
from trainhouse.training.sweeps import parse_create
from tests.evaluation.conftest import examples_pb, wait_done
from tests.gateway.conftest import make_token
from tests.intents import make_examples
from trainhouse.v1 import (evaluation_service_pb2, evaluation_service_pb2_grpc, example_pb2, sweep_pb2,
                           training_job_pb2, training_service_pb2)


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


def test_start_sweep_starts_the_suggested_sweep_on_the_jobs_data(stack, channels, training, ev):
    """AnalyzeAndOptimize(start_sweep) creates the suggested sweep through TrainingService, on the
    examples of the job behind the current version; without training:start it is PERMISSION_DENIED."""
    agent = "eval-start-sweep"
    job = wait_done(training, training.StartJob(training_service_pb2.StartJobRequest(
        agent_id=agent, examples=examples_pb(make_examples(30, seed=13)),
        config=training_job_pb2.TrainingConfig(epochs=3, seed=2, validation_split=0.25))).job.job_id)
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        token = make_token(client, stack.admin_token, ["training:evaluate", "training:view"])
    with stack.channel("evaluation", token=token) as ch:
        with pytest.raises(grpc.RpcError) as err:
            evaluation_service_pb2_grpc.EvaluationServiceStub(ch).AnalyzeAndOptimize(
                evaluation_service_pb2.AnalyzeAndOptimizeRequest(agent_id=agent, start_sweep=True))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and failure_of(err.value).field == "start_sweep"
    assert "start_sweep" in err.value.details() and "training:start" in err.value.details()

    resp = ev.AnalyzeAndOptimize(evaluation_service_pb2.AnalyzeAndOptimizeRequest(agent_id=agent, start_sweep=True))
    assert resp.HasField("suggested_sweep") and resp.started_sweep_id.startswith("sweep-"), resp
    try:
        started = training.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=resp.started_sweep_id)).sweep
        assert started.agent_id == agent
        assert list(started.space) == list(resp.suggested_sweep.space)
        assert started.objective.metric == resp.suggested_sweep.objective.metric
        assert started.base_config.hidden_sizes == job.config.hidden_sizes
        # Its trials train on the job's examples, judged on the job's validation split.
        deadline = time.monotonic() + 60
        while not started.trials:
            assert time.monotonic() < deadline, started
            time.sleep(0.5)
            started = training.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=resp.started_sweep_id)).sweep
        trial = training.GetJob(training_service_pb2.GetJobRequest(job_id=started.trials[0].job_id)).job
        assert (trial.train_examples, trial.validation_examples) == (job.train_examples, job.validation_examples)
    finally:
        training.CancelSweep(training_service_pb2.CancelSweepRequest(sweep_id=resp.started_sweep_id, reason="test"))
    # Without start_sweep nothing is started.
    again = ev.AnalyzeAndOptimize(evaluation_service_pb2.AnalyzeAndOptimizeRequest(agent_id=agent))
    assert again.HasField("suggested_sweep") and not again.started_sweep_id
    # The seed-002 function takes start_sweep and answers started_sweep_id.
    with httpx.Client(base_url=stack.gateway_url, timeout=120,
                      headers={"Authorization": f"Bearer {stack.admin_token}"}) as api:
        r = api.post("/api/v1/functions/analyzeAndOptimize", json={"agent_id": agent, "start_sweep": True})
        assert r.status_code == 200, r.text
        sweep_id = r.json()["data"]["started_sweep_id"]
        assert sweep_id.startswith("sweep-") and sweep_id != resp.started_sweep_id
        training.CancelSweep(training_service_pb2.CancelSweepRequest(sweep_id=sweep_id, reason="test"))
        assert api.post("/api/v1/functions/analyzeAndOptimize",
                        json={"agent_id": agent}).json()["data"].get("started_sweep_id") is None
