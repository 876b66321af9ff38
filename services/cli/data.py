"""Datasets: `datasets upload | list | generate | validate | scenarios`.

Uploads send the file as it is (JSONL) over either transport; the DataService (or the gateway)
checks every line and names the first bad one ("line 7"). Generation and validation are
DataService RPCs without a gateway route here, so they talk gRPC.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from trainhouse.cli import output
from trainhouse.cli.errors import EPILOG, CliError, ExitCode
from trainhouse.cli.evaluation import message_json
from trainhouse.cli.jsonl import examples_proto, read_examples
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.records import enum_word
from trainhouse.cli.transport import connect

datasets_app = typer.Typer(help="Upload, generate, validate and list datasets of examples.", epilog=EPILOG,
                           no_args_is_help=True)

DIFFICULTIES = ("easy", "medium", "hard")
CHECKS = ("duplicates", "quality", "label_issues", "balance", "bias")
# Label issues shown in the human rendering (--json has the response's 100).
SHOWN_LABEL_ISSUES = 10


def _dataset_line(d: dict[str, Any]) -> str:
    outputs = ", ".join(f"{k} {v}" for k, v in d["output_counts"].items())
    return f"dataset [bold]{d['dataset_id']}[/bold]: {d['example_count']} examples ({outputs})"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(ExitCode.USAGE, f"cannot read {path}: {exc.strerror}", field=str(path)) from None


@datasets_app.command("upload")
@reports_errors
def upload(
    file: Annotated[Path, typer.Argument(metavar="FILE.jsonl", exists=True, dir_okay=False, readable=True,
                                         help="One example object per line.")],
    dataset_id: Annotated[Optional[str], typer.Option("--id", help="Dataset id (generated when absent).")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Store a JSONL file as an immutable dataset (exit 4 naming the first bad line)."""
    dataset = connect(url, token, timeout).upload_dataset(_read(file), dataset_id or "")
    output.emit(as_json, dataset, lambda con: con.print("uploaded " + _dataset_line(dataset), soft_wrap=True))


@datasets_app.command("list")
@reports_errors
def list_datasets(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="At most this many.")] = 50,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """List datasets, newest first."""
    found = connect(url, token, timeout).list_datasets(limit)
    rows = [(d["dataset_id"], d["source"] or "-", d["example_count"], len(d["output_counts"]),
             output.num(d["average_length"], 1), output.when(d["created_at"])) for d in found]
    output.emit(as_json, {"datasets": found}, lambda con: con.print(output.table(
        f"{len(found)} dataset(s)", ["DATASET", "SOURCE", "EXAMPLES", "OUTPUTS", "AVG LEN", "CREATED"], rows)))


@datasets_app.command("generate")
@reports_errors
def generate(
    scenario: Annotated[Optional[str], typer.Option("--scenario", help="A built-in scenario type "
                                                    "(see `datasets scenarios`).")] = None,
    data_type: Annotated[Optional[str], typer.Option("--data-type", help="A data type name, e.g. "
                                                     "customer_queries.")] = None,
    module: Annotated[Optional[str], typer.Option("--module", help="A stored training module id.")] = None,
    count: Annotated[Optional[int], typer.Option("--count", "-n", help="Examples to generate (default 100).")] = None,
    difficulty: Annotated[Optional[Literal[DIFFICULTIES]], typer.Option("--difficulty")] = None,
    edge_cases: Annotated[bool, typer.Option("--edge-cases", help="Turn some examples into edge cases.")] = False,
    diversity: Annotated[Optional[float], typer.Option("--diversity", help="0..1 (default 0.7).")] = None,
    topics: Annotated[Optional[list[str]], typer.Option("--topic", help=(
        "Only this topic; repeat. A topic outside the scenario's catalogue gets a generic output of its own."))] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Same seed, same examples.")] = None,
    dataset_id: Annotated[Optional[str], typer.Option("--id", help="Id of the stored dataset.")] = None,
    label_by: Annotated[Optional[Literal["output", "topic"]], typer.Option("--label-by")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Generate synthetic examples and store them as a dataset."""
    from trainhouse.v1 import data_service_pb2

    given = [name for name, value in (("--scenario", scenario), ("--data-type", data_type), ("--module", module))
             if value]
    if len(given) != 1:
        raise CliError(ExitCode.USAGE, "give exactly one of --scenario, --data-type or --module", field="--scenario")
    request = data_service_pb2.GenerateSyntheticDataRequest(
        difficulty=difficulty or "", edge_cases=edge_cases, dataset_id=dataset_id or "", label_by=label_by or "")
    if scenario:
        request.scenario_type = scenario
    elif data_type:
        request.data_type = data_type
    else:
        request.module_id = module or ""
    try:
        if count is not None:
            request.count = count
        if seed is not None:
            request.seed = seed
    except ValueError as exc:  # outside int32 / int64
        raise CliError(ExitCode.INVALID_ARGUMENT, f"--count/--seed out of range: {exc}", field="--count") from None
    if diversity is not None:
        request.diversity = diversity
    request.constraints.topics.extend(topics or [])
    resp = connect(url, token, timeout).generate(request)
    s = resp.statistics
    output.emit(as_json, message_json(resp), lambda con: con.print(
        f"generated dataset [bold]{resp.dataset.dataset_id}[/bold] from {resp.scenario} (seed {resp.seed}): "
        f"{s.generated} examples, {s.edge_cases} edge cases, {s.unique_templates} templates, "
        f"distinct-2 {s.distinct_2:.3f}"
        + (f"; generic topics (not in the catalogue): {', '.join(resp.generic_topics)}" if resp.generic_topics else ""),
        soft_wrap=True))


@datasets_app.command("validate")
@reports_errors
def validate(
    dataset: Annotated[Optional[str], typer.Argument(metavar="[DATASET]", help="Dataset id (or 'latest').")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True,
                                                 help="Validate a JSONL file instead of a stored dataset.")] = None,
    checks: Annotated[Optional[list[str]], typer.Option("--check", help=f"Only these checks ({', '.join(CHECKS)}); "
                                                        "repeat. Default: all.")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Check a dataset for duplicates, quality, likely wrong labels, balance and bias. Exit 1 when it has issues."""
    from trainhouse.v1 import data_service_pb2, data_validation_pb2

    if (dataset is None) == (file is None):
        raise CliError(ExitCode.USAGE, "give a DATASET id or --file FILE.jsonl", field="DATASET")
    unknown = [c for c in checks or [] if c not in CHECKS]
    if unknown:
        raise CliError(ExitCode.USAGE, f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}",
                       field="--check")
    request = data_service_pb2.ValidateDatasetRequest()
    examples = read_examples(file) if file else None
    if examples:
        request.examples.examples.extend(examples_proto(examples))
    else:
        request.dataset_id = dataset or ""
    if checks:
        request.checks.CopyFrom(data_validation_pb2.ValidationChecks(**{c: True for c in checks}))
    resp = connect(url, token, timeout).validate(request)

    def render(con) -> None:  # noqa: ANN001 - rich Console
        name = resp.dataset_id or (file.name if file else "")
        verdict = "[green]valid[/green]" if resp.valid else "[red]invalid[/red]"
        con.print(f"{name}: {verdict}, {len(resp.issues)} issue(s), {len(resp.warnings)} warning(s), "
                  f"{resp.statistics.total_examples} examples", soft_wrap=True)
        rows = [("issue" if kind == "issue" else "warning",
                 enum_word(data_validation_pb2.Severity, f.severity, "SEVERITY_"), f.type, f.count, f.message)
                for kind, group in (("issue", resp.issues), ("warning", resp.warnings)) for f in group]
        if rows:
            con.print(output.table(None, ["KIND", "SEVERITY", "TYPE", "COUNT", "MESSAGE"], rows))
        s = resp.statistics
        if s.label_issues_checked:
            con.print(f"labels: {s.label_issues} of {s.label_issues_checked} checked look wrong "
                      f"(estimated noise {s.label_noise_rate:.1%})", soft_wrap=True)
        if resp.label_issues:
            con.print(output.table(None, ["INDEX", "GIVEN", "LIKELY", "P(LIKELY)", "INPUT"], [
                (x.example_index, x.given_label, x.likely_label, f"{x.likely_label_confidence:.2f}", x.input[:60])
                for x in resp.label_issues[:SHOWN_LABEL_ISSUES]]))

    output.emit(as_json, message_json(resp), render)
    if not resp.valid:
        raise typer.Exit(int(ExitCode.JOB_FAILED))


@datasets_app.command("scenarios")
@reports_errors
def scenarios(as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None) -> None:
    """List the built-in scenario types and data types for `datasets generate`."""
    resp = connect(url, token, timeout).scenarios()
    rows = [(s.scenario_type, ", ".join(s.data_types), ", ".join(s.outputs), s.description) for s in resp.scenarios]
    output.emit(as_json, message_json(resp), lambda con: con.print(output.table(
        None, ["SCENARIO", "DATA TYPES", "OUTPUTS", "DESCRIPTION"], rows)))
