"""Intake: stream records from a reader into events, folding duplicates, in batches.

Each batch is one transaction that also advances the submission's progress marker, so a
process killed half-way and run again resumes after the last committed batch: nothing is
lost and nothing is counted twice. Re-submitting a finished file changes nothing. A slow
database slows intake down (the next batch is read only after the last one committed), so
memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import codecs
import contextlib
import email
import email.policy
import gc
import gzip
import hashlib
import json
import logging
import queue
import shutil
import sys
import tempfile
import threading
import time as clock
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import Engine, bindparam, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from concord.access import policy
from concord.access.model import TLP, Principal, Role, Share
from concord.audit import service as audit
from concord.bulk import Bulk, literal
from concord.config import env_bytes, env_int, get_settings
from concord.db import utcnow
from concord.errors import (
    ConcordError,
    ConfigurationError,
    Conflict,
    FaultLocation,
    Faults,
    Forbidden,
    InvalidInput,
    NotFound,
)
from concord.events.model import (
    Event,
    Submission,
    SubmissionFile,
    SubmissionPart,
)
from concord.events.tasks import correlate_soon
from concord.intake import lease, metrics, parallel, registry
from concord.intake.prepare import (
    EVENT_COLUMNS,
    RED_WITHOUT_USER,
    DedupPolicy,
    Plan,
    PreparedBatch,
    Preparer,
    prepared_batches,
)
from concord.intake.readers import Reader
from concord.intake.records import ReadError, ReadItem, unnamed
from concord.orgs.model import Organization
from concord.orgs.whois import current_index

log = logging.getLogger("concord.intake")

BATCH = 10_000
MAX_ERRORS_KEPT = 1000
# SQLite commits every COMMIT_ROWS records rather than every batch: each commit writes every
# index page the transaction touched, and pages of indexes fed in random key order (dedup
# keys, values) are touched by every batch. The page cache holds them in between.
COMMIT_ROWS = env_int("CONCORD_INTAKE_COMMIT_ROWS", 50000, minimum=1)
SQLITE_CACHE_KB = 65536
SNIFF_BYTES = registry.SNIFF_BYTES
# From this size on, a submission is read and prepared in a second process (it costs that
# process's start, about a second, and wins from a few MB on).
PARALLEL_FROM = env_bytes("CONCORD_INTAKE_PARALLEL_BYTES", 8 * 1024 * 1024, minimum=0)


RESUBMITTED = "this file was submitted before; nothing changed"
# Declared or left to the records' markings, a file is the same submission (counting it again
# would count its observations twice): the receipt says what the events were given.
RESUBMITTED_AS_MARKED = (
    "this file was submitted before with its records' own TLP markings; nothing changed, "
    "and its events keep those markings"
)
RESUBMITTED_DECLARED = (
    "this file was submitted before with its TLP declared; nothing changed, and its events "
    "keep that TLP"
)
RESUBMITTED_AND_SHARED = (
    "this file was submitted before; its events are now shared with their owners"
)
# The records a file's first reading rejected are still wrong in it: the receipt repeats
# them, and says they were not read again.
RESUBMITTED_WITH_ERRORS = (
    "this file was submitted before; nothing changed; the rejected records are those of its "
    "first reading"
)
# Sent with no user (the CLI, mail), a file's TLP:RED records were refused: nobody could have
# read them. A user sending it again learns how to take them in, not just "nothing changed".
RESUBMITTED_RED_REFUSED = (
    "this file was submitted before with no user, and its TLP:RED records were refused then; "
    "nothing changed: to take them in, send it with TLP:RED declared, as the user who will "
    "read them"
)
# A report never folds into an event of another TLP (see DedupPolicy.key): a file sent
# again at another level adds its events at that level, and leaves those held as they are.
RESUBMITTED_AT_ANOTHER_TLP = (
    "this file was submitted before at another TLP; its events are now held at both, and "
    "those sent before keep their TLP"
)
# ... unless its records carry their own, stricter markings, which give them the TLP they had
# the first time: they fold into the events sent before, as a feed's rows have no identity
# of their own to tell them from a second observation.
RESUBMITTED_AT_ANOTHER_TLP_FOLDED = (
    "this file was submitted before at another TLP, but its records' own markings give them "
    "the TLP they had then: they were counted again in the events sent before"
)
# what a receipt of a file sent before says of it, whatever the channel
RESUBMISSION_NOTES = frozenset(
    {
        RESUBMITTED,
        RESUBMITTED_AS_MARKED,
        RESUBMITTED_DECLARED,
        RESUBMITTED_AND_SHARED,
        RESUBMITTED_WITH_ERRORS,
        RESUBMITTED_RED_REFUSED,
        RESUBMITTED_AT_ANOTHER_TLP,
        RESUBMITTED_AT_ANOTHER_TLP_FOLDED,
    }
)


@dataclass
class Receipt:
    id: int | None  # None for a file that was refused before any submission
    filename: str
    format: str
    tlp: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"
    note: str = ""
    shared: int = 0  # events shared with the owners of their resources by this submission
    has_events: bool = False  # whether it added any event (a repeat folds into earlier ones)
    skipped: int = 0  # records read that name nothing to take in (a MISP comment)
    tlp_declared: bool = True  # False: records kept their own markings, `tlp` for unmarked
    parts: list[Receipt] = field(default_factory=list)  # a mail's attachments taken in
    # files of an archive that were not taken in (a nested archive, one of no known format),
    # each named in `errors` with the reason: files, not records, so never counted as
    # rejected, as `concord ingest` counts them
    not_taken_in: int = 0
    # hidden files of an archive or of a mail's attached archives (a name starting with a
    # dot, the __MACOSX folder a Mac adds), skipped as in a folder: a note, not a fault
    skipped_files: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, sub: Submission, filename: str | None = None, note: str = "") -> Receipt:
        kept = json.loads(sub.errors)
        errors = [e for e in kept if e.get(_SKIPPED) != _HIDDEN]
        hidden = [e["source"] for e in kept if e.get(_SKIPPED) == _HIDDEN]
        rejected, not_taken_in = _rejected_and_not_taken_in(sub)
        if not_taken_in:
            errors = [{**e, "reason": not_taken_in_because(e["reason"])} for e in errors]
        return cls(
            sub.id,
            filename or sub.filename,
            sub.format,
            sub.tlp,
            sub.accepted,
            sub.duplicates,
            rejected,
            errors,
            sub.status,
            note,
            sub.shared,
            sub.first_event_id is not None,
            sub.skipped,
            sub.tlp_declared,
            not_taken_in=not_taken_in,
            skipped_files=hidden,
        )

    @property
    def took_nothing(self) -> bool:
        """Whether every record read was rejected: the file was most likely not what it was
        taken for, and the caller is told so as a failure, its receipt beside."""
        return bool(self.rejected) and not (self.accepted or self.duplicates or self.skipped)

    @classmethod
    def refused(cls, filename: str, reason: str) -> Receipt:
        """For a file that was not taken in at all: no submission, nothing stored."""
        error = {"source": filename, "reason": unnamed(reason, filename)}
        return cls(None, filename, "", "", errors=[error], status="refused", tlp_declared=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "filename": self.filename,
            "format": self.format,
            "tlp": self.tlp,
            "tlp_declared": self.tlp_declared,
            "status": self.status,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "errors": self.errors,
            "note": self.note,
            "shared": self.shared,
            "has_events": self.has_events,
            "parts": [part.as_dict() for part in self.parts],
            "not_taken_in": self.not_taken_in,
            "skipped_files": self.skipped_files,
        }


# A hidden file skipped is kept with the submission's errors, marked apart ({"source": name,
# "skipped": "hidden"}): the receipt lists it as a note, never as a fault.
_SKIPPED, _HIDDEN = "skipped", "hidden"

# how an archive's receipt says what became of a file of it that was refused, and why
NOT_TAKEN_IN = "not taken in ({reason})"


def _rejected_and_not_taken_in(sub: Submission) -> tuple[int, int]:
    """The records a submission rejected, and the files it held that were not taken in. An
    archive's own faults are all files not taken in (its reader yields nothing else): they
    are counted apart from the records its files rejected."""
    if sub.format == ARCHIVE_FORMAT:
        return 0, sub.rejected
    return sub.rejected, 0


def not_taken_in_because(reason: str) -> str:
    """The reason a file of an archive was refused, as its receipt says it: what became of
    the file, then why."""
    return NOT_TAKEN_IN.format(reason=reason)


@dataclass
class Source:
    """What to ingest: a seekable binary stream and its name."""

    stream: BinaryIO
    filename: str


PART_BYTES = 4 * 1024 * 1024


_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _as_utf8(source: Source) -> Source:
    """A UTF-16 file (Excel's "Unicode text", some Windows tools) as UTF-8, which every
    reader reads; told by its byte order mark, transcoded piece by piece into a spooled
    file so that memory stays bounded. Other files are returned as they are."""
    head = source.stream.read(2)
    source.stream.seek(0)
    if head not in _UTF16_MARKS:
        return source
    decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
    out = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 (returned)
    while chunk := source.stream.read(1 << 20):
        out.write(decoder.decode(chunk).encode())
    out.write(decoder.decode(b"", final=True).encode())
    out.seek(0)
    return Source(out, source.filename)  # type: ignore[arg-type]


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


_DONE = object()


def _prefetch(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Read and parse the next batches in a second thread while this one writes.

    The queue is bounded: when the database is slow, the reader waits, so memory holds at
    most `depth` batches whatever the input's size (backpressure instead of piling up).
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        """Hand `item` to the consumer; False once it stopped taking any."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

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


def write_batch(
    session: Session, sub: Submission, plan: Plan, batch: PreparedBatch
) -> tuple[int, int]:
    """Store one prepared batch in the caller's transaction; returns (accepted, duplicates).

    Only what needs stored state happens here: folding into events already stored, new
    ids, and the ids of the indicators sighted. Everything per record was done by `prepare`.
    """
    bulk = Bulk(session)
    if batch.marks:
        _drop_counted(bulk, plan, batch)
    if bulk.dialect == "postgresql":
        accepted, low, high = _write_postgresql(bulk, plan, batch)
    else:
        accepted, low, high = _write_sqlite(bulk, plan, batch)
    if batch.ipv6:  # new IPv6 indicators get their key; a feed without any pays nothing
        bulk.executemany(
            "UPDATE indicators SET ipv6_hex = ? WHERE value = ? AND kind = 'ipv6' "
            "AND ipv6_hex IS NULL",
            batch.ipv6,
        )
    if accepted:  # the span of ids its events took: lists one submission's events by key
        sub.first_event_id = min(sub.first_event_id or low, low)
        sub.last_event_id = max(sub.last_event_id or high, high)
    duplicates = batch.records - accepted
    sub.rows_done = batch.position
    sub.accepted += accepted
    sub.duplicates += duplicates
    sub.rejected += len(batch.errors)
    sub.skipped += batch.skipped
    if batch.errors:
        kept = json.loads(sub.errors)
        room = MAX_ERRORS_KEPT - len(kept)
        if room > 0:
            kept.extend(_runs(batch.errors)[:room])
            sub.errors = json.dumps(kept, ensure_ascii=False)
    return accepted, duplicates


def _drop_counted(bulk: Bulk, plan: Plan, batch: PreparedBatch) -> None:
    """Take out of `batch` the records its sender sent before (or twice in it): a MISP
    attribute in an event re-pulled after an edit, a STIX object in a bundle written again.
    Their events and sightings are not counted again, and the receipt lists them as
    duplicates. What they would widen (first and last seen) already covers them."""
    org = plan.org_id
    marks = list(dict.fromkeys(mark for _key, mark, _times in batch.marks))
    if bulk.dialect == "postgresql":
        # the marks this statement inserts are the ones no other writer has counted
        fresh = {
            mark
            for (mark,) in bulk.insert(
                "record_marks",
                ("org_id", "mark"),
                [(org, mark) for mark in marks],
                conflict=("org_id", "mark"),
                returning="mark",
            )
            or ()
        }
    else:  # the writer holds the database's write lock: what it reads stays true
        conn = bulk.session.connection()
        stored: set[int] = set()
        for start in range(0, len(marks), 500):
            chunk = marks[start : start + 500]
            stored.update(
                mark
                for (mark,) in conn.exec_driver_sql(
                    f"SELECT mark FROM record_marks WHERE org_id = {literal(org)} "
                    f"AND mark IN ({', '.join('?' * len(chunk))})",
                    tuple(chunk),
                )
            )
        fresh = set(marks) - stored
        bulk.insert("record_marks", ("org_id", "mark"), [(org, mark) for mark in fresh])
    repeats: Counter[int] = Counter()
    for key, mark, times in batch.marks:
        if mark in fresh:
            fresh.discard(mark)  # its first occurrence counts, any later one repeats it
        else:
            repeats[key] += times
    if not repeats:
        return
    rows, gone = [], set()
    for row in batch.rows:
        key = row[_KEY]
        n = row[_COUNT] - repeats.get(key, 0)
        if n <= 0:
            gone.add(key)
        else:
            rows.append(row if n == row[_COUNT] else (*row[:_COUNT], n, *row[_COUNT + 1 :]))
    less: Counter[tuple[str, str]] = Counter()
    for key, kind, value, _role in batch.links:
        less[(kind, value)] += repeats.get(key, 0)
    batch.rows = rows
    batch.links = [link for link in batch.links if link[0] not in gone]
    batch.sighted = [
        (kind, value, n - less[(kind, value)], first, last)
        for kind, value, n, first, last in batch.sighted
        if n > less[(kind, value)]
    ]


def _runs(errors: list[ReadError]) -> list[dict[str, Any]]:
    """Errors as a receipt lists them: lines refused one after another for the same reason
    are one entry, so that a quote left open, which puts the rest of a file out of step,
    reads as one fault rather than thousands. Each line still counts as rejected."""
    runs: list[list[ReadError]] = []
    for error in errors:
        if runs and _continues(runs[-1][-1], error):
            runs[-1].append(error)
        else:
            runs.append([error])
    out = []
    for run in runs:
        entry = run[0].as_dict()
        if len(run) > 1:
            count = len(run) - 1
            follow = "the next line" if count == 1 else f"each of the {count} lines that follow"
            entry["reason"] = f"{run[0].reason} (the same on {follow})"
        out.append(entry)
    return out


def _continues(before: ReadError, error: ReadError) -> bool:
    """Whether `error` refuses the line after `before`'s, for the same reason."""
    a, b = before.location, error.location
    return (
        a.line is not None
        and b.line == a.line + 1
        and (a.source, a.pointer, a.field, before.reason)
        == (b.source, b.pointer, b.field, error.reason)
    )


def _fold_events(bulk: Bulk, *, first_seen: bool = True) -> str:
    """An event seen again: add its count, widen its last seen and (unless the caller
    widens it apart) its first seen."""
    earlier = f"time = {bulk.least('events.time', 'excluded.time')}, " if first_seen else ""
    return (
        f"count = events.count + excluded.count, {earlier}"
        f"last_seen = {bulk.greatest('events.last_seen', 'excluded.last_seen')}"
    )


def _widen_indicators(bulk: Bulk) -> str:
    return (
        f"first_seen = {bulk.least('indicators.first_seen', 'excluded.first_seen')}, "
        f"last_seen = {bulk.greatest('indicators.last_seen', 'excluded.last_seen')}"
    )


def _add_sightings(bulk: Bulk) -> str:
    return (
        "count = sightings.count + excluded.count, "
        f"first_seen = {bulk.least('sightings.first_seen', 'excluded.first_seen')}, "
        f"last_seen = {bulk.greatest('sightings.last_seen', 'excluded.last_seen')}"
    )


_TIME, _LAST_SEEN, _COUNT, _KEY = map(
    EVENT_COLUMNS.index, ("time", "last_seen", "count", "dedup_key")
)


def _write_sqlite(bulk: Bulk, plan: Plan, batch: PreparedBatch) -> tuple[int, int, int]:
    """SQLite: four statements, each run row by row inside the driver, with the batch's
    lists as they came from the preparer; ids are found by the statements themselves, so
    no row passes through Python here. Returns how many events are new, and their lowest
    and highest id.

    The transaction holds the database's write lock from its first statement (BEGIN
    IMMEDIATE), so the events it adds are exactly those above the largest id it saw first.
    """
    conn = bulk.session.connection()
    top = bulk.max_id("events")
    org, country = literal(plan.org_id), literal(plan.country)
    # SQLite re-indexes a column an update assigns even when its value stays, so the fold
    # leaves the indexed `time` alone: it skips a repeat earlier than the stored event, and
    # the statement below folds those (rare) rows, found by the count of rows changed.
    bulk.insert(
        "events",
        EVENT_COLUMNS,
        batch.rows,
        conflict=("origin_org_id", "dedup_key"),
        update=_fold_events(bulk, first_seen=False),
        only_if="excluded.time >= events.time",
    )
    if bulk.changed < len(batch.rows):
        conn.exec_driver_sql(
            "UPDATE events SET time = ?1, count = count + ?2, last_seen = MAX(last_seen, ?3) "
            f"WHERE origin_org_id = {org} AND dedup_key = ?4 AND time > ?1",
            [(r[_TIME], r[_COUNT], r[_LAST_SEEN], r[_KEY]) for r in batch.rows],
        )
    added = bulk.max_id("events") - top
    if batch.sighted:  # (?1 kind, ?2 value, ?3 count, ?4 first seen, ?5 last seen)
        conn.exec_driver_sql(
            "INSERT INTO indicators (kind, value, first_seen, last_seen, cross_state) "
            "VALUES (?1, ?2, ?4, ?5, 0) "
            f"ON CONFLICT (value, kind) DO UPDATE SET {_widen_indicators(bulk)}",
            batch.sighted,
        )
        conn.exec_driver_sql(
            "INSERT INTO sightings (indicator_id, org_id, country, count, first_seen, last_seen) "
            f"SELECT id, {org}, {country}, ?3, ?4, ?5 FROM indicators "
            "WHERE value = ?2 AND kind = ?1 "
            f"ON CONFLICT (indicator_id, org_id) DO UPDATE SET {_add_sightings(bulk)}",
            batch.sighted,
        )
    if batch.links and added:  # (?1 event key, ?2 kind, ?3 value, ?4 role); new events only
        conn.exec_driver_sql(
            "INSERT INTO event_observables (event_id, indicator_id, role) "
            "SELECT e.id, i.id, ?4 FROM events e, indicators i "
            f"WHERE e.origin_org_id = {org} AND e.dedup_key = ?1 AND e.id > {top} "
            "AND i.value = ?3 AND i.kind = ?2",
            batch.links,
        )
    return added, top + 1, top + added


def _write_postgresql(bulk: Bulk, plan: Plan, batch: PreparedBatch) -> tuple[int, int, int]:
    """PostgreSQL: one upsert adds new events and folds known ones; it returns which rows it
    inserted (xmax = 0), so there is neither a lookup first nor a race with another writer.
    Returns how many events are new, and their lowest and highest id."""
    returned = bulk.insert(
        "events",
        EVENT_COLUMNS,
        batch.rows,
        conflict=("origin_org_id", "dedup_key"),
        update=_fold_events(bulk),
        returning="id, dedup_key, (xmax = 0)",
    )
    added = {key: event_id for event_id, key, inserted in returned or () if inserted}
    span = (len(added), min(added.values(), default=0), max(added.values(), default=0))
    sighted = batch.sighted
    if not sighted:
        return span
    returned = bulk.insert(
        "indicators",
        ("kind", "value", "first_seen", "last_seen", "cross_state"),
        [(kind, value, first, last, False) for kind, value, _n, first, last in sighted],
        conflict=("value", "kind"),
        update=_widen_indicators(bulk),
        returning="id, kind, value",
    )
    ids = {(kind, value): i for i, kind, value in returned or ()}
    org_id, country = plan.org_id, plan.country
    bulk.insert(
        "sightings",
        ("indicator_id", "org_id", "country", "count", "first_seen", "last_seen"),
        [
            (ids[(kind, value)], org_id, country, n, first, last)
            for kind, value, n, first, last in sighted
        ],
        conflict=("indicator_id", "org_id"),
        update=_add_sightings(bulk),
    )
    bulk.insert(
        "event_observables",
        ("event_id", "indicator_id", "role"),
        [
            (added[key], ids[(kind, value)], role)
            for key, kind, value, role in batch.links
            if key in added
        ],
    )
    return span


_gc_lock = threading.Lock()
_gc_users = 0
_gc_threshold: tuple[int, int, int] | None = None


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while records stream through.

    Intake allocates millions of short-lived objects without cycles (reference counting
    frees them); with the default threshold the collector's passes over them cost about a
    third of the run. The setting is process-wide, so it is restored by the last submission
    running in the process.
    """
    global _gc_users, _gc_threshold
    with _gc_lock:
        if _gc_users == 0:
            _gc_threshold = gc.get_threshold()
            gc.set_threshold(max(_gc_threshold[0], 200_000), *_gc_threshold[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_threshold is not None:
                gc.set_threshold(*_gc_threshold)


def resolve_org(session: Session, principal: Principal | None, as_org: str | None) -> Organization:
    """The originating organisation: the principal's own, or --as ORG for the console or the
    centre's staff acting for a member."""
    if as_org:
        org = session.scalar(select(Organization).where(Organization.slug == as_org))
        # refused alike whether that organisation exists or not
        if (
            principal is not None
            and not principal.is_centre
            and (org is None or org.id != principal.org_id)
        ):
            raise Forbidden("only the centre may submit on behalf of another organisation")
        if org is None:
            raise InvalidInput(f"no organisation {as_org!r}", FaultLocation(field="as"))
        return org
    if principal is None or principal.org_id is None:
        raise InvalidInput(
            "say which organisation reports this (--as ORG)", FaultLocation(field="as")
        )
    org = session.get(Organization, principal.org_id)
    assert org is not None
    return org


def submission_tlp(principal: Principal | None, tlp: str | None) -> TLP:
    """The TLP a submission declares (`tlp`), or AMBER for its unmarked records (a blank
    `tlp` declares none, as an empty field on the page)."""
    tlp = (tlp or "").strip() or None
    try:
        level = TLP.parse(tlp) if tlp else TLP.AMBER
    except ValueError as exc:
        raise InvalidInput(str(exc), FaultLocation(field="tlp")) from None
    if level == TLP.RED and (principal is None or principal.user_id is None):
        # RED is read by named people only, starting with the one who sent it: without a
        # user, the events would be stored where nobody can ever read them.
        raise InvalidInput(
            "TLP:RED is for named people: send it through the API or the intake page as "
            "the user who will read it",
            FaultLocation(field="tlp"),
        )
    return level


def sender_org(
    session: Session, principal: Principal | None, as_org: str | None, share_owners: bool
) -> Organization:
    """The organisation a submission is sent as, once the sender may send it."""
    org = resolve_org(session, principal, as_org)
    if principal is not None and principal.role == Role.READER:
        raise Forbidden("readers cannot submit reports")
    if share_owners and principal is not None and not policy.staff_writer(principal):
        raise Forbidden("only admins and analysts share events with their owners")
    return org


def check_options(
    factory: sessionmaker[Session],
    principal: Principal | None,
    *,
    fmt: str | None = None,
    tlp: str | None = None,
    as_org: str | None = None,
    share_owners: bool = False,
) -> None:
    """Refuse, all at once, what is wrong with options that hold for every file of a run
    (the declared format, the TLP, who sends): told before any file is read, rather than
    at the first file whose format can be told, or not at all when none can."""
    if fmt:
        registry.known_format(fmt)
    faults = Faults()
    faults.check(lambda: submission_tlp(principal, tlp), None)
    with factory() as session:
        faults.check(lambda: sender_org(session, principal, as_org, share_owners), None)
    faults.raise_any()


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
    parallel_from: int | None = None,
    reader: Reader | None = None,
    share_owners: bool = False,
    stop: threading.Event | None = None,
) -> Receipt:
    """Store a submission and its events, `batch_size` records per transaction.

    With `share_owners`, each TLP:AMBER or AMBER+STRICT event the submission adds is also
    shared with the owner of the resource it concerns, so that the owner's contacts see it.

    The format is `reader` when given (e.g. a feed profile of the caller's), else `fmt`
    from the registry, else detected.

    `parallel_from` is the size in bytes from which records are prepared in a separate
    process (default CONCORD_INTAKE_PARALLEL_BYTES).

    Once `stop` is set (its server stopping), the intake stops after the batch it writes,
    keeps what it wrote, and raises `Stopped`: the same file sent again goes on there."""
    utf8 = _as_utf8(source)
    try:
        return _ingest(
            factory,
            principal,
            utf8,
            fmt=fmt,
            tlp=tlp,
            as_org=as_org,
            channel=channel,
            batch_size=batch_size,
            progress=progress,
            parallel_from=parallel_from,
            reader=reader,
            share_owners=share_owners,
            stop=stop,
        )
    finally:
        if utf8 is not source:
            utf8.stream.close()


def _ingest(
    factory: sessionmaker[Session],
    principal: Principal | None,
    source: Source,
    *,
    fmt: str | None,
    tlp: str | None,
    as_org: str | None,
    channel: str,
    batch_size: int,
    progress: Callable[[int], None] | None,
    parallel_from: int | None,
    reader: Reader | None,
    share_owners: bool,
    stop: threading.Event | None,
) -> Receipt:
    if stop is not None and stop.is_set():  # e.g. the next file of an archive
        raise Stopped()
    tlp = (tlp or "").strip() or None  # an empty field declares nothing, as on the page
    if reader is None:
        head = source.stream.read(SNIFF_BYTES)
        source.stream.seek(0)
        options: dict[str, Any] = {
            "tlp": tlp,
            "as_org": as_org,
            "channel": channel,
            "batch_size": batch_size,
            "progress": progress,
            "parallel_from": parallel_from,
            "share_owners": share_owners,
            "stop": stop,
        }
        if registry.archive_named(head, source.filename) is not None:
            return _ingest_archive(factory, principal, source, fmt=fmt, **options)
        reader = registry.choose(head, source.filename, fmt)
        if fmt:  # refused before anything is stored: no empty submission is left behind
            registry.refuse_misdeclared(reader, head, source.stream, source.filename)
        if reader.name == "email":
            return _ingest_mail(factory, principal, source, reader, **options)
    level = submission_tlp(principal, tlp)
    sha, size = _digest(source.stream)
    dedup = DedupPolicy.from_env()
    with factory() as session:
        org = sender_org(session, principal, as_org, share_owners)
        # A RED file is its sender's: a colleague sending the same one makes a submission
        # of their own, and learns nothing of the first.
        sender = principal.user_id if principal is not None and principal.user_id else -1
        audience = sender if level == TLP.RED else 0
        declared = tlp is not None
        sub = session.scalar(
            select(Submission).where(
                Submission.org_id == org.id,
                Submission.sha256 == sha,
                Submission.format == reader.name,
                Submission.tlp == level.value,
                Submission.audience == audience,
            )
        )
        if sub is not None and sub.status == "done":
            return _submitted_before(session, principal, sub, source, declared, share_owners)
        resumed = sub is not None
        seen_at_another_tlp = session.scalar(
            select(Submission.id)
            .where(
                Submission.org_id == org.id,
                Submission.sha256 == sha,
                Submission.format == reader.name,
                Submission.tlp != level.value,
                # another's RED file is not theirs to know of
                or_(Submission.tlp != TLP.RED.value, Submission.audience == sender),
            )
            .limit(1)
        )
        if sub is None:
            sub = Submission(
                org_id=org.id,
                user_id=principal.user_id if principal else None,
                channel=channel,
                filename=source.filename[:300],
                format=reader.name,
                tlp=level.value,
                audience=audience,
                tlp_declared=declared,
                sha256=sha,
                size=size,
            )
            session.add(sub)
            try:
                session.flush()
            except IntegrityError:
                # the same file, sent at this very moment by another run: theirs to take in
                session.rollback()
                raise lease.busy() from None
            _store_parts(session, sub.id, source.stream)
            audit.record(
                session,
                principal,
                "submit",
                "submission",
                sub.id,
                # no file name: it can name a victim, and admins who read the log may not
                # be readers of the submission (the receipt names the file to them)
                {"format": reader.name, "org": org.slug},
            )
            session.commit()
        sub_id = sub.id
    with lease.writing(factory, sub_id):
        return _take_in(
            factory,
            principal,
            source,
            sub_id,
            reader,
            level,
            declared,
            dedup,
            size,
            resumed=resumed,
            seen_at_another_tlp=seen_at_another_tlp is not None,
            batch_size=batch_size,
            progress=progress,
            parallel_from=parallel_from,
            share_owners=share_owners,
            stop=stop,
        )


MAIL_OF_ATTACHMENTS = (
    "its attachments were taken in as files of their own, each with its receipt; its text "
    "was read as a cover letter"
)
ARCHIVE_OF_FILES = "its files were taken in as files of their own, each with its receipt"
MAIL_FORMAT = "email-attachments"  # a mail taken in as its attachments
ARCHIVE_FORMAT = "archive"
_PARTS_NOTES = {MAIL_FORMAT: MAIL_OF_ATTACHMENTS, ARCHIVE_FORMAT: ARCHIVE_OF_FILES}
# What an archive or a mail's attachments may unpack to, in uploads' worth: sent through the
# API or the intake page, they are unpacked within the request.
UPLOAD_UNPACKS_TO = 10


def _unpacks_to() -> int:
    return UPLOAD_UNPACKS_TO * get_settings().max_upload_bytes


class Refusals(Reader):
    """A file taken in as the files it holds (a mail's attachments, an archive's members):
    an error for each that could not be opened or read, then what `then` (the e-mail reader)
    reads of the file itself, or nothing when its text is a cover letter. Never detected,
    never declared."""

    description = "a file whose contents are taken in as files of their own"

    def __init__(
        self, refused: Sequence[ReadError], then: Reader | None = None, name: str = ""
    ) -> None:
        self.refused = tuple(refused)
        self.then = then
        self.name = then.name if then is not None else name

    def sniff(self, head: bytes, filename: str) -> bool:
        return False

    def read(self, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
        yield from self.refused
        if self.then is not None:
            yield from self.then.read(stream, source)


SERVER_STOPPING = (
    "the server is stopping: the file was not taken in whole; what was read is kept, and "
    "sending it again once the server is back goes on where it stopped"
)


class Stopped(ConcordError):
    """Intake stopped before the end of a file because its server is stopping."""

    def __init__(self) -> None:
        super().__init__(SERVER_STOPPING, 503, "Service unavailable")


class NotAReport(InvalidInput):
    """A file that reports nothing (an automatic reply, a delivery notice): refused as that
    file, where it is one of several."""


def _ingest_mail(
    factory: sessionmaker[Session],
    principal: Principal | None,
    source: Source,
    reader: Reader,
    **options: Any,
) -> Receipt:
    """A mail: read as the report it is, or taken in as the feeds it carries (see
    `mail`), each a submission of its own listed on the mail's receipt. `options` are
    `ingest`'s."""
    from concord.intake import mail  # it hands the feeds it finds back to `ingest`
    from concord.intake.sources import noting_hidden

    def parsed_whole() -> EmailMessage:
        whole = email.message_from_binary_file(source.stream, policy=email.policy.default)
        source.stream.seek(0)
        return cast(EmailMessage, whole)

    # Whether it is a report at all, or the report itself, the headers tell: an ARF or X-ARF
    # mail is then parsed once, by the reader, not here as well.
    message: EmailMessage | None = None
    head = mail.headers_in(source.stream)
    if head is None:  # a header block longer than the peek: read whole, once
        head = message = parsed_whole()
    why = mail.not_a_report(head)
    if why is not None:
        raise NotAReport(why, FaultLocation(source=source.filename))
    if mail.is_a_report(head):
        return ingest(factory, principal, source, reader=reader, **options)
    message = message or parsed_whole()
    parts: list[Receipt] = []

    def take_in(found: mail.Attached) -> None:
        attached = Source(found.stream, found.name)
        parts.append(ingest(factory, principal, attached, reader=found.reader, **options))

    found_hidden: list[str] = []
    with noting_hidden(found_hidden):
        refused = mail.feeds_in(message, take_in, _unpacks_to())
    hidden = _as_attached(message, found_hidden)
    if not parts and not refused:
        receipt = ingest(factory, principal, source, reader=reader, **options)
        return _noting_hidden(factory, receipt, hidden)
    # Beside feeds taken in, the mail's text is a cover letter; alone with refusals, it is
    # read as the report it may well be (a plain-text report with the sample as an
    # encrypted archive, say). The refusals are known in this process only: never a second.
    receipt = ingest(
        factory,
        principal,
        source,
        reader=Refusals(refused, None if parts else reader, MAIL_FORMAT),
        **{**options, "parallel_from": sys.maxsize},
    )
    return _noting_hidden(factory, with_parts(factory, receipt, parts), hidden)


def _as_attached(message: EmailMessage, found: list[str]) -> list[str]:
    """Files found in a mail's attachments, named after the attachments as the mail sent
    them ("report.zip!.DS_Store"), as `mail` names the files it takes in: the attachments
    are opened under names of its own ("0.zip")."""
    from concord.intake import mail

    named = [
        part.get_filename() or ""
        for part in message.walk()
        if part.get_filename() and not part.is_multipart()
    ]
    stored = [mail.attachment_names(number, name) for number, name in enumerate(named)]
    shown = []
    for name in found:
        for as_sent, opened in stored:
            if name.startswith(f"{opened}!"):
                name = as_sent + name[len(opened) :]
                break
        shown.append(name)
    return shown


def _ingest_archive(
    factory: sessionmaker[Session],
    principal: Principal | None,
    source: Source,
    **options: Any,
) -> Receipt:
    """A .zip or .gz sent through the API or the intake page: each file it holds taken in
    as `concord ingest` takes it (a submission of its own, in the declared format if any),
    listed on the archive's receipt with each file refused and why. A file that fails for a
    passing reason (the database busy) fails the archive, which is then sent again whole."""
    from concord.intake.sources import Refused, open_file

    parts: list[Receipt] = []
    refused: list[ReadError] = []
    hidden: list[str] = []
    whole = _unpacks_to()
    with tempfile.TemporaryDirectory(prefix="concord-upload-") as folder:
        path = Path(folder) / "upload"
        with path.open("wb") as copy:
            shutil.copyfileobj(source.stream, copy)
        source.stream.seek(0)
        for found in open_file(path, source.filename, whole, hidden):
            if isinstance(found, Refused):
                if found.filename == source.filename:  # the archive itself cannot be read
                    raise InvalidInput(found.reason, FaultLocation(source=source.filename))
                refused.append(_refusal(found.filename, found.reason))
                continue
            with found.stream:
                receipt = _ingest_one(factory, principal, found, keep_going=False, **options)
            if receipt.id is None:  # refused whole: no submission of its own
                refused.append(_refusal(receipt.filename, receipt.errors[0]["reason"]))
            else:
                parts.append(receipt)
    if not parts:
        raise InvalidInput(
            f"{source.filename}: no file in it could be taken in: "
            + "; ".join(f"{e.location.source}: {e.reason}" for e in refused[:5]),
            FaultLocation(source=source.filename),
        )
    receipt = ingest(
        factory,
        principal,
        source,
        reader=Refusals(refused, name=ARCHIVE_FORMAT),
        # the refusals are known in this process only; the archive names no format itself
        **{**options, "parallel_from": sys.maxsize, "fmt": None},
    )
    return _noting_hidden(factory, with_parts(factory, receipt, parts), hidden)


def _refusal(name: str, reason: str) -> ReadError:
    """A file refused, located by its name: the reason need not repeat it."""
    return ReadError(FaultLocation(source=name), unnamed(reason, name))


def with_parts(factory: sessionmaker[Session], receipt: Receipt, parts: list[Receipt]) -> Receipt:
    """The receipt of a mail or an archive whose files `parts` were taken in: they are
    recorded as its parts (a file sent before, alone or in another mail, is a part of each),
    and its counts include theirs, as the upload's."""
    ids = list(dict.fromkeys(p.id for p in parts if p.id is not None))
    if not parts or receipt.id is None:
        return receipt
    with factory() as session:
        Bulk(session).insert(
            "submission_parts",
            ("submission_id", "part_id"),
            [(receipt.id, part) for part in ids],
            conflict=("submission_id", "part_id"),
        )
        session.commit()
    return _counted_with(receipt, parts)


def _noting_hidden(
    factory: sessionmaker[Session], receipt: Receipt, hidden: Sequence[str]
) -> Receipt:
    """The receipt of an archive or a mail, listing the hidden files skipped in it (as
    `concord ingest` counts those of a folder): kept with the submission, so that its
    receipt lists them whenever it is read. They cost nothing; the same file sent again
    lists each once."""
    names = list(dict.fromkeys(hidden))
    if not names or receipt.id is None:
        return receipt
    with factory() as session:
        sub = session.get(Submission, receipt.id)
        kept = json.loads(sub.errors)
        known = {e["source"] for e in kept if e.get(_SKIPPED) == _HIDDEN}
        new = [name for name in names if name not in known]
        if new:
            kept.extend({"source": name, _SKIPPED: _HIDDEN} for name in new)
            sub.errors = json.dumps(kept, ensure_ascii=False)
            session.commit()
    return replace(receipt, skipped_files=list(dict.fromkeys([*receipt.skipped_files, *names])))


def _counted_with(receipt: Receipt, parts: list[Receipt]) -> Receipt:
    return replace(
        receipt,
        parts=parts,
        note=_PARTS_NOTES.get(receipt.format, receipt.note),
        accepted=receipt.accepted + sum(p.accepted for p in parts),
        duplicates=receipt.duplicates + sum(p.duplicates for p in parts),
        rejected=receipt.rejected + sum(p.rejected for p in parts),
        skipped=receipt.skipped + sum(p.skipped for p in parts),
        not_taken_in=receipt.not_taken_in + sum(p.not_taken_in for p in parts),
    )


def _red_refused_for_want_of_a_user(sub: Submission, principal: Principal | None) -> bool:
    if principal is None or not principal.user_id or sub.user_id is not None or not sub.rejected:
        return False
    return any(e.get("reason") == RED_WITHOUT_USER for e in json.loads(sub.errors))


def _submitted_before(
    session: Session,
    principal: Principal | None,
    sub: Submission,
    source: Source,
    declared: bool,
    share_owners: bool,
) -> Receipt:
    """Idempotent by content: the same file again changes nothing, except that it may now
    share what the first time did not."""
    metrics.RECORDS.labels(outcome="duplicate").inc(sub.accepted + sub.duplicates)
    shared = _share_with_owners(session, principal, sub) if share_owners else 0
    session.commit()
    note = RESUBMITTED_WITH_ERRORS if sub.rejected else RESUBMITTED
    if sub.tlp_declared != declared:
        note = RESUBMITTED_DECLARED if sub.tlp_declared else RESUBMITTED_AS_MARKED
    if _red_refused_for_want_of_a_user(sub, principal):
        note = RESUBMITTED_RED_REFUSED
    if shared:
        note = RESUBMITTED_AND_SHARED
    earlier = Receipt.of(sub, source.filename, note)
    return replace(earlier, accepted=0, duplicates=sub.accepted + sub.duplicates, shared=shared)


def _take_in(
    factory: sessionmaker[Session],
    principal: Principal | None,
    source: Source,
    sub_id: int,
    reader: Reader,
    level: TLP,
    declared: bool,
    dedup: DedupPolicy,
    size: int,
    *,
    resumed: bool,
    seen_at_another_tlp: bool,
    batch_size: int,
    progress: Callable[[int], None] | None,
    parallel_from: int | None,
    share_owners: bool,
    stop: threading.Event | None,
) -> Receipt:
    """Read the file into submission `sub_id`, from the rows an earlier run committed on;
    the caller holds the submission's lease."""
    with factory() as session:
        sub = session.get(Submission, sub_id)
        if sub.status == "done":  # finished by another run since it was looked up
            return _submitted_before(session, principal, sub, source, declared, share_owners)
        skip = sub.rows_done
        org = session.get(Organization, sub.org_id)
        plan = Plan(
            submission_id=sub.id,
            created_at=sub.created_at,
            org_id=org.id,
            # the reporting state: the centre's or a partner's events are no state's
            country=org.state,
            user_id=principal.user_id if principal else None,
            tlp=level,
            tlp_declared=declared,
            dedup=dedup,
            dialect=session.get_bind().dialect.name,
            parents=dict(session.execute(select(Organization.id, Organization.parent_id)).all()),
        )
        prepared = _open_batches(
            session, plan, reader, source, size, skip, batch_size, parallel_from
        )
        sub.status = "running"  # stopped or failed before: this run goes on with it
        session.commit()
        try:
            _write_all(session, sub, plan, prepared, progress, stop)
        except Stopped:
            _mark_interrupted(factory, sub_id)
            raise
        except Exception:
            # Said on the receipt; sending the file again resumes after the last commit.
            _mark_failed(factory, sub_id)
            raise
        except BaseException as exc:
            # Ctrl-C: said on the receipt at once, as for a failure. An interrupt inside the
            # driver has its connection closed, but the statement it ran, still referenced
            # from the frames it unwound, keeps the write lock: let go of them first.
            traceback.clear_frames(exc.__traceback__)
            _mark_interrupted(factory, sub_id)
            raise
        finally:
            close = getattr(prepared, "close", None)
            if close is not None:
                close()
        if share_owners:
            _share_with_owners(session, principal, sub)
        sub.status = "done"
        sub.finished_at = utcnow()
        session.commit()
        lease.release_done(factory, sub_id)
        if sub.accepted or sub.duplicates:  # new sightings: other states may share them
            correlate_soon()
        metrics.LAG.set(0)
        note = "resumed an interrupted submission" if resumed else ""
        if seen_at_another_tlp:
            folded = sub.duplicates and not sub.accepted
            note = RESUBMITTED_AT_ANOTHER_TLP_FOLDED if folded else RESUBMITTED_AT_ANOTHER_TLP
        if not (sub.accepted or sub.duplicates or sub.rejected):
            # e.g. a STIX bundle of threat actors only: say so rather than print bare zeros
            note = "nothing to take in: the file holds no event or indicator with a value"
        return Receipt.of(sub, source.filename, note)


def _mark_failed(factory: sessionmaker[Session], submission_id: int) -> None:
    with factory() as session:
        session.execute(
            update(Submission).where(Submission.id == submission_id).values(status="failed")
        )
        session.commit()


# How long marking a run interrupted waits for the database's write lock: a Ctrl-C is not to
# hang behind another writer (the receipt says "interrupted" anyway once the run is gone).
INTERRUPTED_MARK_WAIT_MS = 2000


def _mark_interrupted(factory: sessionmaker[Session], submission_id: int) -> None:
    """Say on the receipt that its run stopped before the end (Ctrl-C), while the run still
    holds the lease. A best effort: should it fail, or the run be killed outright, the
    receipt says so anyway once the lease is gone (`state`)."""
    engine = factory.kw["bind"]
    sqlite = engine.dialect.name == "sqlite"
    with contextlib.suppress(SQLAlchemyError), engine.connect() as conn:
        raw = conn.connection.driver_connection if sqlite else None
        waited = 0
        if raw is not None:  # set before the transaction starts: its BEGIN takes the lock
            waited = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute(f"PRAGMA busy_timeout={INTERRUPTED_MARK_WAIT_MS}")
        else:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {INTERRUPTED_MARK_WAIT_MS}")
        try:
            conn.execute(
                update(Submission)
                .where(Submission.id == submission_id, Submission.status == "running")
                .values(status="interrupted")
            )
            conn.commit()
        finally:
            if raw is not None:
                raw.execute(f"PRAGMA busy_timeout={waited}")


def state(engine: Engine, sub: Submission) -> str:
    """A submission's status as its receipt says it: `running`, `done`, `failed`, or
    `interrupted` (stopped by Ctrl-C or the server's end). One still marked running that no
    run holds (its process killed outright) was interrupted too: its lease ended with it."""
    if sub.status == "running" and not lease.held(engine, sub.id):
        return "interrupted"
    return sub.status


def _share_with_owners(session: Session, principal: Principal | None, sub: Submission) -> int:
    """Share the submission's AMBER and AMBER+STRICT events with their owners, in one
    statement; idempotent, so that a resumed submission shares nothing twice. Returns how
    many events it shared now, and adds them to the submission's count."""
    if sub.first_event_id is None:
        return 0
    events = Event.__table__
    known = (
        select(Share.id)
        .where(
            Share.object_kind == Event.object_kind,
            Share.object_id == events.c.id,
            Share.org_id == events.c.owner_org_id,
        )
        .exists()
    )
    rows = select(
        bindparam("kind", Event.object_kind),
        events.c.id,
        events.c.owner_org_id,
        bindparam("now", utcnow(), type_=Share.created_at.type),
    ).where(
        events.c.id.between(sub.first_event_id, sub.last_event_id),
        events.c.submission_id == sub.id,
        events.c.owner_org_id.is_not(None),
        events.c.owner_org_id != events.c.origin_org_id,
        events.c.tlp.in_(("amber", "amber+strict")),
        ~known,
    )
    # Counted from RETURNING: a Core INSERT ... SELECT reports no row count on psycopg.
    added = session.execute(
        insert(Share)
        .from_select(["object_kind", "object_id", "org_id", "created_at"], rows)
        .returning(Share.id)
    )
    shared = sum(1 for _ in added)
    if shared:
        sub.shared += shared
        audit.record(session, principal, "share-owners", "submission", sub.id, {"events": shared})
    return shared


def _open_batches(
    session: Session,
    plan: Plan,
    reader: Reader,
    source: Source,
    size: int,
    skip: int,
    batch_size: int,
    parallel_from: int | None,
) -> Iterable[PreparedBatch]:
    """Prepared batches: from a child process for a large file (`size` bytes), else from a
    reader thread."""
    url = session.get_bind().url
    limit = PARALLEL_FROM if parallel_from is None else parallel_from
    if size >= limit and url.database not in (None, "", ":memory:"):
        try:
            return parallel.ChildBatches(
                plan,
                url.render_as_string(hide_password=False),
                reader,
                source.stream,
                source.filename,
                skip,
                batch_size,
            )
        except OSError as exc:  # e.g. no room for the fork server's socket
            log.warning("cannot prepare %s in a second process: %s", source.filename, exc)
    preparer = Preparer(plan, current_index(session))
    items = reader.read(source.stream, source.filename)
    return _prefetch(prepared_batches(preparer, items, skip, batch_size))


def _write_all(
    session: Session,
    sub: Submission,
    plan: Plan,
    prepared: Iterable[PreparedBatch],
    progress: Callable[[int], None] | None,
    stop: threading.Event | None = None,
) -> None:
    """Write every batch; commit per batch, or every COMMIT_ROWS records on SQLite. Once
    `stop` is set, commit what was written and raise `Stopped` before the next batch."""
    group = COMMIT_ROWS if plan.dialect == "sqlite" else 0
    if group:
        session.connection().exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
    pending = 0
    interrupted = False
    try:
        with rare_collections():
            for batch in prepared:
                if stop is not None and stop.is_set():
                    session.commit()  # between two batches: resumed from here
                    raise Stopped()
                t0 = clock.monotonic()
                accepted, duplicates = write_batch(session, sub, plan, batch)
                pending += batch.records + len(batch.errors)
                if pending >= group:
                    session.commit()
                    pending = 0
                metrics.observe_batch(
                    accepted, duplicates, len(batch.errors), clock.monotonic() - t0, sub.created_at
                )
                if progress is not None:
                    progress(batch.records + len(batch.errors))
        session.commit()
    except BaseException as exc:
        # Ctrl-C: the process ends, and its connection with it; resetting the cache would
        # wait for the write lock the interrupted commit may still hold.
        interrupted = not isinstance(exc, Exception)
        if not interrupted:
            session.rollback()
            raise
        # The driver cancels the running statement on Ctrl-C; the cancel may land on the
        # rollback instead, whose error must not stand for the interrupt (a "failed" file).
        with contextlib.suppress(SQLAlchemyError):
            session.rollback()
        raise
    finally:
        if group and not interrupted:  # the pooled connection goes back with the default cache
            with contextlib.suppress(SQLAlchemyError):
                session.connection().exec_driver_sql("PRAGMA cache_size=-2000")
                session.commit()


@dataclass(frozen=True)
class Listed:
    """A submission as a list shows it: counted as its receipt counts it."""

    id: int
    filename: str
    format: str
    tlp: str
    tlp_declared: bool
    status: str
    accepted: int
    duplicates: int
    rejected: int
    not_taken_in: int
    created_at: datetime


def recent_submissions(session: Session, principal: Principal, limit: int = 20) -> list[Listed]:
    """The latest submissions the principal may read (`policy.submission_filter`)."""
    subs = session.scalars(
        select(Submission)
        .where(policy.submission_filter(principal, Submission))
        .order_by(Submission.id.desc())
        .limit(limit)
    )
    engine = _engine(session)
    return [
        Listed(
            sub.id,
            sub.filename,
            sub.format,
            sub.tlp,
            sub.tlp_declared,
            state(engine, sub),
            sub.accepted,
            sub.duplicates,
            *_rejected_and_not_taken_in(sub),
            sub.created_at,
        )
        for sub in subs
    ]


def get_receipt(session: Session, principal: Principal, submission_id: int) -> Receipt:
    sub = session.scalar(
        select(Submission).where(
            Submission.id == submission_id, policy.submission_filter(principal, Submission)
        )
    )
    if sub is None:
        raise NotFound(f"no submission {submission_id}")
    receipt = Receipt.of(sub)
    parts = session.scalars(
        select(Submission)
        .join(SubmissionPart, SubmissionPart.part_id == Submission.id)
        .where(
            SubmissionPart.submission_id == sub.id,
            policy.submission_filter(principal, Submission),
        )
        .order_by(Submission.id)
    ).all()
    if parts:
        receipt = _counted_with(receipt, [Receipt.of(p) for p in parts])
    # a run stopped or killed: sending the same file again goes on where it stopped
    return replace(receipt, status=state(_engine(session), sub))


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _database_fault(exc: DBAPIError) -> bool:
    """Whether the database lacks a table or column of this release's schema, or cannot be
    opened at all: every file alike, sending one again changes nothing."""
    text = str(exc.orig)
    return any(
        said in text
        for said in ("no such table", "no such column", "does not exist", "unable to open")
    )


def ingest_paths(
    factory: sessionmaker[Session],
    principal: Principal | None,
    paths: Iterable[str],
    starting: Callable[[str], None] | None = None,
    hidden: list[str] | None = None,
    **options: Any,
) -> Iterator[Receipt]:
    """A receipt per file under `paths`. A file that cannot be read, or whose format cannot
    be told, gets a receipt with status "refused" and the reason, and the next file goes
    on: one stray file in a folder of reports must not stop the rest. `starting` is told
    the name of each file before it is read (for a progress display); `hidden` gets the
    names of the hidden files skipped in the folders."""
    from concord.intake.sources import Refused, open_sources

    for source in open_sources(paths, hidden):
        if isinstance(source, Refused):
            yield Receipt.refused(source.filename, source.reason)
            continue
        if starting is not None:
            starting(source.filename)
        with source.stream:
            yield _ingest_one(factory, principal, source, **options)


def _ingest_one(
    factory: sessionmaker[Session],
    principal: Principal | None,
    source: Source,
    *,
    keep_going: bool = True,
    **options: Any,
) -> Receipt:
    """`ingest` for one file of several: a file that cannot be taken in gets a receipt with
    status "refused" (or "failed") and the reason; a mistake that holds for every file (who
    sends, the declared format, the settings) is raised. Without `keep_going`, so is a
    failure that another try may not meet (the database busy, the file being taken in by
    another run)."""
    if not source.stream.read(SNIFF_BYTES).strip():  # as the API refuses an empty upload
        return Receipt.refused(source.filename, "the file is empty")
    source.stream.seek(0)
    try:
        return ingest(factory, principal, source, **options)
    except registry.UnsupportedFormat as exc:
        declared = options.get("fmt") or options.get("reader") is not None
        if declared and not isinstance(exc, registry.WrongFormat):
            # a declared format is the command's mistake, the same for every file; one
            # file of another format among them is that file's
            raise
        return Receipt.refused(source.filename, exc.message)
    except NotAReport as exc:
        return Receipt.refused(source.filename, exc.message)
    except (Forbidden, NotFound, InvalidInput, ConfigurationError, Stopped):
        # the command's own options (who, which organisation, TLP) or the settings:
        # every file alike; or the intake's end
        raise
    except Exception as exc:
        if not keep_going:
            raise
        return _failed(source, exc)


def _failed(source: Source, exc: Exception) -> Receipt:
    """The receipt of a file whose intake failed with `exc`."""
    if isinstance(exc, Conflict):  # the same file, being taken in by another run
        return Receipt.refused(source.filename, exc.message)
    if isinstance(exc, DBAPIError):
        if _database_fault(exc):
            raise exc  # a database not (yet) made or upgraded: every file alike
        # e.g. the database locked by another writer for too long: this file failed
        log.warning("intake of %s failed", source.filename, exc_info=exc)
        first = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        failed = Receipt.refused(source.filename, f"intake failed: {first[0]}; send it again")
        return replace(failed, status="failed")
    # This file failed (its submission says so and resumes when sent again); the other
    # files still go in.
    log.error("intake of %s failed", source.filename, exc_info=exc)
    reason = exc.message if isinstance(exc, ConcordError) else f"{type(exc).__name__}: {exc}"
    failed = Receipt.refused(source.filename, f"intake failed: {reason}")
    return replace(failed, status="failed")
