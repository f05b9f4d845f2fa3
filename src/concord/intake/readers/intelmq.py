"""IntelMQ events as IntelMQ's file output writes them: one JSON object per line.

Keys follow IntelMQ's harmonisation ("time.source", "source.ip", "classification.type",
"feed.name", "raw" in base64, "extra.*"); the hierarchical output ({"source": {"ip": ...}})
is read too. IntelMQ's classification already uses the RSIT names; the few older or
differently spelt types are mapped. Keys with no field of their own are kept in `extra`
("extra." taken off the feed's own keys).

A line is rejected (a `ReadError`) when it is not a JSON object or not an event, when its
time or its TLP cannot be read, or when it gives observables and none of them can be read.
A line that gives no observable at all names nothing to take in: it is `Skipped`. A network
(`source.network`) is an observable only when nothing narrower is given (a blocklist entry);
beside an address it is the announcing prefix, kept in `extra`. Any other
value that cannot be read (a port of 99999, a list where a text belongs) is left out of the
record and kept as given (its first 1000 characters) in `extra["invalid.<key>"]`, and the
record is taken in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import orjson

from concord.errors import FaultLocation
from concord.events.rsit import classify
from concord.intake.readers import Reader
from concord.intake.readers.csvfeed import (
    MAX_LINE,
    NORMALISERS,
    bad_utf8,
    clip_raw,
    is_cut,
    norm_asn,
    norm_domain,
    norm_ip,
    norm_url,
    parse_confidence,
    parse_name,
    parse_port,
    parse_tlp,
    stream_lines,
)
from concord.intake.readers.values import network_value
from concord.intake.records import (
    MAX_RAW,
    EventRecord,
    Observable,
    ReadError,
    ReadItem,
    Skipped,
    utc,
)

_MAX_EXTRA = 1000  # characters kept of one extra value
_T = TypeVar("_T")

# key -> (normaliser, role)
_OBSERVABLES = {
    "source.ip": (norm_ip, "source"),
    "source.fqdn": (norm_domain, "source"),
    "source.url": (norm_url, "source"),
    "source.asn": (norm_asn, "source"),
    "destination.ip": (norm_ip, "destination"),
    "destination.fqdn": (norm_domain, "destination"),
    "destination.url": (norm_url, "destination"),
    "destination.asn": (norm_asn, "destination"),
    "malware.hash.md5": (NORMALISERS["md5"], "malware"),
    "malware.hash.sha1": (NORMALISERS["sha1"], "malware"),
    "malware.hash.sha256": (NORMALISERS["sha256"], "malware"),
}
_NETWORKS = (("source.network", "source"), ("destination.network", "destination"))
# IntelMQ types that RSIT (events/rsit.py) spells differently or that older IntelMQ used.
_TYPE_ALIASES = {
    "unauthorized-use-of-resources": "unauthorised-use-of-resources",
    "unauthorized-information-access": "unauthorised-information-access",
    "unauthorized-information-modification": "unauthorised-information-modification",
    "vulnerable service": "vulnerable-system",
    "vulnerable-service": "vulnerable-system",
    "vulnerable client": "vulnerable-system",
    "compromised": "system-compromise",
    "backdoor": "system-compromise",
    "defacement": "unauthorised-information-modification",
    "leak": "data-leak",
    "botnet drone": "infected-system",
    "ransomware": "infected-system",
    "c&c": "c2-server",
    "c2server": "c2-server",  # IntelMQ 2.2 to 2.3
    "malware configuration": "malware-configuration",
    "ids alert": "ids-alert",
    "unknown": "undetermined",
}
# Keys read into the record's own fields, not kept in extra.
_FIELDS = {
    "__type",
    "raw",
    "time.source",
    "feed.name",
    "feed.accuracy",
    "source.port",
    "destination.port",
    "protocol.transport",
    "protocol.application",
    "classification.taxonomy",
    "classification.type",
    "malware.name",
    "event_description.text",
    "tlp",
    *_OBSERVABLES,
}
_SNIFF_KEYS = ("classification.type", "classification.taxonomy", "feed.name", "time.observation")


class IntelMQReader(Reader):
    name = "intelmq"
    description = "IntelMQ events, one JSON object per line (IntelMQ file output)"

    def sniff(self, head: bytes, filename: str) -> bool:
        text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
        if not text.startswith("{"):
            return False
        first = text.split("\n", 1)[0]
        try:
            document = orjson.loads(first)
        except orjson.JSONDecodeError:
            # a first line longer than the head: look for IntelMQ's keys in what there is
            return any(f'"{key}"' in first for key in _SNIFF_KEYS)
        if not isinstance(document, dict):
            return False
        keys = _flatten(document)
        return any(key in keys for key in _SNIFF_KEYS) or keys.get("__type") == "Event"

    def read(self, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
        yield from _read(stream_lines(stream), source)


def _read(lines: Iterator[str], source: str) -> Iterator[ReadItem]:
    number = 0
    cut = False
    for line in lines:
        if cut:  # the rest of an over-long line
            cut = is_cut(line)
            continue
        number += 1
        if is_cut(line):
            cut = True
            reason = f"line longer than {MAX_LINE} characters, skipped"
            yield ReadError(FaultLocation(source, number), reason)
            continue
        if not line.strip():
            continue
        if reason := bad_utf8(line):
            yield ReadError(FaultLocation(source, number), f"the line holds {reason}")
            continue
        yield _event(line, number, source)


def _event(line: str, number: int, source: str) -> ReadItem:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        # The parser numbers lines within the text it was given, so its "line 2" is this
        # line's end, not the file's line 2: name the column within this line instead.
        column = min(exc.pos, len(line.rstrip("\r\n"))) + 1
        said = "nested too deeply" if "depth" in exc.msg else exc.msg
        reason = f"not valid JSON at column {column}: {said}"
        return ReadError(FaultLocation(source, number), reason)
    if not isinstance(document, dict):
        return ReadError(FaultLocation(source, number), "expected a JSON object (an event)")
    values = _flatten(document)
    kind = values.get("__type", "Event")
    if kind != "Event":
        reason = f"an IntelMQ {kind!s:.40} message, not an event"
        return ReadError(FaultLocation(source, number, pointer="/__type"), reason)
    try:
        return _record(values, line, number, source)
    except _Fault as fault:
        pointer = _pointer(fault.key, document)
        return ReadError(FaultLocation(source, number, pointer=pointer), fault.reason)


class _Fault(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _record(values: dict[str, Any], line: str, number: int, source: str) -> ReadItem:
    extra: dict[str, str] = {}
    observables: list[Observable] = []
    unreadable: _Fault | None = None
    for key, (norm, role) in _OBSERVABLES.items():
        value = values.get(key)
        if value is None or value == "":
            continue
        try:
            normalised = norm(_scalar(value))
        except ValueError as exc:
            # one bad observable beside a good one does not cost the event
            _set_aside(extra, key, value)
            unreadable = unreadable or _Fault(key, str(exc))
            continue
        if normalised is not None:
            observables.append(Observable(normalised[0], normalised[1], role))
    if not observables:
        # A network names the event only when nothing narrower does (a blocklist entry):
        # beside an address it is the announcing prefix, which every neighbour shares.
        for key, role in _NETWORKS:
            value = values.get(key)
            if value is None or value == "":
                continue
            try:
                observables.append(replace(network_value(_scalar(value).strip()), role=role))
            except ValueError as exc:
                _set_aside(extra, key, value)
                unreadable = unreadable or _Fault(key, str(exc))
    if not observables:
        if unreadable is not None:
            raise unreadable  # the event names something, but nothing that can be read
        # no observable: nothing to take in, but counted on the receipt
        return Skipped(FaultLocation(source, number))

    taxonomy = (_optional(values, "classification.taxonomy", _same, extra) or "").lower()
    given_type = (_optional(values, "classification.type", _same, extra) or "").lower()
    rsit_class, rsit_type = classify(_TYPE_ALIASES.get(given_type, given_type), taxonomy or None)
    if given_type and (given_type != rsit_type or (taxonomy and taxonomy != rsit_class)):
        # IntelMQ's own words, when the taxonomy has others
        extra["classification.taxonomy"] = taxonomy
        extra["classification.type"] = given_type

    port = None
    given = False
    for key in ("destination.port", "source.port"):
        # the service port: the destination's in attack and infection events, the
        # source's in scans (whose destination is empty)
        if values.get(key) in (None, ""):
            continue
        found = _optional(values, key, parse_port, extra)
        if not given:
            port = found
            # an unreadable destination port is still the service's: the source's, a
            # client's port, does not stand in for it
            given = found is not None or f"invalid.{key}" in extra
        elif f"invalid.{key}" not in extra:
            extra[key] = _scalar(values[key]).strip()

    protocol = _optional(values, "protocol.transport", lambda v: parse_name(v, "protocol"), extra)
    application = _optional(
        values, "protocol.application", lambda v: parse_name(v, "application protocol"), extra
    )
    # a marking that cannot be read is not guessed: the record could end up laxer than sent
    tlp = _parsed(values, "tlp", parse_tlp)
    confidence = _optional(values, "feed.accuracy", parse_confidence, extra)
    if malware := _optional(values, "malware.name", _same, extra):
        extra["malware"] = malware.lower()[:_MAX_EXTRA]
    description = _optional(values, "event_description.text", _same, extra) or ""
    feed_name = _optional(values, "feed.name", _same, extra)
    when = _time(values)

    for key, value in values.items():
        if key in _FIELDS or value is None or value == "":
            continue
        name = key.removeprefix("extra.") if key.startswith("extra.") else key
        extra.setdefault(name, _extra_value(value))

    return EventRecord(
        time=when,
        rsit_class=rsit_class,
        rsit_type=rsit_type,
        observables=tuple(observables),
        location=FaultLocation(source, number),
        raw=_raw(values.get("raw"), line, extra),
        feed=f"intelmq:{feed_name[:200]}" if feed_name else "intelmq",
        port=port,
        protocol=protocol,
        application=application,
        tlp=tlp,
        confidence=confidence,
        description=description[:1000],
        extra=extra,
    )


def _same(text: str) -> str:
    return text


def _optional(
    values: dict[str, Any], key: str, parse: Callable[[str], _T], extra: dict[str, str]
) -> _T | None:
    """The value of `key` read by `parse`, None when absent (or when `parse` gives None);
    an unreadable value is set aside in `extra` and None returned."""
    value = values.get(key)
    if value is None:
        return None
    try:
        text = _scalar(value).strip()
        return parse(text) if text else None
    except ValueError:
        _set_aside(extra, key, value)
        return None


def _set_aside(extra: dict[str, str], key: str, value: Any) -> None:
    extra[f"invalid.{key}"] = _extra_value(value)


def _parsed(values: dict[str, Any], key: str, parse: Callable[[str], _T]) -> _T | None:
    """The value of `key` read by `parse`, None when absent; a _Fault when unreadable."""
    try:
        text = _text(values, key)
        return parse(text) if text else None
    except ValueError as exc:
        raise _Fault(key, str(exc)) from None


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys for the hierarchical output; the flat output is returned as it is."""
    if not prefix and not any(isinstance(v, dict) for v in document.values()):
        return document
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and len(name) < 200:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _pointer(key: str, document: dict[str, Any]) -> str:
    """The JSON pointer of a dotted key: "/source.ip" in the flat output, "/source/ip" in the
    hierarchical one."""
    parts = [key] if key in document else key.split(".")
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _scalar(value: Any) -> str:
    """A string or a number as text; a ValueError for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected a string or a number, found {type(value).__name__}")


def _text(values: dict[str, Any], key: str) -> str:
    """The text of a field that rejects the line when unreadable; "" when absent."""
    value = values.get(key)
    if value is None:
        return ""
    try:
        return _scalar(value).strip()
    except ValueError as exc:
        raise _Fault(key, str(exc)) from None


def _extra_value(value: Any) -> str:
    if isinstance(value, str):
        return value[:_MAX_EXTRA]
    return orjson.dumps(value).decode()[:_MAX_EXTRA]


def _time(values: dict[str, Any]) -> datetime | None:
    """time.source, else the time IntelMQ saw the event (time.observation)."""
    for key in ("time.source", "time.observation"):
        if text := _text(values, key):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise _Fault(key, f"unreadable time {text[:100]!r}: expected ISO 8601") from None
            try:
                return utc(moment)
            except ValueError as exc:
                raise _Fault(key, str(exc)) from None
    return None


def _raw(value: Any, line: str, extra: dict[str, str]) -> str:
    """The feed's own text from "raw" (base64), else the JSON line; at most MAX_RAW bytes."""
    if isinstance(value, str) and value:
        # decode only what is kept: 4 base64 characters give 3 bytes
        head = value[: (MAX_RAW + 2) // 3 * 4].strip()
        try:
            data = base64.b64decode(head + "=" * (-len(head) % 4), validate=True)
        except (binascii.Error, ValueError):
            extra["invalid.raw"] = value[:200]
        else:
            return clip_raw(data.decode("utf-8", "replace"))
    elif value not in (None, ""):
        extra["invalid.raw"] = _extra_value(value)[:200]
    return clip_raw(line)


READER = IntelMQReader()
