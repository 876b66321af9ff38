"""Following a job's event stream: reconnection from the last sequence, and the live progress bar.

`follow` is transport-neutral (it only needs `backend.watch(job_id, after_sequence)`), so the
same reconnect rule holds for gRPC WatchJob and for the gateway's SSE: a broken stream is
reopened after the last sequence seen, with backoff, until it ends after a terminal status or
the service stays unreachable for `reconnect_window` seconds.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, Task, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from trainhouse.cli.errors import CliError, ExitCode
from trainhouse.cli.output import metrics_text, num, state_text

Event = dict[str, Any]


def follow(backend: Any, job_id: str, on_event: Callable[[Event], None], *, after_sequence: int = 0,
           reconnect_window: float = 120.0, on_reconnect: Callable[[int, CliError], None] | None = None) -> Event:
    """Deliver every event once, in order, across reconnects; return the terminal status event."""
    last = after_sequence
    terminal: Event | None = None
    down_since: float | None = None
    backoff = 0.2
    while True:
        try:
            for event in backend.watch(job_id, last):
                if event["sequence"] <= last:
                    continue  # never deliver a sequence twice, whatever the server resends
                last = event["sequence"]
                down_since, backoff = None, 0.2
                on_event(event)
                terminal = event if event["type"] == "status" and event.get("terminal") else None
            if terminal is not None:
                return terminal
            problem = CliError(ExitCode.UNAVAILABLE, "the event stream ended before the job did")
        except CliError as err:
            if err.exit_code != ExitCode.UNAVAILABLE:
                raise
            problem = err
        now = time.monotonic()
        if down_since is None:
            down_since = now
            if on_reconnect is not None:
                on_reconnect(last, problem)
        if now - down_since > reconnect_window:
            raise CliError(ExitCode.UNAVAILABLE, f"lost the event stream of {job_id} and could not reconnect "
                                                 f"for {reconnect_window:g} s: {problem.message}",
                           status=problem.status)
        time.sleep(backoff)
        backoff = min(backoff * 2, 2.0)


class _RecordOrMeasuredEta(TimeRemainingColumn):
    """Rich's own ETA once it has seen the bar move; before that, the job record's estimate (a
    watch that starts mid-job has no speed samples yet, the service has)."""

    def render(self, task: Task) -> Text:
        if task.time_remaining is None and task.fields.get("eta"):
            return Text(task.fields["eta"], style="progress.remaining")
        return super().render(task)


def _remaining(estimated_completion: str | None) -> str | None:
    """The job record's estimated completion time as time left ("1:02:03"), or None."""
    if not estimated_completion:
        return None
    try:
        end = dt.datetime.fromisoformat(estimated_completion.replace("Z", "+00:00"))
    except ValueError:
        return None
    if end.tzinfo is None:
        end = end.replace(tzinfo=dt.timezone.utc)
    left = max(0, int((end - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    return f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"


class ProgressView:
    """A rich progress bar fed by job events: epoch, loss, accuracy and ETA.

    On a terminal the bar redraws in place; elsewhere (logs, CI) each epoch and status change is
    printed as a line, so the record of the run survives in the output.
    """

    def __init__(self, job_id: str, console: Console):
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[total_epochs]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("acc {task.fields[acc]}"),
            TextColumn("ETA"),
            _RecordOrMeasuredEta(),
            console=console, transient=False, disable=not self.live,
        )
        self.task = self.progress.add_task("starting", total=None, epoch=0, total_epochs="?", loss="-", acc="-",
                                           eta=None)
        self.by_steps = False

    def __enter__(self) -> "ProgressView":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _say(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True)

    def show_job(self, job: dict[str, Any]) -> None:
        """The first screen from the job's record (state, epoch, metrics, ETA): where the job is now,
        drawn before any event arrives, so a long history is not replayed to get there."""
        state = job.get("state")
        self.progress.update(self.task, description=str(state))
        self._advance({"epoch": job.get("current_epoch") or 0, "total_epochs": job.get("total_epochs") or 0,
                       "step": job.get("current_step") or 0, "total_steps": job.get("total_steps") or 0,
                       "metrics": job.get("metrics") or {}})
        eta = _remaining(job.get("estimated_completion"))
        if eta:
            self.progress.update(self.task, eta=eta)
        metrics = metrics_text(job.get("metrics") or {})
        self._say(f"{job.get('job_id')}: {state_text(state)} at epoch {job.get('current_epoch') or 0}/"
                  f"{job.get('total_epochs') or '?'}" + (f"  {metrics}" if metrics else "")
                  + (f"  ETA {eta}" if eta else ""))

    def on_event(self, ev: Event) -> None:
        kind = ev["type"]
        if kind == "status":
            detail = ev.get("message") or (ev.get("reason") if ev.get("reason") != ev.get("state") else None)
            self._say(f"{ev['job_id']}: {state_text(ev.get('state'))}" + (f" ({escape(detail)})" if detail else ""))
            self.progress.update(self.task, description=str(ev.get("state")))
        elif kind in ("epoch", "step"):
            self._advance(ev)
            if kind == "epoch" and not self.live:
                self._say(f"epoch {ev['epoch']}/{ev.get('total_epochs') or '?'}  {metrics_text(ev.get('metrics') or {})}")
        elif kind == "budget":
            self._say(f"[yellow]budget {ev.get('level')}: {num(ev.get('cost_usd'))} of {num(ev.get('budget_usd'))} USD "
                      f"({num(100 * (ev.get('fraction') or 0), 1)} %)[/yellow]")
        elif kind == "checkpoint" and not self.live:
            self._say(f"checkpoint {ev.get('checkpoint_id')} ({ev.get('kind')}) at epoch {ev.get('epoch')}")

    def _advance(self, ev: Event) -> None:
        total_steps = ev.get("total_steps") or 0
        fields: dict[str, Any] = {"epoch": ev.get("epoch", 0)}
        if ev.get("total_epochs"):
            fields["total_epochs"] = ev["total_epochs"]
        metrics = ev.get("metrics") or {}
        if metrics.get("loss") is not None:
            fields["loss"] = num(metrics["loss"])
        accuracy = metrics.get("validation_accuracy", metrics.get("accuracy"))
        if accuracy is not None:
            fields["acc"] = num(accuracy)
        if total_steps:
            self.by_steps = True
            self.progress.update(self.task, total=total_steps, completed=ev.get("step", 0), **fields)
        elif not self.by_steps and ev.get("total_epochs"):
            self.progress.update(self.task, total=ev["total_epochs"], completed=ev.get("epoch", 0), **fields)
        else:
            self.progress.update(self.task, **fields)

    def reconnecting(self, after: int, problem: CliError) -> None:
        self._say(f"[yellow]stream interrupted ({problem.message}); reconnecting after event {after}[/yellow]")
