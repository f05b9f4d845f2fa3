"""Coordination cases: a cross-border incident from first report to closure.

A case is sharable like any other object: the access policy decides who sees it from its TLP
label, its originating organisation and its shares. Participating national bodies are given
a share when they join, so that they see an AMBER case; TLP:RED cases are seen by named users
only (user shares).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow
from concord.orgs.model import Sharable

# MITRE ATT&CK technique or sub-technique id: T1566 or T1566.001.
TECHNIQUE_RE = re.compile(r"^T\d{4}(?:\.\d{3})?$")


class CaseStatus(enum.StrEnum):
    NEW = "new"
    TRIAGE = "triage"
    IN_PROGRESS = "in-progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Resolution(enum.StrEnum):
    """How a case ended, given when it is resolved or closed (reports count them)."""

    REMEDIATED = "remediated"  # the affected systems were cleaned or patched
    MITIGATED = "mitigated"  # the harm was contained; the cause remains
    FALSE_POSITIVE = "false-positive"
    DUPLICATE = "duplicate"
    NO_ACTION = "no-action"  # nothing could or needed to be done (no answer, out of mandate)


class TimelineKind(enum.StrEnum):
    COMMENT = "comment"
    STATUS = "status"
    ASSIGN = "assign"
    LINK = "link"
    PARTICIPANT = "participant"
    TECHNIQUE = "technique"
    # Creation and edits of the case's own fields (title, summary, severity, TLP).
    CREATE = "create"
    UPDATE = "update"


# The workflow: forward, back from work to triage, and reopening a resolved or closed case.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    # A duplicate or a false positive is closed from triage (or at once), without work on it.
    CaseStatus.NEW: frozenset({CaseStatus.TRIAGE, CaseStatus.IN_PROGRESS, CaseStatus.CLOSED}),
    CaseStatus.TRIAGE: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.CLOSED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.RESOLVED, CaseStatus.TRIAGE}),
    CaseStatus.RESOLVED: frozenset({CaseStatus.CLOSED, CaseStatus.IN_PROGRESS}),
    CaseStatus.CLOSED: frozenset({CaseStatus.IN_PROGRESS}),
}


def _in(values: type[enum.StrEnum]) -> str:
    return ",".join(f"'{v.value}'" for v in values)


class Case(Sharable, Base):
    __tablename__ = "cases"
    object_kind = "case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=CaseStatus.NEW.value)
    severity: Mapped[str] = mapped_column(String(10), default=Severity.MEDIUM.value)
    assignee_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(20))
    # Counts the case's changes: the API's ETag, so that a client changes what it has read.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __table_args__ = (
        CheckConstraint(f"status in ({_in(CaseStatus)})", name="status"),
        CheckConstraint(f"severity in ({_in(Severity)})", name="severity"),
        CheckConstraint(f"resolution in ({_in(Resolution)})", name="resolution"),
        Index("ix_cases_status_updated", "status", "updated_at"),
    )


class CaseParticipant(Base):
    """A national body taking part in a case (one per member state)."""

    __tablename__ = "case_participants"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    added_by_user_id: Mapped[int | None] = mapped_column(Integer)


class CaseTechnique(Base):
    __tablename__ = "case_techniques"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    technique_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_case_techniques_technique", "technique_id"),)


# Events and indicators carry no foreign key: the events table may be partitioned by time,
# and a link must not stop old events from being dropped with their partition.
class CaseEvent(Base):
    __tablename__ = "case_events"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_case_events_event", "event_id"),)


class CaseIndicator(Base):
    __tablename__ = "case_indicators"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    indicator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_case_indicators_indicator", "indicator_id"),)


class TimelineEntry(Base):
    """One entry of a case's history. Append-only: entries are never changed or removed."""

    __tablename__ = "case_timeline"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
    # The case's TLP when it was written: widening the case later does not widen what was
    # said under the narrower label (None: written before entries kept it; the case's).
    tlp: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint(f"kind in ({_in(TimelineKind)})", name="kind"),
        Index("ix_case_timeline_case", "case_id", "id"),
    )


@event.listens_for(TimelineEntry, "before_update")
@event.listens_for(TimelineEntry, "before_delete")
def _append_only(_mapper: Any, _connection: Any, target: TimelineEntry) -> None:
    raise RuntimeError(f"case timeline entry {target.id} is append-only")
