"""MISP reader: the attributes of MISP events as normalized records.

Input: ``{"Event": {...}}``, a bare event object, a list of either, or an API answer
``{"response": [...]}``. Plain dict walking rather than pymisp's MISPEvent: it is faster, and
every fault keeps its JSON pointer instead of becoming an exception. Documents larger than
``max_bytes`` (200 MB by default) or nested deeper than 64 levels are refused.

One record per attribute, top-level (``/Event/Attribute/4``) or inside an object
(``/Event/Object/1/Attribute/0``); ``raw`` is the attribute as compact JSON without its
``data`` (the base64 of a malware sample has no place in an event), bounded to MAX_RAW.

- nature: "indicator" when ``to_ids`` is true, else "event";
- time: the attribute's ``first_seen``, else its ``timestamp`` (epoch seconds), else the
  event's ``date`` at midnight UTC;
- description: the event's ``info``; the attribute comment, MISP type and category, the
  uuids, the object name and relation, and the sighting counts go to ``extra``;
- TLP: the strictest ``tlp:`` tag of the event and the attribute (``tlp:white`` → clear,
  ``tlp:amber+strict`` kept);
- ATT&CK: ids from ``misp-galaxy:*attack-pattern*="Name - T1566.001"`` tags and from
  ``Galaxy`` → ``GalaxyCluster`` → ``meta.external_id`` of attack-pattern galaxies, on the
  event and the attribute;
- confidence: an ``osint:certainty="93"`` tag (attribute, else event).

MISP types read (other types — text, comment, filename, link, regkey, ssdeep, x509 ... —
name no observable: each is a `Skipped`, counted on the receipt; ``link`` is a reference to
an analysis, not a malicious URL):

==================================================  ==========================================
MISP type                                           observables (role)
==================================================  ==========================================
ip-src, ip-dst                                      ipv4/ipv6 (source / destination); CIDR
                                                    prefixes go to ``extra["networks"]``
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

Skipped: deleted attributes and objects, ShadowAttribute (unaccepted proposals).
Refused with a located error: events and attributes that are not objects, attributes
without a type or with an invalid value or time, and events or attributes whose tags cannot
be read (their TLP would be unknown, so nothing of them is let through).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
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
        item = _attribute_record(attribute, f"{pointer}/Attribute/{i}", source, context, None)
        if item is not None:
            yield item
    objects = event.get("Object", [])
    if not isinstance(objects, list):
        yield fault("/Object", "Object must be an array")
        return
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            yield fault(f"/Object/{i}", "a MISP object must be a JSON object")
            continue
        if _true(obj.get("deleted")):
            continue
        inner = obj.get("Attribute", [])
        if not isinstance(inner, list):
            yield fault(f"/Object/{i}/Attribute", "Attribute must be an array")
            continue
        for j, attribute in enumerate(inner):
            here = f"{pointer}/Object/{i}/Attribute/{j}"
            item = _attribute_record(attribute, here, source, context, obj)
            if item is not None:
                yield item


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


def _attribute_record(
    attribute: Json, pointer: str, source: str, event: _Event, obj: dict[str, Json] | None
) -> ReadItem | None:
    """The record of one attribute, the error that refuses it, a skip when it names no
    observable (a comment, a file name ...), or None when it was deleted."""
    location = FaultLocation(source=source, pointer=pointer)
    if not isinstance(attribute, dict):
        return ReadError(location, "an attribute must be a JSON object")
    try:
        return _attribute(attribute, location, event, obj)
    except _Refused as exc:
        return ReadError(FaultLocation(source=source, pointer=pointer + exc.suffix), exc.reason)


def _attribute(
    attribute: dict[str, Json],
    location: FaultLocation,
    event: _Event,
    obj: dict[str, Json] | None,
) -> EventRecord | Skipped | None:
    if _true(attribute.get("deleted")):
        return None
    misp_type = attribute.get("type")
    if misp_type is not None and not isinstance(misp_type, str):
        raise _Refused("the attribute type must be a text", "/type")
    if not misp_type:
        raise _Refused("the attribute has no type", "/type")
    tags = _tags(attribute)
    parts = _TYPES.get(misp_type)
    if parts is None:
        return Skipped(location)
    category = clean_text(attribute.get("category"))
    found = _values(attribute.get("value"), misp_type, parts, category == "Targeting data")
    default = _CATEGORY_RSIT.get(category, _UNDETERMINED)
    tagged = rsit_from_tags(tags) or event.rsit
    rsit_class, rsit_type = resolve_rsit(tagged, default) if tagged else default
    extra = {
        "misp_type": misp_type,
        "category": category,
        "event_uuid": event.uuid,
        "attribute_uuid": clean_text(attribute.get("uuid")),
        "comment": clean_text(attribute.get("comment")),
        "filename": found.filename,
        "networks": " ".join(found.networks),
        **_sightings(attribute.get("Sighting")),
    }
    if obj is not None:
        extra["object_name"] = clean_text(obj.get("name"))
        extra["object_uuid"] = clean_text(obj.get("uuid"))
        extra["object_relation"] = clean_text(attribute.get("object_relation"))
    raw = {k: v for k, v in attribute.items() if k != "data"}
    confidence = _certainty(tags)
    return EventRecord(
        time=_time(attribute) or event.date,
        rsit_class=rsit_class,
        rsit_type=rsit_type,
        observables=found.observables,
        location=location,
        raw=raw_json(raw),
        feed="misp",
        nature="indicator" if _true(attribute.get("to_ids")) else "event",
        port=found.port,
        tlp=strictest_tlp([event.tlp, *(tlp_level(tag) for tag in tags)]),
        confidence=confidence if confidence is not None else event.confidence,
        description=event.info,
        attack_techniques=tuple(sorted(event.techniques | set(_techniques(attribute, tags)))),
        extra={k: v for k, v in extra.items() if v},
    )


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
                if network:
                    networks.append(text)
                else:
                    observables[Observable(kind, text, role)] = None
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


def _port(text: str) -> int:
    cleaned = text.strip()
    if not (cleaned.isascii() and cleaned.isdigit()) or not 0 <= int(cleaned) <= 65535:
        raise ValueError(f"invalid port {text[:20]!r}: must be a number from 0 to 65535")
    return int(cleaned)


def _time(attribute: dict[str, Json]) -> datetime | None:
    first_seen = attribute.get("first_seen")
    if first_seen not in (None, ""):
        try:
            return utc(datetime.fromisoformat(str(first_seen)))
        except ValueError:
            raise _Refused(f"invalid first_seen {str(first_seen)[:40]!r}", "/first_seen") from None
    stamp = attribute.get("timestamp")
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


def _sightings(value: Json) -> dict[str, str]:
    """Counts of MISP sightings by type: 0 sighting, 1 false positive (2, expiry, ignored)."""
    counts = {_SIGHTING: 0, _FALSE_POSITIVE: 0}
    for sighting in value if isinstance(value, list) else ():
        if isinstance(sighting, dict):
            kind = str(sighting.get("type", _SIGHTING))
            if kind in counts:
                counts[kind] += 1
    return {
        "sightings": str(counts[_SIGHTING] or ""),
        "false_positives": str(counts[_FALSE_POSITIVE] or ""),
    }


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
