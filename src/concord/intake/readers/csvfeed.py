"""CSV feeds read through declarative profiles: Shadowserver reports, abuse.ch, dataplane, ...

A `CsvProfile` says how to recognise a feed (header columns, file-name patterns, a marker in
its comment lines), how to split its lines, and what the columns mean: the time, the
observables and the role each plays, the RSIT classification (constant, per report, or taken
from a column), and which other columns to keep in `extra`. One engine reads every profile,
so a new feed is a few lines of data (or of YAML, see `load_profile`), not new code.

`CsvFeedReader(profile)` reads with one given profile; `ProfileChoosingReader` picks the
profile that fits a file. The built-in profiles and their readers are in `csvprofiles.py`.

The engine streams: lines are read one at a time (each at most `MAX_LINE` characters), and
nothing is kept between rows but a few small caches. A row that cannot be split, has the
wrong number of fields, holds bytes that are not UTF-8, an unreadable time, a bad value in a
required column, no observable at all or an unreadable TLP (which must not fall back to a
laxer one) is a `ReadError` at its line; other bad values are set aside in `extra` as
"invalid.<column>" and the record kept. A quoted field may hold line breaks (a record then
spans at most `MAX_SPAN` lines); a quote that opens a field running over its line end and
does not make a well-formed record of the lines after it (a stray quote) costs that line
alone: it is a `ReadError`, and reading goes on at the next line. So does a stray quote on
one line that a later quote on it closes, text following (``"48.3,14.2,"EXAMPLE, AT"``: a
closing quote missing): the fields it merges and splits may add up to the right number, but
they are shifted.

Observable roles used by the built-in profiles: "source" is the host the event is about (the
scanned, vulnerable or compromised system, or the attacker in attack feeds); "victim" is an
infected host seen by a sinkhole; "destination" is the address it contacted; "c2" is the
command-and-control domain it asked for.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fnmatch
import io
import ipaddress
import itertools
import re
import socket
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from types import MappingProxyType
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import yaml

from concord.errors import FaultLocation
from concord.events.rsit import RSIT, TYPE_TO_CLASS
from concord.intake.readers import Reader, ReaderError
from concord.intake.readers.values import url_host, url_tail
from concord.intake.records import MAX_RAW, EventRecord, Observable, ObservableKind, ReadError, utc
from concord.orgs import validate

MAX_LINE = 1 << 20  # characters; a longer physical line is reported and skipped
MAX_SPAN = 256  # lines one record may span (a quoted field with line breaks in it)
_HEAD_LINES = 500  # lines looked at to recognise a feed
_CACHE_SIZE = 4096  # entries per parse cache before it is emptied

# ---------------------------------------------------------------------------------------------
# Text: decoding, physical lines, raw text


def open_text(stream: BinaryIO) -> io.TextIOWrapper:
    """A text view of a binary stream. Bytes that are not UTF-8 become lone surrogates, so
    decoding never fails and the reader can report the line that holds them."""
    # newline="" keeps line ends as they are: csv needs that for quoted multi-line fields.
    return io.TextIOWrapper(
        stream,  # type: ignore[arg-type]
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )


def close_text(text: io.TextIOWrapper) -> None:
    """Let go of the text view without closing the caller's stream."""
    with contextlib.suppress(ValueError, OSError):
        text.detach()


def chunks(text: io.TextIOWrapper) -> Iterator[str]:
    """Physical lines, each cut at MAX_LINE characters (a longer line comes in pieces)."""
    return iter(partial(text.readline, MAX_LINE), "")


def stream_lines(stream: BinaryIO) -> Iterator[str]:
    """The `chunks` of a binary stream; the text view is let go of when they end, and the
    caller's stream stays open."""
    text = open_text(stream)
    try:
        yield from chunks(text)
    finally:
        close_text(text)


def is_cut(chunk: str) -> bool:
    """Whether a chunk from `chunks` is the head of a line longer than MAX_LINE."""
    return len(chunk) >= MAX_LINE and chunk[-1] not in "\r\n"


def bad_utf8(text: str) -> str | None:
    """Why `text` (decoded with surrogateescape) is not valid UTF-8, or None when it is."""
    if text.isascii():  # O(1) in CPython: the common case costs nothing
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(text[exc.start]) - 0xDC00
        if 0x80 <= byte <= 0xFF:
            return f"bytes that are not UTF-8 (0x{byte:02x} at character {exc.start + 1})"
        return f"a character that cannot be encoded (at character {exc.start + 1})"
    return None


def clip_raw(text: str) -> str:
    """The source text of one record, without its line end, at most MAX_RAW bytes."""
    text = text.rstrip("\r\n")
    if len(text) <= MAX_RAW and text.isascii():
        return text
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= MAX_RAW:
        return text
    return data[:MAX_RAW].decode("utf-8", "ignore")


# ---------------------------------------------------------------------------------------------
# Values: each normaliser returns (kind, canonical value), None for "no value", or raises
# ValueError with a reason a person can act on.

_V4, _V6 = ObservableKind.IPV4, ObservableKind.IPV6
_DOMAIN_RE = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}")
_URL_RE = re.compile(r"[a-z][a-z0-9+.-]{0,15}://[^\s/?#]+\S*", re.IGNORECASE)
_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")
_HEX_RE = re.compile(r"[0-9a-f]+")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+._/-]{0,31}")
_MAX_ASN = 4_294_967_295
_TLP = {
    "clear": "clear",
    "white": "clear",
    "green": "green",
    "amber": "amber",
    "amber+strict": "amber+strict",
    "red": "red",
}

Normalised = tuple[ObservableKind, str] | None


def norm_ip(value: str) -> Normalised:
    try:
        socket.inet_pton(socket.AF_INET, value)  # strict dotted quad, no leading zeros
        return _V4, value
    except (OSError, ValueError, UnicodeError):
        pass
    if value != value.strip():
        return norm_ip(value.strip())
    if ":" in value and "%" not in value:
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            pass
        else:
            mapped = address.ipv4_mapped
            return (_V4, str(mapped)) if mapped else (_V6, address.compressed)
    raise ValueError(f"invalid IP address {value!r}")


def norm_domain(value: str) -> Normalised:
    """A host name in lower case, IDNs as A-labels (IDNA 2008, as the rest of Concord);
    underscores are allowed, as in threat data; an address in a host column is an address."""
    name = value.strip().rstrip(".").lower()
    if name.startswith("*."):
        name = name[2:]
    if not name.isascii():
        try:
            name = validate.to_ascii(name)
        except (UnicodeError, ValueError):
            raise ValueError(f"invalid domain name {value[:200]!r}") from None
    if len(name) > 253 or not _DOMAIN_RE.fullmatch(name):
        raise ValueError(f"invalid domain name {value[:200]!r}")
    if name[-1].isdigit():
        return norm_ip(name)  # a host column may hold an address
    return ObservableKind.DOMAIN, name


def norm_url(value: str) -> Normalised:
    """Scheme and host in lower case, an empty http(s) path as "/", percent-escapes written
    one way (`url_tail`), the rest as given; "host/path" without a scheme is kept as it is
    when the host is a host name or an address."""
    text = value.strip()
    if not text or len(text) > 8192 or not text.isprintable() or " " in text:
        raise ValueError(f"invalid URL {value[:200]!r}: empty, too long or with spaces")
    if "://" not in text:
        host, slash, _ = text.partition("/")
        try:
            if not slash:
                raise ValueError
            norm_domain(host.rsplit(":", 1)[0] if host.count(":") == 1 else host)
        except ValueError:
            raise ValueError(f"invalid URL {value[:200]!r}: expected scheme://host/...") from None
        return ObservableKind.URL, text
    if not _URL_RE.fullmatch(text):
        raise ValueError(f"invalid URL {value[:200]!r}: expected scheme://host/...")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"invalid URL {value[:200]!r}: {exc}") from None
    userinfo, at, hostport = parts.netloc.rpartition("@")
    scheme = parts.scheme.lower()
    # the same form as the JSON readers give, so that a URL correlates across feeds
    try:
        netloc = f"{userinfo}{at}{url_host(scheme, hostport)}"
    except ValueError as exc:
        raise ValueError(f"invalid URL {value[:200]!r}: {exc}") from None
    return ObservableKind.URL, urlunsplit((scheme, netloc, *url_tail(scheme, parts)))


def norm_email(value: str) -> Normalised:
    """The local part as given (it may be case-sensitive), the domain canonical."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not _EMAIL_RE.fullmatch(text):
        raise ValueError(f"invalid e-mail address {value[:200]!r}")
    normalised = norm_domain(domain)
    if normalised is None or normalised[0] is not ObservableKind.DOMAIN:
        raise ValueError(f"invalid e-mail address {value[:200]!r}")
    return ObservableKind.EMAIL, f"{local}@{normalised[1]}"


def norm_asn(value: str) -> Normalised:
    value = value.strip()
    text = value[2:] if value[:2] in ("AS", "as", "As") else value
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise ValueError(f"invalid AS number {value!r}")
    number = int(text)
    if number == 0:  # feeds write 0 for "unknown"
        return None
    if number > _MAX_ASN:
        raise ValueError(f"invalid AS number {value!r}")
    return ObservableKind.ASN, str(number)


def _hash(kind: ObservableKind, length: int) -> Callable[[str], Normalised]:
    def norm(value: str) -> Normalised:
        # certificate fingerprints come as AA:BB:...
        digest = value.strip().replace(":", "").lower()
        if len(digest) != length or not _HEX_RE.fullmatch(digest):
            raise ValueError(f"invalid {kind.value} hash {value[:200]!r}")
        return kind, digest

    return norm


# The observable kinds a column may have (also read by the IntelMQ reader).
NORMALISERS: dict[str, Callable[[str], Normalised]] = {
    "ip": norm_ip,
    "domain": norm_domain,
    "hostname": norm_domain,
    "fqdn": norm_domain,
    "url": norm_url,
    "email": norm_email,
    "asn": norm_asn,
    "md5": _hash(ObservableKind.MD5, 32),
    "sha1": _hash(ObservableKind.SHA1, 40),
    "sha256": _hash(ObservableKind.SHA256, 64),
    "sha512": _hash(ObservableKind.SHA512, 128),
}
# Kinds that fill a field of the record instead of giving an observable.
_FIELD_KINDS = (
    *("port", "dst_port", "src_port", "protocol", "application"),
    *("malware", "description", "tlp", "confidence"),
)
KINDS = tuple(NORMALISERS) + _FIELD_KINDS


def parse_port(value: str) -> int | None:
    if not (value.isascii() and value.isdigit() and len(value) <= 5):
        raise ValueError(f"invalid port {value!r}")
    port = int(value)
    if port > 65535:
        raise ValueError(f"invalid port {value!r}: above 65535")
    return port or None  # feeds write 0 for "unknown"


def parse_name(value: str, what: str) -> str:
    name = value.lower()
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid {what} {value[:100]!r}")
    return name


# "TLP:RED", "TLP-RED", "tlp red"; "AMBER STRICT", "amber_strict", "Amber + Strict"
_TLP_PREFIX = re.compile(r"^tlp(?:\s*[:_-]\s*|\s+)")
_TLP_JOIN = re.compile(r"\s*[\s_+-]\s*")


def parse_tlp(value: str) -> str:
    """The TLP 2.0 level a cell names, in the spellings feeds use (any case, TLP:, TLP- or
    no prefix, WHITE for CLEAR, AMBER STRICT for AMBER+STRICT); ValueError otherwise."""
    if value in _TLP:  # the common spelling, on every row of a feed: no regex
        return _TLP[value]
    label = _TLP_PREFIX.sub("", value.strip().strip("\"'").strip().lower())
    label = _TLP_JOIN.sub("+", label)
    if label not in _TLP:
        raise ValueError(f"invalid TLP {value!r}: use clear, green, amber, amber+strict or red")
    return _TLP[label]


def parse_confidence(value: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"invalid confidence {value!r}") from None
    if not 0 <= number <= 100:
        raise ValueError(f"invalid confidence {value!r}: must be between 0 and 100")
    return round(number)


# ---------------------------------------------------------------------------------------------
# Time

TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "iso", "epoch", "epoch_ms")


def _plain_time(value: str) -> datetime:
    # "%Y-%m-%d %H:%M:%S" read by the C ISO parser (strptime is 10x slower); naming the
    # offset in the text is 5x faster than replace(tzinfo=...) afterwards.
    if len(value) == 19:
        return _fromisoformat(value + "+00:00")
    # the same time with fractions of a second or its zone ("Z", "+00:00"), as a feed
    # written by another tool may give it; without a zone it is UTC all the same
    if len(value) > 19 and value[10] in " T":
        return utc(_fromisoformat(value))
    raise ValueError(value)


_fromisoformat = datetime.fromisoformat


def _iso_time(value: str) -> datetime:
    return utc(datetime.fromisoformat(value))


def _epoch(value: str, scale: float = 1.0) -> datetime:
    try:
        return datetime.fromtimestamp(float(value) / scale, UTC)
    except (OverflowError, OSError):
        raise ValueError from None


def time_parser(fmt: str) -> Callable[[str], datetime]:
    """A function from text to an aware UTC datetime that raises ValueError."""
    if fmt == "%Y-%m-%d %H:%M:%S":
        return _plain_time
    if fmt == "iso":
        return _iso_time
    if fmt == "epoch":
        return _epoch
    if fmt == "epoch_ms":
        return partial(_epoch, scale=1000.0)
    if "%" not in fmt:
        raise ValueError(f"unknown time format {fmt!r}: use {', '.join(TIME_FORMATS)} or strptime")
    return lambda value: utc(datetime.strptime(value, fmt))


# ---------------------------------------------------------------------------------------------
# Profiles


@dataclass(frozen=True)
class ColumnMap:
    """One column and what it means. Columns absent from a file's header are ignored unless
    `required`; of several columns of kind "malware", the first non-empty one wins."""

    column: str
    kind: str  # one of KINDS
    role: str = "source"
    required: bool = False
    # For a "url" column that holds only a path: the column with the host name.
    host_column: str | None = None


class ReportClass(NamedTuple):
    """What one report of a family is: its RSIT class and type and application protocol."""

    rsit_class: str
    rsit_type: str
    application: str | None = None


@dataclass(frozen=True)
class CsvProfile:
    name: str
    description: str = ""
    feed: str = ""  # the `feed` of the records; the name when empty
    # Recognition: all of `required_columns` in the header ("a|b": a or b), a file-name
    # glob (matched against
    # the file name and against the report name, e.g. "scan_rdp" in
    # "2024-01-01-scan_rdp-my-org.csv"), or `marker` in the comment lines of a headerless feed.
    required_columns: tuple[str, ...] = ()
    file_names: tuple[str, ...] = ()
    marker: str | None = None
    # Splitting
    delimiter: str = ","
    quotechar: str | None = '"'
    split: str | None = None  # a regular expression between fields, instead of csv
    comment: str | None = None
    header: bool = True
    columns: tuple[str, ...] = ()  # the fixed columns of a headerless feed
    null_values: tuple[str, ...] = ()  # values that mean "empty", e.g. "NA", "-"
    # Rows may lack trailing columns (read as empty): Shadowserver appends columns to its
    # reports over time, and files whose header is newer than their rows exist.
    ragged: bool = False
    # Meaning
    time_column: str | None = None
    time_format: str = "%Y-%m-%d %H:%M:%S"
    time_required: bool = True
    fields: tuple[ColumnMap, ...] = ()
    rsit_class: str = "other"
    rsit_type: str = "undetermined"
    # Column-derived classification: the lower-cased value (or one of its comma-separated
    # items) looked up here; unknown values keep the constant class and type.
    classify_column: str | None = None
    classify_map: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    application: str | None = None
    protocol: str | None = None
    extra: tuple[str, ...] = ()
    nature: str = "event"
    tlp: str | None = None
    # Report families (Shadowserver): the report named by the file becomes the feed
    # `report_prefix + report`, and `reports` gives its classification.
    report_prefix: str | None = None
    reports: Mapping[str, ReportClass] = field(default_factory=dict)

    @property
    def feed_name(self) -> str:
        return self.feed or self.name

    def for_file(self, filename: str) -> CsvProfile:
        """The profile as it applies to one file: a family profile takes the report's name
        and classification from the file name."""
        if self.report_prefix is None:
            return self
        report = self._known_report(report_name(filename))
        if not report or not _glob_any(self.file_names, (report,)):
            return self
        known = self.reports.get(report) or self.reports.get(_unversioned(report))
        if known is None:
            return replace(self, feed=self.report_prefix + report)
        return replace(
            self,
            feed=self.report_prefix + report,
            rsit_class=known.rsit_class,
            rsit_type=known.rsit_type,
            application=known.application or self.application,
            classify_column=None,
        )

    def _known_report(self, report: str) -> str:
        """A known report a file is named after with a numbered part added ("scan_ssh" in a
        "scan_ssh_part2.csv"), so that each such file is not a feed of its own, whose
        reports never fold into the others'; else the name as it is. A suffix of letters
        alone ("scan_ssh_vulnerable") may be a report of its own, and is kept."""
        if not report or report in self.reports or _unversioned(report) in self.reports:
            return report
        longest = max(
            (
                known
                for known in self.reports
                if report.startswith(known + "_")
                and any(c.isdigit() for c in report[len(known) + 1 :])
            ),
            key=len,
            default="",
        )
        return longest or report


def report_name(filename: str) -> str:
    """The report type in a report file name: "scan_rdp" in "2019-09-04-scan_rdp-org-geo.csv"
    (Shadowserver's published naming) or in plain "scan_rdp.csv"; a file unpacked from an
    archive ("reports.zip!scan_rdp.csv") by its own name."""
    match = _REPORT_RE.match(base_name(filename))
    return match.group(1) if match else ""


def base_name(filename: str) -> str:
    """A file's own name, in lower case, without its folders or the archive it came in."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1].lower()


_REPORT_RE = re.compile(r"(?:\d{4}-\d{2}-\d{2}-)?([a-z0-9_]+)")


def _unversioned(report: str) -> str:
    # IPv6 variants share their IPv4 report's meaning: scan6_rdp -> scan_rdp.
    return report.replace("scan6_", "scan_", 1).replace("event6_", "event4_", 1)


def _has(names: Container[str], required: str) -> bool:
    """Whether a header has a required column, or one of "a|b"."""
    return any(name in names for name in required.lower().split("|"))


def _glob_any(patterns: Iterable[str], names: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


# ---------------------------------------------------------------------------------------------
# The engine


class _Plan(NamedTuple):
    """A profile bound to the column positions of one file."""

    width: int
    min_width: int  # a ragged row must reach every column read
    # position, column, parser, required, format
    time: tuple[int, str, Callable[[str], datetime], bool, str] | None
    observables: tuple[tuple[int, Callable[[str], Normalised], str, str, bool, int], ...]
    port: tuple[int, str] | None
    src_port: tuple[int, str] | None
    protocol: tuple[int, str] | None
    application: tuple[int, str] | None
    malware: tuple[int, ...]
    description: tuple[int, str] | None
    tlp: tuple[int, str] | None
    confidence: tuple[int, str] | None
    urls: tuple[tuple[int, int, str, str], ...]  # path column, host column, role, name
    classify: int
    extra: tuple[tuple[str, int], ...]


def _compile(profile: CsvProfile, names: list[str]) -> _Plan | str:
    """Bind the profile to a header (or its fixed columns); a reason when it cannot be."""
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name.strip().lower(), position)
    missing = [c for c in profile.required_columns if not _has(index, c)]
    missing += [m.column for m in profile.fields if m.required and m.column.lower() not in index]
    time_column = (profile.time_column or "").lower()
    if time_column and profile.time_required and time_column not in index:
        missing.append(profile.time_column)
    if missing:
        wanted = ", ".join(dict.fromkeys(missing))
        return f"the header lacks the required column(s) {wanted}"

    def at(column: str | None) -> int:
        return index.get(column.lower(), -1) if column else -1

    time = None
    if profile.time_column and at(profile.time_column) >= 0:
        time = (
            at(profile.time_column),
            profile.time_column,
            time_parser(profile.time_format),
            profile.time_required,
            profile.time_format,
        )

    observables = []
    single: dict[str, tuple[int, str]] = {}
    malware, urls = [], []
    for m in profile.fields:
        position = at(m.column)
        if position < 0:
            continue
        if m.kind == "url" and m.host_column and at(m.host_column) >= 0:
            urls.append((position, at(m.host_column), m.role, m.column))
        elif m.kind in NORMALISERS:
            # Addresses and ASNs repeat across rows (an ASN per network); caching their
            # Observable skips the parse; URLs and addresses are mostly unique.
            cached = 1 if m.kind in ("asn", "domain", "hostname", "fqdn") else 0
            observables.append(
                (position, NORMALISERS[m.kind], m.role, m.column, m.required, cached)
            )
        elif m.kind == "malware":
            malware.append(position)
        else:
            kind = "port" if m.kind == "dst_port" else m.kind
            single.setdefault(kind, (position, m.column))
    extra = tuple((name, at(name)) for name in profile.extra if at(name) >= 0)
    # A ragged row may lack only trailing columns that the profile does not read.
    read_at = [at(m.column) for m in profile.fields]
    read_at += [time[0] if time else -1, at(profile.classify_column)]
    read_at += [position for _, position in extra]
    return _Plan(
        width=len(names),
        min_width=max(read_at, default=-1) + 1,
        time=time,
        observables=tuple(observables),
        port=single.get("port"),
        src_port=single.get("src_port"),
        protocol=single.get("protocol"),
        application=single.get("application"),
        malware=tuple(malware),
        description=single.get("description"),
        tlp=single.get("tlp"),
        confidence=single.get("confidence"),
        urls=tuple(urls),
        classify=at(profile.classify_column),
        extra=extra,
    )


class _Overrun(Exception):
    """A quoted field ran on past the lines or characters one record may span."""


class _Lines:
    """The physical lines of a text with their numbers, as csv.reader wants them, and the
    rows split from them.

    Comment lines between records are skipped; an over-long line is skipped and remembered
    as an error; `parts` collects the lines of the record being read (its raw text) and
    `start` is the number of its first line. A record runs over a line end only inside a
    quoted field; when such a record cannot be read (see `refuse`), its first line is
    refused and `rows` starts again at the line after it."""

    __slots__ = (
        *("_again", "_dialect", "_relay", "_source", "_split", "_strict"),
        *("comment", "errors", "parts", "quote", "rows", "start"),
    )

    def __init__(
        self,
        comment: str | None,
        source: Iterable[str],
        split: Callable[[Iterator[str]], Iterator[list[str]]],
        dialect: tuple[str, str] | None = None,
    ) -> None:
        self.comment = comment
        self.parts: list[str] = []
        self.errors: list[tuple[int, str]] = []
        self.start = 0
        self._dialect = dialect  # (delimiter, quote) of a quoted format
        self.quote = dialect[1] if dialect is not None else None
        # one strict reader checks every record that spans lines: making one costs more
        # than the check
        self._relay = _Relay()
        self._strict: Iterator[list[str]] | None = None
        if dialect is not None:
            self._strict = csv.reader(
                self._relay, delimiter=dialect[0], quotechar=dialect[1], strict=True
            )
        self._source = iter(source)
        self._again: Iterator[str] = iter(())  # lines to read again before the source's next
        self._split = split
        self.rows = split(self.feed(self._source, 0))

    def feed(self, source: Iterable[str], number: int) -> Iterator[str]:
        """The lines after line `number`, each put in `parts` as it is handed on."""
        parts, comment, limit = self.parts, self.comment, MAX_LINE
        cut = False
        for chunk in source:
            if cut:  # the rest of an over-long line
                cut = is_cut(chunk)
                continue
            number += 1
            if len(chunk) >= limit and is_cut(chunk):
                if parts:  # inside a quoted field: the record cannot be read whole
                    parts.append(chunk)
                    raise _Overrun
                cut = True
                self.errors.append((number, f"line longer than {limit} characters, skipped"))
                continue
            if comment is not None and not parts and chunk.startswith(comment):
                continue
            if not parts:
                self.start = number
            elif len(parts) >= MAX_SPAN or sum(map(len, parts)) + len(chunk) > limit:
                # a quoted field that runs on and on: bounded memory, bounded re-reading
                parts.append(chunk)
                raise _Overrun
            parts.append(chunk)
            yield chunk

    def take(self) -> tuple[int, str]:
        """The number and text of the record just split, forgetting its lines."""
        parts = self.parts
        text = parts[0] if len(parts) == 1 else "".join(parts)
        parts.clear()
        return self.start, text

    def well_formed(self) -> bool:
        """Whether the lines of the record just split (more than one) are strict CSV."""
        return self._strict_csv(self.parts)

    def _strict_csv(self, record_lines: Iterable[str]) -> bool:
        """Whether these lines make one record of strict CSV: each quoted field closed, and
        closed just before a delimiter or a line end. A stray quote is closed by the next
        quote, which opens another field: text follows it."""
        if self._strict is None:
            return False
        self._relay.lines = iter(record_lines)
        try:
            next(self._strict)
        except (csv.Error, StopIteration):
            return False
        return True

    def refuse(self, source: str, overrun: bool = False) -> ReadError:
        """The error of the first line of a record that ran over its line end and could not
        be read whole: the quoted field did not close, closed badly, the record had the
        wrong number of fields or ran on too long (`overrun`). Only that line is lost:
        reading starts again at the next line, and the lines read with it are read anew."""
        number, first = self.start, self.parts[0]
        # the lines after it, then any left of those read again after a previous refusal
        again = self.parts[1:]
        again += self._again
        self.parts.clear()
        self._again = iter(again)
        self.rows = self._split(self.feed(itertools.chain(self._again, self._source), number))
        delimiter, quote = self._dialect or (",", '"')
        column = _open_quote(first, delimiter, quote)
        if overrun:
            reason = (
                f"unclosed quote at column {column}: the field it opens runs on over "
                f"{MAX_SPAN} lines or {MAX_LINE} characters"
            )
        else:
            reason = _unclosed(column)
        return ReadError(FaultLocation(source, number), reason)

    def shifted_by_quote(self, source: str, number: int, text: str) -> ReadError | None:
        """The error of a record on one line (`text`, line `number`) whose stray quote merges
        fields, named by its column; None when it is strict CSV, or merges none."""
        if self._dialect is None or self._strict_csv((text,)):
            return None
        column = _merging_quote(text, *self._dialect)
        if not column:
            return None
        return ReadError(FaultLocation(source, number), _unclosed(column))

    def split_fault(self, source: str, exc: csv.Error) -> ReadError:
        """The error of a record csv could not split."""
        if len(self.parts) > 1:  # inside a quoted field that ran over a line end
            return self.refuse(source)
        number, _ = self.take()
        return ReadError(FaultLocation(source, number), f"cannot split the line: {exc}")


class _Relay:
    """An iterator of the lines set on it, again and again, for a reader that outlives them."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: Iterator[str] = iter(())

    def __iter__(self) -> _Relay:
        return self

    def __next__(self) -> str:
        return next(self.lines)


def _unclosed(column: int) -> str:
    return f"unclosed quote at column {column}: the field it opens does not end on this line"


def _quoted_fields(line: str, delimiter: str, quote: str) -> Iterator[tuple[int, int | None]]:
    """Each quoted field of `line` as csv reads it (strict=False): the offset of its opening
    quote and of its closing one, None for a field left open at the line's end (the last)."""
    at, end = 0, len(line)
    while at < end:  # at the start of a field
        if line.startswith(quote, at):
            opened, after = at, at + 1
            while True:
                close = line.find(quote, after)
                if close < 0:
                    yield opened, None
                    return
                if not line.startswith(quote, close + 1):
                    break
                after = close + 2  # a doubled quote stands for one
            yield opened, close
            at = close + 1  # text after a closing quote belongs to the field
        delimiter_at = line.find(delimiter, at)
        if delimiter_at < 0:
            break
        at = delimiter_at + 1


def _open_quote(line: str, delimiter: str, quote: str) -> int:
    """The column (from 1) of the quote that opens the field still open at the end of
    `line`, read as csv reads it (strict=False); the first quote when none is."""
    line = line.rstrip("\r\n")
    for opened, close in _quoted_fields(line, delimiter, quote):
        if close is None:
            return opened + 1
    return max(line.find(quote), 0) + 1


def _merging_quote(line: str, delimiter: str, quote: str) -> int:
    """The column (from 1) of a stray quote in `line` that merges fields, as csv reads it (not
    strict): one opening a quoted field that holds a delimiter and is closed by a quote that
    text follows, not a delimiter or the line end, or is left open; 0 when there is none.
    A quote closed badly inside one field (Shadowserver writes a quote in a field as a
    backslash and a doubled quote) only garbles that field, and is no fault here."""
    line = line.rstrip("\r\n")
    end = len(line)
    for opened, close in _quoted_fields(line, delimiter, quote):
        closed = end if close is None else close
        badly_closed = close is None or (close + 1 < end and line[close + 1] != delimiter)
        if badly_closed and delimiter in line[opened + 1 : closed]:
            return opened + 1
    return 0


def _lines(profile: CsvProfile, source_lines: Iterable[str]) -> _Lines:
    """The lines of a feed and the rows split from them."""
    if profile.split is not None:
        return _Lines(
            profile.comment, source_lines, partial(_regex_rows, re.compile(profile.split))
        )
    if profile.quotechar is None:
        split = partial(
            csv.reader, delimiter=profile.delimiter, quoting=csv.QUOTE_NONE, strict=False
        )
        return _Lines(profile.comment, source_lines, split)
    split = partial(
        csv.reader, delimiter=profile.delimiter, quotechar=profile.quotechar, strict=False
    )
    return _Lines(profile.comment, source_lines, split, (profile.delimiter, profile.quotechar))


def _regex_rows(pattern: re.Pattern[str], feed: Iterator[str]) -> Iterator[list[str]]:
    for line in feed:
        body = line.rstrip("\r\n")
        yield [f.strip() for f in pattern.split(body)] if body.strip() else []  # [] is blank


def read_profile(
    profile: CsvProfile, source_lines: Iterable[str], source: str
) -> Iterator[EventRecord | ReadError]:
    """Records and errors from the physical lines of a feed read with `profile`."""
    lines = _lines(profile, source_lines)
    if not profile.header:
        plan = _compile(profile, list(profile.columns))
        if isinstance(plan, str):  # a profile whose fields name no fixed column
            yield ReadError(FaultLocation(source), f"profile {profile.name}: {plan}")
            return
        yield from _records(profile, plan, lines, source)
        return
    for row in _guarded(lines, source):
        if isinstance(row, ReadError):
            yield row
            continue
        number, text = lines.take()
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if reason := bad_utf8(text):
            yield ReadError(FaultLocation(source, number), f"the header holds {reason}")
            return
        plan = _compile(profile, row)
        if isinstance(plan, str):
            yield ReadError(FaultLocation(source, number), plan)
            return
        yield from _records(profile, plan, lines, source)
        return
    yield from _line_errors(lines, source)


def _guarded(lines: _Lines, source: str) -> Iterator[list[str] | ReadError]:
    """Rows, with the errors of lines that could not be split in their place."""
    while True:
        try:
            row = next(lines.rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield lines.split_fault(source, exc)
            continue
        except _Overrun:
            yield lines.refuse(source, overrun=True)
            continue
        if lines.errors:
            yield from _line_errors(lines, source)
        if len(lines.parts) > 1 and not lines.well_formed():
            yield lines.refuse(source)
            continue
        yield row


def _line_errors(lines: _Lines, source: str) -> Iterator[ReadError]:
    for number, reason in lines.errors:
        yield ReadError(FaultLocation(source, number), reason)
    lines.errors.clear()


def _records(
    profile: CsvProfile, plan: _Plan, lines: _Lines, source: str
) -> Iterator[EventRecord | ReadError]:
    # Everything the loop touches is a local: this is the hot path of million-row feeds.
    width, min_width, ragged = plan.width, plan.min_width, profile.ragged
    parts, line_errors = lines.parts, lines.errors
    time_spec = plan.time or (-1, "", _plain_time, False, "")
    time_at, time_column, parse_time = time_spec[:3]
    plain_time, fromisoformat = parse_time is _plain_time, _fromisoformat
    nulls = frozenset(("", *profile.null_values))
    null_extra = bool(profile.null_values)
    observed_columns = [spec[3] for spec in plan.observables] + [spec[3] for spec in plan.urls]
    observed = observed_columns[0] if observed_columns else None
    observed_text = "the observable columns " + ", ".join(observed_columns)
    # (position, normaliser, role, column, required, cache or None)
    observables = tuple((*spec[:5], {} if spec[5] else None) for spec in plan.observables)
    feed, nature, const_tlp = profile.feed_name, profile.nature, profile.tlp
    const_app, const_proto = profile.application, profile.protocol
    rsit_class, rsit_type = profile.rsit_class, profile.rsit_type
    classify, classify_map = plan.classify, profile.classify_map
    port_at, port_column = plan.port or (-1, "")
    protocol_at, protocol_column = plan.protocol or (-1, "")
    rare = any(
        spec is not None
        for spec in (plan.src_port, plan.application, plan.tlp, plan.confidence, plan.description)
    )
    extra_spec, malware_spec, url_spec = plan.extra, plan.malware, plan.urls
    fast, new, set_attribute = _FAST, object.__new__, object.__setattr__
    known_protocols, max_raw = _PROTOCOLS, MAX_RAW
    quote = lines.quote
    template: dict[str, Any] = dict.fromkeys(_RECORD_FIELDS)
    template.update(
        rsit_class=rsit_class,
        rsit_type=rsit_type,
        feed=feed,
        nature=nature,
        protocol=const_proto,
        application=const_app,
        tlp=const_tlp,
        description="",
        attack_techniques=(),
        identity="",
        times=1,
    )

    while True:
        rows = lines.rows  # made anew after a refused record
        try:
            for row in rows:
                if line_errors:
                    yield from _line_errors(lines, source)
                number = lines.start
                if len(parts) == 1:
                    text = parts[0]
                else:
                    # A quoted field ran over a line end: the record is read whole only when
                    # it is well formed and has its fields; else a stray quote would take
                    # the lines after it with it.
                    if (
                        not (len(row) == width or (ragged and min_width <= len(row) < width))
                        or not lines.well_formed()
                    ):
                        yield lines.refuse(source)
                        break
                    text = "".join(parts)
                parts.clear()

                if len(row) != width:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # a blank line
                    # A short row is read only in a ragged feed, and never when it is the
                    # unfinished last line of a cut file.
                    if not (
                        ragged and min_width <= len(row) < width and text.endswith(("\n", "\r"))
                    ):
                        reason = f"expected {width} fields, the line has {len(row)}"
                        yield ReadError(FaultLocation(source, number), reason)
                        continue
                    row += [""] * (width - len(row))
                # A stray quote that a later quote on its line closes, text following, merges
                # fields as csv reads it (not strict); it may split another and leave the
                # count right: the row would be read shifted. The quote that text follows is
                # kept in a field, so only such rows are checked again, strictly.
                if (
                    quote
                    and quote in text
                    and quote in "".join(row)
                    and (fault := lines.shifted_by_quote(source, number, text))
                ):
                    yield fault
                    continue
                if not text.isascii() and (reason := bad_utf8(text)):
                    yield ReadError(FaultLocation(source, number), f"the line holds {reason}")
                    continue

                when = None
                if time_at >= 0:
                    value = row[time_at]
                    try:
                        if plain_time and len(value) == 19:
                            when = fromisoformat(value + "+00:00")  # see _plain_time
                        else:
                            when = parse_time(value)
                    except ValueError:
                        # the slow path: spaces around the value, an empty or a bad value
                        when, reason = _time_fault(value, parse_time, nulls, time_spec)
                        if reason:
                            location = FaultLocation(source, number, field=time_column)
                            yield ReadError(location, reason)
                            continue

                fault = bad = None
                found: list[Observable] = []
                extra = {}
                for name, position in extra_spec:  # a loop: cheaper than a comprehension
                    if value := row[position]:
                        extra[name] = value
                if null_extra and extra:
                    for name in [n for n, v in extra.items() if v.strip() in nulls]:
                        del extra[name]
                for position, norm, role, column, required, cache in observables:
                    value = row[position]
                    if cache is not None and (observable := cache.get(value)) is not None:
                        found.append(observable)
                        continue
                    try:
                        normalised = norm(value) if value else None
                    except ValueError as exc:
                        if value.strip() in nulls:
                            normalised = None
                        elif required:
                            fault = (column, str(exc))
                            break
                        else:
                            extra["invalid." + column] = value[:200]
                            bad = bad or (column, str(exc))
                            continue
                    if normalised is None:
                        if required:
                            fault = (column, f"the required column {column!r} has no value")
                            break
                        continue
                    if fast:
                        observable = new(Observable)
                        set_attribute(
                            observable,
                            "__dict__",
                            {"kind": normalised[0], "value": normalised[1], "role": role},
                        )
                    else:
                        observable = Observable(normalised[0], normalised[1], role)
                    if cache is not None:
                        if len(cache) >= _CACHE_SIZE:
                            cache.clear()
                        cache[value] = observable
                    found.append(observable)
                if fault is not None:
                    yield ReadError(FaultLocation(source, number, field=fault[0]), fault[1])
                    continue
                if url_spec:
                    _add_urls(url_spec, row, const_app, found, extra)
                if not found and observed:
                    # a row that names nothing is no event: say which value was wrong
                    column, reason = bad or (observed, f"no value in {observed_text}")
                    yield ReadError(FaultLocation(source, number, field=column), reason)
                    continue

                port = None
                if port_at >= 0 and (value := row[port_at]):
                    if value.isdigit() and len(value) <= 5 and value.isascii():
                        port = int(value) or None  # 0 means "unknown" in several feeds
                    if port is None or port > 65535:
                        try:
                            port = parse_port(value.strip())
                        except ValueError:
                            port = None
                            extra["invalid." + port_column] = value[:200]
                protocol = const_proto
                if protocol_at >= 0 and (value := row[protocol_at]):
                    protocol = known_protocols.get(value)
                    if protocol is None:
                        try:
                            protocol = parse_name(value.strip(), "protocol")
                        except ValueError:
                            protocol = const_proto
                            extra["invalid." + protocol_column] = value[:200]
                for position in malware_spec:
                    if value := row[position].strip():
                        extra["malware"] = value.lower()
                        break

                location = {"source": source, "line": number, "pointer": None, "field": None}
                # a copy of the constant fields with the row's own set on it: faster than
                # a literal of all sixteen
                values = template.copy()
                values["time"] = when
                values["observables"] = tuple(found)
                values["raw"] = (
                    text.rstrip("\r\n")
                    if len(text) <= max_raw and text.isascii()
                    else clip_raw(text)
                )
                values["port"] = port
                values["protocol"] = protocol
                values["extra"] = extra
                if classify >= 0 and (value := row[classify].strip().lower()):
                    picked = classify_map.get(value)
                    if picked is None and "," in value:
                        items = value.split(",")
                        picked = next((classify_map[k] for k in items if k in classify_map), None)
                    if picked is not None:
                        values["rsit_class"], values["rsit_type"] = picked
                if rare:
                    try:
                        (
                            values["application"],
                            values["tlp"],
                            values["confidence"],
                            values["description"],
                        ) = _rare_fields(plan, row, extra, const_app, const_tlp, nulls)
                    except _CellFault as exc:
                        yield ReadError(FaultLocation(source, number, field=exc.column), exc.reason)
                        continue
                if fast:
                    # the same objects the constructors make, without a __setattr__ per field
                    values["location"] = new(FaultLocation)
                    set_attribute(values["location"], "__dict__", location)
                    record = new(EventRecord)
                    set_attribute(record, "__dict__", values)
                else:
                    values["location"] = FaultLocation(**location)
                    record = EventRecord(**values)
                yield record
            else:
                break  # the last line is read
        except csv.Error as exc:
            yield from _line_errors(lines, source)
            yield lines.split_fault(source, exc)
        except _Overrun:
            yield from _line_errors(lines, source)
            yield lines.refuse(source, overrun=True)
    yield from _line_errors(lines, source)


def _plain_dataclass(cls: type[Any], names: tuple[str, ...]) -> bool:
    """Whether instances of a dataclass can be made by setting their __dict__ to `names`:
    exactly those fields, no slots, no __post_init__."""
    return (
        dataclasses.is_dataclass(cls)
        and tuple(f.name for f in dataclasses.fields(cls)) == names
        and "__slots__" not in cls.__dict__
        and not hasattr(cls, "__post_init__")
    )


_RECORD_FIELDS = (
    *("time", "rsit_class", "rsit_type", "observables", "location", "raw", "feed", "nature"),
    *("port", "protocol", "application", "tlp", "confidence", "description"),
    *("attack_techniques", "extra", "identity", "times"),
)
# A frozen dataclass sets each field through object.__setattr__: for EventRecord that was
# three quarters of the cost of a Shadowserver row. Setting the instance dict at once makes
# the same object (tests compare both ways); should a class change, the constructors serve.
_FAST = (
    _plain_dataclass(EventRecord, _RECORD_FIELDS)
    and _plain_dataclass(FaultLocation, ("source", "line", "pointer", "field"))
    and _plain_dataclass(Observable, ("kind", "value", "role"))
)
_PROTOCOLS = {p: p for p in ("tcp", "udp", "icmp", "sctp")}


def _time_fault(
    value: str,
    parse_time: Callable[[str], datetime],
    nulls: frozenset[str],
    spec: tuple[int, str, Callable[[str], datetime], bool, str],
) -> tuple[datetime | None, str]:
    """The time of a cell the fast parse refused (spaces around it), or why there is none."""
    stripped = value.strip()
    _, column, _, required, time_format = spec
    if stripped in nulls:
        return None, f"the time column {column!r} is empty" if required else ""
    try:
        return parse_time(stripped), ""
    except ValueError:
        return None, f"unreadable time {stripped[:100]!r} in {column!r} (expected {time_format})"


def _add_urls(
    spec: tuple[tuple[int, int, str, str], ...],
    row: list[str],
    application: str | None,
    found: list[Observable],
    extra: dict[str, str],
) -> None:
    """URLs given as a path in one column and the host in another."""
    for path_at, host_at, role, column in spec:
        path, host = row[path_at].strip(), row[host_at].strip()
        if not path or not host:
            continue
        if "://" not in path:
            scheme = "https" if application == "https" else "http"
            path = f"{scheme}://{host}{path if path.startswith('/') else '/' + path}"
        try:
            normalised = norm_url(path)
        except ValueError:
            extra["invalid." + column] = row[path_at][:200]
        else:
            if normalised is not None:
                found.append(Observable(normalised[0], normalised[1], role))


class _CellFault(Exception):
    """A cell whose bad value refuses its whole row."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _rare_fields(
    plan: _Plan,
    row: list[str],
    extra: dict[str, str],
    application: str | None,
    tlp: str | None,
    nulls: frozenset[str],
) -> tuple[str | None, str | None, int | None, str]:
    """The record fields few feeds have: application, TLP, confidence, description; a bad
    value goes to extra as "invalid.<column>", except a TLP: _CellFault then, since the
    row would otherwise take the submission's TLP, perhaps laxer than the one it was sent
    under."""
    confidence = None
    for spec, what in (
        (plan.src_port, "src_port"),
        (plan.application, "application"),
        (plan.tlp, "tlp"),
        (plan.confidence, "confidence"),
    ):
        if spec is None or (value := row[spec[0]].strip()) in nulls:
            continue
        try:
            if what == "src_port":
                if parse_port(value):
                    extra["src_port"] = value
            elif what == "application":
                application = parse_name(value, "application protocol")
            elif what == "tlp":
                tlp = parse_tlp(value)
            else:
                confidence = parse_confidence(value)
        except ValueError as exc:
            if what == "tlp":
                raise _CellFault(spec[1], str(exc)) from None
            extra["invalid." + spec[1]] = value[:200]
    description = row[plan.description[0]].strip()[:1000] if plan.description else ""
    return application, tlp, confidence, description


# ---------------------------------------------------------------------------------------------
# Recognising a feed


class _Head(NamedTuple):
    lines: list[str]  # every chunk read, to be read again
    preamble: str  # comment lines, lower-cased
    first: str  # the first line that is not a comment (the header or the first row)


_COMMENT_STARTS = ("#", ";", "//")


def _peek(source: Iterator[str], comments: tuple[str, ...] = _COMMENT_STARTS) -> _Head:
    lines: list[str] = []
    preamble: list[str] = []
    for chunk in source:
        lines.append(chunk)
        if is_cut(chunk) or len(lines) > _HEAD_LINES:
            break
        stripped = chunk.strip()
        if not stripped:
            continue
        if stripped.startswith(comments):
            preamble.append(stripped.lower())
            continue
        return _Head(lines, "\n".join(preamble), chunk)
    return _Head(lines, "\n".join(preamble), "")


def _split_first(profile: CsvProfile, line: str) -> list[str]:
    if profile.split is not None:
        return [f.strip() for f in re.split(profile.split, line.rstrip("\r\n"))]
    try:
        return next(csv.reader([line], delimiter=profile.delimiter), [])
    except csv.Error:
        return []


def _score(
    profile: CsvProfile, head: _Head, filename: str, strict: bool = False
) -> tuple[int, int] | None:
    """How well a profile fits a file (higher is better); None when it does not. A file
    chosen to be read with a format may be recognised by its name alone; when guessing the
    format (`strict`), a profile with a header must find its columns in the file."""
    by_name = bool(profile.file_names) and _glob_any(
        profile.file_names, (base_name(filename), report_name(filename))
    )
    fields = _split_first(profile, head.first) if head.first else []
    if profile.header:
        names = {f.strip().lower() for f in fields}
        by_header = bool(profile.required_columns) and all(
            _has(names, c) for c in profile.required_columns
        )
        if not (by_header or (by_name and not (strict and head.first))):
            return None
        return (2 * by_header + by_name, len(profile.required_columns))
    by_marker = profile.marker is not None and profile.marker.lower() in head.preamble
    if len(fields) != len(profile.columns) or not (by_marker or by_name):
        return None
    return (by_marker + by_name, len(profile.columns))


def choose(
    profiles: Iterable[CsvProfile], head: _Head, filename: str, strict: bool = False
) -> CsvProfile | None:
    """The best-fitting profile; declaration order breaks ties."""
    best: tuple[tuple[int, int], int, CsvProfile] | None = None
    for order, profile in enumerate(profiles):
        score = _score(profile, head, filename, strict)
        if score is not None and (best is None or (score, -order) > (best[0], -best[1])):
            best = (score, order, profile)
    return best[2] if best else None


def _comments(profiles: Iterable[CsvProfile]) -> tuple[str, ...]:
    """The comment marks to skip when looking for the first line of a file."""
    own = (p.comment for p in profiles if p.comment)
    return tuple(dict.fromkeys((*_COMMENT_STARTS, *own)))


def _head_of_bytes(head: bytes, comments: tuple[str, ...] = _COMMENT_STARTS) -> _Head:
    text = head.decode("utf-8-sig", "replace")
    return _peek(iter(text.splitlines(keepends=True)), comments)


# ---------------------------------------------------------------------------------------------
# Profiles written by users, in YAML

_PROFILE_KEYS = {
    *("name", "description", "feed", "delimiter", "quote", "split", "comment", "header"),
    *("columns", "null_values", "ragged", "recognise", "time", "observables", "classification"),
    *("application", "protocol", "extra", "nature", "tlp"),
}
_NAME_OK = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


class ProfileError(ReaderError):
    """A profile that cannot be used; `field` is the path of the setting at fault."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"profile field {field_path!r}: {reason}")
        self.field = field_path
        self.reason = reason


def load_profile(yaml_text: str) -> CsvProfile:
    """A profile from YAML, checked: every problem names the field at fault.

    ```yaml
    name: blocklist-de
    delimiter: ","
    header: true
    time: {column: first_seen, format: iso}
    observables:
      - {column: ip, kind: ip, role: source}
    classification: {class: intrusion-attempts, type: brute-force}
    extra: [reason]
    ```
    """
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        # The parser's own text quotes the document over several lines: keep its one-line
        # problem and the place it names.
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ReaderError(f"{where}not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ProfileError("/", "a profile is a mapping of settings (name: ..., ...)")
    unknown = sorted(str(k) for k in data if k not in _PROFILE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_PROFILE_KEYS))
        raise ProfileError(unknown[0], f"unknown setting; use {allowed}")

    name = _text(data, "name", required=True)
    if not _NAME_OK.fullmatch(name):
        raise ProfileError("name", "use 1-63 lower-case letters, digits, '.', '_' or '-'")
    header = data.get("header", True)
    if not isinstance(header, bool):
        raise ProfileError("header", "use true or false")
    delimiter = _text(data, "delimiter") or ","
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise ProfileError("delimiter", "use one character, such as ',' ';' '|' or a tab")
    quote = data.get("quote", '"')
    if quote is not None and (not isinstance(quote, str) or len(quote) != 1):
        raise ProfileError("quote", "use one character, or null for none")
    split = _text(data, "split") or None
    if split is not None:
        try:
            if re.compile(split).match(""):
                raise ProfileError("split", "the expression must not match an empty string")
        except re.error as exc:
            raise ProfileError("split", f"invalid regular expression: {exc}") from None
    comment = _text(data, "comment") or None
    columns = _names(data, "columns")
    if not header and not columns:
        raise ProfileError("columns", "a feed without a header needs its list of columns")

    recognise = data.get("recognise") or {}
    if not isinstance(recognise, dict):
        raise ProfileError("recognise", "a mapping with columns, file_names and marker")
    for key in recognise:
        if key not in ("columns", "file_names", "marker"):
            raise ProfileError(f"recognise.{key}", "use columns, file_names or marker")
    required_columns = _names(recognise, "columns", "recognise.")
    file_names = tuple(n.lower() for n in _names(recognise, "file_names", "recognise."))
    marker = _text(recognise, "marker", prefix="recognise.") or None

    time_spec = data.get("time")
    time_column, time_format, time_required = None, "%Y-%m-%d %H:%M:%S", True
    if time_spec is not None:
        if not isinstance(time_spec, dict):
            raise ProfileError("time", "a mapping: {column: ..., format: ...}")
        time_column = _text(time_spec, "column", required=True, prefix="time.").lower()
        time_format = _text(time_spec, "format", prefix="time.") or time_format
        time_required = time_spec.get("required", True)
        if not isinstance(time_required, bool):
            raise ProfileError("time.required", "use true or false")
        try:
            time_parser(time_format)
        except ValueError as exc:
            raise ProfileError("time.format", str(exc)) from None

    fields = _column_maps(data.get("observables"))
    if not any(m.kind in NORMALISERS for m in fields):
        raise ProfileError("observables", "map at least one column to an observable kind")
    known = set(columns) if not header else None
    for i, m in enumerate(fields):
        if known is not None and m.column not in known:
            raise ProfileError(f"observables[{i}].column", f"{m.column!r} is not in columns")
    if known is not None and time_column and time_column not in known:
        raise ProfileError("time.column", f"{time_column!r} is not in columns")
    extra = _names(data, "extra")
    for i, column in enumerate(extra):
        if known is not None and column not in known:
            raise ProfileError(f"extra[{i}]", f"{column!r} is not in columns")
    ragged = data.get("ragged", False)
    if not isinstance(ragged, bool):
        raise ProfileError("ragged", "use true or false")

    rsit_class, rsit_type, classify_column, classify_map = _classification(
        data.get("classification")
    )
    if known is not None and classify_column and classify_column not in known:
        raise ProfileError("classification.column", f"{classify_column!r} is not in columns")
    nature = _text(data, "nature") or "event"
    if nature not in ("event", "indicator"):
        raise ProfileError("nature", "use event or indicator")
    tlp = _text(data, "tlp") or None
    if tlp is not None:
        try:
            tlp = parse_tlp(tlp)
        except ValueError as exc:
            raise ProfileError("tlp", str(exc)) from None
    application = _text(data, "application") or None
    protocol = _text(data, "protocol") or None
    for key, value in (("application", application), ("protocol", protocol)):
        if value is not None:
            try:
                parse_name(value, key)
            except ValueError as exc:
                raise ProfileError(key, str(exc)) from None
    return CsvProfile(
        name=name,
        description=_text(data, "description"),
        feed=_text(data, "feed"),
        required_columns=required_columns,
        file_names=file_names,
        marker=marker,
        delimiter=delimiter,
        quotechar=quote,
        split=split,
        comment=comment,
        header=header,
        columns=columns,
        null_values=_names(data, "null_values", lower=False),
        ragged=ragged,
        time_column=time_column,
        time_format=time_format,
        time_required=time_required,
        fields=fields,
        rsit_class=rsit_class,
        rsit_type=rsit_type,
        classify_column=classify_column,
        classify_map=MappingProxyType(classify_map),
        application=application.lower() if application else None,
        protocol=protocol.lower() if protocol else None,
        extra=extra,
        nature=nature,
        tlp=tlp,
    )


def _text(data: dict[str, Any], key: str, required: bool = False, prefix: str = "") -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise ProfileError(prefix + key, "missing")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ProfileError(prefix + key, "use text")
    text = str(value)
    if required and not text.strip():
        raise ProfileError(prefix + key, "must not be empty")
    return text


def _names(data: dict[str, Any], key: str, prefix: str = "", lower: bool = True) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise ProfileError(prefix + key, "use a list of names")
    names = [str(v).strip().lower() if lower else str(v).strip() for v in value]
    if not all(names):
        raise ProfileError(prefix + key, "names must not be empty")
    return tuple(names)


def _column_maps(value: Any) -> tuple[ColumnMap, ...]:
    if not isinstance(value, list) or not value:
        raise ProfileError("observables", "a list of {column, kind, role} mappings")
    maps = []
    for i, item in enumerate(value):
        where = f"observables[{i}]"
        if not isinstance(item, dict):
            raise ProfileError(where, "a mapping such as {column: ip, kind: ip, role: source}")
        for key in item:
            if key not in ("column", "kind", "role", "required", "host_column"):
                raise ProfileError(f"{where}.{key}", "use column, kind, role, required")
        column = _text(item, "column", required=True, prefix=f"{where}.").strip().lower()
        kind = _text(item, "kind", required=True, prefix=f"{where}.").strip().lower()
        if kind not in KINDS:
            raise ProfileError(f"{where}.kind", f"unknown kind {kind!r}; use {', '.join(KINDS)}")
        role = _text(item, "role", prefix=f"{where}.").strip().lower() or "source"
        if not _NAME_OK.fullmatch(role):
            raise ProfileError(f"{where}.role", "use a short lower-case word, such as source")
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise ProfileError(f"{where}.required", "use true or false")
        host = _text(item, "host_column", prefix=f"{where}.").strip().lower() or None
        maps.append(ColumnMap(column, kind, role, required, host))
    return tuple(maps)


def _rsit_pair(value: str, where: str) -> tuple[str, str]:
    """ "class/type" or a type alone, checked against the taxonomy."""
    text = value.strip().lower()
    rsit_class, _, rsit_type = text.rpartition("/")
    if not rsit_class:
        if rsit_type not in TYPE_TO_CLASS:
            raise ProfileError(where, f"unknown RSIT type {value!r}")
        return TYPE_TO_CLASS[rsit_type], rsit_type
    if rsit_class not in RSIT:
        raise ProfileError(where, f"unknown RSIT class {rsit_class!r}; use {', '.join(RSIT)}")
    if rsit_type not in RSIT[rsit_class]:
        types = ", ".join(RSIT[rsit_class])
        raise ProfileError(where, f"{rsit_type!r} is not a type of {rsit_class}; use {types}")
    return rsit_class, rsit_type


def _classification(value: Any) -> tuple[str, str, str | None, dict[str, tuple[str, str]]]:
    if value is None:
        return "other", "undetermined", None, {}
    if not isinstance(value, dict):
        raise ProfileError("classification", "a mapping: {class: ..., type: ...}")
    for key in value:
        if key not in ("class", "type", "column", "map"):
            raise ProfileError(f"classification.{key}", "use class, type, column and map")
    rsit_class = _text(value, "class", prefix="classification.").strip().lower()
    rsit_type = _text(value, "type", prefix="classification.").strip().lower()
    if rsit_type:
        where = "classification.type" if not rsit_class else "classification"
        rsit_class, rsit_type = _rsit_pair(
            f"{rsit_class}/{rsit_type}" if rsit_class else rsit_type, where
        )
    elif rsit_class:
        if rsit_class not in RSIT:
            raise ProfileError("classification.class", f"unknown RSIT class {rsit_class!r}")
        if len(RSIT[rsit_class]) != 1:  # a class alone is no RSIT pair
            types = ", ".join(RSIT[rsit_class])
            raise ProfileError("classification.type", f"missing; {rsit_class} has {types}")
        rsit_type = RSIT[rsit_class][0]
    else:
        rsit_class, rsit_type = "other", "undetermined"
    column = _text(value, "column", prefix="classification.").strip().lower() or None
    table = value.get("map") or {}
    if not isinstance(table, dict):
        raise ProfileError("classification.map", "a mapping from column value to class/type")
    if table and column is None:
        raise ProfileError("classification.column", "a map needs the column it reads")
    mapping = {
        str(k).strip().lower(): _rsit_pair(str(v), f"classification.map.{k}")
        for k, v in table.items()
    }
    return rsit_class, rsit_type, column, mapping


# ---------------------------------------------------------------------------------------------
# Readers


class CsvFeedReader(Reader):
    """Reads any feed with one given profile (a built-in one or a user's)."""

    def __init__(self, profile: CsvProfile, yaml_text: str | None = None) -> None:
        self.profile = profile
        self.name = profile.name
        self.description = profile.description or f"CSV feed {profile.name}"
        # the profile's YAML, when it came from one: what another process needs to rebuild it
        self.yaml_text = yaml_text

    @classmethod
    def from_yaml(cls, yaml_text: str) -> CsvFeedReader:
        return cls(load_profile(yaml_text), yaml_text)

    def sniff(self, head: bytes, filename: str) -> bool:
        head_lines = _head_of_bytes(head, _comments([self.profile]))
        return _score(self.profile, head_lines, filename, strict=True) is not None

    def read(self, stream: BinaryIO, source: str) -> Iterator[EventRecord | ReadError]:
        yield from read_profile(self.profile.for_file(source), stream_lines(stream), source)


class ProfileChoosingReader(Reader):
    """Reads a feed with the built-in profile that fits its header, name or comments."""

    def __init__(self, name: str, description: str, profiles: Iterable[CsvProfile]) -> None:
        self.name = name
        self.description = description
        self.profiles = tuple(profiles)
        self.comments = _comments(self.profiles)

    def sniff(self, head: bytes, filename: str) -> bool:
        return self.chosen(head, filename) is not None

    def chosen(self, head: bytes, filename: str) -> str | None:
        """The name of the profile detection picks for a file starting with `head`."""
        head_lines = _head_of_bytes(head, self.comments)
        profile = choose(self.profiles, head_lines, filename, strict=True)
        return profile.name if profile is not None else None

    def read(self, stream: BinaryIO, source: str) -> Iterator[EventRecord | ReadError]:
        text = open_text(stream)
        try:
            rest = chunks(text)
            head = _peek(rest, self.comments)
            profile = choose(self.profiles, head, source)
            if profile is None:
                if not head.lines:
                    return  # an empty file holds no records
                known = ", ".join(p.name for p in self.profiles)
                yield ReadError(
                    FaultLocation(source, 1),
                    f"no {self.name} profile fits this file (by header, file name or "
                    f"comments); known profiles: {known}",
                )
                return
            replay = itertools.chain(head.lines, rest)
            yield from read_profile(profile.for_file(source), replay, source)
        finally:
            close_text(text)
