"""Generalized reports: the stored-report table and the report's value types.

A `Report` is plain data (dataclasses of str/int/float/list), so it serialises to JSON and
back without loss; stored reports keep that JSON and are rendered (HTML, CSV, in the reader's
language) when read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")

# A published count, or its suppressed form ("<3", or a range such as "40–41" for a count
# withheld so that a suppressed neighbour cannot be derived from the total, or "≥3" for the
# event count of an indicator or campaign seen in a state whose count is withheld).
Cell = int | str


class StoredReport(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[str] = mapped_column(String(40))  # the period label, e.g. 2024-07
    # "network", a country code, or "KZ@centre": KZ's report as seen by the centre
    scope: Mapped[str] = mapped_column(String(16))
    tlp: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    format: Mapped[str] = mapped_column(String(10), default="json")
    content: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_reports_scope_period", "scope", "period"),)


class ReportRequest(Base):
    """A report asked for on demand, built by a worker: a network report over millions of
    events takes longer than a page or a proxy waits. Read by its requester only."""

    __tablename__ = "report_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    period: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12), default="queued")  # building, ready, failed
    report_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval [start, end) and the interval just before it."""

    kind: str  # day, week, month or custom
    label: str  # 2024-07-15, 2024-W28, 2024-07 or 2024-07-01..2024-07-10
    start: datetime
    end: datetime
    previous_start: datetime
    previous_label: str

    @property
    def previous_end(self) -> datetime:
        return self.start


@dataclass
class Row:
    """One line of a breakdown: this period, the previous one, and the change in percent
    (absent when either count is suppressed or the previous one is zero)."""

    key: str | None
    events: Cell
    previous: Cell
    change_pct: float | None = None


@dataclass
class IndicatorRow:
    kind: str
    value: str
    states: int
    events: Cell
    countries: list[str] = field(default_factory=list)


@dataclass
class CampaignRow:
    id: int
    name: str
    first_seen: str | None
    events: Cell | None
    states: list[str] = field(default_factory=list)


@dataclass
class Campaigns:
    available: bool
    items: list[CampaignRow] = field(default_factory=list)
    total: int = 0
    # withheld with the by-state breakdown: naming their states would show what it hides
    withheld: bool = False


@dataclass
class Cases:
    available: bool
    opened: int = 0
    closed: int = 0
    previous_opened: int = 0
    previous_closed: int = 0
    median_hours_to_close: float | None = None
    mean_hours_to_close: float | None = None
    # the cases closed in the period by how they ended ("" for those closed without saying)
    closed_by_resolution: dict[str, int] = field(default_factory=dict)


@dataclass
class TechniqueRow:
    id: str
    name: str
    tactics: list[str]
    events: Cell  # "<3" when few events show it
    cases: int = 0

    @property
    def weight(self) -> int | None:
        """Events and cases, when the event count is published."""
        return self.events + self.cases if isinstance(self.events, int) else None


@dataclass
class MitigationRow:
    id: str
    name: str
    weight: Cell  # a range when a technique's event count behind it is withheld
    techniques: list[str]


@dataclass
class Report:
    period: Period
    scope: str
    tlp: str
    generated_at: datetime
    min_count: int
    totals: Row
    occurrences: Cell  # the events' summed `count` (repeats folded into one event)
    by_class: list[Row]
    by_state: list[Row]
    by_sector: list[Row]
    indicators: list[IndicatorRow]
    campaigns: Campaigns
    cases: Cases
    techniques: list[TechniqueRow]
    mitigations: list[MitigationRow]
    attack_version: str
    attack_notice: str
    # withheld with the by-state breakdown (see Campaigns.withheld)
    indicators_withheld: bool = False
    # None: the scope's own view; "centre": a state's report as seen by the centre, holding
    # only what both the state's national body and the centre may see
    seen_by: str | None = None

    @property
    def withheld_breakdowns(self) -> list[str]:
        """The breakdowns withheld whole, in both periods (their counts would give each
        other away): events to count, and not one row published. Said in every format, so
        that an empty list is not read as "no data"."""
        if not (self.totals.events or self.totals.previous):
            return []
        breakdowns = {
            "by_class": self.by_class,
            "by_state": self.by_state,
            "by_sector": self.by_sector,
        }
        return [name for name, rows in breakdowns.items() if not rows]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["withheld_breakdowns"] = self.withheld_breakdowns
        data["period"] = {
            **{k: v for k, v in data["period"].items() if not isinstance(v, datetime)},
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "previous_start": self.period.previous_start.isoformat(),
        }
        data["generated_at"] = self.generated_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        p = data["period"]
        campaigns = data["campaigns"]
        return cls(
            period=Period(
                kind=p["kind"],
                label=p["label"],
                start=datetime.fromisoformat(p["start"]),
                end=datetime.fromisoformat(p["end"]),
                previous_start=datetime.fromisoformat(p["previous_start"]),
                previous_label=p["previous_label"],
            ),
            scope=data["scope"],
            tlp=data["tlp"],
            generated_at=datetime.fromisoformat(data["generated_at"]),
            min_count=data["min_count"],
            totals=Row(**data["totals"]),
            occurrences=data["occurrences"],
            by_class=[Row(**r) for r in data["by_class"]],
            by_state=[Row(**r) for r in data["by_state"]],
            by_sector=[Row(**r) for r in data["by_sector"]],
            indicators=[IndicatorRow(**r) for r in data["indicators"]],
            campaigns=Campaigns(
                available=campaigns["available"],
                items=[CampaignRow(**c) for c in campaigns["items"]],
                total=campaigns.get("total", 0),
                withheld=campaigns.get("withheld", False),
            ),
            cases=Cases(**data["cases"]),
            techniques=[TechniqueRow(**t) for t in data["techniques"]],
            mitigations=[MitigationRow(**m) for m in data["mitigations"]],
            attack_version=data["attack_version"],
            attack_notice=data["attack_notice"],
            indicators_withheld=data.get("indicators_withheld", False),
            seen_by=data.get("seen_by"),
        )
