"""generateTrainingReport: reports on a job, an agent or several runs, as JSON, Markdown or HTML.

A report is a title plus ordered sections built from measured data (the job's stored curves and
metrics, evaluations through the serving path, comparisons with their statistics, the rule-based
advice). ``json`` returns the data (charts as their plotted series); ``markdown`` embeds charts as
``data:image/svg+xml`` URIs; ``html`` is one self-contained document with the charts as inline
SVG, inline CSS and no script, link or remote reference, so it opens offline.
"""
from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from trainhouse.core.errors import InvalidArgument
from trainhouse.common.pagination import PageRequest
from trainhouse.common.timeutil import iso, now, to_timestamp
from trainhouse.common.validation import resource_id
from trainhouse.evaluation import curves as C
from trainhouse.evaluation.compare import RunComparer, validate_run_ids
from trainhouse.evaluation.optimize import Optimizer
from trainhouse.evaluation.peers import Peers, job_config, job_state_name
from trainhouse.evaluation.store import EvaluationStore
from trainhouse.evaluation.training_results import TrainingResults, final_metrics
from trainhouse.v1 import evaluation_service_pb2, training_analysis_pb2
from trainhouse.core.ids import random_id

REPORT_TYPES = ("single_job", "agent_summary", "comparison", "executive")
FORMATS = {"json": "application/json", "markdown": "text/markdown", "html": "text/html"}
SECTIONS = {
    "single_job": ("summary", "metrics", "charts", "analysis", "evaluation", "recommendations", "config"),
    "agent_summary": ("summary", "versions", "evaluation", "charts", "recommendations"),
    "comparison": ("summary", "comparison", "metrics", "charts", "recommendations", "config"),
    "executive": ("summary", "charts", "recommendations"),
}
# The training curves a comparison overlays (one chart each): metric -> (title, y axis label).
CURVE_METRICS = {"loss": ("Training loss by run", "loss"),
                 "validation_loss": ("Validation loss by run", "loss"),
                 "accuracy": ("Training accuracy by run", "accuracy"),
                 "validation_accuracy": ("Validation accuracy by run", "accuracy")}
CONVERGENCE_NAMES = {v: k.removeprefix("CONVERGENCE_STATUS_").lower()
                     for k, v in training_analysis_pb2.ConvergenceStatus.items()}
RISK_NAMES = {v: k.removeprefix("RISK_LEVEL_").lower() for k, v in training_analysis_pb2.RiskLevel.items()}

class _LazyCharts:
    """matplotlib takes ~0.4 s to import; load it when the first chart is drawn.

    It is the optional extra ``charts``: without it a Markdown or HTML report says where each chart
    would be and why it is missing (its data is in every format's ``charts`` section all the same)."""

    def __getattr__(self, name: str):
        from trainhouse.evaluation import charts as module
        return getattr(module, name)


charts = _LazyCharts()

# A chart: its plotted data (for JSON) and how to draw it (for Markdown/HTML).
Chart = tuple[dict[str, Any], Callable[[], str]]


def _clean(value: Any) -> Any:
    """JSON-safe: finite floats only (NaN/inf become None), tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _round(d: dict[str, float], digits: int = 4) -> dict[str, float]:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in sorted(d.items())}


def _points(curves: C.Curves, name: str) -> tuple[list[int], list[float]] | None:
    """One metric's (epochs, values), epochs without a value left out; None when it has none."""
    pts = [(e, v) for e, v in zip(curves.epochs, curves.series.get(name, [])) if v is not None]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def _line(data: dict[str, tuple[list[int], list[float]]]) -> dict[str, Any]:
    """A line chart's plotted data as JSON: series name -> {epoch: [...], value: [...]}."""
    return {"type": "line", "x": "epoch", "series": {k: {"epoch": x, "value": y} for k, (x, y) in data.items()}}


def _curve_charts(curves: C.Curves, prefix: str = "") -> dict[str, Chart]:
    out: dict[str, Chart] = {}

    def series(names):
        return {name: pts for name in names if (pts := _points(curves, name)) is not None}

    for chart, names, ylabel, log in (("loss_curves", ("loss", "validation_loss"), "loss", False),
                                      ("accuracy_curves", ("accuracy", "validation_accuracy"), "accuracy", False),
                                      ("learning_rate", ("learning_rate",), "learning rate", False)):
        data = series(names)
        if data:
            title = f"{prefix}{chart.replace('_', ' ')}"
            out[chart] = (_line(data),
                          lambda t=title, d=data, yl=ylabel, lg=log: charts.line_chart(t, d, "epoch", yl, lg))
    return out


class Reports:
    def __init__(self, store: EvaluationStore, peers: Peers, training_results: TrainingResults,
                 comparer: RunComparer, optimizer: Optimizer):
        self.store = store
        self.peers = peers
        self.training_results = training_results
        self.comparer = comparer
        self.optimizer = optimizer

    # --- request ----------------------------------------------------------------------------------
    def generate(self, job_id: str, agent_id: str, run_ids: list[str], report_type: str, include: list[str],
                 fmt: str) -> evaluation_service_pb2.TrainingReport:
        fmt = (fmt or "json").strip().lower()
        if fmt not in FORMATS:
            raise InvalidArgument("format", f"unknown format '{fmt}'; valid: {', '.join(FORMATS)}")
        report_type = (report_type or "").strip().lower()
        if not report_type:
            report_type = "comparison" if run_ids else "single_job" if job_id else "agent_summary" if agent_id else ""
        if report_type not in REPORT_TYPES:
            raise InvalidArgument("report_type", f"unknown report type '{report_type}'; valid: {', '.join(REPORT_TYPES)}"
                                  if report_type else "give job_id, agent_id or run_ids")
        valid = SECTIONS[report_type]
        sections = []
        for i, raw in enumerate(include):
            name = raw.strip().lower()
            if name not in valid:
                raise InvalidArgument(f"include_sections[{i}]", f"unknown section '{raw}' for a {report_type} report; "
                                      f"valid: {', '.join(valid)}")
            if name not in sections:
                sections.append(name)
        sections = [s for s in valid if s in sections] if sections else list(valid)
        if report_type == "single_job":
            title, data, chart_map = self.single_job(self._need(job_id, "job_id"))
        elif report_type == "agent_summary":
            title, data, chart_map = self.agent_summary(self._need(agent_id, "agent_id"))
        elif report_type == "comparison":
            title, data, chart_map = self.comparison(validate_run_ids(list(run_ids)))
        else:
            title, data, chart_map = self.executive(job_id, agent_id, list(run_ids))
        report_id = random_id("report", 12)
        body = {name: data[name] for name in sections if name in data and name != "charts"}
        chart_names = list(chart_map) if "charts" in sections else []
        # What the report is about, as fields (not only in the title), so a client can file it.
        subject_agent = agent_id or (data.get("summary") or {}).get("agent_id") or ""
        subject = {"job_id": job_id or None, "agent_id": subject_agent or None, "run_ids": list(run_ids) or None}
        payload = _clean({"report_id": report_id, "report_type": report_type, "title": title, **subject,
                          "generated_at": iso(now()), "sections": body})
        if chart_names:
            payload["sections"]["charts"] = _clean({name: chart_map[name][0] for name in chart_names})
        order = [s for s in sections if s in payload["sections"]]
        if fmt == "json":
            content = json.dumps(payload, indent=2)
        else:
            svgs = draw_charts({name: chart_map[name] for name in chart_names})
            content = (render_markdown if fmt == "markdown" else render_html)(title, payload, order, svgs)
        data_struct = struct_pb2.Struct()
        data_struct.update(payload)
        return evaluation_service_pb2.TrainingReport(
            report_id=report_id, report_type=report_type, format=fmt, title=title, content=content,
            content_type=FORMATS[fmt], sections=order, charts=chart_names, data=data_struct,
            create_time=to_timestamp(now()), job_id=job_id, agent_id=subject_agent, run_ids=list(run_ids))

    @staticmethod
    def _need(value: str, field: str) -> str:
        return resource_id(value, field)

    # --- builders ---------------------------------------------------------------------------------
    def single_job(self, job_id: str) -> tuple[str, dict[str, Any], dict[str, Chart]]:
        job = self.peers.job(job_id)
        curves = C.curves_from_points(self.peers.metric_points(job_id))
        final = final_metrics(job)
        state = job_state_name(job)
        summary: dict[str, Any] = {"job_id": job_id, "agent_id": job.agent_id, "state": state,
                                   "version_id": job.model_version_id, "epochs_run": int(final.get("epochs_run", len(curves))),
                                   "total_epochs": job.progress.total_epochs,
                                   "training_seconds": final.get("training_seconds"),
                                   "train_examples": job.train_examples, "validation_examples": job.validation_examples}
        data: dict[str, Any] = {"summary": summary, "metrics": {"training": _round(dict(job.metrics))},
                                "config": job_config(job)}
        chart_map = _curve_charts(curves)
        if state == "completed":
            tr = self.training_results.run(job_id, [], [], "", "")
            ev = tr.evaluation
            summary.update({"overall_score": tr.overall_score, "quality_grade": tr.quality_grade,
                            "summary": tr.summary, "strengths": list(tr.strengths), "weaknesses": list(tr.weaknesses)})
            data["metrics"]["evaluation"] = _round(dict(ev.metrics))
            data["analysis"] = {"convergence_status": CONVERGENCE_NAMES[tr.analysis.convergence_status],
                                "overfitting_risk": RISK_NAMES[tr.analysis.overfitting_risk],
                                "underfitting_risk": RISK_NAMES[tr.analysis.underfitting_risk],
                                "training_efficiency": tr.analysis.training_efficiency,
                                "explanations": list(tr.analysis.explanations),
                                "signals": _round(dict(tr.analysis.signals))}
            data["evaluation"] = {"evaluation_id": ev.evaluation_id, "test_set_source": ev.test_set_source,
                                  "example_count": ev.example_count,
                                  "per_output": [_round(MessageToDict(o, preserving_proto_field_name=True))
                                                 for o in ev.per_output]}
            data["recommendations"] = [{"priority": r.priority, "category": r.category,
                                        "recommendation": r.recommendation, "expected_impact": r.expected_impact,
                                        "signal": r.signal, "rule": r.rule} for r in tr.recommendations]
            labels = list(ev.confusion_matrix.labels)
            matrix = [list(r.counts) for r in ev.confusion_matrix.rows]
            if labels:
                chart_map["confusion_matrix"] = ({"type": "matrix", "labels": labels, "counts": matrix},
                                                 lambda: charts.confusion_chart(labels, matrix))
        else:
            analysis = C.analyze(curves, final)
            data["analysis"] = {"convergence_status": analysis.convergence_status,
                                "overfitting_risk": analysis.overfitting_risk,
                                "underfitting_risk": analysis.underfitting_risk,
                                "training_efficiency": analysis.training_efficiency,
                                "explanations": analysis.explanations, "signals": _round(analysis.signals)}
            data["evaluation"] = {"note": f"the job is {state}: its model was not evaluated"}
            data["recommendations"] = []
        return f"Training report: {job_id}", data, chart_map

    def agent_summary(self, agent_id: str) -> tuple[str, dict[str, Any], dict[str, Chart]]:
        analysis = self.optimizer.analyze(agent_id, [])
        agent = self.peers.agent(agent_id)
        jobs = self.peers.jobs(agent_id)
        states: dict[str, int] = {}
        for j in jobs:
            states[job_state_name(j)] = states.get(job_state_name(j), 0) + 1
        versions = [{"version_id": v.version_id, "job_id": v.job_id, "active": v.active,
                     "created": iso(v.create_time.ToDatetime()), "size_bytes": v.size_bytes,
                     **{k: round(val, 4) for k, val in sorted(v.metrics.items())
                        if k in ("validation_accuracy", "accuracy", "eval_accuracy", "eval_f1", "eval_latency_p95_ms",
                                 "eval_cost_per_task_usd", "eval_consistency")}}
                    for v in analysis.versions]
        evaluations = self.store.list(PageRequest(size=20), agent_id=agent_id).rows
        data = {"summary": {"agent_id": agent_id, "name": agent.name, "active_version_id": agent.active_version_id,
                            "version_count": len(analysis.versions), "jobs": states,
                            "current_version": analysis.current.version_id,
                            "current_metrics": _round(dict(analysis.current.metrics)), "summary": analysis.summary},
                "versions": versions,
                "evaluation": [{"evaluation_id": e.evaluation_id, "version_id": e.version_id,
                                "type": e.evaluation_type, "examples": e.example_count,
                                **{k: round(e.metrics[k], 4) for k in ("accuracy", "f1", "latency_p95_ms") if k in e.metrics}}
                               for e in evaluations],
                "recommendations": [{"priority": s.priority, "goal": s.goal, "suggestion": s.suggestion,
                                     "rationale": s.rationale, "signal": s.signal, "rule": s.rule}
                                    for s in analysis.suggestions]}
        chart_map: dict[str, Chart] = {}
        ordered = list(reversed(analysis.versions))  # oldest first on the x axis
        panels: dict[str, dict[str, float]] = {}
        for key, label in (("validation_accuracy", "validation accuracy (training)"),
                           ("eval_accuracy", "accuracy (latest evaluation)"),
                           ("eval_latency_p95_ms", "p95 latency ms (latest evaluation)")):
            values = {v.version_id: v.metrics[key] for v in ordered if key in v.metrics}
            if values:
                panels[label] = values
        if panels:
            chart_map["version_bars"] = ({"type": "bars", "panels": panels},
                                         lambda: charts.bar_panels(f"{agent_id}: versions", panels))
        completed = [j for j in jobs if j.model_version_id]
        if completed:
            newest = completed[0]
            curves = C.curves_from_points(self.peers.metric_points(newest.job_id))
            chart_map.update(_curve_charts(curves, prefix=f"{newest.job_id}: "))
        return f"Agent summary: {agent_id}", data, chart_map

    def comparison(self, run_ids: list[str]) -> tuple[str, dict[str, Any], dict[str, Chart]]:
        comp, _ = self.comparer.compare(run_ids, [], True, True, [], "", 0)
        stats = comp.statistical_analysis
        data = {"summary": {"comparison_id": comp.comparison_id, "winner": comp.winner.job_id,
                            "winner_score": comp.winner.score, "margin": comp.winner.margin,
                            "evaluation_set": comp.evaluation_set, "shared_examples": comp.shared_examples,
                            "significant": stats.significant, "p_value": stats.p_value,
                            "effect_size": stats.effect_size, "improvement_percent": stats.improvement_percent,
                            "summary": comp.recommendations.summary},
                "comparison": {"correction": stats.correction, "alpha": stats.alpha,
                               "ranking": [{"rank": r.rank, "job_id": r.job_id, "score": r.score}
                                           for r in comp.overall_ranking],
                               "pairwise_tests": [{"job_a": p.job_a, "job_b": p.job_b, "metric": p.metric,
                                                   "test": p.test.test, "p_value": round(p.test.p_value, 6),
                                                   "adjusted_p_value": round(p.test.adjusted_p_value, 6),
                                                   "significant": p.test.significant,
                                                   "difference": round(p.test.difference, 4),
                                                   "effect_size": round(p.test.effect_size, 4)}
                                                  for p in stats.pairwise]},
                "metrics": [{"job_id": r.job_id, **_round(dict(r.values))} for r in comp.runs],
                "recommendations": list(comp.recommendations.next_steps),
                "config": MessageToDict(comp.recommendations.config_differences)}
        panels = {mc.metric: {v.job_id: v.value for v in mc.values} for mc in comp.metric_comparisons if mc.values}
        chart_map: dict[str, Chart] = {}
        if panels:
            chart_map["comparison_bars"] = ({"type": "bars", "panels": panels},
                                            lambda: charts.bar_panels("Runs by metric", panels))
        # Runs overlaid: one chart per training metric, one line (one colour, in the legend) per run.
        by_metric: dict[str, dict[str, tuple[list[int], list[float]]]] = {name: {} for name in CURVE_METRICS}
        for run_id in run_ids:
            curves = C.curves_from_points(self.peers.metric_points(run_id))
            for name in CURVE_METRICS:
                pts = _points(curves, name)
                if pts is not None:
                    by_metric[name][run_id] = pts
        for name, (title, ylabel) in CURVE_METRICS.items():
            lines = by_metric[name]
            if lines:
                chart_map[f"{name}_by_run"] = (_line(lines), lambda t=title, d=lines, yl=ylabel: charts.line_chart(
                    t, d, "epoch", yl))
        return f"Comparison of {len(run_ids)} runs", data, chart_map

    def executive(self, job_id: str, agent_id: str, run_ids: list[str]) -> tuple[str, dict[str, Any], dict[str, Chart]]:
        if run_ids:
            title, data, chart_map = self.comparison(validate_run_ids(run_ids))
            keep = {k: chart_map[k] for k in ("comparison_bars",) if k in chart_map}
            recs = data["recommendations"][:3]
        elif job_id:
            title, data, chart_map = self.single_job(resource_id(job_id, "job_id"))
            keep = {k: chart_map[k] for k in ("loss_curves", "confusion_matrix") if k in chart_map}
            recs = [r["recommendation"] for r in data.get("recommendations", [])[:3]]
        elif agent_id:
            title, data, chart_map = self.agent_summary(resource_id(agent_id, "agent_id"))
            keep = {k: chart_map[k] for k in ("version_bars",) if k in chart_map}
            recs = [r["suggestion"] for r in data.get("recommendations", [])[:3]]
        else:
            raise InvalidArgument("job_id", "an executive report needs job_id, agent_id or run_ids")
        headline_keys = ("job_id", "agent_id", "state", "version_id", "overall_score", "quality_grade", "summary",
                         "current_version", "current_metrics", "winner", "margin", "significant", "p_value",
                         "improvement_percent", "comparison_id")
        summary = {k: v for k, v in data["summary"].items() if k in headline_keys}
        return f"Executive summary: {title}", {"summary": summary, "recommendations": recs}, keep


# --- rendering ---------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _table_rows(value: Any) -> tuple[list[str], list[list[str]]] | None:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        cols: list[str] = []
        for row in value:
            cols.extend(k for k in row if k not in cols)
        return cols, [[_fmt(row.get(c)) for c in cols] for row in value]
    return None


def _md_value(value: Any, depth: int = 0) -> str:
    table = _table_rows(value)
    if table:
        cols, rows = table
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    if isinstance(value, list):
        return "\n".join(f"- {_fmt(v)}" for v in value) if value else "_none_"
    if isinstance(value, dict):
        scalars = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
        nested = {k: v for k, v in value.items() if isinstance(v, (dict, list))}
        parts = []
        if scalars:
            parts.append("| field | value |\n|---|---|\n" + "\n".join(
                f"| {k} | {_fmt(v).replace('|', chr(92) + '|')} |" for k, v in scalars.items()))
        for k, v in nested.items():
            parts.append(f"{'#' * min(6, 3 + depth)} {k}\n\n{_md_value(v, depth + 1)}")
        return "\n\n".join(parts) if parts else "_none_"
    return _fmt(value)


MISSING_CHARTS = ("chart not drawn: this EvaluationService has no matplotlib (pip install 'trainhouse[charts]'); "
                  "its data is in the report's JSON format")


def draw_charts(chart_map: dict[str, Chart]) -> dict[str, str | None]:
    """Each chart's SVG, or None for every chart when matplotlib is not installed."""
    try:
        return {name: draw() for name, (_, draw) in chart_map.items()}
    except ModuleNotFoundError as err:
        if err.name != "matplotlib" and not (err.name or "").startswith("matplotlib."):
            raise
        return dict.fromkeys(chart_map)


def render_markdown(title: str, payload: dict[str, Any], order: list[str], svgs: dict[str, str | None]) -> str:
    out = [f"# {title}", "", f"_Report {payload['report_id']} ({payload['report_type']}), generated "
                                f"{payload['generated_at']}_", ""]
    for name in order:
        out.append(f"## {name.replace('_', ' ').capitalize()}")
        out.append("")
        if name == "charts":
            for chart, svg in svgs.items():
                if svg is None:
                    out.append(f"_{chart}: {MISSING_CHARTS}_")
                else:
                    uri = base64.b64encode(svg.encode()).decode()
                    out.append(f"![{chart}](data:image/svg+xml;base64,{uri})")
                out.append("")
        else:
            out.append(_md_value(payload["sections"][name]))
            out.append("")
    return "\n".join(out)


def _html_value(value: Any) -> str:
    table = _table_rows(value)
    if table:
        cols, rows = table
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{html.escape(_fmt(v))}</li>" for v in value) + "</ul>" if value else "<p>none</p>"
    if isinstance(value, dict):
        scalars = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
        nested = {k: v for k, v in value.items() if isinstance(v, (dict, list))}
        parts = []
        if scalars:
            parts.append("<table class=\"kv\"><tbody>" + "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in scalars.items())
                + "</tbody></table>")
        for k, v in nested.items():
            parts.append(f"<h3>{html.escape(str(k))}</h3>{_html_value(v)}")
        return "".join(parts) if parts else "<p>none</p>"
    return f"<p>{html.escape(_fmt(value))}</p>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#111827;
padding:0 1rem}h1{border-bottom:2px solid #2563eb;padding-bottom:.3rem}h2{margin-top:2rem;color:#1e3a8a}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #d1d5db;padding:.25rem .5rem;
text-align:left;vertical-align:top}thead th{background:#eff6ff}table.kv th{background:#f9fafb;font-weight:600}
figure{margin:1rem 0;display:inline-block;max-width:100%}figure svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#4b5563;text-align:center}.meta{color:#6b7280;font-size:.85rem}
"""


def render_html(title: str, payload: dict[str, Any], order: list[str], svgs: dict[str, str | None]) -> str:
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class=\"meta\">Report {html.escape(payload['report_id'])} ({html.escape(payload['report_type'])}), "
             f"generated {html.escape(payload['generated_at'])}</p>"]
    for name in order:
        parts.append(f"<section id=\"{html.escape(name)}\"><h2>{html.escape(name.replace('_', ' ').capitalize())}</h2>")
        if name == "charts":
            for chart, svg in svgs.items():
                drawn = svg if svg is not None else f"<p class=\"missing-chart\">{html.escape(MISSING_CHARTS)}</p>"
                parts.append(f"<figure class=\"chart\" data-chart=\"{html.escape(chart)}\">{drawn}"
                             f"<figcaption>{html.escape(chart.replace('_', ' '))}</figcaption></figure>")
        else:
            parts.append(_html_value(payload["sections"][name]))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
