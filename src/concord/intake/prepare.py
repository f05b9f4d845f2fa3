"""Turn a reader's records into rows ready to store, without touching the database.

Everything per record that does not need stored state happens here: the dedup key, folding
duplicates inside a batch, the owner lookup, the TLP, the event row and the indicators the
batch sights. Being free of sessions, it runs beside the writer: in a thread for small
submissions, in a separate process for large ones (see `parallel.py`), so that parsing a
feed and writing it use both cores.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import Any

import orjson

from concord.access.model import TLP
from concord.bulk import Timestamps
from concord.config import env_int
from concord.errors import ConfigurationError
from concord.intake.readers.values import ipv6_hex
from concord.intake.records import (
    CONTEXT_KINDS,
    EventRecord,
    Observable,
    ReadError,
    ReadItem,
)
from concord.orgs.whois import LookupIndex, Match

DEDUP_FIELDS_DEFAULT = ("feed", "type", "observables", "port")
DEDUP_FIELDS = frozenset(
    {"feed", "class", "type", "observables", "port", "protocol", "application", "description"}
)
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
# Whose resource an event concerns: the victim or source before the sinkhole or honeypot
# that saw it. A destination is tried last, and only when the record gives no address at the
# other end: then it is the host the record is about (a MISP ip-dst, a STIX dst_ref: the C2
# whose hoster is told), not the sensor that logged a source.
OWNER_ROLES = ("victim", "source", "c2", "target", "")
_OWNER_RANKS = {role: rank for rank, role in enumerate(OWNER_ROLES)}
_ADDRESS_KINDS = frozenset({"ipv4", "ipv6", "ipv4-net", "ipv6-net"})


def _names_more(record: EventRecord) -> bool:
    """Whether the record names something besides AS numbers."""
    return any(o.kind not in CONTEXT_KINDS for o in record.observables)


def _owner_rank(observable: Observable) -> int:
    return _OWNER_RANKS.get(observable.role, len(OWNER_ROLES) - 1)


KEY_TLP = "amber"  # the TLP whose events' dedup keys hold no TLP part


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
        unknown = set(fields) - DEDUP_FIELDS
        if unknown:
            raise ConfigurationError(
                f"CONCORD_DEDUP_FIELDS names unknown field(s) {', '.join(sorted(unknown))}; "
                f"use {', '.join(sorted(DEDUP_FIELDS))}"
            )
        return cls(fields, env_int("CONCORD_DEDUP_WINDOW", 86400, minimum=1))

    @cached_property
    def _parts(self) -> tuple[Callable[[EventRecord], str], ...]:
        return tuple(_KEY_PARTS[name] for name in self.fields)

    def key(
        self, record: EventRecord, when: datetime, tlp: str = KEY_TLP, sender: int | None = None
    ) -> int:
        parts = [part(record) for part in self._parts]
        parts.append(str(int(when.timestamp()) // self.window_s))
        if tlp != KEY_TLP:
            # A report never folds into an event of another TLP: a RED report counted into
            # a GREEN event would tell GREEN readers that, and when, it was made. AMBER,
            # the default, adds nothing, so keys stored before TLP entered stay valid.
            parts.append(tlp)
        if tlp == "red":
            # RED is read by its sender: a colleague's RED report of the same thing is
            # another event, or it would vanish into one its sender cannot read.
            parts.append(str(sender))
        digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def record_mark(identity: str, key: int) -> int:
    """64 bits of a hash over a record's identity and its event's key: the same record told
    again the same way has the same mark, an edit that moves it to another event does not."""
    digest = hashlib.blake2b(f"{identity}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _observables_part(record: EventRecord) -> str:
    observables = record.observables
    if len(observables) == 1:
        o = observables[0]
        return f"{o.kind}:{o.value}:{o.role}"
    if not observables:
        # Nothing observable to compare (e.g. a STIX pattern on an attachment's name): the
        # record's own text tells two such reports apart, and sending it again still folds.
        return "raw:" + record.raw
    return ",".join(sorted([f"{o.kind}:{o.value}:{o.role}" for o in observables]))


def _port_part(record: EventRecord) -> str:
    return str(record.port or "")


def _protocol_part(record: EventRecord) -> str:
    return record.protocol or ""


def _application_part(record: EventRecord) -> str:
    return record.application or ""


# How each dedup field enters the key. The texts must never change: stored events carry
# keys made from them, and a re-submitted file must fold into those. Module functions, not
# lambdas: a plan, with the parts it cached, is pickled for the process preparing big files.
_KEY_PARTS: dict[str, Callable[[EventRecord], str]] = {
    "feed": attrgetter("feed"),
    "class": attrgetter("rsit_class"),
    "type": attrgetter("rsit_type"),
    "observables": _observables_part,
    "port": _port_part,
    "protocol": _protocol_part,
    "application": _application_part,
    "description": attrgetter("description"),
}


@dataclass(frozen=True)
class Plan:
    """What is constant for every batch of one submission (picklable, for a worker)."""

    submission_id: int
    created_at: datetime
    org_id: int
    country: str | None
    user_id: int | None
    tlp: TLP
    dedup: DedupPolicy
    dialect: str
    parents: dict[int, int | None] = field(default_factory=dict)
    tlp_declared: bool = True  # False: the sender left the TLP to the records' own markings


@dataclass
class PreparedBatch:
    """One batch of a submission, ready for the writer.

    `rows` are the events, folded by dedup key (EVENT_COLUMNS order, without the id).
    `links` names each event's indicators: (event key, kind, value, role).
    `sighted` holds each indicator value of the batch once: (kind, value, count, first seen,
    last seen). Links and sightings are in the order of the writer's statements' parameters,
    so that on SQLite it hands them to the driver as they are.
    """

    position: int  # items of the file read up to the end of this batch
    records: int
    errors: list[ReadError]
    skipped: int  # records that name nothing to take in
    rows: list[tuple[Any, ...]]
    links: list[tuple[int, str, str, str]]
    sighted: list[tuple[str, str, int, Any, Any]]
    # (event key, mark, times seen) of each record with an identity of its own, in the
    # file's order
    marks: list[tuple[int, int, int]] = field(default_factory=list)
    # (address as 32 hex digits, value) of each IPv6 address sighted, for network searches
    ipv6: list[tuple[str, str]] = field(default_factory=list)


class Preparer:
    def __init__(self, plan: Plan, index: LookupIndex) -> None:
        self.plan = plan
        self.index = index
        self.stamp = Timestamps(plan.dialect)

    def owner(self, record: EventRecord) -> int | None:
        lookups = self.lookups
        ranked = [o for o in record.observables if o.kind in lookups and o.role != "destination"]
        if len(ranked) > 1:
            ranked.sort(key=_owner_rank)
        if not any(o.kind in _ADDRESS_KINDS for o in ranked):
            ranked += [
                o for o in record.observables if o.kind in lookups and o.role == "destination"
            ]
        for obs in ranked:
            match = lookups[obs.kind](obs.value)
            if match is not None:
                return match.org_ids[0]
        # Else the operator of the AS it names, when an owner declared it: the one who can
        # act on what its network announces.
        for obs in record.observables:
            if obs.kind == "asn":
                match = self.index.lookup_asn(int(obs.value))
                if match is not None:
                    return match.org_ids[0]
        return None

    @cached_property
    def lookups(self) -> dict[str, Callable[[str], Match | None]]:
        """How each kind of observable that can name an owner finds it; the other kinds
        (hashes, AS numbers) are left out before ranking."""
        index = self.index

        def url(value: str) -> Match | None:
            host = value.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
            return index.lookup(host) if host else None

        def email(value: str) -> Match | None:
            return index.lookup_domain(value.rsplit("@", 1)[-1])

        def network(value: str) -> Match | None:
            # a network concerns the owner of its first address
            return index.lookup_ip(value.split("/", 1)[0])

        return {
            "ipv4": index.lookup_ip,
            "ipv6": index.lookup_ip,
            "ipv4-net": network,
            "ipv6-net": network,
            "domain": index.lookup_domain,
            "url": url,
            "email": email,
        }

    def prepare(
        self, records: list[EventRecord], errors: list[ReadError], skipped: int, position: int
    ) -> PreparedBatch:
        plan = self.plan
        key = plan.dedup.key
        created = plan.created_at
        grouped: dict[int, list[Any]] = {}
        given, declared = plan.tlp, plan.tlp_declared
        nameless = plan.user_id is None
        refused = 0
        marks: list[tuple[int, int, int]] = []
        for rec in records:
            when = rec.time or created
            level = _event_tlp(rec.tlp, given, declared) if rec.tlp else given.value
            if level == "red" and nameless:
                # Marked RED in the file, sent with no user (the CLI, the mail listener):
                # stored, it would be read by nobody.
                errors.append(ReadError(rec.location, RED_WITHOUT_USER))
                refused += 1
                continue
            k = key(rec, when, level, plan.user_id)
            if rec.identity:
                marks.append((k, record_mark(rec.identity, k), rec.times))
            g = grouped.get(k)
            if g is None:
                grouped[k] = [rec, rec.times, when, when, level]
            else:
                g[1] += rec.times
                if when < g[2]:
                    g[2] = when
                elif when > g[3]:
                    g[3] = when
        ts, parents = self.stamp, plan.parents
        org_id, country, user_id, sub_id = (
            plan.org_id,
            plan.country,
            plan.user_id,
            plan.submission_id,
        )
        rows: list[tuple[Any, ...]] = []
        links: list[tuple[int, str, str, str]] = []
        sighted: dict[tuple[str, str], list[Any]] = {}
        for k, (rec, n, first, last, level) in grouped.items():
            owner = self.owner(rec)
            first_ts, last_ts = ts(first), ts(last)
            rows.append(
                (
                    first_ts,
                    last_ts,
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
                    country,
                    owner,
                    parents.get(owner) if owner else None,
                    k,
                    sub_id,
                    str(rec.location)[:200],
                    _extra_json(rec),
                    level,
                    org_id,
                    user_id,
                    False,
                )
            )
            refs: dict[tuple[str, str], str] = {}
            for obs in rec.observables:
                if obs.kind in CONTEXT_KINDS and _names_more(rec):
                    continue
                ref = (str(obs.kind), obs.value[:500])
                if ref not in refs:
                    refs[ref] = obs.role[:20]
                s = sighted.get(ref)
                if s is None:
                    sighted[ref] = [n, first, last]
                else:
                    s[0] += n
                    if first < s[1]:
                        s[1] = first
                    if last > s[2]:
                        s[2] = last
            links.extend([(k, kind, value, role) for (kind, value), role in refs.items()])
        return PreparedBatch(
            position,
            len(records) - refused,
            errors,
            skipped,
            rows,
            links,
            [(kind, value, s[0], ts(s[1]), ts(s[2])) for (kind, value), s in sighted.items()],
            marks,
            [(ipv6_hex(value), value) for kind, value in sighted if kind == "ipv6"],
        )


def batches(
    items: Iterator[ReadItem], skip: int, size: int
) -> Iterator[tuple[list[EventRecord], list[ReadError], int, int]]:
    """Group reader output in batches of (records, errors, how many skipped, position);
    `skip` items were committed by an earlier run."""
    position = 0
    records: list[EventRecord] = []
    errors: list[ReadError] = []
    skipped = 0
    for item in items:
        position += 1
        if position <= skip:
            continue
        kind = type(item)
        if kind is EventRecord:
            records.append(item)  # type: ignore[arg-type]
        elif kind is ReadError:
            errors.append(item)  # type: ignore[arg-type]
        else:
            skipped += 1
        if len(records) + len(errors) + skipped >= size:
            yield records, errors, skipped, position
            records, errors, skipped = [], [], 0
    if records or errors or skipped or position <= skip:
        yield records, errors, skipped, max(position, skip)


def prepared_batches(
    preparer: Preparer, items: Iterator[ReadItem], skip: int, size: int
) -> Iterator[PreparedBatch]:
    for records, errors, skipped, position in batches(items, skip, size):
        yield preparer.prepare(records, errors, skipped, position)


MAX_EXTRA_JSON = 4000  # characters of an event's extra fields, as JSON


def _extra_json(rec: EventRecord) -> str:
    extra = rec.extra
    asns = [o.value for o in rec.observables if o.kind == "asn"]
    if asns:
        extra = {**extra, "asn": ",".join(asns)}
    if not extra:
        return "{}"
    text = orjson.dumps(extra).decode()
    return text if len(text) <= MAX_EXTRA_JSON else _fitted(extra)


def _fitted(extra: dict[str, Any]) -> str:
    """The fields that fit in MAX_EXTRA_JSON, whole, and `"truncated": true`: cutting the
    text instead would store JSON that no longer reads."""
    kept: dict[str, Any] = {}
    room = MAX_EXTRA_JSON - len('{"truncated":true}')
    for key, value in extra.items():
        size = len(orjson.dumps({key: value})) - 1  # the member and its comma
        if size <= room:
            kept[key] = value
            room -= size
    kept["truncated"] = True
    return orjson.dumps(kept).decode()


RED_WITHOUT_USER = (
    "marked TLP:RED, which is for named people: send it through the API or the intake page "
    "as the user who will read it"
)


def _event_tlp(record_tlp: str | None, given: TLP, declared: bool) -> str:
    """A record may carry a stricter TLP than the one the sender declared, never a looser
    one; when the sender declared none, the record's own marking (a MISP `tlp:white` tag, a
    STIX marking) stands, and the default only fills in for records that carry none."""
    if not record_tlp:
        return given.value
    try:
        own = TLP.parse(record_tlp)
    except ValueError:
        return given.value
    return own.value if own.rank > given.rank or not declared else given.value
