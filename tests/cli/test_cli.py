"""The `trainhouse` CLI against the real stack, over gRPC and over the gateway (--url).

The long flows (train --watch, the watch across a service restart, an unknown job) run the
installed console script in its own process, as users and scripts do; the many short checks use
typer's CliRunner on the same app in-process to save an interpreter start per call. The exit
codes and the JSON on stdout are the contract checked here.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainhouse.cli import app
from tests.intents import INTENTS, hwu64_subset, make_examples, shuffle_labels

CLI = str(Path(sys.executable).with_name("trainhouse"))
SERVICES = ("training", "data", "evaluation", "registry")


@pytest.fixture(scope="module")
def env(stack) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TRAINHOUSE_")}
    out["TRAINHOUSE_HOME"] = str(stack.home)
    out["TRAINHOUSE_GATEWAY_PORT"] = stack.gateway_url.rsplit(":", 1)[1]
    for name in SERVICES:
        out[f"TRAINHOUSE_{name.upper()}_ADDR"] = stack.address(name)
    out["COLUMNS"] = "200"
    # Not read by the CLI: how a test reaches the other transport than the one it runs over.
    out["TRAINHOUSE_URL_FOR_TESTS"], out["TRAINHOUSE_TOKEN_FOR_TESTS"] = stack.gateway_url, stack.admin_token
    return out


@pytest.fixture(params=("grpc", "gateway"))
def via(request, stack) -> list[str]:
    """The extra arguments that pick a transport: none (gRPC to the services) or the gateway's
    canonical API through the SDK (--url, --token)."""
    return [] if request.param == "grpc" else ["--url", stack.gateway_url, "--token", stack.admin_token]


def transport_of(via: list[str]) -> str:
    return "gateway" if via else "grpc"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed console script in its own process, as users and scripts run it."""
    proc = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def cli(env: dict[str, str], *args: str) -> Result:
    """The same app in this process (typer's CliRunner): no interpreter start-up per call."""
    unset = {k: None for k in os.environ if k.startswith("TRAINHOUSE_") and k not in env}
    result = CliRunner().invoke(app, list(args), env={**unset, **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr, result.stderr
    return Result(result.exit_code, result.stdout, result.stderr)


def ok_json(env: dict[str, str], *args: str) -> dict:
    result = cli(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "intents.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in make_examples(12, seed=5)) + "\n")
    return path


def check_stream(lines: list[dict], epochs: int) -> dict:
    """started, then every event once in sequence order, the terminal status, then the result."""
    assert lines[0]["type"] == "started"
    events = lines[1:-1]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == list(range(1, epochs + 1))
    terminal = [e for e in events if e["type"] == "status" and e["terminal"]]
    assert terminal and terminal[-1]["state"] == "completed"
    assert lines[-1]["type"] == "result"
    return lines[-1]["job"]


@pytest.fixture(scope="module")
def trained(env, train_file) -> dict:
    """One job trained with `train --watch --json` over gRPC; later tests reuse its agent."""
    proc = run(env, "train", "cli-agent", "--file", str(train_file), "--epochs", "3",
               "--config", '{"seed": 3, "early_stopping": false}', "--watch", "--json")
    assert proc.returncode == 0, proc.stderr
    job = check_stream(ndjson(proc.stdout), epochs=3)
    assert job["state"] == "completed" and job["model_version_id"]
    assert job["agent_id"] == "cli-agent" and job["total_epochs"] == 3
    return job


def test_train_watch_over_grpc(trained):
    assert set(trained["metrics"]) >= {"loss", "accuracy"}


def test_train_watch_shows_progress(env, via, train_file):
    proc = run(env, "train", f"cli-agent-{transport_of(via)}", "--file", str(train_file), "--epochs", "2", *via,
               "--watch")
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/2" in proc.stdout and "epoch 2/2" in proc.stdout
    assert "completed" in proc.stdout and "model version: v" in proc.stdout
    # A finished job's whole stream replays: every event once, in order, then the job.
    job_id = proc.stdout.split("started ", 1)[1].split()[0]
    lines = ndjson(cli(env, "watch", job_id, "--json", *via).stdout)
    assert [e["sequence"] for e in lines[:-1]] == list(range(1, len(lines)))
    assert lines[-1]["job"]["state"] == "completed" and lines[-1]["job"]["job_id"] == job_id


def test_watch_of_a_finished_job_prints_its_summary_without_replaying(env, via, trained):
    """The progress view starts from the job's record: a finished job's summary comes at once, none
    of its events is replayed; --after-sequence N still replays after N; --json (for scripts) keeps
    replaying the whole history from the first event."""
    job_id = trained["job_id"]
    shown = run(env, "watch", job_id, *via)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert lines[0].startswith(f"{job_id}: completed"), shown.stdout
    assert "model version: v" in shown.stdout
    assert "epoch 1/3" not in shown.stdout and "queued" not in shown.stdout and "running" not in shown.stdout
    history = ndjson(cli(env, "watch", job_id, "--json", *via).stdout)
    assert [e["sequence"] for e in history[:-1]] == list(range(1, len(history)))  # from the first event
    epoch2 = next(e["sequence"] for e in history if e["type"] == "epoch" and e["epoch"] == 2)
    replayed = run(env, "watch", job_id, "--after-sequence", "0", *via)
    assert replayed.returncode == 0, replayed.stderr
    assert f"{job_id}: queued" in replayed.stdout
    assert all(f"epoch {n}/3" in replayed.stdout for n in (1, 2, 3)), replayed.stdout
    tail = cli(env, "watch", job_id, "--after-sequence", str(epoch2), *via)
    assert tail.returncode == 0, tail.stderr
    assert "epoch 3/3" in tail.stdout and "epoch 2/3" not in tail.stdout and "epoch 1/3" not in tail.stdout
    assert [e["sequence"] for e in ndjson(cli(env, "watch", job_id, "--json", "--after-sequence", str(epoch2),
                                              *via).stdout)[:-1]] == list(range(epoch2 + 1, len(history)))


def _job_past_epoch_2(stack, env, tmp_path, agent: str, seed: int, epochs: int) -> str:  # noqa: ANN001
    """A job started through the CLI that has finished its second epoch (and is still running)."""
    from trainhouse.v1 import training_service_pb2 as pb
    from trainhouse.v1 import training_service_pb2_grpc

    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(json.dumps(e) for e in make_examples(150, seed=seed)))
    job = ok_json(env, "train", agent, "--file", str(big), "--epochs", str(epochs),
                  "--config", '{"early_stopping": false, "checkpoint_interval": 1000, "seed": 3}')["job_id"]
    with stack.channel("training") as ch:
        training = training_service_pb2_grpc.TrainingServiceStub(ch)
        deadline = time.monotonic() + 300
        while training.GetJob(pb.GetJobRequest(job_id=job)).job.progress.current_epoch < 2:
            assert time.monotonic() < deadline, "the job did not reach epoch 2"
            time.sleep(0.05)
    return job


def test_watch_of_a_running_job_starts_from_its_current_state(env, stack, via, tmp_path):
    """A job part-way through (held still by a pause, so the test knows where it is): the first line
    is its current state and epoch from its record; after the resume the view shows only the epochs
    that follow, nothing of the history before it, and ends with the job."""
    from trainhouse.v1 import training_service_pb2 as pb
    from trainhouse.v1 import training_service_pb2_grpc

    job = _job_past_epoch_2(stack, env, tmp_path, f"cli-tail-{transport_of(via)}", seed=9, epochs=30)
    with stack.channel("training") as ch:
        training = training_service_pb2_grpc.TrainingServiceStub(ch)
        held = training.PauseJob(pb.PauseJobRequest(job_id=job)).job
        if held.progress.current_epoch >= 29:
            pytest.skip("the job ran nearly to its end before it could be paused")
        epoch = held.progress.current_epoch
        watcher = subprocess.Popen([CLI, "watch", job, *via], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        first = watcher.stdout.readline()
        training.ResumeJob(pb.ResumeJobRequest(job_id=job))
        rest = watcher.stdout.read()
        err = watcher.stderr.read()
        watcher.wait(timeout=300)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert first.startswith(f"{job}: paused at epoch {epoch}/30"), first
    shown = [int(line.split()[1].split("/")[0]) for line in rest.splitlines() if line.startswith("epoch ")]
    # The record's epoch is the one in progress: its end may come next, nothing before it does.
    assert shown and shown[0] in (epoch, epoch + 1) and shown == list(range(shown[0], 31)), rest
    assert f"{job}: paused" not in rest  # the pause is history: shown once, from the record
    assert "completed" in rest and "model version: v" in rest


def test_jobs_json_lists_and_filters(env, via, trained):
    listed = ok_json(env, "jobs", "--agent", "cli-agent", "--state", "completed", *via)["jobs"]
    assert trained["job_id"] in [j["job_id"] for j in listed]
    assert all(j["agent_id"] == "cli-agent" and j["state"] == "completed" for j in listed)
    assert ok_json(env, "jobs", "--agent", "cli-agent", "--state", "failed", *via)["jobs"] == []
    assert len(ok_json(env, "jobs", "--limit", "1", *via)["jobs"]) == 1
    table = cli(env, "jobs", "--agent", "cli-agent", *via)
    assert table.returncode == 0 and trained["job_id"] in table.stdout


def test_job_get(env, stack, via, trained):
    job = ok_json(env, "job", "get", trained["job_id"], *via)
    assert job == ok_json(env, "job", "get", trained["job_id"])  # the same record whichever transport
    assert job["job_id"] == trained["job_id"] and job["state"] == "completed"
    assert job["model_version_id"] == trained["model_version_id"] and job["progress_percent"] == 100
    shown = cli(env, "job", "get", trained["job_id"], *via)
    assert shown.returncode == 0 and trained["model_version_id"] in shown.stdout and "epoch 3/3" in shown.stdout
    missing = cli(env, "job", "get", "job-does-not-exist", "--json", *via)
    assert missing.returncode == 3 and json.loads(missing.stdout)["error"]["kind"] == "not_found"


def test_same_records_over_both_transports(env, stack, trained):
    """`models`, `agents` and `watch`'s final job answer the same records over gRPC and the gateway."""
    url = ["--url", stack.gateway_url, "--token", stack.admin_token]
    job = trained["job_id"]
    grpc_versions = ok_json(env, "models", "cli-agent")["versions"]
    rest_versions = ok_json(env, "models", "cli-agent", *url)["versions"]
    assert grpc_versions == rest_versions and grpc_versions[0]["job_id"] == job
    grpc_agents = {a["agent_id"]: a for a in ok_json(env, "agents")["agents"]}
    rest_agents = {a["agent_id"]: a for a in ok_json(env, "agents", *url)["agents"]}
    assert grpc_agents["cli-agent"] == rest_agents["cli-agent"]
    over_grpc = ndjson(cli(env, "watch", job, "--json").stdout)
    over_rest = ndjson(cli(env, "watch", job, "--json", *url).stdout)
    assert over_grpc == over_rest and over_grpc[-1]["job"]["metrics"]


def test_predict(env, via, trained):
    texts = ["where is my package", "I was charged twice for my subscription"]
    result = ok_json(env, "predict", "cli-agent", *texts, *via)
    assert result["version_id"] == trained["model_version_id"]
    assert [p["input"] for p in result["predictions"]] == texts
    for p in result["predictions"]:
        assert p["output"] in INTENTS and 0 < p["probability"] <= 1 and p["top"][0]["output"] == p["output"]
    table = cli(env, "predict", "cli-agent", texts[0], *via)
    assert table.returncode == 0 and "INPUT" in table.stdout and texts[0] in table.stdout


def test_register_checkpoint(env, via, trained):
    version = ok_json(env, "register-checkpoint", trained["job_id"], "-c", "best", "--note", "cli", *via)
    assert version["job_id"] == trained["job_id"] and version["checkpoint"]["kind"] == "best"
    # One version per checkpoint, whatever the door.
    assert ok_json(env, "register-checkpoint", trained["job_id"], "-c", "best")["version_id"] == version["version_id"]
    assert cli(env, "register-checkpoint", trained["job_id"], "-c", "no-such-checkpoint", *via).returncode == 3


def test_cancel_and_watch_exit_code(env, via, train_file):
    started = ok_json(env, "train", "cli-cancel", "--file", str(train_file), "--epochs", "5000",
                      "--config", '{"earlyStopping": false}', *via)
    job = started["job_id"]
    cancelled = ok_json(env, "cancel", job, *via)
    assert cancelled["job_id"] == job and cancelled["state"] == "cancelled"
    watched = cli(env, "watch", job, "--json", *via)
    assert watched.returncode == 1, watched.stderr
    assert ndjson(watched.stdout)[-1]["job"]["state"] == "cancelled"
    again = cli(env, "cancel", job, *via)
    assert again.returncode == 7 and "error:" in again.stderr


def test_datasets_upload_list_and_train_from_dataset(env, via, train_file, tmp_path):
    ds = f"cli-ds-{transport_of(via)}"
    up = ok_json(env, "datasets", "upload", str(train_file), "--id", ds, *via)
    assert up["dataset_id"] == ds and up["example_count"] == 48
    assert set(up["output_counts"]) == set(INTENTS)
    other = tmp_path / "more.jsonl"
    other.write_text("\n".join(json.dumps(e) for e in make_examples(3, seed=9)))
    assert ok_json(env, "datasets", "upload", str(other), "--id", f"{ds}-more", *via)["example_count"] == 12
    listed = {d["dataset_id"]: d for d in ok_json(env, "datasets", "list", *via)["datasets"]}
    assert {ds, f"{ds}-more"} <= set(listed) and listed[ds] == up
    assert listed[ds] == {d["dataset_id"]: d for d in ok_json(env, "datasets", "list")["datasets"]}[ds]
    again = cli(env, "datasets", "upload", str(other), "--id", ds, *via)
    assert again.returncode == 7
    trained = cli(env, "train", "cli-ds-agent", "--dataset", ds, "--epochs", "1", "--watch", "--json", *via)
    assert trained.returncode == 0, trained.stderr
    job = ndjson(trained.stdout)[-1]["job"]
    assert job["dataset_id"] == ds and job["train_examples"] + job["validation_examples"] == 48


def test_agents_create(env, via):
    agent = f"cli-made-{transport_of(via)}"
    created = ok_json(env, "agents", "create", agent, "--name", "Made by CLI", *via)
    assert created["agent_id"] == agent and created["name"] == "Made by CLI"
    taken = cli(env, "agents", "create", agent, *via)
    assert taken.returncode == 7, taken.stderr
    listed = {a["agent_id"]: a for a in ok_json(env, "agents", *via)["agents"]}
    assert listed[agent] == created
    assert agent in cli(env, "agents", *via).stdout


def test_token_create_and_scopes(env, stack, trained):
    # No --url / --token: the local gateway (TRAINHOUSE_GATEWAY_PORT) and $TRAINHOUSE_HOME/admin-token.
    created = ok_json(env, "token", "create", "cli-viewer", "--scope", "training:view", "--expires-in-days", "1")
    assert created["scopes"] == ["training:view"] and created["token"] and created["expires_at"]
    viewer = ["--url", stack.gateway_url, "--token", created["token"]]
    assert ok_json(env, "models", "cli-agent", *viewer)["versions"]
    forbidden = cli(env, "cancel", trained["job_id"], *viewer)
    assert forbidden.returncode == 6, forbidden.stderr
    bad = cli(env, "agents", "--url", stack.gateway_url, "--token", "not-a-token", "--json")
    assert bad.returncode == 6
    assert json.loads(bad.stdout)["error"]["kind"] == "auth"


def test_bad_input_exit_codes(env, stack, train_file, tmp_path):
    url = ["--url", stack.gateway_url, "--token", stack.admin_token]
    for extra in ([], url):
        missing = run(env, "watch", "job-does-not-exist", *extra)
        assert missing.returncode == 3, missing.stderr
        bad = cli(env, "train", "cli-agent", "--file", str(train_file), "--epochs", "0", "--json", *extra)
        assert bad.returncode == 4, bad.stderr
        error = json.loads(bad.stdout)["error"]
        assert error["field"] in ("config.epochs", "epochs") and error["kind"] == "invalid_argument"
        assert "epochs" in bad.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input": "a", "expected_output": "x"}\n{"input": "b", oops}\n')
    line = cli(env, "train", "cli-agent", "--file", str(broken))
    assert line.returncode == 4 and "line 2" in line.stderr
    empty_input = tmp_path / "empty.jsonl"
    empty_input.write_text('{"input": "a", "expected_output": "x"}\n\n{"input": "", "expected_output": "y"}\n')
    located = cli(env, "train", "cli-agent", "--file", str(empty_input))
    assert located.returncode == 4 and "empty.jsonl line 3" in located.stderr
    assert cli(env, "train", "cli-agent").returncode == 2
    assert cli(env, "train", "cli-agent", "--file", str(train_file), "--dataset", "x").returncode == 2
    assert cli(env, "jobs", "--state", "sleeping").returncode == 2
    assert cli(env, "eval", "cli-agent", "--checkpoint", "best").returncode == 2  # a checkpoint needs --job


def test_trainhouse_url_and_token_from_the_environment(env, stack, trained):
    """TRAINHOUSE_URL / TRAINHOUSE_TOKEN pick the gateway: with every service address unreachable,
    the commands still answer, through the gateway alone."""
    remote = {**env, "TRAINHOUSE_URL": stack.gateway_url, "TRAINHOUSE_TOKEN": stack.admin_token,
              **{f"TRAINHOUSE_{name.upper()}_ADDR": "127.0.0.1:1" for name in SERVICES}}
    assert ok_json(remote, "job", "get", trained["job_id"])["state"] == "completed"
    assert trained["job_id"] in [j["job_id"] for j in ok_json(remote, "jobs", "--agent", "cli-agent")["jobs"]]
    wrong = cli({**remote, "TRAINHOUSE_TOKEN": "not-a-token"}, "job", "get", trained["job_id"])
    assert wrong.returncode == 6, wrong.stderr


def test_unavailable_service_exit_code(env):
    down = dict(env, TRAINHOUSE_TRAINING_ADDR="127.0.0.1:1")
    proc = cli(down, "jobs", "--json", "--timeout", "5")
    assert proc.returncode == 5, proc.stderr
    assert json.loads(proc.stdout)["error"]["kind"] == "unavailable"
    gateway = cli(env, "agents", "--url", "http://127.0.0.1:1", "--token", "x")
    assert gateway.returncode == 5 and "unavailable" in gateway.stderr


def test_watch_reconnects_across_a_training_restart(env, stack, via, tmp_path):
    """Restart the training service mid-job: watch resumes after its last sequence, no event twice
    (over the gateway the SDK's stream resumes with Last-Event-ID, or the CLI reconnects)."""
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(json.dumps(e) for e in make_examples(150, seed=8)))
    job = ok_json(env, "train", "cli-restart", "--file", str(big), "--epochs", "40",
                  "--config", '{"early_stopping": false, "checkpoint_interval": 1000, "seed": 3}')["job_id"]
    watcher = subprocess.Popen([CLI, "watch", job, "--json", *via], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    seen = []
    for line in watcher.stdout:
        seen.append(json.loads(line))
        if seen[-1]["type"] == "epoch" and seen[-1]["epoch"] >= 2:
            break
    stack.launcher.restart("training")
    # Read through the same buffered file object as above: communicate() would read the raw pipe
    # and miss lines the loop above had already buffered.
    rest = watcher.stdout.read()
    err = watcher.stderr.read()
    watcher.wait(timeout=180)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    lines = seen + ndjson(rest)
    events = lines[:-1]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == list(range(1, 41))
    # The job really spanned the restart (so the stream the CLI held really broke).
    assert any(e["type"] == "status" and e["reason"] == "interrupted" for e in events)
    assert lines[-1]["job"]["state"] == "completed"


def test_progress_watch_reconnects_across_a_training_restart(env, stack, via, tmp_path):
    """The progress view, started mid-job from the job's record, keeps following across a restart of
    the training service: every later epoch shown once, in order, none from before its first screen."""
    job = _job_past_epoch_2(stack, env, tmp_path, f"cli-restart-view-{transport_of(via)}", seed=8, epochs=40)
    watcher = subprocess.Popen([CLI, "watch", job, *via], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    first = watcher.stdout.readline()
    stack.launcher.restart("training")
    rest = watcher.stdout.read()
    err = watcher.stderr.read()
    watcher.wait(timeout=300)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert first.startswith(f"{job}: ") and " at epoch " in first, first
    start = int(first.split(" at epoch ")[1].split("/")[0])
    shown = [int(line.split()[1].split("/")[0]) for line in rest.splitlines() if line.startswith("epoch ")]
    # The record's epoch is the one in progress: its end may come next, nothing before it does.
    assert shown and shown[0] in (start, start + 1) and shown == list(range(shown[0], 41)), rest
    assert f"{job}: queued (" in rest, rest  # requeued by the restart: the job really spanned it
    if not via:  # over gRPC the CLI reopens the stream itself (the SDK does it over the gateway)
        assert "reconnecting after event" in rest, rest
    assert "completed" in rest


def test_datasets_generate_and_validate(env, via, tmp_path):
    syn = f"cli-syn-{transport_of(via)}"
    generated = ok_json(env, "datasets", "generate", "--scenario", "customer-support", "--count", "60",
                        "--seed", "4", "--id", syn, *via)
    assert generated["dataset"]["dataset_id"] == syn and generated["statistics"]["generated"] == "60"
    assert generated["seed"] == "4" and generated["scenario"] == "customer-support"
    # The same seed over the other transport: the same answer but for the dataset's id and time, and
    # the dataset statistics /v1's dataset record leaves out (it has counts, shares, average length).
    other = ok_json(env, "datasets", "generate", "--scenario", "customer-support", "--count", "60", "--seed", "4",
                    "--id", f"{syn}-again", *([] if via else ["--url", env["TRAINHOUSE_URL_FOR_TESTS"],
                                                           "--token", env["TRAINHOUSE_TOKEN_FOR_TESTS"]]))
    kept = ("example_count", "output_counts", "output_shares", "average_length")
    for answer in (generated, other):
        answer["dataset"].pop("dataset_id"), answer["dataset"].pop("create_time")
        stats = answer["dataset"].pop("statistics")
        answer["dataset"]["statistics"] = {k: stats[k] for k in kept}
    assert other == generated
    stored = cli(env, "datasets", "validate", syn, "--json", *via)
    report = json.loads(stored.stdout)
    assert report["dataset_id"] == syn and report["statistics"]["total_examples"] == "60"
    assert stored.returncode == (0 if report["valid"] else 1)
    conflicting = tmp_path / "conflicting.jsonl"
    conflicting.write_text('{"input": "where is my order", "expected_output": "shipping"}\n'
                           '{"input": "where is my order", "expected_output": "billing"}\n'
                           '{"input": "refund the payment please", "expected_output": "billing"}\n')
    invalid = cli(env, "datasets", "validate", "--file", str(conflicting), *via)
    assert invalid.returncode == 1 and "conflicting_labels" in invalid.stdout
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(json.dumps(e) + "\n" for e in shuffle_labels(hwu64_subset(), 0.9, seed=1)))
    mislabelled = cli(env, "datasets", "validate", "--file", str(shuffled), "--check", "label_issues", *via)
    assert mislabelled.returncode == 1 and "label_issues" in mislabelled.stdout
    assert "of 840 checked look wrong" in mislabelled.stdout and "P(LIKELY)" in mislabelled.stdout
    assert cli(env, "datasets", "generate", "--scenario", "no-such-scenario", *via).returncode == 4
    assert cli(env, "datasets", "generate", *via).returncode == 2
    # A topic outside the catalogue is generated, and the summary says it was generic.
    mixed = cli(env, "datasets", "generate", "--data-type", "customer_queries", "--count", "20",
                "--topic", "billing", "--topic", "support", *via)
    assert mixed.returncode == 0 and "generic topics (not in the catalogue): support" in mixed.stdout
    scenarios = ok_json(env, "datasets", "scenarios", *via)
    assert scenarios == ok_json(env, "datasets", "scenarios")
    assert "customer-support" in [s["scenario_type"] for s in scenarios["scenarios"]]


@pytest.fixture(scope="module")
def two_runs(env, stack, train_file) -> list[dict]:
    """Two completed jobs of one agent (v1.0.0 weak, v1.1.0 stronger) for eval/compare/deploy."""
    # services/launcher.py starts EvaluationService before TrainingService, so with port 0 the
    # evaluation process has no TRAINHOUSE_TRAINING_ADDR; a restart (same port) hands it every
    # peer's address (as tests/evaluation does). Remove when the launcher starts it after training.
    probe = cli(env, "compare", "job-probe-a", "job-probe-b")
    if probe.returncode == 5:
        stack.launcher.restart("evaluation")
    jobs = []
    for epochs, rate in (("1", "0.0005"), ("6", "0.01")):
        result = cli(env, "train", "cli-eval", "--file", str(train_file), "--epochs", epochs,
                     "--learning-rate", rate, "--config", '{"seed": 3, "early_stopping": false}', "--watch", "--json")
        assert result.returncode == 0, result.stderr
        jobs.append(ndjson(result.stdout)[-1]["job"])
    return jobs


def test_eval_compare_report(env, via, two_runs, tmp_path):
    weak, strong = two_runs
    evaluation = ok_json(env, "eval", "--job", strong["job_id"], "--type", "quick", *via)
    assert evaluation["version_id"] == strong["model_version_id"] and evaluation["job_id"] == strong["job_id"]
    assert 0 <= evaluation["metrics"]["accuracy"] <= 1 and evaluation["test_set_source"] == "job:validation"
    table = cli(env, "eval", "cli-eval", "--version", weak["model_version_id"], "--metric", "accuracy", *via)
    assert table.returncode == 0 and "accuracy" in table.stdout
    assert cli(env, "eval", "cli-eval", "--version", "v9.9.9", *via).returncode == 3
    comparison = ok_json(env, "compare", weak["job_id"], strong["job_id"], *via)
    assert {r["job_id"] for r in comparison["runs"]} == {weak["job_id"], strong["job_id"]}
    assert sorted(r["rank"] for r in comparison["overall_ranking"]) == [1, 2]
    assert cli(env, "compare", weak["job_id"], *via).returncode == 4
    html = tmp_path / "report.html"
    written = ok_json(env, "report", strong["job_id"], "--format", "html", "--output", str(html), *via)
    assert written["path"] == str(html) and html.read_text().lstrip().lower().startswith("<!doctype html")
    assert written["bytes"] == len(html.read_bytes())
    markdown = cli(env, "report", strong["job_id"], "--format", "markdown", *via)
    assert markdown.returncode == 0 and strong["job_id"] in markdown.stdout
    assert cli(env, "report", "job-does-not-exist", *via).returncode == 3


def test_compare_three_runs_prints_holm_adjusted_pairs(env, two_runs, train_file):
    weak, strong = two_runs
    third = cli(env, "train", "cli-eval-third", "--file", str(train_file), "--epochs", "3", "--config",
                '{"seed": 4, "early_stopping": false}', "--watch", "--json")
    assert third.returncode == 0, third.stderr
    ids = [weak["job_id"], strong["job_id"], ndjson(third.stdout)[-1]["job"]["job_id"]]
    shown = cli(env, "compare", *ids)
    assert shown.returncode == 0, shown.stderr
    assert "pairwise tests" in shown.stdout and "holm correction across pairs" in shown.stdout
    assert "P (HOLM)" in shown.stdout and "SIGNIFICANT" in shown.stdout
    rows = [line for line in shown.stdout.splitlines() if line.strip().startswith(("│ accuracy", "│ f1", "│ log_loss"))]
    assert len(rows) == 3 * 3  # three pairs of three runs, on each of three metrics
    data = ok_json(env, "compare", *ids)
    pairs = data["statistical_analysis"]["pairwise"]
    assert {frozenset((p["job_a"], p["job_b"])) for p in pairs if p["metric"] == "accuracy"} == {
        frozenset((a, b)) for k, a in enumerate(ids) for b in ids[k + 1:]}
    for p in pairs:
        assert p["test"]["p_value"] <= p["test"]["adjusted_p_value"] <= 1
        assert p["test"]["significant"] == (p["test"]["adjusted_p_value"] < 0.05)
        assert f"{p['test']['adjusted_p_value']:.4g}" in shown.stdout


def test_deploy_canary_and_rollback(env, via, two_runs):
    """Each run ends where it started (the weak version serves), so both transports run it in turn."""
    weak, strong = two_runs
    # The agent's first version serves from its registration; deploying it again is refused.
    assert cli(env, "deploy", "cli-eval", weak["model_version_id"], *via).returncode == 7
    canary = ok_json(env, "deploy", "cli-eval", strong["model_version_id"], "--canary", "20", "--duration", "1h",
                     *via)
    assert canary["state"] == "rolling_out" and canary["strategy"] == "canary" and canary["current_percentage"] == 20
    assert canary["previous_version_id"] == weak["model_version_id"] and canary["environment"] == "production"
    rolled = ok_json(env, "rollback", "cli-eval", "--reason", "cli test", *via)
    assert rolled["previous_version_id"] == strong["model_version_id"]
    assert rolled["current_version_id"] == weak["model_version_id"]
    served = ok_json(env, "predict", "cli-eval", "where is my package", *via)
    assert served["version_id"] == weak["model_version_id"]
    assert cli(env, "rollback", "cli-eval", *via).returncode == 7
    bad = cli(env, "deploy", "cli-eval", strong["model_version_id"], "--canary", "150", "--json", *via)
    assert bad.returncode == 4 and json.loads(bad.stdout)["error"]["field"] in ("rollout.percentage", "percentage")


def test_models_aliases_and_tags(env, via, two_runs):
    weak, strong = (run["model_version_id"] for run in two_runs)
    alias = f"champion-{transport_of(via)}"
    # `alias ...` and `models alias ...` are one command group.
    moved = ok_json(env, "alias", "set", "cli-eval", alias, strong, *via)
    assert moved == {"alias": alias, "version_id": strong, "previous_version_id": None}
    again = ok_json(env, "models", "alias", "set", "cli-eval", alias, weak, *via)
    assert again["previous_version_id"] == strong
    listed = ok_json(env, "models", "alias", "list", "cli-eval", *via)
    assert listed == ok_json(env, "alias", "list", "cli-eval", *via)
    assert {a["alias"]: a["version_id"] for a in listed["aliases"]}[alias] == weak
    served = ok_json(env, "predict", "cli-eval", "where is my package", "--version", f"@{alias}", *via)
    assert served["version_id"] == weak
    tagged = ok_json(env, "tag", "cli-eval", strong, "--set", "reviewed=yes", "--set", "by=cli", *via)
    assert tagged["tags"] == {"by": "cli", "reviewed": "yes"}
    assert ok_json(env, "tag", "cli-eval", strong, "--remove", "by", *via)["tags"] == {"reviewed": "yes"}
    versions = ok_json(env, "models", "cli-eval", *via)["versions"]
    assert versions == ok_json(env, "models", "list", "cli-eval")["versions"]  # the same records over gRPC
    by_id = {v["version_id"]: v for v in versions}
    assert alias in by_id[weak]["aliases"]
    assert {by_id[weak]["serving"], by_id[strong]["serving"]} <= {"serving", "registered", "retired", "canary"}
    serving = [v for v in versions if v["serving"] == "serving"]
    assert len(serving) == 1 and serving[0]["serving_reason"]
    table = cli(env, "models", "cli-eval", *via).stdout
    assert "SERVING" in table and "WHY" in table and "ALIASES" in table and alias in table
    assert ok_json(env, "models", "alias", "delete", "cli-eval", alias, *via)["version_id"] == weak
    assert cli(env, "alias", "delete", "cli-eval", alias, *via).returncode == 3  # not found
    assert cli(env, "models", "alias", "set", "cli-eval", "latest", weak, *via).returncode == 4


def test_models_download(env, via, two_runs, tmp_path):
    import onnxruntime

    weak, strong = (run["model_version_id"] for run in two_runs)
    versions = {v["version_id"]: v for v in ok_json(env, "models", "cli-eval")["versions"]}
    out = tmp_path / "strong.onnx"
    got = ok_json(env, "models", "download", "cli-eval", strong, "-o", str(out), *via)
    content = out.read_bytes()
    assert got["version_id"] == strong and got["path"] == str(out.resolve()) and got["bytes"] == len(content)
    assert hashlib.sha256(content).hexdigest() == got["sha256"] == versions[strong]["sha256"]
    assert onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"]).get_inputs()
    alias = f"download-{transport_of(via)}"
    ok_json(env, "alias", "set", "cli-eval", alias, strong, *via)
    by_alias = ok_json(env, "models", "download", "cli-eval", f"@{alias}", "-o", str(tmp_path / "a.onnx"), *via)
    assert by_alias["version_id"] == strong and (tmp_path / "a.onnx").read_bytes() == content
    ok_json(env, "alias", "delete", "cli-eval", alias, *via)
    serving = {a["agent_id"]: a for a in ok_json(env, "agents")["agents"]}["cli-eval"]["active_version_id"]
    default = ok_json(env, "models", "download", "cli-eval", "-o", str(tmp_path / "s.onnx"), *via)
    assert default["version_id"] == serving and default["sha256"] == versions[serving]["sha256"]
    missing = cli(env, "models", "download", "cli-eval", "v9.9.9", "-o", str(tmp_path / "m.onnx"), *via)
    assert missing.returncode == 3 and not (tmp_path / "m.onnx").exists()
    assert cli(env, "models", "download", "no-such-agent", "-o", str(tmp_path / "n.onnx"), *via).returncode == 3


# Every command of the CLI and the test that runs it over both transports: a test taking the `via`
# fixture (or parametrized `over_gateway`), whose source names the command's words.
OVER_BOTH_TRANSPORTS = {
    "train": "test_train_watch_shows_progress", "watch": "test_train_watch_shows_progress",
    "jobs": "test_jobs_json_lists_and_filters", "job get": "test_job_get",
    "cancel": "test_cancel_and_watch_exit_code", "predict": "test_predict",
    "register-checkpoint": "test_register_checkpoint",
    "models list": "test_models_aliases_and_tags", "models download": "test_models_download",
    "alias list": "test_models_aliases_and_tags", "alias set": "test_models_aliases_and_tags",
    "alias delete": "test_models_aliases_and_tags", "models alias list": "test_models_aliases_and_tags",
    "models alias set": "test_models_aliases_and_tags", "models alias delete": "test_models_aliases_and_tags",
    "tag": "test_models_aliases_and_tags",
    "eval": "test_eval_compare_report", "compare": "test_eval_compare_report", "report": "test_eval_compare_report",
    "deploy": "test_deploy_canary_and_rollback", "rollback": "test_deploy_canary_and_rollback",
    "agents": "test_agents_create", "agents create": "test_agents_create",
    "datasets upload": "test_datasets_upload_list_and_train_from_dataset",
    "datasets list": "test_datasets_upload_list_and_train_from_dataset",
    "datasets generate": "test_datasets_generate_and_validate",
    "datasets validate": "test_datasets_generate_and_validate",
    "datasets scenarios": "test_datasets_generate_and_validate",
    "sweep create": "tests.cli.test_cli_sweeps:test_sweep_commands",
    "sweep get": "tests.cli.test_cli_sweeps:test_sweep_commands",
    "sweep list": "tests.cli.test_cli_sweeps:test_sweep_commands",
    "sweep cancel": "tests.cli.test_cli_sweeps:test_sweep_commands",
}
# Commands with no choice of transport, by nature.
LOCAL_ONLY = {
    "up": "starts the four services and the gateway as processes on this machine",
    "certs": "writes a CA and key pairs into a local directory; it talks to no server",
    "export mlflow": "reads the canonical API with the SDK, so it always talks to a gateway (--url, default the "
                     "local one); tests/cli/test_export_mlflow.py covers it",
    "token create": "tokens are the gateway's own (its admin route; no gRPC service has a token RPC), so it "
                    "always talks to the gateway and test_token_create_and_scopes covers it there",
}


def command_paths(group, prefix: str = "") -> set[str]:
    """Every runnable command of a click group: leaves, and groups that run without a subcommand
    (typer vendors its own click, so a group is whatever has subcommands)."""
    paths = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            paths |= command_paths(command, f"{path} ")
            if command.invoke_without_command and not command.no_args_is_help:
                paths.add(path)
        else:
            paths.add(path)
    return paths


def test_every_command_runs_over_both_transports():
    import importlib
    import inspect

    import typer

    registered = command_paths(typer.main.get_command(app))
    assert registered == set(OVER_BOTH_TRANSPORTS) | set(LOCAL_ONLY), (
        registered ^ (set(OVER_BOTH_TRANSPORTS) | set(LOCAL_ONLY)))
    for path, where in OVER_BOTH_TRANSPORTS.items():
        module_name, _, name = where.rpartition(":")
        test = getattr(importlib.import_module(module_name) if module_name else sys.modules[__name__], name)
        params = inspect.signature(test).parameters
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        assert "via" in params or any(m.args[0] == "over_gateway" and list(m.args[1]) == [False, True]
                                      for m in marks), f"{where} does not run over both transports"
        source = inspect.getsource(test)
        assert all(f'"{word}"' in source for word in path.split()), f"{where} does not run `{path}`"
