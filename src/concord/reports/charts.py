"""Inline SVG bar charts for reports, drawn with matplotlib's Agg/SVG backends.

Only the object API is used (no pyplot, whose global state is not thread-safe); the few rc
settings that shape the SVG are applied under a lock because rcParams are process-wide.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence

COLOURS = ("#1f5fae", "#9aa5b8")  # this period, the previous one
_lock = threading.Lock()
_RC = {
    "svg.fonttype": "none",  # text stays text: small, searchable, and Cyrillic via the page font
    "svg.hashsalt": "concord",  # stable element ids, so the same report renders identically
    "font.family": "DejaVu Sans",
    "font.size": 9,
}
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    title: str,
) -> str:
    """A horizontal bar chart (one bar per label and series) as an inline <svg> element,
    titled for screen readers (the page's heading names it for everyone else); empty when
    there is nothing to draw."""
    if not labels or not series:
        return ""
    labels = [_plain(label) for label in labels]
    series = [(_plain(name), values) for name, values in series]
    # Imported here, not at module level: matplotlib costs every process start a third of
    # a second, and only report rendering needs it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    n = len(labels)
    height = 0.9 + 0.28 * n * max(1, len(series))
    with _lock, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.0, min(height, 14.0)))
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        width = 0.8 / len(series)
        for i, (name, values) in enumerate(series):
            positions = [y + (i - (len(series) - 1) / 2) * width for y in range(n)]
            bars = ax.barh(positions, values, height=width, label=name, color=COLOURS[i % 2])
            ax.bar_label(bars, padding=2, fontsize=8)
        ax.set_yticks(range(n), labels=list(labels))
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 2.5 events
        ax.spines[["top", "right"]].set_visible(False)
        ax.margins(x=0.12)
        if len(series) > 1:
            ax.legend(frameon=False, loc="lower right")
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _PROLOGUE.sub("", out.getvalue(), count=1))
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)


def _plain(text: str) -> str:
    # Labels come from data (sector names...): a "$" must not start matplotlib's mathtext.
    return text.replace("$", r"\$")


def _attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
