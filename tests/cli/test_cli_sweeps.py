"""`trainhouse sweep create | get | list | cancel` over gRPC and over the gateway (--url)."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.cli.test_cli import cli, env  # noqa: F401  (the module-scoped env fixture)
from tests.intents import make_examples


@pytest.mark.parametrize("over_gateway", [False, True])
def test_sweep_commands(env, stack, tmp_path, over_gateway):  # noqa: F811
    url = ["--url", stack.gateway_url, "--token", stack.admin_token] if over_gateway else []
    agent = f"cli-sweep-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({
        "agentId": agent, "sampler": "tpe", "maxTrials": 2, "parallelism": 1, "seed": 1, "objective": {"metric": "validation_accuracy"},
        "space": [{"field": "learningRate", "range": {"low": 0.01, "high": 0.1, "log": True}}],
        "config": {"epochs": 2, "seed": 0}}))
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps(e) + "\n" for e in make_examples(10, seed=2)))
    created = cli(env, "sweep", "create", str(spec), "--examples", str(examples), "--json", *url)
    assert created.returncode == 0, created.stderr
    sweep_id = json.loads(created.stdout)["sweep_id"]
    deadline = time.monotonic() + 120
    while True:
        got = json.loads(cli(env, "sweep", "get", sweep_id, "--json", *url).stdout)
        if got["state"] not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got["state"] == "completed" and len(got["trials"]) == 2 and got["best_trial"], got
    # The same record whichever transport reads it.
    other = [] if over_gateway else ["--url", stack.gateway_url, "--token", stack.admin_token]
    assert json.loads(cli(env, "sweep", "get", sweep_id, "--json", *other).stdout) == got
    listed = cli(env, "sweep", "list", "--agent", agent, "--json", *url)
    assert [s["sweep_id"] for s in json.loads(listed.stdout)["sweeps"]] == [sweep_id]
    again = cli(env, "sweep", "cancel", sweep_id, "--json", *url)
    assert again.returncode == 7, again.stderr  # FAILED_PRECONDITION: it already ended
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(spec.read_text()),
                               "space": [{"field": "learningRate", "range": {"low": 0.01, "high": 5}}]}))
    refused = cli(env, "sweep", "create", str(bad), "--examples", str(examples), "--json", *url)
    assert refused.returncode == 4 and "learning_rate" in refused.stderr, refused.stderr
