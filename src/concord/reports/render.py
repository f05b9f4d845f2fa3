"""A report as HTML (with inline SVG charts), JSON or CSV, in English or Russian.

CSV is one long table with the columns `section,key,metric,value`:

    section   report, totals, by_class, by_state, by_sector, indicators, campaigns, cases,
              cases-closed-by-resolution, techniques, mitigations, notice
    key       the row within the section: an RSIT class, a country code, a sector, an
              indicator value, a technique or mitigation id; empty for one-row sections
              and for events without a reporting state (the centre's own) or
              without an owner's sector
    metric    the column: events, previous, change_pct, states, name, ...
    value     a number, or a suppressed count ("<3", "≥3", or a range such as "40–41")

A section withheld whole says so in a row of its own, `<section>,,withheld,true`: a
breakdown whose counts would give each other away, the indicators and campaigns withheld
with the breakdown by state.

The first data row is `report,,tlp,<label>`, so the marking travels with the file; a state's
report seen by the centre says so in `report,,seen_by,centre`. The file starts with a UTF-8
byte-order mark: its cells hold non-ASCII text (ranges, names), which spreadsheet programs
read as another encoding without it. JSON is `Report.to_dict()`; machine names (RSIT
classes, metric names) are never translated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from concord import i18n
from concord.events.rsit import CLASS_LABELS
from concord.intake.records import KIND_LABELS
from concord.reports import charts
from concord.reports import techniques as attack
from concord.reports.model import Cell, Report, Row
from concord.reports.service import published_low, to_json

# Events reported by an organisation with no country: the centre, or a partner.
NO_STATE = "no state (the centre or a partner)"

TEMPLATES = Path(__file__).parent / "templates"
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
# FIRST TLP 2.0 colours: the label's text colour, always on black.
TLP_COLOURS = {
    "clear": "#FFFFFF",
    "green": "#33FF00",
    "amber": "#FFC000",
    "amber+strict": "#FFC000",
    "red": "#FF2B2B",
}
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # written as UTF-8 (utf-8-sig): Excel then reads the file as UTF-8

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape())


def render(report: Report, fmt: str, language: str = "en") -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    return to_html(report, language)


# --- HTML -------------------------------------------------------------------------------------


def _compared(
    rows: list[Row], this: str, before: str
) -> tuple[list[Row], list[tuple[str, list[int]]]]:
    """The rows a breakdown's chart draws, and its series: a row is drawn when its count of
    this period is published and either count is not zero; the previous period's bars only
    when every one of them is published (a withheld count is neither 0 nor a guess)."""
    drawn = [
        r
        for r in rows
        if isinstance(r.events, int) and (r.events or (isinstance(r.previous, int) and r.previous))
    ]
    series = [(this, [int(r.events) for r in drawn])]
    if all(isinstance(r.previous, int) for r in drawn):
        series.append((before, [int(r.previous) for r in drawn]))
    return drawn, series


def _charts(report: Report, _: Any) -> dict[str, Markup]:
    """Charts plot published counts only: a suppressed one is never drawn."""
    this, before = _("This period"), _("Previous period")
    classes, by_class = _compared(report.by_class, this, before)
    states, by_state = _compared(report.by_state, this, before)
    sectors, by_sector = _compared(report.by_sector, this, before)
    drawn = [t for t in report.techniques if t.weight is not None]
    out = {
        "by_class": charts.bar_chart(
            [_(CLASS_LABELS.get(str(r.key), str(r.key))) for r in classes],
            by_class,
            _("Events by RSIT class"),
        ),
        "by_state": charts.bar_chart(
            [r.key or _(NO_STATE) for r in states],
            by_state,
            _("Events by reporting state"),
        ),
        "by_sector": charts.bar_chart(
            [_(r.key) if r.key else _("not known") for r in sectors],
            by_sector,
            _("Events by sector of the affected owner"),
        ),
        "techniques": charts.bar_chart(
            [f"{t.id} {t.name}".strip() for t in drawn],
            [(this, [t.weight or 0 for t in drawn])],
            _("ATT&CK techniques seen"),
        ),
    }
    return {k: Markup(v) for k, v in out.items()}


def context(report: Report, language: str) -> dict[str, Any]:
    """What report_body.html needs (the UI page passes the same to its own layout)."""
    _ = i18n.translator(language)

    def cell(value: Cell) -> str:
        return str(value)

    def change(row: Row) -> str:
        if row.change_pct is not None:
            return f"{row.change_pct:+.1f} %"
        # From a published 0 to a published count: no percentage, but not withheld either.
        low = published_low(row.events)
        if row.previous == 0 and low is not None and low > 0:
            return _("new")
        return "—"

    def hours(value: float | None) -> str:
        if value is None:
            return "—"
        return _("{hours} h ({days} d)", hours=f"{value:.1f}", days=f"{value / 24:.1f}")

    tactics = attack.catalogue().tactics
    scope = _("the whole network") if report.scope == "network" else report.scope
    return {
        "r": report,
        "_": _,
        "lang": language,
        "scope_label": scope,
        "tlp_colour": TLP_COLOURS.get(report.tlp, "#FFFFFF"),
        "last_day": report.period.end - timedelta(days=1),
        "class_label": lambda key: _(CLASS_LABELS.get(key, key)),
        "state_label": lambda key: key or _(NO_STATE),
        "sector_label": lambda key: _(key) if key else _("not known"),
        "kind_label": lambda key: _(KIND_LABELS.get(key, key)),
        "tactic_names": lambda shorts: ", ".join(tactics.get(s, s) for s in shorts),
        "cell": cell,
        "change": change,
        "hours": hours,
        "charts": _charts(report, _),
    }


def to_html(report: Report, language: str = "en") -> str:
    return _env.get_template("report.html").render(**context(report, language))


# --- CSV --------------------------------------------------------------------------------------


def _rows_of(report: Report) -> Iterator[tuple[str, str, str, Any]]:
    p = report.period
    yield ("report", "", "tlp", report.tlp)
    for metric, value in (
        ("period", p.label),
        ("kind", p.kind),
        ("start", p.start.isoformat()),
        ("end", p.end.isoformat()),
        ("previous_period", p.previous_label),
        ("scope", report.scope),
        ("generated_at", report.generated_at.isoformat()),
        ("min_count", report.min_count),
    ):
        yield ("report", "", metric, value)
    if report.seen_by:
        yield ("report", "", "seen_by", report.seen_by)
    t = report.totals
    yield ("totals", "events", "events", t.events)
    yield ("totals", "events", "previous", t.previous)
    yield ("totals", "events", "change_pct", t.change_pct)
    yield ("totals", "occurrences", "events", report.occurrences)
    withheld = report.withheld_breakdowns
    for section, rows in (
        ("by_class", report.by_class),
        ("by_state", report.by_state),
        ("by_sector", report.by_sector),
    ):
        if section in withheld:
            yield (section, "", "withheld", True)
        for row in rows:
            key = row.key or ""
            yield (section, key, "events", row.events)
            yield (section, key, "previous", row.previous)
            yield (section, key, "change_pct", row.change_pct)
    if report.indicators_withheld:
        yield ("indicators", "", "withheld", True)
    for ind in report.indicators:
        yield ("indicators", ind.value, "kind", ind.kind)
        yield ("indicators", ind.value, "states", ind.states)
        yield ("indicators", ind.value, "events", ind.events)
        yield ("indicators", ind.value, "countries", " ".join(ind.countries))
    yield ("campaigns", "", "available", report.campaigns.available)
    if report.campaigns.withheld:
        yield ("campaigns", "", "withheld", True)
    elif report.campaigns.available:
        yield ("campaigns", "", "total", report.campaigns.total)
        for c in report.campaigns.items:
            yield ("campaigns", str(c.id), "name", c.name)
            yield ("campaigns", str(c.id), "first_seen", c.first_seen)
            yield ("campaigns", str(c.id), "events", c.events)
            yield ("campaigns", str(c.id), "states", " ".join(c.states))
    cases = report.cases
    yield ("cases", "", "available", cases.available)
    if cases.available:
        for metric in (
            "opened",
            "closed",
            "previous_opened",
            "previous_closed",
            "median_hours_to_close",
            "mean_hours_to_close",
        ):
            yield ("cases", "", metric, getattr(cases, metric))
        for resolution, n in cases.closed_by_resolution.items():
            yield ("cases-closed-by-resolution", resolution or "not-given", "cases", n)
    for tech in report.techniques:
        yield ("techniques", tech.id, "name", tech.name)
        yield ("techniques", tech.id, "tactics", " ".join(tech.tactics))
        yield ("techniques", tech.id, "events", tech.events)
        yield ("techniques", tech.id, "cases", tech.cases)
    for m in report.mitigations:
        yield ("mitigations", m.id, "name", m.name)
        yield ("mitigations", m.id, "weight", m.weight)
        yield ("mitigations", m.id, "techniques", " ".join(m.techniques))
    yield ("notice", "attack", f"v{report.attack_version}", report.attack_notice)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    # Indicator values come from outside: never let a spreadsheet run one as a formula.
    return "'" + text if text.startswith(_CSV_FORMULA) else text


def to_csv(report: Report) -> str:
    """The long table, starting with the byte-order mark (see the module's docstring)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "metric", "value"))
    for section, key, metric, value in _rows_of(report):
        writer.writerow((section, _csv_value(key), metric, _csv_value(value)))
    return out.getvalue()
