"""Job events (``JobEvent``, the WatchJob stream): the one mapping every surface renders.

SSE (seed 000's events route), the webhook payloads and the CLI's ``--json`` lines all start from
``event_fields``; each then applies its surface's ``FieldTable``. The payload's fields are
flattened into the event next to ``type``, which names the payload kind (``status``, ``epoch``,
``step``, ``metric``, ``checkpoint``, ``log``, ``budget``, ``promotion``).
"""
from __future__ import annotations

from typing import Any

from trainhouse.v1 import training_job_pb2

from trainhouse.gateway.convert import ts_iso
from trainhouse.gateway.resources.jobs import checkpoint_fields, seed_word, state_word
from trainhouse.gateway.resources.tables import FieldTable

KINDS = ("status", "epoch", "step", "metric", "checkpoint", "log", "budget", "promotion")

# Seed 000 (and its SSE stream) says "status" for a job's state, in camelCase, in its own words
# (a paused job: "cancelled", see resources/jobs.py SEED_STATES; `terminal` stays false for it).
V1 = FieldTable({"state": "status"}, camel_case=True, values={"state": seed_word})
# Seeds 001-003 (function calls, JSON-RPC) say "status" too, in snake_case.
SNAKE = FieldTable({"state": "status"}, values={"state": seed_word})


def _none_if_empty(value: str) -> str | None:
    return value or None


def event_fields(ev: training_job_pb2.JobEvent) -> dict[str, Any]:
    """The canonical fields of one event: its position, its job, its kind and the payload's fields."""
    kind = ev.WhichOneof("payload") or "log"
    out: dict[str, Any] = {"sequence": ev.sequence, "job_id": ev.job_id, "agent_id": _none_if_empty(ev.agent_id),
                           "time": ts_iso(ev.time), "type": kind}
    if kind == "status":
        s = ev.status
        out.update(state=state_word(s.state), reason=_none_if_empty(s.reason), message=_none_if_empty(s.message),
                   terminal=s.terminal)
    elif kind == "epoch":
        e = ev.epoch
        out.update(epoch=e.epoch, total_epochs=e.total_epochs, step=e.step, total_steps=e.total_steps,
                   metrics=dict(sorted(e.metrics.items())))
    elif kind == "step":
        s = ev.step
        out.update(epoch=s.epoch, step=s.step, total_steps=s.total_steps, metrics=dict(sorted(s.metrics.items())))
    elif kind == "metric":
        m = ev.metric
        out.update(name=m.name, value=m.value, epoch=m.epoch, step=m.step)
    elif kind == "checkpoint":
        out.update({k: v for k, v in checkpoint_fields(ev.checkpoint).items() if k != "job_id"})
    elif kind == "budget":
        b = ev.budget
        out.update(cost_usd=b.cost_usd, budget_usd=b.budget_usd, fraction=b.fraction, level=b.level)
    elif kind == "promotion":
        d = ev.promotion.decision
        out.update(version_id=ev.promotion.version_id, outcome=d.outcome, reason=d.reason,
                   requested_by=d.requested_by, baseline_version_id=_none_if_empty(d.baseline_version_id),
                   candidate_accuracy=d.candidate_accuracy, baseline_accuracy=d.baseline_accuracy,
                   accuracy_tolerance=d.accuracy_tolerance, examples=d.examples, test=d.test, p_value=d.p_value)
    else:
        out.update(level=ev.log.level, message=ev.log.message)
    return out


def sse_event(ev: training_job_pb2.JobEvent) -> tuple[str, dict[str, Any]]:
    """(SSE event name, seed-000 camelCase data) of one event."""
    fields = event_fields(ev)
    return fields["type"], V1.render(fields)
