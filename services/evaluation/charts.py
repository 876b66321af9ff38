"""Charts for reports, drawn with matplotlib (Agg, no display) as standalone SVG text.

SVG keeps a report one self-contained file: the markup is inlined into the HTML (or embedded
as a data: URI in Markdown) and text is drawn as paths, so no font or network is needed to
view it. Figures are built with the object API (``Figure``), not pyplot, so concurrent RPC
threads do not share pyplot's global state; a lock still serialises drawing because
matplotlib's text layout caches are not documented as thread-safe.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)

_LOCK = threading.Lock()
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563",
           "#65a30d")


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    # No metadata block: it only names the generator (with its web address) and the date.
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the markup is inlined


def line_chart(title: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str,
               ylabel: str, log_y: bool = False) -> str:
    """One line per series name: (x values, y values), coloured in order and named in the legend.

    Each line's SVG group is ``<g id="series-<i>">`` (i in the order given) holding its ``<path>``,
    so a reader (or a test) can tell the lines apart although the legend's text is drawn as paths.
    """
    with _LOCK:
        fig = Figure(figsize=(6.4, 3.6))
        ax = fig.add_subplot()
        for i, (name, (xs, ys)) in enumerate(series.items()):
            ax.plot(list(xs), list(ys), marker="o" if len(xs) <= 30 else None, markersize=3,
                    color=PALETTE[i % len(PALETTE)], label=name, gid=f"series-{i}")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=8)
        return _svg(fig)


def confusion_chart(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str = "Confusion matrix") -> str:
    with _LOCK:
        size = max(3.6, 0.6 * len(labels) + 2)
        fig = Figure(figsize=(size, size * 0.85))
        ax = fig.add_subplot()
        image = ax.imshow([list(r) for r in matrix], cmap="Blues")
        ax.set_xticks(range(len(labels)), labels=list(labels), rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels=list(labels), fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("expected")
        ax.set_title(title)
        peak = max((max(r) for r in matrix if len(r)), default=0)
        if len(labels) <= 20:
            for i, row in enumerate(matrix):
                for j, value in enumerate(row):
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                            color="white" if peak and value > peak / 2 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        return _svg(fig)


def bar_panels(title: str, panels: Mapping[str, Mapping[str, float]]) -> str:
    """One small bar chart per panel (e.g. per metric), bars per item (e.g. per run)."""
    with _LOCK:
        names = list(panels)
        cols = min(3, max(1, len(names)))
        rows = (len(names) + cols - 1) // cols
        fig = Figure(figsize=(3.4 * cols, 2.8 * rows))
        for k, name in enumerate(names):
            ax = fig.add_subplot(rows, cols, k + 1)
            items = list(panels[name].items())
            ax.bar(range(len(items)), [v for _, v in items],
                   color=[PALETTE[i % len(PALETTE)] for i in range(len(items))])
            ax.set_xticks(range(len(items)), labels=[label for label, _ in items], rotation=30, ha="right",
                          fontsize=7)
            ax.set_title(name, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(title)
        fig.tight_layout()
        return _svg(fig)
