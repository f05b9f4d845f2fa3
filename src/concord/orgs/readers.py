"""Pure readers for asset lists in CSV and JSON: bytes in, asset rows and row errors out.

CSV columns (header required, order free): kind, value, version, description. `kind` may be
left empty: prefixes, purls, CPEs and ASNs are recognised, anything else is a domain.
JSON: an array of objects with the same keys, or {"assets": [...]}.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from concord.errors import FaultLocation
from concord.orgs import validate
from concord.orgs.model import AssetKind

MAX_FIELD = 500
COLUMNS = ("kind", "value", "version", "description")


@dataclass(frozen=True)
class AssetRow:
    kind: AssetKind
    value: str
    version: str
    description: str
    range_start: str | None
    range_end: str | None
    asn: int | None
    location: FaultLocation

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind.value, self.value, self.version)


@dataclass(frozen=True)
class RowError:
    location: FaultLocation
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {**self.location.as_dict(), "reason": self.reason}


# The widest prefix an owner may hold: even the largest allocations are longer, and a wider
# one would make its holder the owner (and reader) of everyone's events in it.
WIDEST_PREFIX = {4: 8, 6: 16}


def pad(number: int) -> str:
    return f"{number:039d}"


def normalise(
    kind_text: str, value: str, version: str, description: str, location: FaultLocation
) -> AssetRow:
    """Validate one asset; raises ValueError with the reason."""
    if not value or not value.strip():
        raise ValueError("the value is empty")
    if (
        len(kind_text) > 50
        or len(value) > MAX_FIELD
        or len(version) > 100
        or len(description) > MAX_FIELD
    ):
        raise ValueError("a field is too long")
    for name, text in (
        ("kind", kind_text),
        ("value", value),
        ("version", version),
        ("description", description),
    ):
        _storable(name, text)
    kind = validate.asset_kind(kind_text, value)
    version = version.strip()
    description = description.strip()
    range_start = range_end = None
    asn = None
    if kind in (AssetKind.IPV4_PREFIX, AssetKind.IPV6_PREFIX):
        net = validate.prefix(value)
        expected = AssetKind.IPV4_PREFIX if net.version == 4 else AssetKind.IPV6_PREFIX
        if kind != expected:
            raise ValueError(f"{value!r} is an IPv{net.version} prefix, not {kind.value}")
        canonical = str(net)
        if net.prefixlen < WIDEST_PREFIX[net.version]:
            raise ValueError(
                f"{canonical} is too wide to be one organisation's "
                f"(IPv{net.version} prefixes from /{WIDEST_PREFIX[net.version]} on)"
            )
        range_start = pad(int(net.network_address))
        range_end = pad(int(net.broadcast_address))
        version = ""
    elif kind == AssetKind.ASN:
        asn = validate.asn(value)
        canonical = f"AS{asn}"
        version = ""
    elif kind in (AssetKind.DOMAIN, AssetKind.EMAIL_DOMAIN):
        canonical = validate.domain(value)
        version = ""
    else:
        canonical, version = validate.software(value, version)
    return AssetRow(kind, canonical, version, description, range_start, range_end, asn, location)


def _storable(name: str, text: str) -> None:
    """Refuse text no database column can hold: NUL characters (PostgreSQL refuses them) and
    unpaired surrogates (which JSON escapes can produce and no UTF-8 encoder accepts)."""
    if "\x00" in text:
        raise ValueError(f"the {name} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {name} is not valid Unicode text (unpaired surrogate)") from None


def _not_utf8(data: bytes, exc: UnicodeDecodeError, source: str) -> RowError:
    line = data.count(b"\n", 0, exc.start) + 1
    return RowError(
        FaultLocation(source=source, line=line),
        f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8",
    )


class _CsvFault(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record that is not blank. Strict quoting: a stray or
    unterminated quote is an error (_CsvFault at the record's first line), never a field
    that silently swallows the rows after it."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvFault(start, f"malformed CSV: {exc}") from None
        if any(f.strip() for f in fields):
            yield start, fields


def read_csv(data: bytes, source: str = "input") -> Iterator[AssetRow | RowError]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield _not_utf8(data, exc, source)
        return
    records = _records(text)
    try:
        first = next(records, None)
    except _CsvFault as fault:
        yield RowError(FaultLocation(source=source, line=fault.line), fault.reason)
        return
    if first is None:
        yield RowError(FaultLocation(source=source, line=1), "the file is empty")
        return
    header_line, header = first
    header_loc = FaultLocation(source=source, line=header_line)
    names = [h.strip().lower() for h in header]
    if "value" not in names:
        yield RowError(
            header_loc, f"the header must name a 'value' column (columns: {', '.join(COLUMNS)})"
        )
        return
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        yield RowError(
            header_loc,
            f"unknown column(s) {', '.join(map(repr, unknown))}; use {', '.join(COLUMNS)}",
        )
        return
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        yield RowError(header_loc, f"column(s) {', '.join(repeated)} appear more than once")
        return
    index = {name: i for i, name in enumerate(names)}
    while True:
        try:
            record = next(records, None)
        except _CsvFault as fault:
            yield RowError(FaultLocation(source=source, line=fault.line), fault.reason)
            return
        if record is None:
            return
        line, fields = record
        loc = FaultLocation(source=source, line=line)
        if len(fields) != len(names):
            yield RowError(loc, f"expected {len(names)} fields, found {len(fields)}")
            continue

        def get(name: str, fields: list[str] = fields) -> str:
            return fields[index[name]] if name in index else ""

        try:
            yield normalise(get("kind"), get("value"), get("version"), get("description"), loc)
        except ValueError as exc:
            yield RowError(loc, str(exc))


def read_json(data: bytes, source: str = "input") -> Iterator[AssetRow | RowError]:
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        yield _not_utf8(data, exc, source)
        return
    except json.JSONDecodeError as exc:
        yield RowError(FaultLocation(source=source, line=exc.lineno), f"malformed JSON: {exc}")
        return
    except ValueError as exc:  # such as an integer of more than 4300 digits
        yield RowError(FaultLocation(source=source, pointer=""), f"malformed JSON: {exc}")
        return
    except RecursionError:
        yield RowError(FaultLocation(source=source, pointer=""), "JSON nested too deeply")
        return
    base = ""
    if isinstance(doc, dict) and isinstance(doc.get("assets"), list):
        doc, base = doc["assets"], "/assets"
    if not isinstance(doc, list):
        yield RowError(
            FaultLocation(source=source, pointer=""),
            'expected an array of assets or an object {"assets": [...]}',
        )
        return
    for i, item in enumerate(doc):
        loc = FaultLocation(source=source, pointer=f"{base}/{i}")
        if not isinstance(item, dict):
            yield RowError(loc, "each asset must be an object")
            continue
        unknown = [k for k in item if k not in COLUMNS]
        if unknown:
            yield RowError(loc, f"unknown key(s) {', '.join(map(str, unknown))}")
            continue
        values = {k: item.get(k, "") for k in COLUMNS}
        bad = [
            k
            for k, v in values.items()
            if v is not None and (isinstance(v, bool) or not isinstance(v, str | int))
        ]
        if bad:
            yield RowError(loc, f"{', '.join(bad)} must be text")
            continue
        try:
            yield normalise(*(str(values[k] or "") for k in COLUMNS), loc)
        except ValueError as exc:
            yield RowError(loc, str(exc))


def read(
    data: bytes, filename: str = "input", declared: str | None = None
) -> Iterator[AssetRow | RowError]:
    """Pick the reader by declared format, file extension, or the first character."""
    fmt = (declared or "").lower()
    if not fmt:
        lower = filename.lower()
        if lower.endswith(".json"):
            fmt = "json"
        elif lower.endswith(".csv"):
            fmt = "csv"
        else:
            start = data.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
            fmt = "json" if start in (b"[", b"{") else "csv"
    if fmt == "json":
        return read_json(data, filename)
    if fmt == "csv":
        return read_csv(data, filename)
    return iter(
        [
            RowError(
                FaultLocation(source=filename),
                f"unknown asset file format {declared!r}; use csv or json",
            )
        ]
    )
