"""STIX 2.1 reader: indicators, observed data, sightings and incidents as normalized records.

Input: a bundle, a TAXII 2.1 envelope (``{"objects": [...]}``), a JSON array of objects or a
single object. STIX 2.0 content is read as well (``labels`` stand in for ``indicator_types``).
The document is read whole (a STIX document is one JSON value); inputs larger than
``max_bytes`` (200 MB by default) and JSON nested deeper than 64 levels are refused.

What becomes a record (one per object, ``location.pointer`` = the object, e.g. ``/objects/3``;
``raw`` = the object as compact JSON, bounded to MAX_RAW):

==============  =========  ====================================  ==============================
STIX object     nature     time                                  observables
==============  =========  ====================================  ==============================
indicator       indicator  valid_from                            values named by ``=``, ``IN``
                                                                 and ``ISSUBSET`` comparisons
                                                                 of a ``stix`` pattern (below)
observed-data   event      first_observed                        the SCOs it embeds (``objects``)
                                                                 or references (``object_refs``)
                                                                 (one that an indicator is
                                                                 ``based-on`` is that
                                                                 indicator's evidence: the
                                                                 indicator's record takes its
                                                                 values and markings)
sighting        event      first_seen, else last_seen, else      the sighted indicator's, and the
                           its observed data's first_observed,   SCOs of ``observed_data_refs``
                           else created
incident        event      created                               none (the 2.1 incident is a
                                                                 stub)
==============  =========  ====================================  ==============================

An indicator, observed-data or sighting that names no value (no observable, and no network
kept as text in ``extra["networks"]``) is a `Skipped`, counted on the receipt as the MISP
reader counts an attribute naming no observable: an event with nothing to correlate on or
find an owner by is no event. An incident stays a record without observables: it is the
report itself, counted in the generalized reports.

An observed-data's ``number_observed`` and a sighting's ``count`` are the times its record
was seen: its event and its values' sightings count that many (an indicator, the times its
evidence was observed).

Pattern comparisons and SCO properties read:

======================================================  =====================================
``ipv4-addr:value``, ``ipv6-addr:value``                ipv4 / ipv6 (/32 and /128 count as
                                                        addresses; an IPv4-mapped IPv6 address
                                                        is the IPv4 one); a CIDR network (``=``
                                                        or ``ISSUBSET``) ipv4-net / ipv6-net
``domain-name:value``                                   domain
``url:value``                                           url
``email-addr:value``                                    email
``email-message:from_ref.value`` (``sender_ref``)       email, role "source"
``email-message:to_refs[*].value`` (``cc``, ``bcc``)    email, role "target"
``file:hashes.'SHA-256'`` / MD5 / SHA-1 / SHA-512       sha256 / md5 / sha1 / sha512 (also on
                                                        ``artifact``)
``autonomous-system:number``                            asn
``network-traffic:src_ref.value`` / ``dst_ref.value``   ip or domain, role source / destination
``network-traffic:dst_port``                            port
``network-traffic:protocols[*]``                        tcp/udp/icmp/sctp as protocol, another
                                                        (http, rdp ...) as application
======================================================  =====================================

Skipped on purpose:

- comparisons that name no single value: ``!=``, ``NOT``, ``LIKE``, ``MATCHES``, ``>``...
  (a regular expression is not an observable; an indicator with other comparisons keeps the
  pattern in ``extra["pattern"]``, one with none is skipped);
- network prefixes with host bits set (``198.51.100.7/24``: which was meant cannot be told)
  or wider than /8 (IPv4) or /16 (IPv6): they go to ``extra["networks"]`` instead of being
  dropped or widened; other prefixes are ipv4-net/ipv6-net observables, as in the IntelMQ
  and DROP readers;
- patterns of other languages (snort, yara, sigma, suricata ...): they name no value, so
  the indicator is skipped (unless evidence it is ``based-on`` names some);
- revoked objects (their producer withdrew them);
- every other object type (attack-pattern, relationship, marking-definition, malware,
  identity, report ...) is context: it classifies, marks or names records but is no record
  itself (a record that a report or grouping names in its ``object_refs`` keeps that
  report's id in ``extra["stix_report"]``: campaigns join the records of one report), and
  neither are SCOs that no observed-data or infrastructure references. An
  infrastructure is a record (an indicator) when it ``consists-of`` addresses, domains or
  URLs: command-and-control → malicious-code/c2-server (role "c2"), phishing →
  fraud/phishing, hosting-malware → malicious-code/malware-distribution, botnet →
  malicious-code/infected-system; otherwise other/undetermined.

RSIT (first rule that applies):

1. a label that names RSIT: ``rsit:<class>="<type>"``, ``ecsirt:...``,
   ``circl:incident-classification="..."`` or a bare RSIT type such as ``phishing``;
2. incidents: ``incident_types`` of the incident core extension (ransomware →
   malicious-code/infected-system, phishing → fraud/phishing, ddos → availability/ddos ...);
3. "phish" in the labels, indicator_types, name or names of related attack-patterns →
   fraud/phishing;
4. indicator_types "compromised" → intrusions/system-compromise;
5. "malicious-activity" (or no type) with an address, domain or URL and a C2 hint (c2, c&c,
   command and control in name, description or labels; a related infrastructure of type
   command-and-control) → malicious-code/c2-server, and those observables get role "c2";
6. "malicious-activity" with a URL or a file hash → malicious-code/malware-distribution;
7. a sighting of a malware object → malicious-code/infected-system;
8. "benign" → other/other; anything else (anomalous-activity, anonymization, attribution,
   unknown, ...) → other/undetermined.

Taxonomy tags (labels here, tags in MISP): ``rsit:<class>="<type>"`` as written;
``ecsirt:<class>="<type>"`` with eCSIRT names mapped as IntelMQ did (c&c → c2-server,
botnet-drone → infected-system, vulnerable-service → vulnerable-system ...), malware families
(ransomware, trojan, worm ...) naming the class malicious-code only;
``circl:incident-classification`` (malware → malicious-code, phishing → fraud/phishing,
scan → information-gathering/scanner, system-compromise, sql-injection and xss →
intrusion-attempts/exploit, information-leak → data-leak ...). A tag that names only a class
takes the reader's default type (MISP: its category's) or the class's usual one
(malicious-code → infected-system).

TLP: the strictest of ``object_marking_refs``, ``granular_markings`` and ``tlp:`` labels
(strictest, because the record carries the whole object). Known: the four TLP 1.0 ids of the
STIX 2.1 specification, the five TLP 2.0 ids of the OASIS TLP 2.0 extension, and marking
definitions in the bundle by ``definition.tlp``, the ``tlp_2_0`` extension property or a name
such as ``TLP:AMBER+STRICT``. TLP:WHITE is "clear". A sighting also takes its indicator's
marking and an observed-data its SCOs'.

ATT&CK: ids ``T1234`` / ``T1234.001`` from ``external_references`` (source ``mitre-*``) of
the object itself and of attack-patterns related to it by any relationship, or one hop away
(indicator ``indicates`` X, X ``uses`` attack-pattern); a sighting also takes its indicator's.
``kill_chain_phases`` of the ``mitre-attack`` chain name tactics, not techniques: they go to
``extra["attack_tactics"]``.

Errors (never raised; each with the JSON pointer of the fault): malformed JSON (line and
column), not STIX, objects without ``type`` or ``id``, objects the ``stix2`` library rejects,
empty and invalid patterns (the ``stix2patterns`` message, or the exception it crashed with,
at ``/objects/N/pattern``), values that are no valid address, domain,
URL, e-mail address, hash or AS number, an indicator without ``valid_from`` (stix2 would
quietly make it "now"). An object with an error yields no record.

The second half of this module (observable canonicalisation, JSON loading, TLP, RSIT tags,
ATT&CK ids) is shared with the MISP reader.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO

import stix2
from stix2patterns.exceptions import ParseException
from stix2patterns.helpers import brackets_check
from stix2patterns.inspector import INDEX_STAR
from stix2patterns.v20.object_validator import verify_object as verify_object20
from stix2patterns.v20.pattern import Pattern as Pattern20
from stix2patterns.v21.object_validator import verify_object as verify_object21
from stix2patterns.v21.pattern import Pattern as Pattern21
from stix2patterns.v21.validator import DuplicateQualifierTypeError, ValidationListener

from concord.errors import FaultLocation
from concord.intake.readers import Reader
from concord.intake.readers.values import (
    ATTACK_ID,
    DEFAULT_MAX_BYTES,
    MAX_DEPTH,
    attack_ids_in,
    canonical,
    clean_text,
    dicts_in,
    ip_value,
    load_json,
    network_value,
    pointer_escape,
    raw_json,
    resolve_rsit,
    rsit_from_tags,
    strictest_tlp,
    strings_in,
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

MAX_PATTERN = 100_000  # characters of one pattern; ANTLR is slow and recursive

Json = Any  # a value orjson produced: dict, list, str, int, float, bool or None


# ---------------------------------------------------------------------------------------------
# The STIX reader
# ---------------------------------------------------------------------------------------------

# TLP 1.0 marking definitions predefined by the STIX 2.1 specification (stix2 ships them) and
# the TLP 2.0 ones published with the OASIS TLP 2.0 extension definition.
_KNOWN_MARKINGS: dict[str, str] = {
    stix2.TLP_WHITE.id: "clear",
    stix2.TLP_GREEN.id: "green",
    stix2.TLP_AMBER.id: "amber",
    stix2.TLP_RED.id: "red",
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
_TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_INCIDENT_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
# Handed to stix2 instead of "stix" once the pattern has been checked here, so that the slow
# ANTLR parse runs once per indicator, not twice.
_PATTERN_CHECKED = "x-concord-checked"

_RECORD_TYPES = ("indicator", "observed-data", "sighting", "incident")
_C2_HINT = re.compile(r"\bc2\b|\bc&c\b|\bcnc\b|command[\s-]*(?:and|&)[\s-]*control", re.I)
_STR_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'", re.S)
_INT_LITERAL = re.compile(r"-?\d+")
_NETWORK_KINDS = frozenset(
    {
        ObservableKind.IPV4,
        ObservableKind.IPV6,
        ObservableKind.IPV4_NET,
        ObservableKind.IPV6_NET,
        ObservableKind.DOMAIN,
        ObservableKind.URL,
    }
)
_TRANSPORTS = frozenset({"tcp", "udp", "icmp", "sctp"})
_NETWORK_LAYER = frozenset({"ip", "ipv4", "ipv6", "icmp6", "ipv6-icmp"})
_HASH_KINDS = {
    "MD5": ObservableKind.MD5,
    "SHA1": ObservableKind.SHA1,
    "SHA256": ObservableKind.SHA256,
    "SHA512": ObservableKind.SHA512,
}
_EMAIL_PATHS = {
    ("from_ref", "value"): "source",
    ("sender_ref", "value"): "source",
    ("to_refs", "*", "value"): "target",
    ("cc_refs", "*", "value"): "target",
    ("bcc_refs", "*", "value"): "target",
}
_INCIDENT_TYPES: dict[str, tuple[str, str]] = {
    "ransomware": ("malicious-code", "infected-system"),
    "malware": ("malicious-code", "infected-system"),
    "phishing": ("fraud", "phishing"),
    "typosquatting": ("fraud", "masquerade"),
    "denial-of-service": ("availability", "dos"),
    "dos": ("availability", "dos"),
    "ddos": ("availability", "ddos"),
    "data-exfiltration": ("information-content-security", "data-leak"),
    "data-leak": ("information-content-security", "data-leak"),
    "data-breach": ("information-content-security", "data-leak"),
    "compromise": ("intrusions", "system-compromise"),
    "account-compromise": ("intrusions", "unprivileged-account-compromise"),
    "defacement": ("intrusions", "application-compromise"),
    "scanning": ("information-gathering", "scanner"),
    "information-system-disruption": ("availability", "outage"),
}

_SNIFF_BUNDLE = re.compile(rb'"type"\s*:\s*"bundle"')
_SNIFF_ID = re.compile(rb'"id"\s*:\s*"[a-z0-9-]+--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-')
_SNIFF_MISP = re.compile(rb'"(?:Event|Attribute)"\s*:')


@dataclass(frozen=True)
class _Values:
    """What a pattern or a set of SCOs names."""

    observables: tuple[Observable, ...] = ()
    networks: tuple[str, ...] = ()
    port: int | None = None
    protocol: str | None = None
    application: str | None = None

    def kinds(self) -> set[ObservableKind]:
        return {o.kind for o in self.observables}


class _Invalid(Exception):
    """An object cannot become a record; `suffix` extends its pointer to the faulty member."""

    def __init__(self, reason: str, suffix: str = "", pointer: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.suffix = suffix
        self.pointer = pointer  # when the fault is in another object (a referenced SCO)

    def at(self, entry: _Entry) -> str:
        """The pointer of the fault, for an error of `entry`'s."""
        return self.pointer if self.pointer is not None else entry.pointer + self.suffix


@dataclass
class _Entry:
    pointer: str
    obj: dict[str, Json]


@dataclass(frozen=True)
class _Facts:
    """What a record says besides where it comes from; an indicator's are kept for sightings."""

    time: datetime | None
    values: _Values
    rsit: tuple[str, str]
    tlp: str | None
    techniques: frozenset[str]
    description: str
    confidence: int | None


@dataclass
class _Bundle:
    """Everything one document says, indexed for the cross-references records need."""

    source: str
    entries: list[_Entry] = field(default_factory=list)
    by_id: dict[str, _Entry] = field(default_factory=dict)
    out: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    inc: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    tlp_of_marking: dict[str, str] = field(default_factory=lambda: dict(_KNOWN_MARKINGS))
    indicators: dict[str, _Facts | _Invalid] = field(default_factory=dict)
    # object id -> the first report or grouping that names it: its records belong together
    report_of: dict[str, str] = field(default_factory=dict)
    # object id -> every version of it in the document (`by_id` keeps the last)
    versions: dict[str, list[_Entry]] = field(default_factory=lambda: defaultdict(list))
    # by pointer, read once however many objects refer to it: an observed-data's values,
    # markings and times observed (None: it does not read), and its first_observed
    evidence: dict[str, tuple[_Values, list[str | None], int] | None] = field(default_factory=dict)
    first_observed: dict[str, datetime | None] = field(default_factory=dict)

    def location(self, pointer: str) -> FaultLocation:
        return FaultLocation(source=self.source, pointer=pointer)

    def get(self, ref: Json) -> _Entry | None:
        return self.by_id.get(ref) if isinstance(ref, str) else None

    def neighbours(self, oid: str) -> Iterator[tuple[str, _Entry]]:
        """(relationship type, entry) for every object related to `oid`, either direction."""
        for rtype, other in (*self.out.get(oid, ()), *self.inc.get(oid, ())):
            entry = self.by_id.get(other)
            if entry is not None:
                yield rtype, entry

    def attack_patterns(self, oid: str) -> list[dict[str, Json]]:
        """Attack-patterns related to `oid`, and those used by what `oid` indicates."""
        found = [e.obj for _, e in self.neighbours(oid) if e.obj["type"] == "attack-pattern"]
        for rtype, other in self.out.get(oid, ()):
            if rtype != "indicates":
                continue
            for rtype2, target in self.out.get(other, ()):
                entry = self.by_id.get(target)
                if rtype2 == "uses" and entry and entry.obj["type"] == "attack-pattern":
                    found.append(entry.obj)
        return found

    def tlp(self, obj: dict[str, Json]) -> str | None:
        levels = [
            self.tlp_of_marking.get(ref) for ref in strings_in(obj.get("object_marking_refs"))
        ]
        for marking in dicts_in(obj.get("granular_markings")):
            ref = marking.get("marking_ref")
            levels.append(self.tlp_of_marking.get(ref) if isinstance(ref, str) else None)
        levels.extend(tlp_level(label) for label in strings_in(obj.get("labels")))
        return strictest_tlp(levels)


class StixReader(Reader):
    name = "stix"
    description = "STIX 2.1 bundle or object: indicators, observed data, sightings, incidents"

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def sniff(self, head: bytes, filename: str) -> bool:
        if filename.lower().endswith((".stix", ".stix2", ".stix.json")):
            return True
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if start not in (b"{", b"[") or _SNIFF_MISP.search(head):
            return False
        return bool(_SNIFF_BUNDLE.search(head) or _SNIFF_ID.search(head))

    def read(self, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
        doc, error = load_json(stream, source, self.max_bytes)
        if error is not None:
            yield error
            return
        bundle = _Bundle(source)
        found = _top_level(doc)
        if isinstance(found, str):
            yield ReadError(bundle.location(""), found)
            return
        base, objects = found
        yield from _index(bundle, base, objects)
        for entry in bundle.entries:
            kind = entry.obj["type"]
            if entry.obj.get("revoked") is True:
                continue
            if kind == "infrastructure":
                try:
                    record = _infrastructure(bundle, entry)
                except _Invalid as exc:
                    yield ReadError(bundle.location(exc.at(entry)), exc.reason)
                    continue
                if record is not None:
                    yield record
                continue
            if kind not in _RECORD_TYPES:
                continue
            if kind == "observed-data" and _told_by_indicator(bundle, entry):
                continue
            try:
                record = _record_of(bundle, entry)
            except _Invalid as exc:
                yield ReadError(bundle.location(exc.at(entry)), exc.reason)
                continue
            yield (
                record if kind == "incident" or _names_a_value(record) else Skipped(record.location)
            )


def _names_a_value(record: EventRecord) -> bool:
    """Whether a record names something to correlate on: an observable, or a network kept as
    text (host bits set, or too wide), as a MISP attribute with one is a record too."""
    return bool(record.observables or record.extra.get("networks"))


def _top_level(doc: Json) -> tuple[str | None, list[Json]] | str:
    """(pointer prefix, objects); a None prefix means the document is the one object."""
    if isinstance(doc, list):
        return "", doc
    if not isinstance(doc, dict):
        return "not STIX: expected a bundle, a list of objects or a STIX object"
    if doc.get("type") == "bundle" or ("type" not in doc and "objects" in doc):
        objects = doc.get("objects", [])
        if not isinstance(objects, list):
            return "the bundle's 'objects' must be an array"
        return "/objects", objects
    if isinstance(doc.get("type"), str):
        return None, [doc]
    return "not STIX: expected a bundle, a list of objects or a STIX object"


def _index(bundle: _Bundle, base: str | None, objects: list[Json]) -> Iterator[ReadError]:
    for i, obj in enumerate(objects):
        pointer = "" if base is None else f"{base}/{i}"
        loc = bundle.location(pointer)
        if not isinstance(obj, dict):
            yield ReadError(loc, "a STIX object must be a JSON object")
            continue
        kind, oid = obj.get("type"), obj.get("id")
        if not isinstance(kind, str) or not kind:
            yield ReadError(loc, "object has no 'type'")
            continue
        if not isinstance(oid, str) or not oid:
            yield ReadError(loc, f"{kind} object has no 'id'")
            continue
        if oid.partition("--")[0] != kind:
            yield ReadError(loc, f"id {oid[:100]!r} does not name an object of type {kind!r}")
            continue
        entry = _Entry(pointer, obj)
        bundle.entries.append(entry)
        bundle.by_id[oid] = entry
        bundle.versions[oid].append(entry)
        if kind == "relationship":
            rtype, src, tgt = (
                obj.get(k) for k in ("relationship_type", "source_ref", "target_ref")
            )
            if isinstance(rtype, str) and isinstance(src, str) and isinstance(tgt, str):
                bundle.out[src].append((rtype, tgt))
                bundle.inc[tgt].append((rtype, src))
        elif kind in ("report", "grouping"):
            for ref in strings_in(obj.get("object_refs")):
                bundle.report_of.setdefault(ref, oid)
        elif kind == "marking-definition":
            level = _marking_tlp(obj)
            if level:
                bundle.tlp_of_marking[oid] = level


def _marking_tlp(obj: dict[str, Json]) -> str | None:
    definition = obj.get("definition")
    if obj.get("definition_type") == "tlp" and isinstance(definition, dict):
        return tlp_level(str(definition.get("tlp", "")), bare=True)
    extensions = obj.get("extensions")
    if isinstance(extensions, dict) and isinstance(extensions.get(_TLP2_EXTENSION), dict):
        return tlp_level(str(extensions[_TLP2_EXTENSION].get("tlp_2_0", "")), bare=True)
    name = obj.get("name")
    return tlp_level(name) if isinstance(name, str) else None


def _record_of(bundle: _Bundle, entry: _Entry) -> EventRecord:
    kind = entry.obj["type"]
    if kind == "indicator":
        facts = _indicator(bundle, entry)
        if isinstance(facts, _Invalid):
            raise facts
        facts, times = _with_evidence(bundle, entry, facts)
        return _record(bundle, entry, "indicator", facts, _indicator_extra(entry.obj), times)
    if kind == "observed-data":
        return _observed_data(bundle, entry)
    if kind == "sighting":
        return _sighting(bundle, entry)
    return _incident(bundle, entry)


def _record(
    bundle: _Bundle,
    entry: _Entry,
    nature: str,
    facts: _Facts,
    extra: dict[str, str],
    times: int = 1,
) -> EventRecord:
    values = facts.values
    extra = {"stix_id": entry.obj["id"], **{k: clean_text(v) for k, v in extra.items() if v}}
    report = bundle.report_of.get(entry.obj["id"])
    if report:
        extra["stix_report"] = report
    if values.networks:
        extra["networks"] = clean_text(" ".join(values.networks))
    return EventRecord(
        time=facts.time,
        rsit_class=facts.rsit[0],
        rsit_type=facts.rsit[1],
        observables=values.observables,
        location=bundle.location(entry.pointer),
        raw=raw_json(entry.obj),
        feed="stix",
        nature=nature,
        port=values.port,
        protocol=values.protocol,
        application=values.application,
        tlp=facts.tlp,
        confidence=facts.confidence,
        description=facts.description,
        attack_techniques=tuple(sorted(facts.techniques)),
        extra=extra,
        identity="stix:" + entry.obj["id"],
        times=times,
    )


def _readable_evidence(
    bundle: _Bundle, entry: _Entry
) -> tuple[_Values, list[str | None], int] | None:
    """An observed-data's values, markings and times observed, or None when it is revoked or
    does not read (it is then a record of its own, whose error the receipt gives)."""
    if entry.obj["type"] != "observed-data" or entry.obj.get("revoked") is True:
        return None
    if entry.pointer not in bundle.evidence:
        try:
            parsed = _parse(entry.obj)
            values, tlps = _observed_values(bundle, entry)
        except _Invalid:
            bundle.evidence[entry.pointer] = None
        else:
            times = _times(parsed.get("number_observed"))
            bundle.evidence[entry.pointer] = (values, [bundle.tlp(entry.obj), *tlps], times)
            bundle.first_observed[entry.pointer] = _stix_time(parsed, entry.obj, "first_observed")
    return bundle.evidence[entry.pointer]


def _told_by_indicator(bundle: _Bundle, entry: _Entry) -> bool:
    """Whether an observed-data is the evidence an indicator of the bundle is `based-on`
    (as MISP exports an attribute): both tell one observation, which the indicator's record
    carries, so it is neither lost nor counted twice. Any version of the indicator that is
    read takes it."""
    based_on = [ref for rtype, ref in bundle.inc.get(entry.obj["id"], ()) if rtype == "based-on"]
    return (
        any(
            indicator.obj["type"] == "indicator"
            and indicator.obj.get("revoked") is not True
            and not isinstance(_indicator(bundle, indicator), _Invalid)
            for ref in based_on
            for indicator in bundle.versions.get(ref, ())
        )
        and _readable_evidence(bundle, entry) is not None
    )


def _with_evidence(bundle: _Bundle, entry: _Entry, facts: _Facts) -> tuple[_Facts, int]:
    """An indicator's facts with the values and markings of the observed-data it is
    `based-on` (a value the pattern names already keeps the pattern's role), and the times
    they were observed (once, without any)."""
    named = {(o.kind, o.value) for o in facts.values.observables}
    collected = _Collector()
    collected.merge(facts.values)
    tlps = [facts.tlp]
    times = 0
    for rtype, ref in bundle.out.get(entry.obj["id"], ()):
        observed = bundle.by_id.get(ref)
        evidence = None if observed is None else _readable_evidence(bundle, observed)
        if rtype != "based-on" or evidence is None:
            continue
        values, markings, observed_times = evidence
        fresh = [o for o in values.observables if (o.kind, o.value) not in named]
        named.update((o.kind, o.value) for o in fresh)
        collected.merge(replace(values, observables=tuple(fresh)))
        tlps.extend(markings)
        times += observed_times
    if not times:
        return facts, 1
    return replace(facts, values=collected.values(), tlp=strictest_tlp(tlps)), times


def _parse(obj: dict[str, Json], pattern_checked: bool = False) -> Any:
    """Validate an object with the stix2 library; custom properties and objects are allowed."""
    version = obj.get("spec_version", "2.0")
    if version not in ("2.0", "2.1"):
        raise _Invalid(f"unsupported spec_version {str(version)[:20]!r}; expected 2.1 or 2.0")
    data = obj
    if pattern_checked and obj.get("pattern_type") == "stix":
        data = {**obj, "pattern_type": _PATTERN_CHECKED}
    try:
        parsed = stix2.parse(data, allow_custom=True)
    except Exception as exc:  # stix2 raises many kinds (STIXError, ValueError, AttributeError)
        # located at the property the library names, when the object has it
        prop = getattr(exc, "prop_name", None)
        suffix = f"/{pointer_escape(prop)}" if isinstance(prop, str) and prop in obj else ""
        raise _Invalid(f"invalid {obj['type']}: {_message(exc)}", suffix) from None
    if isinstance(parsed, dict):  # stix2 hands back what it has no class for
        raise _Invalid(f"invalid {obj['type']}: not a STIX {version} object")
    return parsed


def _message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _indicator(bundle: _Bundle, entry: _Entry) -> _Facts | _Invalid:
    # by pointer, not id: a bundle may hold several versions of one indicator
    if entry.pointer not in bundle.indicators:
        try:
            bundle.indicators[entry.pointer] = _read_indicator(bundle, entry)
        except _Invalid as exc:
            bundle.indicators[entry.pointer] = exc
    return bundle.indicators[entry.pointer]


def _read_indicator(bundle: _Bundle, entry: _Entry) -> _Facts:
    obj = entry.obj
    pattern = obj.get("pattern")
    values = _Values()
    checked = False
    # STIX 2.0 has no pattern_type: its patterns are all STIX patterns
    if obj.get("pattern_type", "stix") == "stix" and isinstance(pattern, str):
        version = obj.get("pattern_version") or obj.get("spec_version") or "2.0"
        values = _pattern_values(pattern, "2.0" if version == "2.0" else "2.1")
        checked = True
    parsed = _parse(obj, pattern_checked=checked)
    if "valid_from" not in obj:
        raise _Invalid("the indicator has no valid_from", "/valid_from")
    labels = [*strings_in(obj.get("indicator_types")), *strings_in(obj.get("labels"))]
    names = [str(p.get("name", "")) for p in bundle.attack_patterns(obj["id"])]
    hints = [*labels, str(obj.get("name", "")), *names]
    c2 = bool(_C2_HINT.search(" ".join([*hints, str(obj.get("description", ""))]))) or any(
        "command-and-control" in strings_in(e.obj.get("infrastructure_types"))
        for _, e in bundle.neighbours(obj["id"])
        if e.obj["type"] == "infrastructure"
    )
    rsit = _indicator_rsit(obj, values, hints, c2)
    if rsit == ("malicious-code", "c2-server"):
        values = _with_role(values, "c2")
    return _Facts(
        _stix_time(parsed, obj, "valid_from"),
        values,
        rsit,
        bundle.tlp(obj),
        frozenset(_techniques(bundle, obj)),
        clean_text(obj.get("description") or obj.get("name")),
        _confidence(obj),
    )


def _indicator_rsit(
    obj: dict[str, Json], values: _Values, hints: list[str], c2: bool
) -> tuple[str, str]:
    tagged = rsit_from_tags(strings_in(obj.get("labels")))
    if tagged:
        return resolve_rsit(tagged)
    types = {*strings_in(obj.get("indicator_types")), *strings_in(obj.get("labels"))}
    if any("phish" in hint.lower() for hint in hints):
        return "fraud", "phishing"
    if "compromised" in types:
        return "intrusions", "system-compromise"
    if "benign" in types:
        return "other", "other"
    kinds = values.kinds()
    malicious = "malicious-activity" in types
    if c2 and (malicious or not types) and kinds & _NETWORK_KINDS:
        return "malicious-code", "c2-server"
    if malicious and kinds & {ObservableKind.URL, *_HASH_KINDS.values()}:
        return "malicious-code", "malware-distribution"
    return "other", "undetermined"


def _with_role(values: _Values, role: str) -> _Values:
    observables = tuple(
        Observable(o.kind, o.value, role) if o.kind in _NETWORK_KINDS else o
        for o in values.observables
    )
    return _Values(observables, values.networks, values.port, values.protocol, values.application)


def _indicator_extra(obj: dict[str, Json]) -> dict[str, str]:
    extra = {
        "name": str(obj.get("name") or ""),
        "pattern": str(obj.get("pattern") or ""),
        "pattern_type": str(obj.get("pattern_type") or "stix"),
        "indicator_types": ",".join(strings_in(obj.get("indicator_types"))),
        "valid_until": str(obj.get("valid_until") or ""),
    }
    tactics = [
        str(phase.get("phase_name"))
        for phase in dicts_in(obj.get("kill_chain_phases"))
        if phase.get("kill_chain_name") == "mitre-attack"
    ]
    if tactics:
        extra["attack_tactics"] = ",".join(tactics)
    return extra


# What an infrastructure of each type is, in RSIT, when it names its addresses: its
# `infrastructure_types` (the STIX 2.1 open vocabulary), first match.
_INFRASTRUCTURE_RSIT = (
    ("command-and-control", ("malicious-code", "c2-server")),
    ("phishing", ("fraud", "phishing")),
    ("hosting-malware", ("malicious-code", "malware-distribution")),
    ("exfiltration", ("malicious-code", "c2-server")),
    ("botnet", ("malicious-code", "infected-system")),
)


def _infrastructure(bundle: _Bundle, entry: _Entry) -> EventRecord | None:
    """An infrastructure that names the addresses, domains or URLs it `consists-of` is an
    indicator of them (a C2 server's address is what a member watches for); one that names
    none stays context."""
    obj = entry.obj
    resolve = _bundle_resolver(bundle)
    collected = _Collector()
    tlps: list[str | None] = [bundle.tlp(obj)]
    for rtype, ref in bundle.out.get(obj["id"], ()):
        found = resolve(ref) if rtype == "consists-of" else None
        if found is None or found[1].get("type") not in _INFRASTRUCTURE_PARTS:
            continue
        try:
            _sco_values(collected, found[1], resolve)
        except ValueError as exc:
            raise _Invalid(str(exc), pointer=found[0]) from None
        tlps.append(bundle.tlp(found[1]))
    values = collected.values()
    if not values.observables:
        return None
    types = set(strings_in(obj.get("infrastructure_types")))
    rsit = rsit_from_tags(strings_in(obj.get("labels"))) or next(
        (pair for name, pair in _INFRASTRUCTURE_RSIT if name in types), ("other", "undetermined")
    )
    if rsit == ("malicious-code", "c2-server"):
        values = _with_role(values, "c2")
    parsed = _parse(obj)
    facts = _Facts(
        _stix_time(parsed, obj, "first_seen") or _stix_time(parsed, obj, "created"),
        values,
        resolve_rsit(rsit),
        strictest_tlp(tlps),
        frozenset(_techniques(bundle, obj)),
        clean_text(obj.get("description") or obj.get("name")),
        _confidence(obj),
    )
    extra = {"infrastructure_types": ",".join(sorted(types)), "name": str(obj.get("name") or "")}
    return _record(bundle, entry, "indicator", facts, extra)


_INFRASTRUCTURE_PARTS = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url"})


def _observed_data(bundle: _Bundle, entry: _Entry) -> EventRecord:
    obj = entry.obj
    read = _readable_evidence(bundle, entry)  # read once, should a sighting name it too
    if read is None:  # it does not read: the reasons, located
        _parse(obj)
        _observed_values(bundle, entry)
        raise _Invalid(f"invalid {obj['type']}")  # not reached: one of them raised
    values, markings, times = read
    rsit = rsit_from_tags(strings_in(obj.get("labels"))) or ("other", "undetermined")
    facts = _Facts(
        bundle.first_observed.get(entry.pointer),
        values,
        resolve_rsit(rsit),
        strictest_tlp(markings),
        frozenset(_techniques(bundle, obj)),
        clean_text(obj.get("description") or obj.get("name")),
        _confidence(obj),
    )
    extra = {"last_observed": str(obj.get("last_observed") or "")}
    return _record(bundle, entry, "event", facts, extra, times)


def _sighting(bundle: _Bundle, entry: _Entry) -> EventRecord:
    obj = entry.obj
    parsed = _parse(obj)
    sighted = bundle.get(obj.get("sighting_of_ref"))
    tlps = [bundle.tlp(obj)]
    collected = _Collector()
    base: _Facts | None = None
    if sighted is not None and sighted.obj["type"] == "indicator":
        found = _indicator(bundle, sighted)
        if isinstance(found, _Invalid):
            raise _Invalid(f"the sighted indicator is invalid: {found.reason}", "/sighting_of_ref")
        base = found
        collected.merge(found.values)
        tlps.append(found.tlp)
    observed_from: list[datetime] = []
    for i, ref in enumerate(strings_in(obj.get("observed_data_refs"))):
        observed = bundle.get(ref)
        if observed is None or observed.obj["type"] != "observed-data":
            continue
        try:
            values, sco_tlps = _observed_values(bundle, observed)
        except _Invalid as exc:
            raise _Invalid(exc.reason, f"/observed_data_refs/{i}") from None
        collected.merge(values)
        tlps.extend([bundle.tlp(observed.obj), *sco_tlps])
        # read once per observed-data however many sightings name it; one the library
        # refuses is its own error
        if _readable_evidence(bundle, observed) is not None:
            first = bundle.first_observed.get(observed.pointer)
            if first is not None:
                observed_from.append(first)
    tagged = rsit_from_tags(strings_in(obj.get("labels")))
    if tagged:
        rsit = resolve_rsit(tagged)
    elif base is not None:
        rsit = base.rsit
    elif sighted is not None and sighted.obj["type"] == "malware":
        rsit = ("malicious-code", "infected-system")
    else:
        rsit = ("other", "undetermined")
    techniques = set(_techniques(bundle, obj))
    if base is not None:
        techniques |= base.techniques
    elif sighted is not None:
        techniques |= set(_techniques(bundle, sighted.obj))
    confidence = _confidence(obj)
    if confidence is None and base is not None:
        confidence = base.confidence
    time = (
        _stix_time(parsed, obj, "first_seen")
        or _stix_time(parsed, obj, "last_seen")
        or min(observed_from, default=None)  # what was sighted tells when, better than
        or _stix_time(parsed, obj, "created")  # when the sighting was written down
    )
    facts = _Facts(
        time,
        collected.values(),
        rsit,
        strictest_tlp(tlps),
        frozenset(techniques),
        clean_text(obj.get("description") or (base.description if base else "")),
        confidence,
    )
    extra = {
        "sighting_of_ref": str(obj.get("sighting_of_ref") or ""),
        "last_seen": str(obj.get("last_seen") or ""),
        "where_sighted_refs": " ".join(strings_in(obj.get("where_sighted_refs"))),
    }
    return _record(bundle, entry, "event", facts, extra, _times(parsed.get("count")))


def _times(count: Any) -> int:
    """How many times an observed-data or a sighting says it was seen (the library has
    checked the range); a count of 0 still reports the sighting once."""
    return count if isinstance(count, int) and count > 0 else 1


def _incident(bundle: _Bundle, entry: _Entry) -> EventRecord:
    obj = entry.obj
    parsed = _parse(obj)
    extensions = obj.get("extensions")
    core = extensions.get(_INCIDENT_EXTENSION) if isinstance(extensions, dict) else None
    core = core if isinstance(core, dict) else {}
    incident_types = list(strings_in(core.get("incident_types")))
    rsit = rsit_from_tags(strings_in(obj.get("labels")))
    if rsit is None:
        rsit = next((_INCIDENT_TYPES[t] for t in incident_types if t in _INCIDENT_TYPES), None)
    if rsit is None:
        rsit = rsit_from_tags(incident_types)
    facts = _Facts(
        _stix_time(parsed, obj, "created"),
        _Values(),
        resolve_rsit(rsit or ("other", "undetermined")),
        bundle.tlp(obj),
        frozenset(_techniques(bundle, obj)),
        clean_text(obj.get("description") or obj.get("name")),
        _confidence(obj),
    )
    extra = {
        "name": str(obj.get("name") or ""),
        "incident_types": ",".join(incident_types),
        "determination": str(core.get("determination") or ""),
        "investigation_status": str(core.get("investigation_status") or ""),
    }
    return _record(bundle, entry, "event", facts, extra)


def _techniques(bundle: _Bundle, obj: dict[str, Json]) -> Iterator[str]:
    yield from _attack_ids(obj)
    for pattern in bundle.attack_patterns(obj["id"]):
        yield from _attack_ids(pattern)


def _attack_ids(obj: dict[str, Json]) -> Iterator[str]:
    for ref in dicts_in(obj.get("external_references")):
        source, external_id = ref.get("source_name"), ref.get("external_id")
        if (
            isinstance(source, str)
            and source.startswith("mitre")
            and isinstance(external_id, str)
            and ATTACK_ID.fullmatch(external_id.strip())
        ):
            yield external_id.strip()
    if obj.get("type") == "attack-pattern" and isinstance(obj.get("name"), str):
        # MISP exports name galaxy clusters "Spearphishing Attachment - T1566.001"
        yield from attack_ids_in(obj["name"])


def _confidence(obj: dict[str, Json]) -> int | None:
    value = obj.get("confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _Invalid("confidence must be an integer from 0 to 100", "/confidence")
    return value


def _stix_time(parsed: Any, obj: dict[str, Json], key: str) -> datetime | None:
    if key not in obj:  # stix2 fills some timestamps in with "now"; the source did not say
        return None
    value = parsed.get(key)
    if isinstance(value, datetime):  # stix2 turned the timestamp into a STIXdatetime
        try:
            value = utc(value)
        except ValueError:
            raise _Invalid(f"{key} is out of range in UTC", f"/{key}") from None
        return datetime.combine(value.date(), value.time(), UTC)
    return None


# --- patterns ----------------------------------------------------------------------------------


def _pattern_values(pattern: str, version: str) -> _Values:
    if not pattern.strip():  # stix2patterns crashes on an empty pattern
        raise _Invalid("the pattern is empty", "/pattern")
    if len(pattern) > MAX_PATTERN:
        raise _Invalid(f"pattern longer than {MAX_PATTERN} characters", "/pattern")
    if _nesting(pattern) > MAX_DEPTH:
        raise _Invalid(f"pattern nested deeper than {MAX_DEPTH} levels", "/pattern")
    try:
        data = _inspected(pattern, version)
    except _Invalid:
        raise
    except Exception as exc:  # the library crashed on odd input: this indicator's fault,
        # which must not cost the rest of the file
        raise _Invalid(f"invalid STIX pattern: {_message(exc)}", "/pattern") from None
    try:
        return _comparison_values(data.comparisons)
    except ValueError as exc:
        raise _Invalid(str(exc), "/pattern") from None


def _inspected(pattern: str, version: str) -> Any:
    """The pattern checked and inspected by stix2patterns; _Invalid with its first fault."""
    if not brackets_check(pattern):
        raise _Invalid("invalid STIX pattern: it must start with '[' (or '(' then '[')", "/pattern")
    try:
        compiled = Pattern20(pattern) if version == "2.0" else Pattern21(pattern)
    except ParseException as exc:
        raise _Invalid(f"invalid STIX pattern: {exc}", "/pattern") from None
    data = compiled.inspect()
    problems = (verify_object20 if version == "2.0" else verify_object21)(data)
    if not problems and version == "2.1":
        try:
            compiled.walk(ValidationListener())
        except DuplicateQualifierTypeError as exc:
            problems = [str(exc)]
    if problems:
        reason = str(problems[0]).removeprefix("FAIL: ")
        raise _Invalid(f"invalid STIX pattern: {reason}", "/pattern")
    return data


def _nesting(pattern: str) -> int:
    """How deep brackets nest outside string literals (ANTLR recurses once per level)."""
    depth = deepest = 0
    quoted = escaped = False
    for ch in pattern:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "'":
                quoted = False
        elif ch == "'":
            quoted = True
        elif ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


def _comparison_values(comparisons: dict[str, list[tuple[list[Any], str, str]]]) -> _Values:
    collected = _Collector()
    for obj_type, tests in comparisons.items():
        for path, op, literal in tests:
            if op not in ("=", "IN", "ISSUBSET"):
                continue  # negations, orderings, LIKE and MATCHES name no single value
            steps = tuple("*" if s is INDEX_STAR or isinstance(s, int) else s for s in path)
            if op == "ISSUBSET" and obj_type not in ("ipv4-addr", "ipv6-addr"):
                continue
            for value in _literals(literal):
                collected.add(obj_type, steps, value)
    return collected.values()


def _literals(literal: str) -> list[str | int]:
    text = literal.strip()
    if text.startswith("("):
        strings = [_unescape(m.group(1)) for m in _STR_LITERAL.finditer(text)]
        if strings:
            return list(strings)
        return [int(x) for x in _INT_LITERAL.findall(text)]
    match = _STR_LITERAL.fullmatch(text)
    if match:
        return [_unescape(match.group(1))]
    if _INT_LITERAL.fullmatch(text):
        return [int(text)]
    return []  # binary, hex, timestamp, float and boolean literals name no observable


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.S)


class _Collector:
    """Observables and network facts gathered from comparisons or SCO properties."""

    def __init__(self) -> None:
        self.observables: dict[Observable, None] = {}
        self.networks: dict[str, None] = {}
        self.port: int | None = None
        self.protocol: str | None = None
        self.application: str | None = None

    def merge(self, values: _Values) -> None:
        self.observables.update(dict.fromkeys(values.observables))
        self.networks.update(dict.fromkeys(values.networks))
        self.port = self.port if self.port is not None else values.port
        self.protocol = self.protocol or values.protocol
        self.application = self.application or values.application

    def values(self) -> _Values:
        return _Values(
            tuple(self.observables),
            tuple(self.networks),
            self.port,
            self.protocol,
            self.application,
        )

    def add(self, obj_type: str, path: tuple[str, ...], value: str | int) -> None:
        """One comparison `obj_type:path = value`; ValueError when the value is invalid."""
        if obj_type in ("ipv4-addr", "ipv6-addr") and path == ("value",):
            self.address(value, "source", obj_type)
        elif obj_type == "domain-name" and path == ("value",):
            self.plain(ObservableKind.DOMAIN, value, "source")
        elif obj_type == "url" and path == ("value",):
            self.plain(ObservableKind.URL, value, "source")
        elif obj_type == "email-addr" and path == ("value",):
            self.plain(ObservableKind.EMAIL, value, "source")
        elif obj_type == "email-message" and path in _EMAIL_PATHS:
            self.plain(ObservableKind.EMAIL, value, _EMAIL_PATHS[path])
        elif obj_type in ("file", "artifact") and len(path) == 2 and path[0] == "hashes":
            kind = _HASH_KINDS.get(path[1].upper().replace("-", "").replace("_", ""))
            if kind is not None:
                self.plain(kind, value, "source")
        elif obj_type == "autonomous-system" and path == ("number",):
            self.plain(ObservableKind.ASN, value, "source")
        elif obj_type == "network-traffic":
            self.traffic(path, value)

    def traffic(self, path: tuple[str, ...], value: str | int) -> None:
        if path in (("src_ref", "value"), ("dst_ref", "value")):
            role = "source" if path[0] == "src_ref" else "destination"
            if isinstance(value, str) and _looks_like_ip(value):
                self.address(value, role, None)
            else:
                self.plain(ObservableKind.DOMAIN, value, role)
        elif path == ("dst_port",):
            self.set_port(value)
        elif path == ("protocols", "*") and isinstance(value, str):
            self.add_protocol(value)

    def set_port(self, value: Json) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise ValueError(f"invalid port {value!r}: must be an integer from 0 to 65535")
        self.port = self.port if self.port is not None else value

    def add_protocol(self, value: str) -> None:
        name = value.strip().lower()
        if name in _TRANSPORTS:
            self.protocol = self.protocol or name
        elif name and name not in _NETWORK_LAYER:
            self.application = clean_text(name)[:64]

    def address(self, value: str | int, role: str, declared: str | None) -> None:
        if not isinstance(value, str):
            raise ValueError(f"invalid IP address {value!r}")
        kind, text, network = ip_value(value)
        # ip_value reads an IPv4-mapped IPv6 address (::ffff:1.2.3.4) as the IPv4 address it
        # carries, as the other readers do, so that it correlates with that address
        mapped = declared == "ipv6-addr" and kind is ObservableKind.IPV4 and ":" in value
        if declared and kind.value != declared.removesuffix("-addr") and not mapped:
            raise ValueError(f"{declared} value {value!r} is an {kind.value.upper()} address")
        if not network:
            self.observables[Observable(kind, text, role)] = None
            return
        try:
            # a network is an observable of its own, as in the IntelMQ and DROP readers,
            # so that it finds an owner and correlates
            self.observables[replace(network_value(value.strip()), role=role)] = None
        except ValueError:
            # host bits set (which was meant cannot be told) or wider than any blocklist's:
            # kept in extra, not made an observable that would flag its whole range
            self.networks[text] = None

    def plain(self, kind: ObservableKind, value: str | int, role: str) -> None:
        self.observables[Observable(kind, canonical(kind, value), role)] = None


def _looks_like_ip(value: str) -> bool:
    text = value.strip()
    return ":" in text or bool(re.fullmatch(r"[\d./]+", text))


# --- observed data ------------------------------------------------------------------------------


_CONSUMED_REFS = ("src_ref", "dst_ref", "from_ref", "sender_ref", "to_refs", "cc_refs", "bcc_refs")
_Resolve = Callable[[Json], tuple[str, dict[str, Json]] | None]


def _observed_values(bundle: _Bundle, entry: _Entry) -> tuple[_Values, list[str | None]]:
    """The values of an observed-data's SCOs, and the markings of referenced SCOs."""
    obj = entry.obj
    embedded = obj.get("objects")
    refs: list[str] = []
    tlps: list[str | None] = []
    resolve: _Resolve
    if isinstance(embedded, dict):  # STIX 2.0 style: {"0": {...}, "1": {...}}, refs are keys
        resolve = _embedded_resolver(entry.pointer, embedded)
        refs = list(embedded)
    else:
        resolve = _bundle_resolver(bundle)
        refs = list(strings_in(obj.get("object_refs")))
    scos = [(ref, found) for ref in refs if (found := resolve(ref)) is not None]
    if not isinstance(embedded, dict):
        tlps = [bundle.tlp(sco) for _, (_, sco) in scos]
    # Addresses that a network-traffic or an e-mail refers to are read there, with their role.
    consumed = {
        ref
        for _, (_, sco) in scos
        if sco.get("type") in ("network-traffic", "email-message")
        for key in _CONSUMED_REFS
        for ref in (sco.get(key) if isinstance(sco.get(key), list) else [sco.get(key)])
        if isinstance(ref, str)
    }
    collected = _Collector()
    for ref, (pointer, sco) in scos:
        if ref in consumed:
            continue
        try:
            _sco_values(collected, sco, resolve)
        except ValueError as exc:
            raise _Invalid(str(exc), pointer=pointer) from None
    return collected.values(), tlps


def _embedded_resolver(pointer: str, embedded: dict[str, Json]) -> _Resolve:
    def resolve(ref: Json) -> tuple[str, dict[str, Json]] | None:
        sco = embedded.get(ref) if isinstance(ref, str) else None
        return (f"{pointer}/objects/{pointer_escape(ref)}", sco) if isinstance(sco, dict) else None

    return resolve


def _bundle_resolver(bundle: _Bundle) -> _Resolve:
    def resolve(ref: Json) -> tuple[str, dict[str, Json]] | None:
        found = bundle.get(ref)
        return (found.pointer, found.obj) if found is not None else None

    return resolve


def _sco_values(collected: _Collector, sco: dict[str, Json], resolve: _Resolve) -> None:
    kind = sco.get("type")
    value = sco.get("value")
    if kind in ("ipv4-addr", "ipv6-addr"):
        collected.address(value, "source", kind)
    elif kind in ("domain-name", "url", "email-addr"):
        target = {
            "domain-name": ObservableKind.DOMAIN,
            "url": ObservableKind.URL,
            "email-addr": ObservableKind.EMAIL,
        }[kind]
        collected.plain(target, value, "source")
    elif kind in ("file", "artifact"):
        hashes = sco.get("hashes")
        for name, digest in hashes.items() if isinstance(hashes, dict) else ():
            collected.add(kind, ("hashes", name), digest)
    elif kind == "autonomous-system":
        collected.plain(ObservableKind.ASN, sco.get("number"), "source")
    elif kind == "email-message":
        for key, role in (("from_ref", "source"), ("sender_ref", "source")):
            _referenced_email(collected, resolve(sco.get(key)), role)
        for key in ("to_refs", "cc_refs", "bcc_refs"):
            for ref in strings_in(sco.get(key)):
                _referenced_email(collected, resolve(ref), "target")
    elif kind == "network-traffic":
        for key, role in (("src_ref", "source"), ("dst_ref", "destination")):
            found = resolve(sco.get(key))
            if found is not None and found[1].get("type") in ("ipv4-addr", "ipv6-addr"):
                collected.address(found[1].get("value"), role, found[1]["type"])
            elif found is not None and found[1].get("type") == "domain-name":
                collected.plain(ObservableKind.DOMAIN, found[1].get("value"), role)
        if sco.get("dst_port") is not None:
            collected.set_port(sco.get("dst_port"))
        for protocol in strings_in(sco.get("protocols")):
            collected.add_protocol(protocol)


def _referenced_email(
    collected: _Collector, found: tuple[str, dict[str, Json]] | None, role: str
) -> None:
    if found is not None and found[1].get("type") == "email-addr":
        collected.plain(ObservableKind.EMAIL, found[1].get("value"), role)


READER = StixReader()
