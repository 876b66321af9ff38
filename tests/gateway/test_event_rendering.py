"""One event mapping under every surface: SSE, webhook payloads and the CLI's JSON lines.

A JobEvent of every payload kind is rendered the way each surface renders it: the SSE frame the
gateway sends (parsed back from its bytes), the webhook payload of each format (for the kinds that
are webhook events: status, epoch, budget), and the CLI's NDJSON line from gRPC and from the
gateway's SSE data. Every rendering must hold every field of the event, with the same values
(webhooks may spell metric names in their seed's case and money as the seed's strings).
"""
from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout

import pytest

from trainhouse.gateway.convert import snake_keys
from trainhouse.gateway.resources.events import KINDS, SNAKE, V1, event_fields, sse_event
from trainhouse.gateway.surfaces.training_v1 import sse_frame
from trainhouse.gateway.webhooks import payloads
from trainhouse.cli import records
from trainhouse.cli.output import print_json_line
from trainhouse.v1 import model_version_pb2, job_state_pb2, training_job_pb2


def _events() -> dict[str, training_job_pb2.JobEvent]:
    def ev(seq: int, **payload) -> training_job_pb2.JobEvent:
        e = training_job_pb2.JobEvent(sequence=seq, job_id="job-1", agent_id="router", cursor=100 + seq, **payload)
        e.time.FromSeconds(1_790_000_000 + seq)
        return e

    cp = training_job_pb2.Checkpoint(checkpoint_id="ckpt-3", job_id="job-1", epoch=3, step=30, best=True,
                                     kind="best", size_bytes=2048, metrics={"validation_loss": 0.41})
    cp.create_time.FromSeconds(1_790_000_003)
    out = {
        "status": ev(1, status=training_job_pb2.StatusChange(state=job_state_pb2.JOB_STATE_RUNNING,
                                                               reason="started", message="training")),
        "epoch": ev(2, epoch=training_job_pb2.EpochEnd(epoch=2, total_epochs=10, step=20, total_steps=100,
                                                        metrics={"loss": 0.5, "validation_accuracy": 0.8})),
        "step": ev(3, step=training_job_pb2.StepProgress(epoch=2, step=25, total_steps=100, metrics={"loss": 0.45})),
        "metric": ev(4, metric=training_job_pb2.MetricUpdate(name="loss", value=0.44, epoch=2, step=25)),
        "checkpoint": ev(5, checkpoint=cp),
        "log": ev(6, log=training_job_pb2.LogLine(level="warning", message="slow epoch")),
        "budget": ev(7, budget=training_job_pb2.BudgetUpdate(cost_usd=0.000375, budget_usd=0.0005, fraction=0.75,
                                                              level="warning_75")),
        "promotion": ev(8, promotion=training_job_pb2.PromotionEvent(
            version_id="v1.2.0", decision=model_version_pb2.PromotionDecision(
                outcome="rejected", reason="worse than what serves", requested_by="auto_apply",
                baseline_version_id="v1.1.0", candidate_accuracy=0.71, baseline_accuracy=0.8,
                accuracy_tolerance=0.01, examples=60, test="mcnemar_exact", p_value=0.03))),
    }
    assert set(out) == set(KINDS), "a new payload kind needs a case here"
    return out


EVENTS = _events()
JOB = training_job_pb2.TrainingJob(job_id="job-1", agent_id="router", state=job_state_pb2.JOB_STATE_RUNNING)


def _same(expected, got) -> bool:
    """Equal, allowing a seed's own spelling of the same value (camelCase metric names, money strings)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return snake_keys(got) == expected
    if isinstance(expected, float) and isinstance(got, str):
        return math.isclose(float(got), expected, rel_tol=1e-6)
    return got == expected


def _sse_data(ev: training_job_pb2.JobEvent) -> tuple[str, dict]:
    name, data = sse_event(ev)
    frame = sse_frame(name, data, event_id=ev.sequence).decode()
    lines = dict(line.split(": ", 1) for line in frame.strip().splitlines())
    assert lines["id"] == str(ev.sequence)
    return lines["event"], json.loads(lines["data"])


def _cli_line(record: dict) -> dict:
    buf = io.StringIO()
    with redirect_stdout(buf):
        print_json_line(record)
    return json.loads(buf.getvalue())


@pytest.mark.parametrize("kind", KINDS)
def test_every_surface_renders_every_field_of_the_event(kind):
    ev = EVENTS[kind]
    canonical = event_fields(ev)
    # The canonical mapping itself holds the payload, not only the envelope.
    assert canonical["type"] == kind and len(canonical) > 5

    sse_name, sse = _sse_data(ev)
    assert sse_name == kind
    renderings = {"sse": V1.parse(sse),
                  "cli from gRPC": _cli_line(records.event_from_proto(ev)),
                  "cli from SSE": _cli_line(records.event_from_sse(sse))}
    webhook_event = payloads.classify(ev)
    if kind in ("status", "epoch", "budget", "promotion"):
        assert webhook_event is not None
        v1 = payloads.build(webhook_event, "v1", ev, JOB)
        renderings["webhook v1"] = V1.parse(v1["data"])
        renderings["webhook functions"] = SNAKE.parse(payloads.build(webhook_event, "functions", ev, JOB))
        renderings["webhook jsonrpc"] = SNAKE.parse(payloads.build(webhook_event, "jsonrpc", ev, JOB)["data"])
    else:
        assert webhook_event is None, f"{kind} became a webhook event: render it here"

    for surface, got in renderings.items():
        missing = [k for k in canonical if k not in got]
        assert not missing, f"{surface} lacks {missing} of a {kind} event"
        wrong = {k: (canonical[k], got[k]) for k in canonical if not _same(canonical[k], got[k])}
        assert not wrong, f"{surface} renders a {kind} event differently: {wrong}"


def test_budget_events_carry_cost_and_level_everywhere():
    """The drift this mapping ended: budget events reached SSE subscribers without cost or level."""
    _, sse = _sse_data(EVENTS["budget"])
    assert sse["costUsd"] == pytest.approx(0.000375) and sse["budgetUsd"] == pytest.approx(0.0005)
    assert sse["level"] == "warning_75" and sse["fraction"] == pytest.approx(0.75)
    line = records.event_from_proto(EVENTS["budget"])
    assert line["cost_usd"] == pytest.approx(0.000375) and line["level"] == "warning_75"
    # Seed 003 writes money as strings; a fraction of a cent must not read "0.00".
    rpc = payloads.build(payloads.BUDGET_WARNING, "jsonrpc", EVENTS["budget"], JOB)["data"]
    assert rpc["cost_usd"] == "0.000375" and rpc["threshold_percent"] == 75


SEED003_WORDS = {"queued", "running", "completed", "failed", "cancelled"}


@pytest.mark.parametrize("state", [v for v in job_state_pb2.JobState.values() if v])
def test_seed_003_speaks_only_its_own_status_words(state):
    """JSON-RPC results and JSON-RPC webhooks never say "initializing" or "validating"."""
    from trainhouse.gateway.surfaces.jsonrpc import status_result

    job = training_job_pb2.TrainingJob(job_id="job-1", agent_id="router", state=state)
    assert status_result(job)["status"] in SEED003_WORDS
    progress = payloads.build(payloads.PROGRESS, "jsonrpc", EVENTS["epoch"], job)["data"]
    assert progress["status"] in SEED003_WORDS
    # The other surfaces keep the platform's words.
    assert payloads.build(payloads.PROGRESS, "v1", EVENTS["epoch"], job)["data"]["status"] == \
        job_state_pb2.JobState.Name(state).removeprefix("JOB_STATE_").lower()
