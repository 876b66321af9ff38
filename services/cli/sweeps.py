"""Hyperparameter sweeps: `sweep create | get | list | cancel`.

A sweep is described by a JSON file in the shape of the gateway's `POST /api/v1/sweeps` body
(agentId, space, objective, sampler, maxTrials, parallelism, earlyStopping, config, datasetId or
examples, seed); `--examples FILE.jsonl` adds the trials' examples from a JSONL file. Both
transports take that file and print the same record, the canonical API's sweep (snake_case keys;
gateway/resources/sweeps.py is the one mapping).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from trainhouse.cli import output
from trainhouse.cli.errors import EPILOG, CliError, ExitCode, invalid
from trainhouse.cli.jsonl import read_examples
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.transport import connect

sweep_app = typer.Typer(help="Hyperparameter sweeps: trials are training jobs; poor ones stop early.",
                        epilog=EPILOG, no_args_is_help=True)

STATES = ("queued", "running", "completed", "failed", "cancelled")


def _spec(path: Path, examples: Path | None) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(ExitCode.USAGE, f"cannot read {path}: {exc.strerror}", field=str(path)) from None
    except json.JSONDecodeError as exc:
        raise invalid(str(path), f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(body, dict):
        raise invalid(str(path), f"{path} must hold a JSON object (the sweep)")
    if examples is not None:
        body["examples"] = read_examples(examples).examples
    return body


def _render(sweep: dict[str, Any]):  # noqa: ANN202 - a rich renderer
    def render(con) -> None:  # noqa: ANN001
        best = sweep.get("best_trial")
        con.print(f"sweep [bold]{sweep['sweepId']}[/bold] ({sweep['agentId']}): {sweep['state']}"
                  + (f" - {sweep['message']}" if sweep.get("message") else ""), soft_wrap=True)
        rows = [(t["number"], t["job_id"], t["state"], json.dumps(t["params"]), output.num(t["objective"], 4)
                 if t["objective"] is not None else "-", "yes" if t["stopped_early"] else "")
                for t in sweep.get("trials", [])]
        con.print(output.table(f"{len(rows)} trial(s), objective {sweep['objective']['metric']} "
                               f"({sweep['objective']['direction']})",
                               ["#", "JOB", "STATE", "PARAMS", "OBJECTIVE", "STOPPED EARLY"], rows))
        if best:
            con.print(f"best: trial {best['number']} ({best['jobId']}) {output.num(best['objective'], 4)}")
    return render


@sweep_app.command("create")
@reports_errors
def create(
    spec: Annotated[Path, typer.Argument(metavar="SWEEP.json", exists=True, dir_okay=False, readable=True,
                                         help="The sweep, as the body of POST /api/v1/sweeps.")],
    examples: Annotated[Optional[Path], typer.Option("--examples", "-f", exists=True, dir_okay=False, readable=True,
                                                     help="The trials' examples as JSONL.")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Create a sweep; it runs in the TrainingService (follow it with `sweep get`)."""
    sweep = connect(url, token, timeout).create_sweep(_spec(spec, examples))
    output.emit(as_json, sweep, _render(sweep))


@sweep_app.command("get")
@reports_errors
def get(
    sweep_id: Annotated[str, typer.Argument(help="The sweep id.")],
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """A sweep with its trials, best trial and events."""
    sweep = connect(url, token, timeout).get_sweep(sweep_id)
    output.emit(as_json, sweep, _render(sweep))


@sweep_app.command("list")
@reports_errors
def list_sweeps(
    agent: Annotated[Optional[str], typer.Option("--agent", help="Only this agent's sweeps.")] = None,
    state: Annotated[Optional[Literal[STATES]], typer.Option("--state")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="At most this many.")] = 20,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Your sweeps, newest first."""
    found = connect(url, token, timeout).list_sweeps(agent or "", state or "", limit)
    rows = [(s["sweep_id"], s["agent_id"], s["state"], len(s["trials"]), s["objective"]["metric"],
             output.num(s["best_trial"]["objective"], 4) if s.get("best_trial") else "-") for s in found]
    output.emit(as_json, {"sweeps": found}, lambda con: con.print(output.table(
        f"{len(found)} sweep(s)", ["SWEEP", "AGENT", "STATE", "TRIALS", "OBJECTIVE", "BEST"], rows)))


@sweep_app.command("cancel")
@reports_errors
def cancel(
    sweep_id: Annotated[str, typer.Argument(help="The sweep id.")],
    reason: Annotated[Optional[str], typer.Option("--reason")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Cancel a sweep: running trials stop, no new ones start."""
    sweep = connect(url, token, timeout).cancel_sweep(sweep_id, reason or "cancelled from the CLI")
    output.emit(as_json, sweep, _render(sweep))
