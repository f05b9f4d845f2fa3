"""Intake: stream records from a reader into events, folding duplicates, in batches.

Each batch is one transaction that also advances the submission's progress marker, so a
process killed half-way and run again resumes after the last committed batch: nothing is
lost and nothing is counted twice. Re-submitting a finished file changes nothing. A slow
database slows intake down (the next batch is read only after the last one committed), so
memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import queue
import threading
import time as clock
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, BinaryIO

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from concord.access import policy
from concord.access.model import TLP, Principal
from concord.audit import service as audit
from concord.bulk import Bulk
from concord.db import utcnow
from concord.errors import ConcordError, FaultLocation, Forbidden, InvalidInput, NotFound
from concord.events.model import (
    Submission,
    SubmissionFile,
)
from concord.intake import metrics, registry
from concord.intake.records import EventRecord, ReadError
from concord.orgs.model import Organization
from concord.orgs.whois import LookupIndex, current_index

BATCH = 10_000
MAX_ERRORS_KEPT = 1000
DEDUP_FIELDS_DEFAULT = ("feed", "type", "observables", "port")
SNIFF_BYTES = 65536
# AS numbers describe where an address lives, not what was seen: thousands of unrelated
# events share one, so they are kept with the event but never become indicators.
NOT_INDICATORS = frozenset({"asn"})
EVENT_COLUMNS = (
    "time",
    "last_seen",
    "count",
    "rsit_class",
    "rsit_type",
    "nature",
    "feed",
    "port",
    "protocol",
    "application",
    "confidence",
    "description",
    "attack_techniques",
    "primary_value",
    "country",
    "owner_org_id",
    "owner_parent_id",
    "dedup_key",
    "submission_id",
    "raw_location",
    "extra",
    "tlp",
    "origin_org_id",
    "origin_user_id",
    "share_constituents",
)


@dataclass
class Receipt:
    id: int
    filename: str
    format: str
    tlp: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"
    note: str = ""

    @classmethod
    def of(cls, sub: Submission, filename: str | None = None, note: str = "") -> Receipt:
        return cls(
            sub.id,
            filename or sub.filename,
            sub.format,
            sub.tlp,
            sub.accepted,
            sub.duplicates,
            sub.rejected,
            json.loads(sub.errors),
            sub.status,
            note,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "filename": self.filename,
            "format": self.format,
            "tlp": self.tlp,
            "status": self.status,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
            "note": self.note,
        }


@dataclass(frozen=True)
class DedupPolicy:
    fields: tuple[str, ...] = DEDUP_FIELDS_DEFAULT
    window_s: int = 86400

    @classmethod
    def from_env(cls) -> DedupPolicy:
        fields = (
            tuple(
                f.strip()
                for f in os.environ.get("CONCORD_DEDUP_FIELDS", "").split(",")
                if f.strip()
            )
            or DEDUP_FIELDS_DEFAULT
        )
        allowed = {
            "feed",
            "class",
            "type",
            "observables",
            "port",
            "protocol",
            "application",
            "description",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ConcordError(
                f"CONCORD_DEDUP_FIELDS names unknown field(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(sorted(allowed))}"
            )
        window = int(os.environ.get("CONCORD_DEDUP_WINDOW", "86400"))
        return cls(fields, max(1, window))

    def key(self, record: EventRecord, when: datetime) -> int:
        parts = []
        for name in self.fields:
            if name == "feed":
                parts.append(record.feed)
            elif name == "class":
                parts.append(record.rsit_class)
            elif name == "type":
                parts.append(record.rsit_type)
            elif name == "observables":
                parts.append(
                    ",".join(sorted(f"{o.kind}:{o.value}:{o.role}" for o in record.observables))
                )
            elif name == "port":
                parts.append(str(record.port or ""))
            elif name == "protocol":
                parts.append(record.protocol or "")
            elif name == "application":
                parts.append(record.application or "")
            elif name == "description":
                parts.append(record.description)
        parts.append(str(int(when.timestamp()) // self.window_s))
        digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class Source:
    """What to ingest: a seekable binary stream and its name."""

    stream: BinaryIO
    filename: str


PART_BYTES = 4 * 1024 * 1024


def _digest(stream: BinaryIO) -> tuple[str, int]:
    """SHA-256 and size of the content, reading in chunks."""
    sha = hashlib.sha256()
    size = 0
    while chunk := stream.read(1 << 20):
        sha.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return sha.hexdigest(), size


def _store_parts(session: Session, submission_id: int, stream: BinaryIO) -> None:
    """Keep the submitted bytes: gzip parts of about PART_BYTES, each ending at a line end,
    written one at a time so memory holds one part whatever the file's size."""
    part, first_line, carry = 0, 1, b""
    while True:
        chunk = stream.read(PART_BYTES)
        data = carry + chunk
        if not chunk:
            piece, carry = data, b""
        else:
            cut = data.rfind(b"\n") + 1
            piece, carry = (data[:cut], data[cut:]) if cut else (b"", data)
        if piece:
            stored = SubmissionFile(
                submission_id=submission_id,
                part=part,
                first_line=first_line,
                content=gzip.compress(piece, compresslevel=1, mtime=0),
            )
            session.add(stored)
            session.flush()
            session.expunge(stored)  # the bytes are written; do not keep them in memory
            first_line += piece.count(b"\n")
            part += 1
        if not chunk:
            break
    stream.seek(0)


class Pipeline:
    """One submission's run: holds what is constant for every batch."""

    def __init__(
        self,
        session: Session,
        org: Organization,
        principal: Principal | None,
        submission: Submission,
        tlp: TLP,
        dedup: DedupPolicy,
    ) -> None:
        self.org = org
        self.principal = principal
        self.submission = submission
        self.tlp = tlp
        self.dedup = dedup
        self.dialect = session.get_bind().dialect.name
        self.index: LookupIndex = current_index(session)
        self.parents = {
            i: p for i, p in session.execute(select(Organization.id, Organization.parent_id))
        }

    # Whose resource an event concerns: the victim or source before the sinkhole or scanner
    # that saw it; a destination alone names nobody to notify.
    OWNER_ROLES = ("victim", "source", "c2", "target", "")

    def _owner(self, record: EventRecord) -> int | None:
        ranked = sorted(
            (o for o in record.observables if o.role != "destination"),
            key=lambda o: self.OWNER_ROLES.index(o.role) if o.role in self.OWNER_ROLES else 4,
        )
        for obs in ranked:
            if obs.kind in ("ipv4", "ipv6"):
                match = self.index.lookup_ip(obs.value)
            elif obs.kind == "domain":
                match = self.index.lookup_domain(obs.value)
            elif obs.kind == "url":
                host = obs.value.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
                match = self.index.lookup(host) if host else None
            elif obs.kind == "email":
                match = self.index.lookup_domain(obs.value.rsplit("@", 1)[-1])
            else:
                continue
            if match is not None:
                return match.org_ids[0]
        return None

    def keys(self, records: list[EventRecord]) -> list[tuple[int, datetime]]:
        """Dedup keys and times of a batch (run in the reading thread, beside the writes)."""
        created = self.submission.created_at
        key = self.dedup.key
        out = []
        for rec in records:
            when = rec.time or created
            out.append((key(rec, when), when))
        return out

    def write_batch(
        self,
        session: Session,
        records: list[EventRecord],
        errors: list[ReadError],
        rows_done: int,
        keyed: list[tuple[int, datetime]] | None = None,
    ) -> tuple[int, int]:
        """Store one batch in the caller's transaction; returns (accepted, duplicates)."""
        sub = self.submission
        grouped: dict[int, list[Any]] = {}
        if keyed is None:
            keyed = self.keys(records)
        for rec, (key, when) in zip(records, keyed, strict=True):
            g = grouped.get(key)
            if g is None:
                grouped[key] = [rec, 1, when, when]
            else:
                g[1] += 1
                g[2] = min(g[2], when)
                g[3] = max(g[3], when)
        bulk = Bulk(session)
        existing = {
            r[0]
            for r in bulk.select_in(
                "SELECT dedup_key FROM events WHERE origin_org_id = ? AND dedup_key IN ({})",
                (self.org.id,),
                list(grouped),
            )
        }
        ts = bulk.timestamp
        user_id = self.principal.user_id if self.principal else None
        new_rows: list[tuple[Any, ...]] = []
        new_keys: list[int] = []
        for key, (rec, n, first, last) in grouped.items():
            if key in existing:
                continue
            owner = self._owner(rec)
            level = rec.tlp if _narrower(rec.tlp, self.tlp) else self.tlp.value
            new_keys.append(key)
            new_rows.append(
                (
                    ts(first),
                    ts(last),
                    n,
                    rec.rsit_class,
                    rec.rsit_type,
                    rec.nature,
                    rec.feed[:80],
                    rec.port,
                    rec.protocol,
                    rec.application,
                    rec.confidence,
                    rec.description[:1000],
                    ",".join(rec.attack_techniques)[:500],
                    rec.observables[0].value[:500] if rec.observables else "",
                    self.org.country,
                    owner,
                    self.parents.get(owner) if owner else None,
                    key,
                    sub.id,
                    str(rec.location)[:200],
                    _extra_json(rec),
                    level,
                    self.org.id,
                    user_id,
                    False,
                )
            )
        event_ids: dict[int, int] = {}
        if new_rows:
            ids = bulk.reserve_ids("events", len(new_rows))
            bulk.insert(
                "events",
                ("id", *EVENT_COLUMNS),
                [(i, *row) for i, row in zip(ids, new_rows, strict=True)],
            )
            event_ids = dict(zip(new_keys, ids, strict=True))
        if existing:
            bulk.executemany(
                "UPDATE events SET count = count + ?, "
                f"time = {bulk.least('time', '?')}, "
                f"last_seen = {bulk.greatest('last_seen', '?')} "
                "WHERE origin_org_id = ? AND dedup_key = ?",
                [
                    (g[1], ts(g[2]), ts(g[3]), self.org.id, k)
                    for k, g in grouped.items()
                    if k in existing
                ],
            )
        self._indicators(session, grouped, event_ids)
        accepted = len(new_rows)
        duplicates = len(records) - accepted
        sub.rows_done = rows_done
        sub.accepted += accepted
        sub.duplicates += duplicates
        sub.rejected += len(errors)
        if errors:
            kept = json.loads(sub.errors)
            room = MAX_ERRORS_KEPT - len(kept)
            if room > 0:
                kept.extend(e.as_dict() for e in errors[:room])
                sub.errors = json.dumps(kept, ensure_ascii=False)
        return accepted, duplicates

    def _indicators(
        self, session: Session, grouped: dict[int, list[Any]], event_ids: dict[int, int]
    ) -> None:
        """Upsert indicators and this organisation's sightings; link new events."""
        seen: dict[tuple[str, str], list[Any]] = {}
        for _key, (rec, n, first, last) in grouped.items():
            for obs in rec.observables:
                if obs.kind in NOT_INDICATORS:
                    continue
                k = (str(obs.kind), obs.value[:500])
                s = seen.get(k)
                if s is None:
                    seen[k] = [n, first, last]
                else:
                    s[0] += n
                    s[1] = min(s[1], first)
                    s[2] = max(s[2], last)
        if not seen:
            return
        bulk = Bulk(session)
        ts = bulk.timestamp
        bulk.insert(
            "indicators",
            ("kind", "value", "first_seen", "last_seen", "cross_state"),
            [(k, v, ts(x[1]), ts(x[2]), False) for (k, v), x in seen.items()],
            conflict=("kind", "value"),
            update=f"first_seen = {bulk.least('indicators.first_seen', 'excluded.first_seen')}, "
            f"last_seen = {bulk.greatest('indicators.last_seen', 'excluded.last_seen')}",
        )
        ids: dict[tuple[str, str], int] = {}
        for i, k, v in bulk.select_in(
            "SELECT id, kind, value FROM indicators WHERE value IN ({})",
            (),
            list({v for _k, v in seen}),
        ):
            if (k, v) in seen:
                ids[(k, v)] = i
        bulk.insert(
            "sightings",
            ("indicator_id", "org_id", "country", "count", "first_seen", "last_seen"),
            [
                (ids[k], self.org.id, self.org.country, x[0], ts(x[1]), ts(x[2]))
                for k, x in seen.items()
            ],
            conflict=("indicator_id", "org_id"),
            update="count = sightings.count + excluded.count, "
            f"first_seen = {bulk.least('sightings.first_seen', 'excluded.first_seen')}, "
            f"last_seen = {bulk.greatest('sightings.last_seen', 'excluded.last_seen')}",
        )
        links = []
        for key, event_id in event_ids.items():
            rec = grouped[key][0]
            done: set[int] = set()
            for obs in rec.observables:
                if obs.kind in NOT_INDICATORS:
                    continue
                ind = ids[(str(obs.kind), obs.value[:500])]
                if ind not in done:
                    done.add(ind)
                    links.append((event_id, ind, obs.role[:20]))
        bulk.insert("event_observables", ("event_id", "indicator_id", "role"), links)


def _extra_json(rec: EventRecord) -> str:
    extra = rec.extra
    asns = [o.value for o in rec.observables if o.kind == "asn"]
    if asns:
        extra = {**extra, "asn": ",".join(asns)}
    return orjson.dumps(extra).decode()[:4000] if extra else "{}"


def _narrower(record_tlp: str | None, given: TLP) -> bool:
    """A record may carry a stricter TLP than the submission; never a looser one."""
    if not record_tlp:
        return False
    try:
        return TLP.parse(record_tlp).rank > given.rank
    except ValueError:
        return False


def _batches(
    items: Iterator[EventRecord | ReadError], skip: int, size: int
) -> Iterator[tuple[list[EventRecord], list[ReadError], int]]:
    """Group reader output in batches; `skip` items were committed by an earlier run."""
    position = 0
    records: list[EventRecord] = []
    errors: list[ReadError] = []
    for item in items:
        position += 1
        if position <= skip:
            continue
        if isinstance(item, ReadError):
            errors.append(item)
        else:
            records.append(item)
        if len(records) + len(errors) >= size:
            yield records, errors, position
            records, errors = [], []
    if records or errors or position <= skip:
        yield records, errors, max(position, skip)


_DONE = object()


def _prefetch(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Read and parse the next batches in a second thread while this one writes.

    The queue is bounded: when the database is slow, the reader waits, so memory holds at
    most `depth` batches whatever the input's size (backpressure instead of piling up).
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(exc)

    worker = threading.Thread(target=produce, name="intake-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def resolve_org(session: Session, principal: Principal | None, as_org: str | None) -> Organization:
    """The originating organisation: the principal's own, or --as ORG for the console or the
    centre's staff acting for a member."""
    if as_org:
        org = session.scalar(select(Organization).where(Organization.slug == as_org))
        if org is None:
            raise InvalidInput(f"no organisation {as_org!r}", FaultLocation(field="as"))
        if principal is not None and not principal.is_centre and org.id != principal.org_id:
            raise Forbidden("only the centre may submit on behalf of another organisation")
        return org
    if principal is None or principal.org_id is None:
        raise InvalidInput(
            "say which organisation reports this (--as ORG)", FaultLocation(field="as")
        )
    org = session.get(Organization, principal.org_id)
    assert org is not None
    return org


def ingest(
    factory: sessionmaker[Session],
    principal: Principal | None,
    source: Source,
    *,
    fmt: str | None = None,
    tlp: str | None = None,
    as_org: str | None = None,
    channel: str = "api",
    batch_size: int = BATCH,
    progress: Callable[[int], None] | None = None,
    reader_options: dict[str, Any] | None = None,
) -> Receipt:
    head = source.stream.read(SNIFF_BYTES)
    source.stream.seek(0)
    reader = registry.choose(head, source.filename, fmt)
    try:
        level = TLP.parse(tlp) if tlp else TLP.AMBER
    except ValueError as exc:
        raise InvalidInput(str(exc), FaultLocation(field="tlp")) from None
    sha, size = _digest(source.stream)
    dedup = DedupPolicy.from_env()
    with factory() as session:
        org = resolve_org(session, principal, as_org)
        if (
            principal is not None
            and principal.role is not None
            and principal.role.value == "reader"
        ):
            raise Forbidden("readers cannot submit reports")
        sub = session.scalar(
            select(Submission).where(
                Submission.org_id == org.id,
                Submission.sha256 == sha,
                Submission.format == reader.name,
                Submission.tlp == level.value,
            )
        )
        if sub is not None and sub.status == "done":
            # Idempotent by content: the same file again changes nothing.
            metrics.RECORDS.labels(outcome="duplicate").inc(sub.accepted + sub.duplicates)
            earlier = Receipt.of(
                sub, source.filename, "this file was submitted before; nothing changed"
            )
            return replace(earlier, accepted=0, duplicates=sub.accepted + sub.duplicates)
        resumed = sub is not None
        if sub is None:
            sub = Submission(
                org_id=org.id,
                user_id=principal.user_id if principal else None,
                channel=channel,
                filename=source.filename[:300],
                format=reader.name,
                tlp=level.value,
                sha256=sha,
                size=size,
            )
            session.add(sub)
            session.flush()
            _store_parts(session, sub.id, source.stream)
            audit.record(
                session,
                principal,
                "submit",
                "submission",
                sub.id,
                {"file": source.filename, "format": reader.name, "org": org.slug},
            )
            session.commit()
        sub_id = sub.id
        skip = sub.rows_done
    with factory() as session:
        sub = session.get(Submission, sub_id)
        org = session.get(Organization, sub.org_id)
        pipeline = Pipeline(session, org, principal, sub, level, dedup)
        session.commit()
        items = reader.read(source.stream, source.filename)
        try:
            keyed_batches = (
                (records, errors, position, pipeline.keys(records))
                for records, errors, position in _batches(items, skip, batch_size)
            )
            for records, errors, position, keyed in _prefetch(keyed_batches):
                t0 = clock.monotonic()
                accepted, duplicates = pipeline.write_batch(
                    session, records, errors, position, keyed
                )
                session.commit()
                metrics.observe_batch(
                    accepted, duplicates, len(errors), clock.monotonic() - t0, sub.created_at
                )
                if progress is not None:
                    progress(len(records) + len(errors))
        except BaseException:
            session.rollback()
            raise
        sub.status = "done"
        sub.finished_at = utcnow()
        session.commit()
        metrics.LAG.set(0)
        return Receipt.of(
            sub, source.filename, "resumed an interrupted submission" if resumed else ""
        )


def get_receipt(session: Session, principal: Principal, submission_id: int) -> Receipt:
    sub = session.scalar(
        select(Submission).where(
            Submission.id == submission_id, policy.scope_filter(principal, Submission.org_id)
        )
    )
    if sub is None:
        raise NotFound(f"no submission {submission_id}")
    return Receipt.of(sub)


def ingest_paths(
    factory: sessionmaker[Session],
    principal: Principal | None,
    paths: Iterable[str],
    **options: Any,
) -> Iterator[Receipt]:
    from concord.intake.sources import open_sources

    for source in open_sources(paths):
        try:
            yield ingest(factory, principal, source, **options)
        finally:
            source.stream.close()
