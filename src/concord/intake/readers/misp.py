"""MISP reader: the attributes and objects of MISP events as normalized records.

Input: ``{"Event": {...}}``, a bare event object, a list of either, or an API answer
``{"response": [...]}``. Plain dict walking rather than pymisp's MISPEvent: it is faster, and
every fault keeps its JSON pointer instead of becoming an exception. Documents larger than
``max_bytes`` (200 MB by default) or nested deeper than 64 levels are refused.

One record per top-level attribute (``/Event/Attribute/4``) and one per MISP object
(``/Event/Object/1``). An object groups the attributes that describe one thing (a ``file``
object the md5, sha1 and sha256 of one file, a ``domain-ip`` object a domain and its address):
one event with all its observables, not one event (and one campaign) per hash. ``raw`` is the
attribute, or the object with the attributes taken in, as compact JSON without the attributes'
``data`` (the base64 of a malware sample has no place in an event), bounded to MAX_RAW.

A top-level attribute:

- nature: "indicator" when ``to_ids`` is true, else "event";
- time: the attribute's ``first_seen``, else the event's ``date`` at midnight UTC, else the
  attribute's ``timestamp`` (epoch seconds): that is its last edit, so a comment edited
  later must not re-date what was seen;
- description: the event's ``info``; the attribute comment, MISP type and category, the
  uuids and the sighting counts go to ``extra``;
- TLP: the strictest ``tlp:`` tag of the event and the attribute (``tlp:white`` → clear,
  ``tlp:amber+strict`` kept);
- ATT&CK: ids from ``misp-galaxy:*attack-pattern*="Name - T1566.001"`` tags and from
  ``Galaxy`` → ``GalaxyCluster`` → ``meta.external_id`` of attack-pattern galaxies, on the
  event and the attribute;
- confidence: an ``osint:certainty="93"`` tag (attribute, else event).

An object merges its attributes:

- observables: those of every attribute whose type names one (table below), each with its
  role, once each (a ``malware-sample`` and an ``md5`` attribute name the same hash);
- time: the object's ``first_seen``, else the earliest ``first_seen`` of those attributes,
  else the event's date, else the object's ``timestamp`` (its last edit), else the earliest
  ``timestamp`` of those attributes;
- nature: "indicator" when one of those attributes has ``to_ids``;
- TLP: the strictest of the event, the object and all its attributes (MISP puts no tags on
  objects, but a ``Tag`` array on one is read, and refused when unreadable, like any other);
- ATT&CK: the union over event, object and attributes; confidence: the lowest certainty of
  the attributes (a record is as sure as its least sure part), else the object's, else the
  event's;
- RSIT: the most specific of those attributes' (each classified as above, under the
  object's tags, else the event's): the first with a taxonomy tag of its own, else the first
  that is not other/undetermined, else other/undetermined;
- port: the first one of those attributes gives (``ip-dst|port`` ...), else the object's
  ``port`` attribute of relation ``dst-port`` or ``port`` (a ``src-port`` is the client's);
- extra: the object's name, uuid and meta-category; the attributes' MISP types, categories
  and relations; the object's and the attributes' comments; the file names (of
  ``filename|...`` values and ``filename`` attributes); the other attributes that name no
  observable as ``relation: value`` (a state, a size ...); the sightings added up. Each list
  is cut short with "…" so that a large object stays small in storage.

An attribute refused inside an object (an invalid value or time, unreadable tags) is an error
at its own pointer (``/Event/Object/1/Attribute/2/value``); the object's other attributes
still make its record, and its raw text leaves the refused one out. An object none of whose
attributes names an observable is one `Skipped`; one whose observable-naming attributes were
all refused gives their errors alone.

MISP types read (other types — text, comment, filename, link, regkey, ssdeep, x509 ... —
name no observable: at the top level each is a `Skipped`, counted on the receipt; ``link`` is
a reference to an analysis, not a malicious URL):

==================================================  ==========================================
MISP type                                           observables (role)
==================================================  ==========================================
ip-src, ip-dst                                      ipv4/ipv6 (source / destination); a
                                                    CIDR prefix ipv4-net/ipv6-net (/32 and
                                                    /128 are addresses; a prefix with host
                                                    bits set, or wider than /8 (IPv4) or /16
                                                    (IPv6), goes to ``extra["networks"]``)
ip-src|port, ip-dst|port                            ipv4/ipv6 and ``port``
domain, hostname                                    domain
domain|ip                                           domain and ipv4/ipv6
hostname|port                                       domain and ``port``
url                                                 url
email, email-src, email-reply-to,                   email (source)
whois-registrant-email
email-dst, target-email                             email (target)
md5, sha1, sha256, sha512                           the hash
filename|md5, filename|sha1, filename|sha256,       the hash; the file name to
filename|sha512, malware-sample                     ``extra["filename"]``
AS                                                  asn
==================================================  ==========================================

The role is "target" for every value of category "Targeting data".

RSIT: a taxonomy tag on the attribute, else on the event (``rsit:<class>="<type>"``,
``ecsirt:<class>="<type>"``, ``circl:incident-classification="..."``; see the STIX reader's
tag table), else the default of the category. A tag that names only the class (for example
``circl:incident-classification="malware"`` or ``ecsirt:malicious-code="ransomware"``) takes
the category's type when the category is in the same class:

=========================================================  ===================================
category                                                   RSIT default
=========================================================  ===================================
Payload delivery                                           malicious-code/malware-distribution
Payload installation, Artifacts dropped,                   malicious-code/infected-system
Persistence mechanism
Network activity, Payload type, Antivirus detection,       other/undetermined
External analysis, Targeting data, Attribution,
Financial fraud, Social network, Person, Support Tool,
Internal reference, Other
=========================================================  ===================================

Left out, neither read nor counted: deleted attributes and objects, ShadowAttribute
(unaccepted proposals). Refused with a located error: events, objects and attributes that
are not JSON objects, attributes without a type or with an invalid value or time (a
``timestamp`` only when it dates the record), objects with an invalid ``first_seen`` (or
``timestamp``, when it dates the record), and events, objects or attributes whose tags
cannot be read (their TLP would be unknown, so nothing of them is let through).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

from concord.errors import FaultLocation
from concord.intake.readers import Reader
from concord.intake.readers.values import (
    DEFAULT_MAX_BYTES,
    attack_ids_in,
    canonical,
    clean_text,
    ip_value,
    load_json,
    network_value,
    raw_json,
    resolve_rsit,
    rsit_from_tags,
    strictest_tlp,
    tlp_level,
)
from concord.intake.records import (
    EventRecord,
    Observable,
    ObservableKind,
    ReadError,
    ReadItem,
    Skipped,
    utc,
)

Json = Any

_CATEGORY_RSIT: dict[str, tuple[str, str]] = {
    "Payload delivery": ("malicious-code", "malware-distribution"),
    "Payload installation": ("malicious-code", "infected-system"),
    "Artifacts dropped": ("malicious-code", "infected-system"),
    "Persistence mechanism": ("malicious-code", "infected-system"),
}
_UNDETERMINED = ("other", "undetermined")

# What each "|"-separated part of a value is: an observable kind, "ip", "port" or "filename",
# with the role after a colon.
_TYPES: dict[str, tuple[str, ...]] = {
    "ip-src": ("ip:source",),
    "ip-dst": ("ip:destination",),
    "ip-src|port": ("ip:source", "port"),
    "ip-dst|port": ("ip:destination", "port"),
    "domain": ("domain",),
    "hostname": ("domain",),
    "domain|ip": ("domain", "ip:source"),
    "hostname|port": ("domain", "port"),
    "url": ("url",),
    "email": ("email",),
    "email-src": ("email",),
    "email-reply-to": ("email",),
    "whois-registrant-email": ("email",),
    "email-dst": ("email:target",),
    "target-email": ("email:target",),
    "md5": ("md5",),
    "sha1": ("sha1",),
    "sha256": ("sha256",),
    "sha512": ("sha512",),
    "filename|md5": ("filename", "md5"),
    "filename|sha1": ("filename", "sha1"),
    "filename|sha256": ("filename", "sha256"),
    "filename|sha512": ("filename", "sha512"),
    "malware-sample": ("filename", "md5"),
    "AS": ("asn",),
}
_SIGHTING, _FALSE_POSITIVE = "0", "1"
_CONTEXT_VALUE = 120  # characters of a context attribute's value kept in extra
_CERTAINTY = re.compile(r'^osint:certainty\s*=\s*"(\d{1,3}(?:\.\d+)?)"$')
_GALAXY_TAG = re.compile(r'^misp-galaxy:([^=]+)="(.*)"$', re.S)
_SNIFF_EVENT = re.compile(rb'"Event"\s*:\s*\{')
_SNIFF_ATTRIBUTES = re.compile(rb'"Attribute"\s*:\s*\[')
_SNIFF_EVENT_KEYS = re.compile(rb'"(?:info|to_ids|threat_level_id)"\s*:')


class _Refused(Exception):
    """An attribute or event cannot become records; `suffix` extends its pointer."""

    def __init__(self, reason: str, suffix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.suffix = suffix


@dataclass(frozen=True)
class _Event:
    """What every attribute of one event inherits."""

    info: str
    uuid: str
    date: datetime | None
    rsit: tuple[str, str | None] | None  # from the event's taxonomy tags
    tlp: str | None
    confidence: int | None
    techniques: frozenset[str]


class MispReader(Reader):
    name = "misp"
    description = "MISP event JSON (an event, a list of events or an API response)"

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def sniff(self, head: bytes, filename: str) -> bool:
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if start not in (b"{", b"["):
            return False
        if _SNIFF_EVENT.search(head):
            return True
        return bool(_SNIFF_ATTRIBUTES.search(head) and _SNIFF_EVENT_KEYS.search(head))

    def read(self, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
        doc, error = load_json(stream, source, self.max_bytes)
        if error is not None:
            yield error
            return
        for pointer, event in _events(doc, ""):
            if isinstance(event, str):  # the reason this is no event
                yield ReadError(FaultLocation(source=source, pointer=pointer), event)
            else:
                yield from _read_event(event, pointer, source)


def _events(doc: Json, base: str, nested: bool = False) -> Iterator[tuple[str, Json]]:
    """(pointer, event object) pairs, or (pointer, reason) where an event was expected."""
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _events(item, f"{base}/{i}", nested=True)
        return
    if isinstance(doc, dict):
        if "Event" in doc:
            event = doc["Event"]
            yield f"{base}/Event", event if isinstance(event, dict) else "Event must be an object"
            return
        if "response" in doc and not nested:
            yield from _events(doc["response"], f"{base}/response", nested=False)
            return
        if any(key in doc for key in ("Attribute", "Object", "info")):
            yield base, doc
            return
    yield base, 'not a MISP event: expected {"Event": {...}}, an event or a list of events'


def _read_event(event: dict[str, Json], pointer: str, source: str) -> Iterator[ReadItem]:
    def fault(suffix: str, reason: str) -> ReadError:
        return ReadError(FaultLocation(source=source, pointer=pointer + suffix), reason)

    try:
        context = _event_context(event)
    except _Refused as exc:
        yield fault(exc.suffix, exc.reason)
        return
    attributes = event.get("Attribute", [])
    if not isinstance(attributes, list):
        yield fault("/Attribute", "Attribute must be an array")
        attributes = []
    for i, attribute in enumerate(attributes):
        item = _attribute_record(attribute, f"{pointer}/Attribute/{i}", source, context)
        if item is not None:
            yield item
    objects = event.get("Object", [])
    if not isinstance(objects, list):
        yield fault("/Object", "Object must be an array")
        return
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            yield fault(f"/Object/{i}", "a MISP object must be a JSON object")
        elif not _true(obj.get("deleted")):
            yield from _object_items(obj, f"{pointer}/Object/{i}", source, context)


def _event_context(event: dict[str, Json]) -> _Event:
    tags = _tags(event)
    day = None
    if event.get("date") not in (None, ""):
        try:
            day = datetime.combine(date.fromisoformat(str(event["date"])), datetime.min.time(), UTC)
        except ValueError:
            raise _Refused(f"invalid event date {str(event['date'])[:40]!r}", "/date") from None
    return _Event(
        info=clean_text(event.get("info")),
        uuid=clean_text(event.get("uuid")),
        date=day,
        rsit=rsit_from_tags(tags),
        tlp=strictest_tlp(tlp_level(tag) for tag in tags),
        confidence=_certainty(tags),
        techniques=frozenset(_techniques(event, tags)),
    )


@dataclass(frozen=True)
class _Attribute:
    """One attribute read. `found` is None for a type that names no observable (a file name,
    a text ...): inside an object such an attribute only adds context."""

    misp_type: str
    category: str
    relation: str
    comment: str
    uuid: str
    value: str  # the value as given, cut short (what a context attribute adds)
    found: _Found | None
    rsit: tuple[str, str]
    own_rsit: bool  # the classification comes from the attribute's own taxonomy tag
    tlp: str | None
    confidence: int | None
    techniques: frozenset[str]
    first_seen: datetime | None
    # its last edit: read only when neither first_seen nor the event's date dates it
    stamp: datetime | None
    to_ids: bool
    sightings: tuple[int, int]  # sightings, false positives


def _attribute(
    attribute: dict[str, Json], inherited: tuple[str, str | None] | None, day: datetime | None
) -> _Attribute | None:
    """The attribute read, or None when it was deleted. `inherited` is the classification of
    the taxonomy tags above it (the object's, else the event's); `day` the event's date."""
    if _true(attribute.get("deleted")):
        return None
    misp_type = attribute.get("type")
    if misp_type is not None and not isinstance(misp_type, str):
        raise _Refused("the attribute type must be a text", "/type")
    if not misp_type:
        raise _Refused("the attribute has no type", "/type")
    tags = _tags(attribute)
    category = clean_text(attribute.get("category"))
    own = rsit_from_tags(tags)
    parts = _TYPES.get(misp_type)
    found, first_seen, stamp, rsit = None, None, None, _UNDETERMINED
    if parts is not None:
        found = _values(attribute.get("value"), misp_type, parts, category == "Targeting data")
        default = _CATEGORY_RSIT.get(category, _UNDETERMINED)
        tagged = own or inherited
        rsit = resolve_rsit(tagged, default) if tagged else default
        first_seen = _first_seen(attribute)
        if first_seen is None and day is None:
            stamp = _timestamp(attribute)
    value = attribute.get("value")
    return _Attribute(
        misp_type=misp_type,
        category=category,
        relation=clean_text(attribute.get("object_relation")),
        comment=clean_text(attribute.get("comment")),
        uuid=clean_text(attribute.get("uuid")),
        value=clean_text(value)[:_CONTEXT_VALUE] if isinstance(value, str | int) else "",
        found=found,
        rsit=rsit,
        own_rsit=own is not None and found is not None,
        tlp=strictest_tlp(tlp_level(tag) for tag in tags),
        confidence=_certainty(tags),
        techniques=frozenset(_techniques(attribute, tags)),
        first_seen=first_seen,
        stamp=stamp,
        to_ids=_true(attribute.get("to_ids")),
        sightings=_sighting_counts(attribute.get("Sighting")),
    )


def _attribute_record(attribute: Json, pointer: str, source: str, event: _Event) -> ReadItem | None:
    """The record of one top-level attribute, the error that refuses it, a skip when it names
    no observable (a comment, a file name ...), or None when it was deleted."""
    location = FaultLocation(source=source, pointer=pointer)
    if not isinstance(attribute, dict):
        return ReadError(location, "an attribute must be a JSON object")
    try:
        read = _attribute(attribute, event.rsit, event.date)
    except _Refused as exc:
        return ReadError(FaultLocation(source=source, pointer=pointer + exc.suffix), exc.reason)
    if read is None:
        return None
    if read.found is None:
        return Skipped(location)
    extra = {
        "misp_type": read.misp_type,
        "category": read.category,
        "event_uuid": event.uuid,
        "attribute_uuid": read.uuid,
        "comment": read.comment,
        "filename": read.found.filename,
        "networks": " ".join(read.found.networks),
        **_sightings(*read.sightings),
    }
    return EventRecord(
        time=read.first_seen or event.date or read.stamp,
        rsit_class=read.rsit[0],
        rsit_type=read.rsit[1],
        observables=read.found.observables,
        location=location,
        raw=raw_json({k: v for k, v in attribute.items() if k != "data"}),
        feed="misp",
        nature="indicator" if read.to_ids else "event",
        port=read.found.port,
        tlp=strictest_tlp([event.tlp, read.tlp]),
        confidence=read.confidence if read.confidence is not None else event.confidence,
        description=event.info,
        attack_techniques=tuple(sorted(event.techniques | read.techniques)),
        extra={k: v for k, v in extra.items() if v},
        identity=f"misp:{read.uuid}" if read.uuid else "",
    )


def _object_items(
    obj: dict[str, Json], pointer: str, source: str, event: _Event
) -> Iterator[ReadItem]:
    """The object's record (or its skip when no attribute names an observable), then the
    errors of the attributes refused."""

    def fault(suffix: str, reason: str, base: str = pointer) -> ReadError:
        return ReadError(FaultLocation(source=source, pointer=base + suffix), reason)

    try:
        tags = _tags(obj)
        first_seen = _first_seen(obj)
    except _Refused as exc:
        yield fault(exc.suffix, exc.reason)
        return
    attributes = obj.get("Attribute", [])
    if not isinstance(attributes, list):
        yield fault("/Attribute", "Attribute must be an array")
        return
    inherited = rsit_from_tags(tags) or event.rsit
    read: list[_Attribute] = []
    kept: list[Json] = []  # the attributes taken in, for the raw text
    errors: list[ReadError] = []
    for j, attribute in enumerate(attributes):
        here = f"{pointer}/Attribute/{j}"
        if not isinstance(attribute, dict):
            errors.append(fault("", "an attribute must be a JSON object", here))
            continue
        try:
            one = _attribute(attribute, inherited, event.date)
        except _Refused as exc:
            errors.append(fault(exc.suffix, exc.reason, here))
            continue
        if one is not None:
            read.append(one)
            kept.append({k: v for k, v in attribute.items() if k != "data"})
    location = FaultLocation(source=source, pointer=pointer)
    if any(a.found is not None for a in read):
        raw = {k: kept if k == "Attribute" else v for k, v in obj.items()}
        try:
            record = _object_record(obj, tags, first_seen, read, raw, location, event)
        except _Refused as exc:  # its own timestamp, needed to date it, is invalid
            yield fault(exc.suffix, exc.reason)
        else:
            yield record
    elif not errors:
        yield Skipped(location)
    yield from errors


def _service_ports(context: list[_Attribute]) -> list[int]:
    """The ports an object's `port` attributes give for its service: its `dst-port` (the
    ip-port and network-connection objects) or plain `port` (domain-ip), not the client's
    `src-port`, which is any."""
    ports = []
    for a in context:
        if a.misp_type == "port" and a.relation in ("dst-port", "port"):
            with suppress(ValueError):  # kept as context, as it was given
                ports.append(_port(a.value))
    return ports


def _object_record(
    obj: dict[str, Json],
    tags: tuple[str, ...],
    first_seen: datetime | None,
    read: list[_Attribute],
    raw: dict[str, Json],
    location: FaultLocation,
    event: _Event,
) -> EventRecord:
    named = [(a, a.found) for a in read if a.found is not None]
    seen = [a.first_seen for a, _ in named if a.first_seen is not None]
    stamps = [a.stamp for a, _ in named if a.stamp is not None]
    # timestamps are last edits (a comment changed later re-dates nothing): the last resort
    time = (
        first_seen
        or (min(seen) if seen else None)
        or event.date
        or _timestamp(obj)
        or (min(stamps) if stamps else None)
    )
    best = max(named, key=lambda n: 2 if n[0].own_rsit else int(n[0].rsit != _UNDETERMINED))
    confidences = [a.confidence for a in read if a.confidence is not None]
    confidence = min(confidences) if confidences else _certainty(tags)
    context = [a for a in read if a.found is None]
    ports = [found.port for _, found in named if found.port is not None]
    ports += _service_ports(context)
    filenames = [found.filename for _, found in named]
    filenames += [a.value for a in context if a.misp_type == "filename"]
    extra = {
        "event_uuid": event.uuid,
        "object_name": clean_text(obj.get("name"))[:_CONTEXT_VALUE],
        "object_uuid": clean_text(obj.get("uuid"))[:_CONTEXT_VALUE],
        "object_meta_category": clean_text(obj.get("meta-category"))[:_CONTEXT_VALUE],
        "misp_type": _listed((a.misp_type for a, _ in named), 300),
        "category": _listed((a.category for a, _ in named), 300, "; "),
        "object_relation": _listed((a.relation for a, _ in named), 300),
        "comment": _listed([clean_text(obj.get("comment")), *(a.comment for a in read)], 600, "; "),
        "filename": _listed(filenames, 300, "; "),
        "networks": _listed((n for _, found in named for n in found.networks), 600),
        "context": _listed(
            (
                f"{a.relation or a.misp_type}: {a.value}"
                for a in context
                if a.value and a.misp_type != "filename"
            ),
            600,
            "; ",
        ),
        **_sightings(sum(a.sightings[0] for a in read), sum(a.sightings[1] for a in read)),
    }
    techniques = event.techniques.union(_techniques(obj, tags), *(a.techniques for a in read))
    return EventRecord(
        time=time,
        rsit_class=best[0].rsit[0],
        rsit_type=best[0].rsit[1],
        # once each: a malware-sample and an md5 attribute name the same hash
        observables=tuple(dict.fromkeys(o for _, found in named for o in found.observables)),
        location=location,
        raw=raw_json(raw),
        feed="misp",
        nature="indicator" if any(a.to_ids for a, _ in named) else "event",
        port=ports[0] if ports else None,
        tlp=strictest_tlp([event.tlp, *(tlp_level(tag) for tag in tags), *(a.tlp for a in read)]),
        confidence=confidence if confidence is not None else event.confidence,
        description=event.info,
        attack_techniques=tuple(sorted(techniques)),
        extra={k: v for k, v in extra.items() if v},
        identity=f"misp:{extra['object_uuid']}" if extra["object_uuid"] else "",
    )


def _listed(texts: Iterable[str], limit: int, sep: str = " ") -> str:
    """The distinct non-empty texts in order, joined and cut to `limit` characters (ending in
    "…"): extra is stored with every event, and an object may hold hundreds of attributes."""
    out = ""
    for text in dict.fromkeys(t for t in texts if t):
        joined = f"{out}{sep}{text}" if out else text
        if len(joined) > limit:
            return joined[: limit - 1] + "…"
        out = joined
    return out


@dataclass(frozen=True)
class _Found:
    observables: tuple[Observable, ...]
    networks: tuple[str, ...]
    port: int | None
    filename: str


def _values(value: Json, misp_type: str, parts: tuple[str, ...], targeting: bool) -> _Found:
    if misp_type == "AS" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise _Refused("the attribute value must be a text", "/value")
    if not value or not value.strip():
        raise _Refused("the attribute has no value", "/value")
    # a file name may hold "|"; the hash after it cannot
    pieces = (
        value.rsplit("|", len(parts) - 1)
        if parts[0] == "filename"
        else value.split("|", len(parts) - 1)
    )
    if len(pieces) != len(parts):
        raise _Refused(f"a {misp_type} value has {len(parts)} parts separated by '|'", "/value")
    observables: dict[Observable, None] = {}
    networks: list[str] = []
    port = None
    filename = ""
    for piece, part in zip(pieces, parts, strict=True):
        what, _, role = part.partition(":")
        role = "target" if targeting else role or "source"
        try:
            if what == "ip":
                kind, text, network = ip_value(piece)
                if not network:
                    observables[Observable(kind, text, role)] = None
                elif (net := _network(piece, role)) is not None:
                    observables[net] = None
                else:
                    networks.append(text)
            elif what == "port":
                port = _port(piece)
            elif what == "filename":
                filename = clean_text(piece)
            else:
                kind = ObservableKind(what)
                observables[Observable(kind, canonical(kind, piece), role)] = None
        except ValueError as exc:
            raise _Refused(str(exc), "/value") from None
    return _Found(tuple(observables), tuple(networks), port, filename)


def _network(text: str, role: str) -> Observable | None:
    """A prefix as an ipv4-net/ipv6-net observable, as the IntelMQ and DROP readers make it, so
    that it finds an owner and correlates; None for one with host bits set (which was meant
    cannot be told) or wider than any blocklist's, kept as text instead."""
    try:
        return replace(network_value(text.strip()), role=role)
    except ValueError:
        return None


def _port(text: str) -> int:
    cleaned = text.strip()
    if not (cleaned.isascii() and cleaned.isdigit()) or not 0 <= int(cleaned) <= 65535:
        raise ValueError(f"invalid port {text[:20]!r}: must be a number from 0 to 65535")
    return int(cleaned)


def _first_seen(holder: dict[str, Json]) -> datetime | None:
    first_seen = holder.get("first_seen")
    if first_seen in (None, ""):
        return None
    try:
        return utc(datetime.fromisoformat(str(first_seen)))
    except ValueError:
        raise _Refused(f"invalid first_seen {str(first_seen)[:40]!r}", "/first_seen") from None


def _timestamp(holder: dict[str, Json]) -> datetime | None:
    stamp = holder.get("timestamp")
    if stamp in (None, ""):
        return None
    text = str(stamp).strip()
    try:
        if isinstance(stamp, bool) or not (text.isascii() and text.isdigit()):
            raise ValueError
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        raise _Refused(
            f"invalid timestamp {text[:40]!r}: expected seconds since 1970", "/timestamp"
        ) from None


def _true(value: Json) -> bool:
    return (
        value is True or value == 1 or (isinstance(value, str) and value.lower() in ("1", "true"))
    )


def _sighting_counts(value: Json) -> tuple[int, int]:
    """Counts of MISP sightings by type: 0 sighting, 1 false positive (2, expiry, ignored)."""
    counts = {_SIGHTING: 0, _FALSE_POSITIVE: 0}
    for sighting in value if isinstance(value, list) else ():
        if isinstance(sighting, dict):
            kind = str(sighting.get("type", _SIGHTING))
            if kind in counts:
                counts[kind] += 1
    return counts[_SIGHTING], counts[_FALSE_POSITIVE]


def _sightings(seen: int, false_positives: int) -> dict[str, str]:
    return {"sightings": str(seen or ""), "false_positives": str(false_positives or "")}


def _certainty(tags: tuple[str, ...]) -> int | None:
    for tag in tags:
        match = _CERTAINTY.match(tag.strip())
        if match and float(match.group(1)) <= 100:
            return round(float(match.group(1)))
    return None


def _tags(holder: dict[str, Json]) -> tuple[str, ...]:
    """Tag names from "Tag": [{"name": ...}] (and the "EventTag"/"AttributeTag" joins)."""
    names: list[str] = []
    for key in ("Tag", "EventTag", "AttributeTag"):
        value = holder.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise _Refused(f"{key} must be an array of tags", f"/{key}")
        for i, tag in enumerate(value):
            if isinstance(tag, dict) and key != "Tag":
                tag = tag.get("Tag")
            name = tag.get("name") if isinstance(tag, dict) else None
            if not isinstance(name, str):
                raise _Refused("a tag must be an object with a text name", f"/{key}/{i}")
            names.append(name)
    return tuple(names)


def _techniques(holder: dict[str, Json], tags: tuple[str, ...]) -> Iterator[str]:
    for tag in tags:
        match = _GALAXY_TAG.match(tag)
        if match and "attack-pattern" in match.group(1):
            yield from attack_ids_in(match.group(2))
    galaxies = holder.get("Galaxy")
    for galaxy in galaxies if isinstance(galaxies, list) else ():
        if not isinstance(galaxy, dict) or "attack-pattern" not in str(galaxy.get("type", "")):
            continue
        clusters = galaxy.get("GalaxyCluster")
        for cluster in clusters if isinstance(clusters, list) else ():
            if not isinstance(cluster, dict):
                continue
            meta = cluster.get("meta")
            ids = meta.get("external_id") if isinstance(meta, dict) else None
            found = [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
            found += attack_ids_in(str(cluster.get("value", "")))
            yield from (i for text in found for i in attack_ids_in(text))


READER = MispReader()
