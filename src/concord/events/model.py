"""Normalized events, their observables, indicators and sightings, and intake receipts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from concord.db import Base, UTCDateTime, utcnow
from concord.orgs.model import Sharable

BigId = BigInteger().with_variant(Integer, "sqlite")
# Room left in each PostgreSQL page of the tables intake folds repeats into: an update that
# changes no indexed value then stays on its page (a HOT update) and writes no index entry.
ROOM_FOR_FOLDS = {"postgresql_with": {"fillfactor": 85}}


def byte_ordered(length: int) -> String:
    """Text that PostgreSQL compares byte by byte, whatever the database's locale: addresses,
    domains and hashes need no linguistic order, and a locale's collation would cost every
    comparison in their indexes, which intake makes for every record (SQLite compares
    bytes anyway)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Submission(Base):
    """One intake submission and its receipt. The content hash makes re-submission of the
    same file by the same organisation idempotent, and `rows_done` lets an interrupted
    submission resume exactly where its last committed batch ended."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))  # api, cli, smtp, ui
    filename: Mapped[str] = mapped_column(String(300))
    format: Mapped[str] = mapped_column(String(40))
    tlp: Mapped[str] = mapped_column(String(16))
    # Whose a RED submission is (its sender's user id), 0 for any other TLP: the same RED
    # file from two people is two submissions, each read by its sender only.
    audience: Mapped[int] = mapped_column(BigInteger, default=0)
    # False: the sender left the TLP to the records' own markings (`tlp` is then the default
    # for unmarked ones). Not part of the key: a file sent again with another declaration
    # would count its observations twice where both end at the same TLP.
    tlp_declared: Mapped[bool] = mapped_column(Boolean, default=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running, done, failed
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)  # named nothing to take in
    errors: Mapped[str] = mapped_column(Text, default="[]")  # JSON list, first N errors
    # The lowest and highest id of the events it added (none when it added none): one
    # submission's events are found by a range of the primary key, without an index of
    # their own, whose upkeep would cost intake on every event.
    first_event_id: Mapped[int | None] = mapped_column(BigInteger)
    last_event_id: Mapped[int | None] = mapped_column(BigInteger)
    shared: Mapped[int] = mapped_column(BigInteger, default=0)  # events shared with owners
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("org_id", "sha256", "format", "tlp", "audience"),)


class SubmissionPart(Base):
    """A file a submission held (a mail's attachment, an archive's file), taken in as a
    submission of its own. A file sent again in another mail, or alone, is the same
    submission: it is a part of each that brought it."""

    __tablename__ = "submission_parts"

    submission_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    part_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )


class SubmissionFile(Base):
    """The submitted bytes, compressed, in parts of a few MiB cut at line ends: what an
    event's raw reference points into. Parts keep memory bounded on huge files and let a
    line be found by decompressing one part only."""

    __tablename__ = "submission_files"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    first_line: Mapped[int] = mapped_column(BigInteger, default=1)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    compression: Mapped[str] = mapped_column(String(10), default="gzip")


class Event(Sharable, Base):
    __tablename__ = "events"
    object_kind = "event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No index of its own: the unique (origin_org_id, dedup_key) index serves it, and a
    # second one tempts SQLite into scanning a whole organisation's events on dedup lookups.
    origin_org_id: Mapped[int | None] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(BigInteger, default=1)
    rsit_class: Mapped[str] = mapped_column(String(40))
    rsit_type: Mapped[str] = mapped_column(String(60))
    nature: Mapped[str] = mapped_column(String(12), default="event")
    feed: Mapped[str] = mapped_column(String(80))
    port: Mapped[int | None] = mapped_column(Integer)
    protocol: Mapped[str | None] = mapped_column(String(20))
    application: Mapped[str | None] = mapped_column(String(40))
    confidence: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(1000), default="")
    attack_techniques: Mapped[str] = mapped_column(String(500), default="")  # comma-separated
    # the first observable's value, for listing and searching without a join
    primary_value: Mapped[str] = mapped_column(byte_ordered(500), default="")
    country: Mapped[str | None] = mapped_column(String(2))  # the reporting state
    owner_org_id: Mapped[int | None] = mapped_column(Integer, index=True)  # whose resource
    owner_parent_id: Mapped[int | None] = mapped_column(Integer)
    # 64 bits of SHA-256 over the configured dedup fields: a compact, fast unique index; a
    # collision (about one in 10^10 at a million events per org and window) only merges counts.
    dedup_key: Mapped[int] = mapped_column(BigInteger)
    submission_id: Mapped[int] = mapped_column(BigInteger)
    raw_location: Mapped[str] = mapped_column(String(200))  # line N or a JSON pointer
    extra: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (
        UniqueConstraint("origin_org_id", "dedup_key"),
        Index("ix_events_primary_value", "primary_value"),
        ROOM_FOR_FOLDS,
    )


class Indicator(Base):
    """One observable value, wherever and by whomever it was reported."""

    __tablename__ = "indicators"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(byte_ordered(12))
    value: Mapped[str] = mapped_column(byte_ordered(500))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    # set by correlation: reported by two or more member states and not a common value
    cross_state: Mapped[bool] = mapped_column(Boolean, default=False)
    warning_list: Mapped[str | None] = mapped_column(String(100))
    # an IPv6 address as 32 hex digits, whose order is the addresses': a network searched for
    # is one range of it (compressed text has no such ranges); NULL for every other kind
    ipv6_hex: Mapped[str | None] = mapped_column(byte_ordered(32))

    # (value, kind) serves lookups by value alone too; the flag and the IPv6 key are indexed
    # only where set, so intake writes two index entries per new indicator, not four.
    __table_args__ = (
        UniqueConstraint("value", "kind"),
        Index(
            "ix_indicators_cross_state",
            "cross_state",
            sqlite_where=text("cross_state = 1"),
            postgresql_where=text("cross_state"),
        ),
        Index(
            "ix_indicators_ipv6_hex",
            "ipv6_hex",
            sqlite_where=text("ipv6_hex IS NOT NULL"),
            postgresql_where=text("ipv6_hex IS NOT NULL"),
        ),
        ROOM_FOR_FOLDS,
    )


class EventObservable(Base):
    """An event's link to one of its indicators. A trigger on events deletes an event's links
    with it (migration 0007); there is no foreign key, whose check of every link intake
    writes cost more on PostgreSQL than writing the link."""

    __tablename__ = "event_observables"

    event_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    indicator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role: Mapped[str] = mapped_column(String(20), default="source")

    __table_args__ = (
        Index("ix_event_observables_indicator", "indicator_id", "event_id"),
        {"sqlite_with_rowid": False},
    )


class Sighting(Base):
    """How often and when one organisation (of one state) reported an indicator."""

    __tablename__ = "sightings"

    indicator_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country: Mapped[str | None] = mapped_column(String(2))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_sightings_country", "country", "indicator_id"),
        {"sqlite_with_rowid": False, **ROOM_FOR_FOLDS},
    )


class RecordMark(Base):
    """A record with an identity of its own (a MISP attribute or object, a STIX object),
    counted into one of its sender's events: sent again in a file that differs (a MISP event
    re-pulled with an attribute added, a bundle re-serialised), it is a duplicate, not another
    sighting. `mark` is 64 bits of a hash over the record's identity and its event's dedup
    key, so an edit that changes what the record says still counts."""

    __tablename__ = "record_marks"

    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mark: Mapped[int] = mapped_column(BigInteger, primary_key=True)

    __table_args__ = {"sqlite_with_rowid": False}
