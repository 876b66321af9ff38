"""Training jobs: `train`, `watch`, `jobs`, `job get`, `cancel`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from trainhouse.cli import output
from trainhouse.cli.errors import EPILOG, CliError, ExitCode, invalid
from trainhouse.cli.jsonl import read_examples
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.records import JOB_STATES, METHODS, TERMINAL_STATES
from trainhouse.cli.transport import TrainSpec, connect
from trainhouse.cli.watch import ProgressView, follow

INT32_MAX = 2 ** 31 - 1


def _int32(value: int | None, flag: str) -> int | None:
    if value is not None and not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise invalid(flag, f"{flag} must fit a 32-bit integer, got {value}")
    return value


def _config(config_json: str | None, epochs: int | None, learning_rate: float | None,
            batch_size: int | None) -> tuple[dict[str, Any], str | None]:
    """--config JSON overlaid by the explicit flags; returns (config, method from --config)."""
    cfg: dict[str, Any] = {}
    if config_json:
        try:
            cfg = json.loads(config_json)
        except json.JSONDecodeError as exc:
            raise invalid("--config", f"--config is not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(cfg, dict):
            raise invalid("--config", "--config must be a JSON object of training options")
    method = cfg.pop("method", None)
    if method is not None and method not in METHODS:
        raise invalid("--config.method", f"method must be one of {', '.join(METHODS)}, got {method!r}")
    for key, camel, value in (("epochs", "epochs", _int32(epochs, "--epochs")),
                              ("learning_rate", "learningRate", learning_rate),
                              ("batch_size", "batchSize", _int32(batch_size, "--batch-size"))):
        if value is not None:
            cfg.pop(camel, None)  # the flag wins over --config, whichever spelling it used
            cfg[key] = value
    return cfg, method


@reports_errors
def train(
    agent: Annotated[str, typer.Argument(help="Agent to train (registered on first use).")],
    file: Annotated[Optional[Path], typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True,
                                                 help="Examples as JSONL: one {input, expected_output} per line.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Train on a stored dataset instead.")] = None,
    method: Annotated[Optional[Literal[METHODS]], typer.Option("--method",
                                                  help="Training paradigm (default supervised).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="1..10000 (default 10).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--learning-rate", help="(0, 1] (default 0.001).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="1..65536 (default 32).")] = None,
    config_json: Annotated[Optional[str], typer.Option(
        "--config", metavar="JSON",
        help='More TrainingConfig options as a JSON object, e.g. \'{"early_stopping": false, "seed": 3}\'; '
             "the flags above win over it.")] = None,
    name: Annotated[str, typer.Option("--name", help="Display name of the job.")] = "",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the job until it ends (exit 1 if it "
                                                              "fails or is cancelled).")] = False,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Start a training job from a JSONL file or a dataset id."""
    if (file is None) == (dataset is None):
        raise CliError(ExitCode.USAGE, "give exactly one of --file FILE.jsonl or --dataset ID", field="--file")
    cfg, config_method = _config(config_json, epochs, learning_rate, batch_size)
    examples = read_examples(file) if file is not None else None
    backend = connect(url, token, timeout)
    spec = TrainSpec(agent_id=agent, file=examples, dataset_id=dataset or "", method=method or config_method,
                     config=cfg, display_name=name)
    try:
        job_id = backend.start_job(spec)
    except CliError as err:
        raise examples.locate(err) if examples else err
    job = backend.get_job(job_id)
    if not watch:
        output.emit(as_json, job, lambda con: con.print(
            f"started [bold]{job_id}[/bold] for agent {agent}: {output.state_text(job['state'])}, "
            f"{job['total_epochs']} epochs, {job['train_examples']} train / {job['validation_examples']} "
            f"validation examples\nfollow it with: trainhouse watch {job_id}", soft_wrap=True))
        return
    if as_json:
        output.print_json_line({"type": "started", "job": job})
    else:
        output.stdout().print(f"started [bold]{job_id}[/bold] for agent {agent}")
    _watch(backend, job_id, 0, as_json, 120.0)


@reports_errors
def watch(
    job: Annotated[str, typer.Argument(help="Job id.")],
    after_sequence: Annotated[Optional[int], typer.Option(
        "--after-sequence", min=0,
        help="Replay the job's events after this sequence (0: its whole history), then follow it. "
             "Default: the progress view starts from the job's current state and shows only new events; "
             "--json replays the whole history (as 0).")] = None,
    reconnect_window: Annotated[float, typer.Option("--reconnect-window", min=0,
                                                    help="Seconds to keep reconnecting a broken stream.")] = 120.0,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Follow a job live: progress bar with epoch, loss, accuracy and ETA (NDJSON events with --json).

    The progress view first draws where the job is now (its record: epoch, metrics, ETA) and then
    follows the events recorded after that, like `kubectl logs -f --tail`: a job with a long
    history shows at once, and a finished job prints its summary without replaying anything.
    --json keeps printing every event from the first (scripts read the whole stream); give
    --after-sequence N to replay from N in either view.

    Exits 0 when the job completes and 1 when it fails or is cancelled."""
    _watch(connect(url, token, timeout), job, after_sequence, as_json, reconnect_window)


def _watch(backend: Any, job_id: str, after: int | None, as_json: bool, window: float) -> None:
    """Follow `job_id` to its end. `after` None: --json from the first event, the progress view
    from the job's current state (its record and the sequence of its newest event, then only the
    events after it); a number: every event after that sequence."""
    final = None
    if as_json:
        follow(backend, job_id, output.print_json_line, after_sequence=after or 0, reconnect_window=window)
    else:
        current = None
        if after is None:
            current, after = backend.job_head(job_id)
        if current is not None and current["state"] in TERMINAL_STATES:
            final = current  # nothing left to follow: the record is the summary
        else:
            with ProgressView(job_id, output.stdout()) as view:
                if current is not None:
                    view.show_job(current)
                follow(backend, job_id, view.on_event, after_sequence=after, reconnect_window=window,
                       on_reconnect=view.reconnecting)
    if final is None:
        final = backend.get_job(job_id)
    if as_json:
        output.print_json_line({"type": "result", "job": final})
    else:
        _summary(final)
    if final["state"] in TERMINAL_STATES and final["state"] != "completed":
        raise typer.Exit(int(ExitCode.JOB_FAILED))


def _summary(job: dict[str, Any]) -> None:
    con = output.stdout()
    reason = job.get("status_reason") if job.get("status_reason") != job["state"] else None
    lines = [f"{job['job_id']}: {output.state_text(job['state'])}" + (f" ({reason})" if reason else "")]
    if job.get("error"):
        lines.append(f"  error: {output._escape(job['error'])}")
    if job.get("model_version_id"):
        lines.append(f"  model version: {job['model_version_id']}")
    if job.get("metrics"):
        lines.append("  " + output.metrics_text(job["metrics"], ("loss", "accuracy", "validation_loss",
                                                                 "validation_accuracy")))
    con.print("\n".join(lines), soft_wrap=True)


@reports_errors
def jobs(
    agent: Annotated[Optional[str], typer.Option("--agent", "-a", help="Only this agent's jobs.")] = None,
    state: Annotated[Optional[Literal[JOB_STATES]], typer.Option("--state", "-s",
                                                 help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="At most this many (newest first).")] = 20,
    search: Annotated[str, typer.Option(
        "--filter", "-q", metavar="QUERY",
        help='Search over fields, config, labels and metrics (docs/search.md), e.g. '
             '\'state = "completed" AND (labels.team = "a" OR metrics.validation_accuracy.best > 0.8)\'.')] = "",
    order_by: Annotated[str, typer.Option(
        "--order-by", metavar="FIELDS", help='e.g. "metrics.loss.best asc, create_time desc" '
                                             "(default: newest first).")] = "",
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """List training jobs, newest first unless --order-by says otherwise."""
    found = connect(url, token, timeout).list_jobs(agent or "", state, limit, search, order_by)
    rows = [(j["job_id"], j["agent_id"], output.state_text(j["state"]),
             f"{j['current_epoch']}/{j['total_epochs']}", output.num(j["metrics"].get("loss")),
             output.num(j["metrics"].get("validation_accuracy", j["metrics"].get("accuracy"))),
             j["model_version_id"] or "-", output.when(j["created_at"])) for j in found]
    output.emit(as_json, {"jobs": found}, lambda con: con.print(output.table(
        f"{len(found)} job(s)", ["JOB", "AGENT", "STATE", "EPOCH", "LOSS", "ACC", "VERSION", "CREATED"], rows)))


@reports_errors
def cancel(
    job: Annotated[str, typer.Argument(help="Job id.")],
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Cancel a queued or running job (a running job saves a checkpoint first)."""
    result = connect(url, token, timeout).cancel_job(job)
    saved = f", checkpoint {result['checkpoint_id']} saved" if result["checkpoint_saved"] else ""
    output.emit(as_json, result, lambda con: con.print(
        f"{result['job_id']}: {output.state_text(result['state'])}{saved}"))


job_app = typer.Typer(help="One training job: `job get JOB`.", epilog=EPILOG, no_args_is_help=True)


@job_app.command("get", epilog=EPILOG)
@reports_errors
def get_job(
    job: Annotated[str, typer.Argument(help="Job id.")],
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Show a job: state, progress, metrics and the version it produced (--json: the job record)."""
    found = connect(url, token, timeout).get_job(job)
    output.emit(as_json, found, lambda con: _summary_with_progress(con, found))


def _summary_with_progress(con: Any, job: dict[str, Any]) -> None:
    con.print(f"agent {job['agent_id']}, epoch {job['current_epoch']}/{job['total_epochs']}, "
              f"{job['progress_percent']:g}% done, {job['train_examples']} train / "
              f"{job['validation_examples']} validation examples, created {output.when(job['created_at'])}",
              soft_wrap=True)
    _summary(job)
