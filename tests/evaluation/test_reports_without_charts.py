"""matplotlib is the optional extra `charts`: without it a report still renders and says which charts
it could not draw (run in a fresh interpreter where importing matplotlib fails)."""
from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["matplotlib"] = None  # importing it now raises ModuleNotFoundError, as when not installed
from trainhouse.evaluation import reports
chart_map = {"loss_curves": ({"x": [1, 2]}, lambda: reports.charts.line_chart(
    "loss", {"run": ([1, 2], [0.9, 0.5])}, "epoch", "loss"))}
svgs = reports.draw_charts(chart_map)
payload = {"report_id": "r", "report_type": "single_job", "generated_at": "now", "sections": {"charts": {}}}
print(json.dumps({"svgs": svgs, "html": reports.render_html("t", payload, ["charts"], svgs),
                  "markdown": reports.render_markdown("t", payload, ["charts"], svgs)}))
"""


def _render(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_without_matplotlib_the_report_names_the_missing_charts():
    out = _render("blocked")
    assert out["svgs"] == {"loss_curves": None}
    assert "trainhouse[charts]" in out["html"] and 'data-chart="loss_curves"' in out["html"]
    assert "<svg" not in out["html"]
    assert "loss_curves: chart not drawn" in out["markdown"] and "data:image/svg" not in out["markdown"]


def test_with_matplotlib_the_same_chart_is_drawn():
    out = _render("installed")
    assert out["svgs"]["loss_curves"].lstrip().startswith(("<svg", "<?xml"))
    assert "<svg" in out["html"] and "chart not drawn" not in out["html"]
