"""GenerateReport over real gRPC: JSON, Markdown and self-contained HTML with real charts."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import grpc
import pytest

from trainhouse.common.grpc_errors import failure_of
from tests.evaluation.conftest import AGENT
from trainhouse.v1 import evaluation_service_pb2 as pb
from trainhouse.v1 import training_service_pb2 as training_pb

CHROMIUM = Path("/usr/bin/chromium")


class Figures(HTMLParser):
    """Collects each <figure data-chart> and what its inline <svg> draws."""

    def __init__(self):
        super().__init__()
        self.charts: dict[str, dict[str, int]] = {}
        self.current: str | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "figure" and "data-chart" in attrs:
            self.current = attrs["data-chart"]
            self.charts[self.current] = {}
        elif self.current is not None:
            self.charts[self.current][tag] = self.charts[self.current].get(tag, 0) + 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self.current = None


def report(ev, **kwargs) -> pb.TrainingReport:
    return ev.GenerateReport(pb.GenerateReportRequest(**kwargs)).report


def assert_self_contained(content: str) -> None:
    lowered = content.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "url(http", "src=\"http", "href=\"http"):
        assert needle not in lowered, needle
    # The only absolute URLs are XML namespaces inside the SVG markup.
    for url in re.findall(r"https?://[^\s\"'<>)]+", content):
        assert url.startswith("http://www.w3.org/"), url


@pytest.fixture(scope="module")
def job_html(ev, trained) -> pb.TrainingReport:
    return report(ev, job_id=trained.strong.job_id, format="html")


def test_single_job_html_report_has_real_charts(ev, trained, job_html):
    r = job_html
    assert r.report_type == "single_job" and r.content_type == "text/html"
    assert set(r.charts) == {"loss_curves", "accuracy_curves", "learning_rate", "confusion_matrix"}
    assert list(r.sections) == ["summary", "metrics", "charts", "analysis", "evaluation", "recommendations", "config"]
    html_text = r.content
    assert html_text.startswith("<!DOCTYPE html>") and trained.strong.job_id in html_text
    assert_self_contained(html_text)
    parser = Figures()
    parser.feed(html_text)
    assert set(parser.charts) == set(r.charts)
    for name, tags in parser.charts.items():
        assert tags.get("svg", 0) == 1 and tags.get("path", 0) >= 5, (name, tags)
    # the plotted data is the stored curve: as many points as epochs
    data = json.loads(report(ev, job_id=trained.strong.job_id, format="json", include_sections=["charts"]).content)
    loss = data["sections"]["charts"]["loss_curves"]["series"]["loss"]
    assert loss["epoch"] == list(range(1, trained.strong.progress.current_epoch + 1))
    matrix = data["sections"]["charts"]["confusion_matrix"]
    assert sum(map(sum, matrix["counts"])) == trained.strong.validation_examples


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_html_report_renders_offline_in_headless_chromium(job_html, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(job_html.content)
    shot = tmp_path / "shot.png"
    common = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
              "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,4000"]
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(common + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60,
                         env=env).stdout
    rendered = Figures()
    rendered.feed(dom)
    assert set(rendered.charts) == set(job_html.charts)
    for tags in rendered.charts.values():
        assert tags.get("svg", 0) == 1 and tags.get("path", 0) >= 5
    subprocess.run(common + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=60, env=env)
    from matplotlib import image
    assert image.imread(str(shot)).std() > 0.01  # something was drawn, not a blank page


def test_markdown_and_json_formats(ev, trained):
    md = report(ev, job_id=trained.strong.job_id, format="markdown",
                include_sections=["recommendations", "summary", "charts"])
    assert list(md.sections) == ["summary", "charts", "recommendations"]
    assert md.content.startswith(f"# Training report: {trained.strong.job_id}")
    uris = re.findall(r"!\[(\w+)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md.content)
    assert {name for name, _ in uris} == set(md.charts)
    for _, b64 in uris:
        assert base64.b64decode(b64).decode().startswith("<svg")
    js = report(ev, job_id=trained.strong.job_id)  # json by default
    data = json.loads(js.content)
    assert js.format == "json" and data["sections"]["summary"]["quality_grade"]
    assert data["sections"]["analysis"]["convergence_status"] in ("converged", "converging", "diverging",
                                                                  "not_converged")
    assert js.data["sections"]["summary"]["job_id"] == trained.strong.job_id


def test_comparison_agent_and_executive_reports(ev, trained):
    cmp = report(ev, run_ids=[trained.strong.job_id, trained.weak.job_id], format="html")
    assert cmp.report_type == "comparison" and "comparison_bars" in cmp.charts and "loss_by_run" in cmp.charts
    assert_self_contained(cmp.content)
    parser = Figures()
    parser.feed(cmp.content)
    assert parser.charts["comparison_bars"].get("path", 0) > 10
    summary = json.loads(report(ev, run_ids=[trained.strong.job_id, trained.weak.job_id]).content)["sections"]
    assert summary["summary"]["winner"] == trained.strong.job_id
    assert 0 <= summary["summary"]["p_value"] <= 1
    agent = report(ev, agent_id=AGENT, format="html")
    assert agent.report_type == "agent_summary" and "version_bars" in agent.charts
    assert_self_contained(agent.content)
    execu = report(ev, report_type="executive", job_id=trained.strong.job_id, format="markdown")
    assert list(execu.sections) == ["summary", "charts", "recommendations"] and execu.charts


def _epochs_with(training, job_id: str, metric: str) -> int:
    """How many epochs of the job stored a value of the metric (TrainingService.ListMetrics)."""
    points = training.ListMetrics(training_pb.ListMetricsRequest(job_id=job_id, page_size=10000)).points
    return len({p.epoch for p in points if p.name == metric and p.epoch > 0})


def test_comparison_report_overlays_every_runs_curves(ev, training, trained):
    """Three runs: one inline SVG chart per training metric, one line per run (in run order) with
    as many points as the run has epochs of that metric; pairs carry raw and Holm-adjusted p."""
    runs = [trained.strong, trained.weak, trained.other]
    ids = [j.job_id for j in runs]
    r = report(ev, run_ids=ids, format="html")
    assert_self_contained(r.content)
    curve_charts = [c for c in r.charts if c.endswith("_by_run")]
    assert set(curve_charts) == {"loss_by_run", "validation_loss_by_run", "accuracy_by_run",
                                 "validation_accuracy_by_run"}
    figures = dict(re.findall(r'<figure class="chart" data-chart="(\w+)">(.*?)</figure>', r.content, re.S))
    for chart in curve_charts:
        metric = chart.removesuffix("_by_run")
        svg = figures[chart]
        assert svg.count("<svg") == 1
        plotted = r.data["sections"]["charts"][chart]["series"]
        assert set(plotted) == set(ids)
        for i, job_id in enumerate(ids):
            group = re.search(rf'<g id="series-{i}">\s*<path d="([^"]+)"', svg)
            assert group, (chart, i)
            vertices = len(re.findall(r"[ML]", group.group(1)))
            expected = _epochs_with(training, job_id, metric)
            assert vertices == expected == len(plotted[job_id]["epoch"]), (chart, job_id)
        assert f'id="series-{len(ids)}"' not in svg
    pairs = r.data["sections"]["comparison"]["pairwise_tests"]
    accuracy = [p for p in pairs if p["metric"] == "accuracy"]
    assert {frozenset((p["job_a"], p["job_b"])) for p in accuracy} == {
        frozenset((a, b)) for k, a in enumerate(ids) for b in ids[k + 1:]}
    for p in pairs:
        assert p["p_value"] <= p["adjusted_p_value"] <= 1 and p["significant"] == (p["adjusted_p_value"] < 0.05)
    assert r.data["sections"]["comparison"]["correction"] == "holm"


@pytest.mark.parametrize("kwargs, field", [
    ({"job_id": "x", "format": "pdf"}, "format"),
    ({"job_id": "x", "report_type": "weekly"}, "report_type"),
    ({"job_id": "x", "include_sections": ["summary", "gossip"]}, "include_sections[1]"),
    ({"report_type": "comparison", "run_ids": ["job-a"]}, "run_ids"),
    ({}, "report_type"),
])
def test_report_bad_input(ev, kwargs, field):
    with pytest.raises(grpc.RpcError) as err:
        report(ev, **kwargs)
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == field


def test_report_on_unknown_job_is_not_found(ev):
    with pytest.raises(grpc.RpcError) as err:
        report(ev, job_id="job-nope")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
