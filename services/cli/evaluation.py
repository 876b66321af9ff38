"""Evaluation: `eval`, `compare`, `report` (EvaluationService over gRPC, or the canonical API's
operations through the gateway with --url).

`--json` of `eval` prints the canonical API's evaluation (docs/api.md); `compare` and `report`
print the service's message in the proto3 JSON mapping with the proto's own field names
(snake_case, every field present): the .proto files are the documentation of that shape.
"""
from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from trainhouse.cli import output
from trainhouse.cli.errors import CliError, ExitCode
from trainhouse.cli.jsonl import examples_proto, read_examples
from trainhouse.cli.options import Json, Timeout, Token, Url, reports_errors
from trainhouse.cli.transport import connect

EVALUATION_TYPES = ("comprehensive", "standard", "quick")
REPORT_FORMATS = ("html", "markdown", "json")
REPORT_TYPES = ("single_job", "executive")
SUFFIX = {"html": ".html", "markdown": ".md", "json": ".json"}


def message_json(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


@reports_errors
def evaluate(
    agent: Annotated[Optional[str], typer.Argument(help="Agent to evaluate (or give --job).")] = None,
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Version or alias (default: the "
                                                   "job's version, else the active or newest).")] = None,
    job: Annotated[Optional[str], typer.Option("--job", "-j", help="Evaluate this completed job's version.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Test set: a stored dataset.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True,
                                                 help="Test set: a JSONL file.")] = None,
    metrics: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="A metric to compute; repeat "
                                                         "(default: per --type).")] = None,
    evaluation_type: Annotated[Optional[Literal[EVALUATION_TYPES]], typer.Option(
        "--type", help="comprehensive (default), standard or quick.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Compare with the active (or previous) "
                                                              "version on the same examples.")] = False,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", "-c", help="GRPO policies: evaluate this "
                                                      "checkpoint of --job (default: its best).")] = None,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Evaluate a model version on a test set (default: the held-out split of its training job)."""
    from trainhouse.v1 import evaluation_service_pb2

    if not agent and not job:
        raise CliError(ExitCode.USAGE, "give an AGENT or --job JOB", field="AGENT")
    if checkpoint and not job:
        raise CliError(ExitCode.USAGE, "--checkpoint needs --job", field="--checkpoint")
    if dataset and file:
        raise CliError(ExitCode.USAGE, "give at most one of --dataset and --file", field="--dataset")
    examples = read_examples(file) if file else None
    request = evaluation_service_pb2.EvaluateRequest(
        agent_id=agent or "", version_id=version or "", job_id=job or "", dataset_id=dataset or "",
        examples=examples_proto(examples) if examples else [], metrics=metrics or [],
        evaluation_type=evaluation_type or "", compare_to_baseline=baseline, checkpoint_id=checkpoint or "")
    try:
        evaluation = connect(url, token, timeout).evaluate(request)
    except CliError as err:
        raise examples.locate(err) if examples else err

    def render(con) -> None:  # noqa: ANN001 - rich Console
        e = evaluation
        policy = e["model_kind"] == "policy"
        model = f"{e['job_id']} checkpoint {e['checkpoint_id']}" if e["checkpoint_id"] else e["version_id"]
        con.print(f"evaluation [bold]{e['evaluation_id']}[/bold]: {e['agent_id']} {model} on "
                  f"{e['example_count']} {'queries' if policy else 'examples'} ({e['test_set_source']})",
                  soft_wrap=True)
        con.print(output.table(None, ["METRIC", "VALUE"], [(k, output.num(v)) for k, v in sorted(e["metrics"].items())]))
        c = e.get("comparison")
        if c and c.get("available"):
            con.print(f"baseline {c.get('baseline_version_id') or c.get('baseline_kind')}: " + "  ".join(
                f"{k} {v:+.4f}" for k, v in sorted((c.get("improvements") or {}).items())), soft_wrap=True)
        elif c and c.get("note"):
            con.print(f"baseline: {c['note']}", soft_wrap=True)
        for r in e["recommendations"]:
            con.print(f"- {r}", soft_wrap=True, markup=False)

    output.emit(as_json, evaluation, render)


def pairwise_table(analysis: Any) -> Any:
    """Every pair's test on every metric: the raw p and the Holm-adjusted p that decides
    significance (with N runs there are N(N-1)/2 pairs per metric, so the raw p alone would
    overstate how many differences are real)."""
    rows = [(p.metric, p.job_a, p.job_b, p.test.test, output.num(p.test.difference), f"{p.test.p_value:.4g}",
             f"{p.test.adjusted_p_value:.4g}", "yes" if p.test.significant else "no") for p in analysis.pairwise]
    return output.table(f"pairwise tests ({'paired' if analysis.paired else 'unpaired'}; {analysis.correction} "
                        f"correction across pairs, alpha {analysis.alpha:g})",
                        ["METRIC", "JOB A", "JOB B", "TEST", "A - B", "P", "P (HOLM)", "SIGNIFICANT"], rows)


@reports_errors
def compare(
    jobs: Annotated[list[str], typer.Argument(metavar="JOB JOB...", help="2..10 completed job ids.")],
    metrics: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="A comparison metric; "
                                                         "repeat (default: all).")] = None,
    stats: Annotated[bool, typer.Option("--stats/--no-stats", help="Significance tests (default on).")] = True,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Compare 2..10 completed training runs: ranking, metrics and every pair's significance tests
    (p-values Holm-adjusted across the pairs)."""
    from trainhouse.v1 import evaluation_service_pb2

    request = evaluation_service_pb2.CompareRunsRequest(run_ids=jobs, comparison_metrics=metrics or [],
                                                        statistical_tests=stats, generate_recommendations=True)
    comparison = connect(url, token, timeout).compare(request)

    def render(con) -> None:  # noqa: ANN001 - rich Console
        rank = {r.job_id: r for r in comparison.overall_ranking}
        names = [m.metric for m in comparison.metric_comparisons]
        rows = []
        for run in sorted(comparison.runs, key=lambda r: rank[r.job_id].rank if r.job_id in rank else 1 << 30):
            ranked = rank.get(run.job_id)
            rows.append([run.job_id, ranked.rank if ranked else "-", run.version_id,
                         output.num(ranked.score, 3) if ranked else "-"]
                        + [output.num(run.values.get(n)) for n in names])
        con.print(output.table(f"comparison {comparison.comparison_id} ({comparison.evaluation_set}, "
                               f"{comparison.shared_examples} shared examples)",
                               ["JOB", "RANK", "VERSION", "SCORE", *names], rows))
        if comparison.HasField("statistical_analysis"):
            s = comparison.statistical_analysis
            if s.pairwise:
                con.print(pairwise_table(s))
            verdict = "significant" if s.significant else "not significant"
            con.print(f"{s.winner_job_id} vs {s.runner_up_job_id} on {s.primary_metric}: {verdict} "
                      f"(p={s.p_value:.4g}, {s.correction} alpha {s.alpha:g}, "
                      f"{s.improvement_percent:+.2f}%)" + (f"; {s.note}" if s.note else ""),
                      soft_wrap=True, markup=False)
        if comparison.HasField("recommendations") and comparison.recommendations.summary:
            con.print(comparison.recommendations.summary, soft_wrap=True, markup=False)

    output.emit(as_json, message_json(comparison), render)


@reports_errors
def report(
    job: Annotated[str, typer.Argument(help="Job id.")],
    fmt: Annotated[Literal[REPORT_FORMATS], typer.Option("--format", help="html, markdown or json.")] = "html",
    report_type: Annotated[Optional[Literal[REPORT_TYPES]], typer.Option(
        "--type", help="single_job (default) or executive.")] = None,
    out: Annotated[Optional[Path], typer.Option("--output", "-o", dir_okay=False,
                                                help="Write here (default: <job>-report.<ext> for html, "
                                                     "stdout otherwise).")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the written report in a browser.")] = False,
    as_json: Json = False, url: Url = None, token: Token = None, timeout: Timeout = None,
) -> None:
    """Render a training report (self-contained HTML with charts, Markdown or JSON)."""
    from trainhouse.v1 import evaluation_service_pb2

    request = evaluation_service_pb2.GenerateReportRequest(job_id=job, format=fmt, report_type=report_type or "")
    rendered = connect(url, token, timeout).report(request)
    if out is None and (fmt == "html" or open_it):
        out = Path(f"{job}-report{SUFFIX[fmt]}")
    if out is None:
        if as_json:
            output.print_json(message_json(rendered))
        else:
            print(rendered.content)
        return
    try:
        out.write_text(rendered.content, encoding="utf-8")
    except OSError as exc:
        raise CliError(ExitCode.USAGE, f"cannot write {out}: {exc.strerror}", field="--output") from None
    opened = webbrowser.open(out.resolve().as_uri()) if open_it else False
    summary = {"report_id": rendered.report_id, "format": rendered.format, "path": str(out.resolve()),
               "bytes": len(rendered.content.encode("utf-8")), "sections": list(rendered.sections),
               "charts": list(rendered.charts), "opened": opened}
    output.emit(as_json, summary, lambda con: con.print(
        f"wrote {summary['path']} ({summary['bytes']} bytes; charts: {', '.join(summary['charts']) or 'none'})"
        + ("" if not open_it else "; opened in a browser" if opened else "; no browser available to open it"),
        soft_wrap=True, markup=False))
