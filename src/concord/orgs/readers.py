"""Pure readers for asset lists in CSV and JSON: bytes in, asset rows and row errors out.

CSV columns (header required, order free): kind, value, version, description. `kind` may be
left empty: prefixes, purls, CPEs and ASNs are recognised, anything else is a domain.
JSON: an array of objects with the same keys, or {"assets": [...]}.
"""

from __future__ import annotations

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


def pad(number: int) -> str:
    return f"{number:039d}"


def normalise(
    kind_text: str, value: str, version: str, description: str, location: FaultLocation
) -> AssetRow:
    """Validate one asset; raises ValueError with the reason."""
    if not value or not value.strip():
        raise ValueError("the value is empty")
    if len(value) > MAX_FIELD or len(version) > 100 or len(description) > MAX_FIELD:
        raise ValueError("a field is too long")
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


def read_csv(data: bytes, source: str = "input") -> Iterator[AssetRow | RowError]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield RowError(
            FaultLocation(source=source), f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        )
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield RowError(FaultLocation(source=source, line=1), f"malformed CSV: {exc}")
        return
    if header is None:
        yield RowError(FaultLocation(source=source, line=1), "the file is empty")
        return
    names = [h.strip().lower() for h in header]
    if "value" not in names:
        yield RowError(
            FaultLocation(source=source, line=1),
            f"the header must name a 'value' column (columns: {', '.join(COLUMNS)})",
        )
        return
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        yield RowError(
            FaultLocation(source=source, line=1),
            f"unknown column(s) {', '.join(unknown)}; use {', '.join(COLUMNS)}",
        )
        return
    index = {name: i for i, name in enumerate(names)}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(
                FaultLocation(source=source, line=reader.line_num), f"malformed CSV: {exc}"
            )
            return
        line = reader.line_num
        if not any(f.strip() for f in fields):
            continue
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
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        yield RowError(FaultLocation(source=source, line=line), f"malformed JSON: {exc}")
        return
    except RecursionError:
        yield RowError(FaultLocation(source=source), "JSON nested too deeply")
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
        bad = [k for k, v in values.items() if v is not None and not isinstance(v, str | int)]
        if bad or isinstance(values["value"], bool):
            yield RowError(loc, f"{', '.join(bad) or 'value'} must be text")
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
            fmt = "json" if data.lstrip()[:1] in (b"[", b"{") else "csv"
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
