"""Hyperparameter sweeps: the space is checked against the config model, samplers are
deterministic, and a sweep runs its trials as jobs, stops poor ones early and beats the default."""
from __future__ import annotations

import time

import grpc
import httpx
import pytest

from trainhouse.common.grpc_errors import failure_of
from trainhouse.core.configs import SupervisedConfig
from trainhouse.core.sweep_space import Finished, parse_space, suggest
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import job_state_pb2, sweep_pb2, training_job_pb2, training_service_pb2

SPACE = [{"field": "learningRate", "range": {"low": 1e-4, "high": 0.3, "log": True}},
         {"field": "epochs", "range": {"low": 2, "high": 12}},
         {"field": "hidden_sizes", "choices": [[], [16], [64]]}]


def sweep_param(field: str, **domain) -> sweep_pb2.SweepParam:
    param = sweep_pb2.SweepParam(field=field)
    if "choices" in domain:
        param.choices.SetInParent()
        for value in domain["choices"]:
            param.choices.values.add().number_value = value
    else:
        param.range.CopyFrom(sweep_pb2.SweepRange(**domain))
    return param


@pytest.mark.parametrize("sampler", ["random", "tpe", "grid"])
def test_same_seed_same_trial_params(sampler):
    space = parse_space(SupervisedConfig, [{**p, "range": {**p["range"], "steps": 3}} if "range" in p else p
                                           for p in SPACE], sampler)

    def run(seed: int) -> list[dict]:
        history, out = [], []
        for n in range(6):
            params = suggest(sampler, space, seed, n, history, "minimize", 12)
            history.append(Finished(params, params["learning_rate"] * params["epochs"]))
            out.append(params)
        return out

    assert run(7) == run(7)
    if sampler != "grid":
        assert run(7) != run(8)
    assert len({str(p) for p in run(7)}) == 6


@pytest.mark.parametrize("param, field, words", [
    (sweep_param("no_such_field", low=1, high=2), "sweep.space[0].field", "no_such_field"),
    (sweep_param("learning_rate", low=0.01, high=3), "sweep.space[0].range.high", "learning_rate"),
    (sweep_param("dropout", low=-0.5, high=0.5), "sweep.space[0].range.low", "dropout"),
    (sweep_param("epochs", low=1.5, high=4), "sweep.space[0].range", "epochs"),
    (sweep_param("optimizer", low=1, high=2), "sweep.space[0].range", "optimizer"),
    (sweep_param("epochs", choices=[5, 0]), "sweep.space[0].choices[1]", "epochs"),
])
def test_bad_space_is_invalid_argument_naming_the_field(training, param, field, words):
    with pytest.raises(grpc.RpcError) as err:
        training.CreateSweep(training_service_pb2.CreateSweepRequest(
            sweep=sweep_pb2.Sweep(agent_id="sweep-bad", space=[param],
                                  objective=sweep_pb2.SweepObjective(metric="validation_loss")),
            examples=examples_pb(make_examples(5))))
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.field == field and words in err.value.details(), (failure, err.value.details())


def test_grid_range_needs_steps(training):
    with pytest.raises(grpc.RpcError) as err:
        training.CreateSweep(training_service_pb2.CreateSweepRequest(
            sweep=sweep_pb2.Sweep(agent_id="sweep-bad", sampler=sweep_pb2.SWEEP_SAMPLER_GRID,
                                  space=[sweep_param("dropout", low=0.0, high=0.5)],
                                  objective=sweep_pb2.SweepObjective(metric="validation_loss")),
            examples=examples_pb(make_examples(5))))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "steps" in err.value.details()


def wait_sweep(training, sweep_id: str, timeout: float) -> sweep_pb2.Sweep:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = training.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=sweep_id)).sweep
        if sweep.state not in (sweep_pb2.SWEEP_STATE_QUEUED, sweep_pb2.SWEEP_STATE_RUNNING):
            return sweep
        time.sleep(1)
    raise AssertionError(f"sweep {sweep_id} did not end in {timeout}s: {sweep}")


def test_small_grpc_sweep_runs_and_cancel_stops_it(training):
    sweep = training.CreateSweep(training_service_pb2.CreateSweepRequest(
        sweep=sweep_pb2.Sweep(agent_id="sweep-small", max_trials=3, parallelism=2, seed=3,
                              space=[sweep_param("learning_rate", low=0.001, high=0.1, log=True)],
                              base_config=training_job_pb2.TrainingConfig(epochs=3, seed=1),
                              objective=sweep_pb2.SweepObjective(metric="validation_accuracy")),
        examples=examples_pb(make_examples(15, seed=4)))).sweep
    assert sweep.state == sweep_pb2.SWEEP_STATE_QUEUED and sweep.sweep_id.startswith("sweep-")
    final = wait_sweep(training, sweep.sweep_id, 180)
    assert final.state == sweep_pb2.SWEEP_STATE_COMPLETED, final.message
    assert len(final.trials) == 3 and final.best_trial.job_id
    assert final.objective.direction == sweep_pb2.SWEEP_DIRECTION_MAXIMIZE
    assert final.best_trial.objective == max(t.objective for t in final.trials)
    job = training.GetJob(training_service_pb2.GetJobRequest(job_id=final.trials[0].job_id)).job
    assert dict(job.labels) == {"sweep_id": sweep.sweep_id, "sweep_trial": "0"}
    assert job.display_name == f"{sweep.sweep_id} trial 0"
    listed = training.ListSweeps(training_service_pb2.ListSweepsRequest(agent_id="sweep-small")).sweeps
    assert [s.sweep_id for s in listed] == [sweep.sweep_id]
    with pytest.raises(grpc.RpcError) as err:
        training.CancelSweep(training_service_pb2.CancelSweepRequest(sweep_id=sweep.sweep_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def best_of(training, job_id: str, metric: str) -> float:
    points = training.ListMetrics(training_service_pb2.ListMetricsRequest(job_id=job_id, names=[metric])).points
    assert points, f"job {job_id} recorded no {metric}"
    return min(p.value for p in points)


# The sweep the "done when" names, run through the gateway here and on the Ray executor in
# tests/services/test_ray_sweeps.py: random search over learning rate, width and epochs with the
# median rule (random keeps poor trials coming, so the rule has some to stop; TPE soon proposes only
# good ones). Trials run every epoch they are given, so a poor one is still running when the rule looks.
TWELVE_TRIAL_EXAMPLES = make_examples(80, seed=11)
TWELVE_TRIAL_SWEEP = {"displayName": "lr-width", "sampler": "random", "maxTrials": 12, "parallelism": 3,
                      "seed": 5, "objective": {"metric": "validation_loss"},
                      "earlyStopping": {"rule": "median", "graceEpochs": 2},
                      "space": [{"field": "learningRate", "range": {"low": 0.0003, "high": 0.3, "log": True}},
                                {"field": "hiddenSizes", "choices": [[], [32], [128]]},
                                {"field": "epochs", "range": {"low": 6, "high": 30}}],
                      "config": {"seed": 0, "earlyStopping": False}}


def run_twelve_trial_sweep(stack, training, agent: str, timeout: float) -> dict:
    """Runs TWELVE_TRIAL_SWEEP for `agent` through `stack`'s gateway and asserts what the issue asks of
    it: 12 trials end, poor ones are stopped early with the sweep's reason in their job events, and the
    best trial's validation loss beats a job trained with the default config on the same examples
    (same seed, so the same validation split). Returns the finished sweep (REST form)."""
    body = {**TWELVE_TRIAL_SWEEP, "agentId": agent, "examples": TWELVE_TRIAL_EXAMPLES}
    default_job = training.StartJob(training_service_pb2.StartJobRequest(
        agent_id=agent, examples=examples_pb(TWELVE_TRIAL_EXAMPLES))).job.job_id
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {stack.admin_token}"},
                      timeout=30) as api:
        created = api.post("/api/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep_id = created.json()["data"]["sweepId"]
        began = time.monotonic()
        while True:
            sweep = api.get(f"/api/v1/sweeps/{sweep_id}").json()["data"]
            if sweep["state"] not in ("queued", "running") or time.monotonic() - began > timeout:
                break
            time.sleep(2)
        print(f"sweep took {time.monotonic() - began:.0f}s")
        assert sweep["state"] == "completed", sweep
        assert [s["sweepId"] for s in api.get("/api/v1/sweeps", params={"agentId": agent}).json()["data"]["sweeps"]] \
            == [sweep_id]
    trials = sweep["trials"]
    assert len(trials) == 12 and all(t["state"] in ("completed", "cancelled") for t in trials), trials
    stopped = [t for t in trials if t["stoppedEarly"]]
    assert stopped, [(t["params"], t["objective"]) for t in trials]
    for t in stopped:
        assert t["state"] == "cancelled"
        events = list(training.WatchJob(training_service_pb2.WatchJobRequest(job_id=t["jobId"])))
        reasons = [e.status.reason for e in events if e.WhichOneof("payload") == "status"]
        assert any(r.startswith(f"early-stopped by sweep {sweep_id}: ") for r in reasons), reasons
    assert any(e["kind"] == "trial_stopped" for e in sweep["events"])
    best = sweep["bestTrial"]
    assert best["objective"] == min(t["objective"] for t in trials if t["objective"] is not None)
    assert best_of(training, best["jobId"], "validation_loss") == pytest.approx(best["objective"])
    final = wait_terminal(training, default_job)
    assert final.state == job_state_pb2.JOB_STATE_COMPLETED
    default_loss = best_of(training, default_job, "validation_loss")
    print(f"sweep best validation_loss {best['objective']:.4f} ({best['params']}) vs default {default_loss:.4f}; "
          f"{len(stopped)} of 12 stopped early")
    assert best["objective"] < default_loss
    return sweep


def test_twelve_trial_sweep_through_the_gateway_stops_poor_trials_and_beats_the_default(stack, training):
    run_twelve_trial_sweep(stack, training, "sweep-gateway", timeout=240)


def test_a_sweep_is_its_accounts(stack):
    """A sweep and its trials belong to the caller's account: another account gets NOT_FOUND for
    it, lists leave it out, and its trials are jobs of the sweep's account."""
    import uuid

    from tests.gateway.conftest import make_token
    from trainhouse.v1 import training_service_pb2_grpc

    names = {k: f"sweeps-{k}-{uuid.uuid4().hex[:6]}" for k in "ab"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        stubs = {k: training_service_pb2_grpc.TrainingServiceStub(stack.channel("training", token=make_token(
            client, stack.admin_token, ["training:start", "training:view", "training:cancel"], account=v)))
            for k, v in names.items()}
    a, b = stubs["a"], stubs["b"]
    sweep = a.CreateSweep(training_service_pb2.CreateSweepRequest(
        sweep=sweep_pb2.Sweep(agent_id=f"sweep-iso-{uuid.uuid4().hex[:6]}", max_trials=1, parallelism=1,
                              space=[sweep_param("learning_rate", low=0.01, high=0.1)],
                              base_config=training_job_pb2.TrainingConfig(epochs=2),
                              objective=sweep_pb2.SweepObjective(metric="validation_loss")),
        examples=examples_pb(make_examples(8, seed=9)))).sweep
    assert sweep.account_id == names["a"]
    for call in (lambda: b.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=sweep.sweep_id)),
                 lambda: b.CancelSweep(training_service_pb2.CancelSweepRequest(sweep_id=sweep.sweep_id))):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert b.ListSweeps(training_service_pb2.ListSweepsRequest()).sweeps == []
    assert [s.sweep_id for s in a.ListSweeps(training_service_pb2.ListSweepsRequest()).sweeps] == [sweep.sweep_id]
    final = wait_sweep(a, sweep.sweep_id, 120)
    job = a.GetJob(training_service_pb2.GetJobRequest(job_id=final.trials[0].job_id)).job
    assert job.account_id == names["a"]


def test_sweep_survives_a_restart_and_cancel_stops_its_trials(tmp_path):
    """Sweeps live in DuckDB: a TrainingService restart mid-sweep resumes it (same trials, no
    duplicates). CancelSweep cancels the running trial with the sweep's reason."""
    from trainhouse.launcher import Stack
    from trainhouse.v1 import training_service_pb2_grpc

    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs").start()
    try:
        stub = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
        examples = examples_pb(make_examples(40, seed=21))

        def create(epochs: int, trials: int) -> str:
            return stub.CreateSweep(training_service_pb2.CreateSweepRequest(
                sweep=sweep_pb2.Sweep(agent_id="sweep-restart", max_trials=trials, parallelism=1, seed=4,
                                      space=[sweep_param("learning_rate", low=0.01, high=0.1, log=True)],
                                      base_config=training_job_pb2.TrainingConfig(epochs=epochs, early_stopping=False),
                                      objective=sweep_pb2.SweepObjective(metric="validation_accuracy")),
                examples=examples)).sweep.sweep_id

        def running_trial(sweep_id: str) -> sweep_pb2.Sweep:
            deadline = time.monotonic() + 60
            while True:
                sweep = stub.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=sweep_id)).sweep
                if sweep.trials and sweep.trials[-1].state == job_state_pb2.JOB_STATE_RUNNING:
                    return sweep
                assert time.monotonic() < deadline, sweep
                time.sleep(0.2)

        sweep_id = create(60, 3)
        before = running_trial(sweep_id)
        stack.restart("training")
        stub = training_service_pb2_grpc.TrainingServiceStub(stack.channel("training"))
        final = wait_sweep(stub, sweep_id, 240)
        assert final.state == sweep_pb2.SWEEP_STATE_COMPLETED, final.message
        assert [t.number for t in final.trials] == [0, 1, 2]
        assert final.trials[0].job_id == before.trials[0].job_id
        assert final.trials[0].params == before.trials[0].params

        long_id = create(5000, 2)
        trial = running_trial(long_id).trials[0]
        cancelled = stub.CancelSweep(training_service_pb2.CancelSweepRequest(sweep_id=long_id, reason="enough")).sweep
        assert cancelled.state == sweep_pb2.SWEEP_STATE_CANCELLED and cancelled.message == "enough"
        job = wait_terminal(stub, trial.job_id, timeout=60)
        assert job.state == job_state_pb2.JOB_STATE_CANCELLED and job.status_reason == f"sweep {long_id} cancelled"
        time.sleep(2)  # the loop must not start the second trial of a cancelled sweep
        assert len(stub.GetSweep(training_service_pb2.GetSweepRequest(sweep_id=long_id)).sweep.trials) == 1
    finally:
        stack.stop()
