"""Tables written by correlation: alerts to the states involved, and campaigns.

Nothing here is filtered for anyone: these rows are the network-wide truth, and every read
path narrows them through the access policy at query time (see correlation.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class CorrelationAlert(Base):
    """A state's report of an indicator is cross-state: its analysts should look.

    One row per (indicator, state, recipient): the recipient is a national body of that state
    or the centre, and the row is written when the events that organisation may see first
    show the indicator in two or more states, one of them that state. So its time and its
    place in a recipient's feed tell nothing of reports the recipient cannot see. Reading
    checks the reader's own view again; the row carries no copy of anything under TLP."""

    __tablename__ = "correlation_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    indicator_id: Mapped[int] = mapped_column(BigInteger)
    country: Mapped[str] = mapped_column(String(2))
    org_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("indicator_id", "country", "org_id"),
        Index("ix_correlation_alerts_org_id", "org_id", "id"),
    )


class AlertMark(Base):
    """How far the alert pass has looked: the newest event and share of the last two passes.

    A recipient's view of an indicator changes only with a new event of it or a new share of
    one of its events, so a pass looks again only at the indicators those touch since the
    pass before the last (one pass of overlap, for a batch still uncommitted when the last
    one read the newest id), and at all of them once a day. One row, id 1."""

    __tablename__ = "alert_marks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id_before: Mapped[int] = mapped_column(BigInteger, default=0)
    share_id: Mapped[int] = mapped_column(BigInteger, default=0)
    share_id_before: Mapped[int] = mapped_column(BigInteger, default=0)
    complete_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Campaign(Base):
    """A connected group of events linked through shared cross-state indicators.

    The id is the smallest event id of the group, so recomputing gives the same ids and a
    campaign keeps its id as it grows. When two campaigns merge, the younger one's row stays
    with `merged_into` pointing at the survivor, so links to it (cases) still resolve.
    The figures cover every member event; readers get figures of the events they may see."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(500), default="")
    label_indicator_id: Mapped[int | None] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # member events
    indicator_count: Mapped[int] = mapped_column(BigInteger, default=0)
    states: Mapped[str] = mapped_column(String(200), default="")  # sorted, comma-separated
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    merged_into: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CampaignEvent(Base):
    """Membership: an event belongs to at most one (live) campaign.

    No foreign key to events (as for cases): the events table may be partitioned by time and
    old partitions dropped; the next correlation pass removes members that are gone."""

    __tablename__ = "campaign_events"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    campaign_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("campaigns.id", ondelete="CASCADE")
    )

    __table_args__ = (Index("ix_campaign_events_campaign", "campaign_id", "event_id"),)
