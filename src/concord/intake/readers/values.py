"""Value helpers shared by the JSON readers (STIX and MISP): bounded JSON loading,
canonical observable values, TLP levels, RSIT from taxonomy tags, ATT&CK ids in text."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any, BinaryIO
from urllib.parse import SplitResult, urlsplit, urlunsplit

import orjson

from concord.errors import FaultLocation
from concord.events.rsit import RSIT, TYPE_TO_CLASS
from concord.intake.records import MAX_RAW, Observable, ObservableKind, ReadError
from concord.orgs import validate

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MAX_DEPTH = 64  # JSON nesting; real STIX and MISP documents stay under 10
MAX_TEXT = 4096  # characters of a description or an extra value
Json = Any  # a value orjson produced: dict, list, str, int, float, bool or None

# ---------------------------------------------------------------------------------------------
# Shared with the MISP reader: JSON loading, observable values, TLP, RSIT tags, ATT&CK ids
# ---------------------------------------------------------------------------------------------


def load_json(stream: BinaryIO, source: str, max_bytes: int) -> tuple[Json, ReadError | None]:
    """The whole document, or the error that makes it unreadable (size, syntax, depth)."""
    data = stream.read(max_bytes + 1)
    while len(data) <= max_bytes:  # a raw stream may return less than asked before its end
        more = stream.read(max_bytes + 1 - len(data))
        if not more:
            break
        data += more
    if len(data) > max_bytes:
        return None, ReadError(
            FaultLocation(source=source, pointer=""),
            f"input larger than {max_bytes} bytes: split it or raise the reader's limit",
        )
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not_utf8 := _not_utf8(data, source):
            return None, not_utf8
        reason, line, column = exc.msg, exc.lineno, exc.colno
        if "depth" in reason or "recursion" in reason:
            # the parser stops far deeper than the readers read: name where they stop
            reason = f"JSON nested deeper than {MAX_DEPTH} levels"
            at = deeper_than(data, MAX_DEPTH)
            if at is not None:
                line, column = _line_and_column(data, at)
        return None, ReadError(
            FaultLocation(source=source, line=line),
            f"malformed JSON at line {line}, column {column}: {reason}",
        )
    pointer = too_deep(doc, MAX_DEPTH)
    if pointer is not None:
        return None, ReadError(
            FaultLocation(source=source, pointer=pointer),
            f"JSON nested deeper than {MAX_DEPTH} levels; refusing to read it",
        )
    return doc, None


def _line_and_column(data: bytes, at: int) -> tuple[int, int]:
    """The line and column (from 1) of the byte at offset `at`."""
    return data.count(b"\n", 0, at) + 1, at - (data.rfind(b"\n", 0, at) + 1) + 1


_JSON_STRUCTURE = re.compile(rb'[\\"\[\]{}]')


def deeper_than(data: bytes, limit: int) -> int | None:
    """The offset of the bracket that first opens a container deeper than `limit` in the
    JSON text `data` (brackets inside strings do not count), or None."""
    depth, in_string, skip = 0, False, -1
    for match in _JSON_STRUCTURE.finditer(data):
        at = match.start()
        if at == skip:  # the character an escape stands before
            continue
        char = data[at]
        if in_string:
            if char == 0x5C:  # a backslash escapes what follows
                skip = at + 1
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in b"[{":
            depth += 1
            if depth > limit:
                return at
        elif char in b"]}":
            depth -= 1
    return None


def _not_utf8(data: bytes, source: str) -> ReadError | None:
    """Where a JSON text stops being UTF-8: the parser itself only says that it does."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_and_column(data, exc.start)
        return ReadError(
            FaultLocation(source=source, line=line),
            f"bytes that are not UTF-8 at line {line}, column {column} "
            f"(0x{data[exc.start]:02x}): save the file as UTF-8",
        )
    return None


def too_deep(doc: Json, limit: int) -> str | None:
    """The pointer of a container nested deeper than `limit`, or None. Iterative: the point is
    not to recurse on hostile input."""
    stack: list[tuple[Json, int]] = [(doc, 1)] if isinstance(doc, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return _deep_pointer(doc, limit)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return None


def _deep_pointer(doc: Json, limit: int) -> str:
    """The same walk keeping paths, only run to name the place in the error."""
    stack: list[tuple[Json, int, str]] = [(doc, 1, "")]
    while stack:
        node, depth, pointer = stack.pop()
        if depth > limit:
            return pointer
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, f"{pointer}/{pointer_escape(str(key))}"))
    return ""


def pointer_escape(key: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def raw_json(obj: Json) -> str:
    """The object as compact JSON text, bounded to MAX_RAW bytes."""
    data = orjson.dumps(obj)
    return data[:MAX_RAW].decode("utf-8", "ignore")


def clean_text(value: Json) -> str:
    """Text fit for storage: no NUL (PostgreSQL refuses it), bounded length."""
    if value is None:
        return ""
    return str(value).replace("\x00", "")[:MAX_TEXT]


def strings_in(value: Json) -> Iterator[str]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def dicts_in(value: Json) -> Iterator[dict[str, Json]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


_HASH_LENGTHS = {
    ObservableKind.MD5: 32,
    ObservableKind.SHA1: 40,
    ObservableKind.SHA256: 64,
    ObservableKind.SHA512: 128,
}
# Host names seen in threat data carry underscores (DGA names, SRV-style labels), which
# validate.domain refuses for asset registration; indicators must keep them.
_LENIENT_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def canonical(kind: ObservableKind, value: Json) -> str:
    """The canonical text of an observable value; ValueError with a reason otherwise."""
    if kind is ObservableKind.ASN:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"invalid AS number {value!r}")
        return str(validate.asn(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid {kind.value} value {value!r}: expected text")
    if kind in (ObservableKind.IPV4, ObservableKind.IPV6):
        found, text, network = ip_value(value)
        if network or found is not kind:
            raise ValueError(f"invalid {kind.value} address {value!r}")
        return text
    if kind is ObservableKind.DOMAIN:
        return domain_value(value)
    if kind is ObservableKind.URL:
        return url_value(value)
    if kind is ObservableKind.EMAIL:
        return email_value(value)
    text = value.strip().lower()
    if len(text) != _HASH_LENGTHS[kind] or not all(c in "0123456789abcdef" for c in text):
        raise ValueError(
            f"invalid {kind.value.upper()} hash {value[:200]!r}: "
            f"expected {_HASH_LENGTHS[kind]} hexadecimal digits"
        )
    return text


def search_forms(text: str) -> set[str]:
    """The stored forms of a value a user searches for: as typed, in lower case, and in the
    canonical form of every kind that reads it (`2a01:4f8:0:0::1234` is stored compressed, a
    URL with only its host in lower case)."""
    value = text.strip()
    forms = {value, value.lower()}
    for kind in ObservableKind:
        try:
            forms.add(canonical(kind, value))
        except (ValueError, KeyError):  # not a value of that kind; networks have no hash length
            continue
    with suppress(ValueError):
        forms.add(ip_value(value)[1])  # a network too
    return forms


def ip_value(value: str) -> tuple[ObservableKind, str, bool]:
    """(kind, canonical text, is a network) for an address or a prefix; ValueError otherwise.

    A /32 or /128 prefix is an address; IPv4-mapped IPv6 addresses become IPv4."""
    text = value.strip()
    if "%" in text:
        raise ValueError(f"invalid IP address {value[:100]!r}: a zone index has no place here")
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
            if network.prefixlen != network.max_prefixlen:
                kind = ObservableKind.IPV4 if network.version == 4 else ObservableKind.IPV6
                return kind, str(network), True
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = network.network_address
        else:
            address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"invalid IP address {value[:100]!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kind = ObservableKind.IPV4 if address.version == 4 else ObservableKind.IPV6
    return kind, str(address), False


# No blocklist names networks wider than these: a wider one is a typing slip ("5.0.0.0/1"
# for "5.0.0.0/16") that would flag a good part of the Internet.
WIDEST_PREFIX = {4: 8, 6: 16}


def ipv6_hex(address: str | ipaddress.IPv6Address) -> str:
    """An IPv6 address as 32 hex digits: text whose order is the addresses' order, so that
    the addresses of a network are one range of it."""
    return f"{int(ipaddress.IPv6Address(address)):032x}"


def network_value(text: str) -> Observable:
    """A network written in CIDR (a DROP entry, a MISP or STIX value, an IntelMQ field) as an
    observable: a network, or an address for a /32 or /128.

    One with host bits set (1.2.3.4/16) is refused rather than widened to its network:
    which of the two the list meant cannot be told."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"invalid network {text[:100]!r}: expected CIDR, like 1.4.0.0/17"
        ) from None
    widest = WIDEST_PREFIX[network.version]
    if network.prefixlen < widest:
        raise ValueError(
            f"network {text[:100]!r} is wider than /{widest}: no list names one so wide"
        )
    if network.network_address != ipaddress.ip_address(text.partition("/")[0]):
        raise ValueError(
            f"{text[:100]!r} is not a network: its address has host bits set "
            f"(the network would be {network.compressed})"
        )
    if network.prefixlen == network.max_prefixlen:
        address = network.network_address
        kind = ObservableKind.IPV4 if address.version == 4 else ObservableKind.IPV6
        return Observable(kind, address.compressed)
    kind = ObservableKind.IPV4_NET if network.version == 4 else ObservableKind.IPV6_NET
    return Observable(kind, network.compressed)


def domain_value(value: str) -> str:
    try:
        return validate.domain(value)
    except ValueError:
        text = value.strip().rstrip(".").lower()
        labels = text.split(".")
        if (
            text.isascii()
            and len(text) <= 253
            and len(labels) >= 2
            and all(_LENIENT_LABEL.match(label) for label in labels)
            and not labels[-1].isdigit()
        ):
            return text
        raise


def url_value(value: str) -> str:
    """Scheme and host in lower case, an empty http(s) path as "/", percent-escapes written
    one way (`url_tail`), the rest as given; no whitespace or control characters."""
    text = value.strip()
    if not text or len(text) > 8192:
        raise ValueError(f"invalid URL {value[:200]!r}: empty or longer than 8192 characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError(f"invalid URL {value[:200]!r}: contains white space or control characters")
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"invalid URL {value[:200]!r}: {exc}") from None
    if not (parts.scheme and parts.netloc):
        if "://" in text:
            raise ValueError(f"invalid URL {value[:200]!r}: no host")
        return text  # MISP and feeds often give "host/path" without a scheme
    userinfo, at, hostport = parts.netloc.rpartition("@")
    scheme = parts.scheme.lower()
    try:
        netloc = f"{userinfo}{at}{url_host(scheme, hostport)}"
    except ValueError as exc:
        raise ValueError(f"invalid URL {value[:200]!r}: {exc}") from None
    return urlunsplit((scheme, netloc, *url_tail(scheme, parts)))


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def url_host(scheme: str, hostport: str) -> str:
    """A URL's host and port as one site is written one way: the host as a domain is stored
    (an internationalised name in its ASCII form, no final dot), an address in its canonical
    form, and the scheme's default port left out ("http://Злой-банк.рф.:80" is
    "http://xn----8sbcwkjcue.xn--p1ai"). A host none of these reads stays in lower case."""
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else ("", "", "")
    if not colon or not (port.isdigit() or not port):
        host, colon, port = hostport, "", ""
    if not host:
        raise ValueError("no host")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        # two ports, or an IPv6 address without brackets: no site to read, kept as given,
        # so that reading it again gives the same text
        return hostport.lower()
    if not port or _DEFAULT_PORTS.get(scheme) == port.lstrip("0"):  # "host:" is the default
        colon, port = "", ""
    if host.startswith("[") and host.endswith("]"):
        with suppress(ValueError):
            return f"[{ipaddress.ip_address(host[1:-1])}]{colon}{port}"
        return f"{host.lower()}{colon}{port}"
    try:
        name = str(ipaddress.ip_address(host)) if _looks_numeric(host) else domain_value(host)
    except ValueError:
        name = host.lower()
    return f"{name}{colon}{port}"


def _looks_numeric(host: str) -> bool:
    return bool(host) and all(ch.isdigit() or ch == "." for ch in host)


_SLASH_SCHEMES = frozenset(("http", "https"))


def url_path(scheme: str, path: str) -> str:
    """The path of a URL with an authority, an empty one as "/" where the scheme makes them
    the same resource (RFC 3986 6.2.3, RFC 9110 4.2.3): "http://a.example" and
    "http://a.example/" are one indicator. `scheme` is in lower case."""
    return "/" if not path and scheme in _SLASH_SCHEMES else path


def url_tail(scheme: str, parts: SplitResult) -> tuple[str, str, str]:
    """Path, query and fragment of a URL with an authority, each written one way: the path
    as `url_path` gives it, and percent-escapes normalised (RFC 3986 6.2.2): "%7E" is "~",
    as are the escapes of every unreserved character, and the others take upper-case hex.
    Two feeds that write one URL differently then correlate."""
    return (
        _escapes(url_path(scheme, parts.path)),
        _escapes(parts.query),
        _escapes(parts.fragment),
    )


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescaped(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


def _escapes(text: str) -> str:
    return _ESCAPE.sub(_unescaped, text) if "%" in text else text


def email_value(value: str) -> str:
    """Local part as given (it may be case-sensitive), domain canonical."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or len(local) > 64 or any(ch.isspace() or ord(ch) < 32 for ch in local):
        raise ValueError(f"invalid e-mail address {value[:200]!r}")
    try:
        return f"{local}@{domain_value(domain)}"
    except ValueError:
        raise ValueError(f"invalid e-mail address {value[:200]!r}: bad domain") from None


# --- TLP ----------------------------------------------------------------------------------------

TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")  # from least to most strict


def tlp_level(text: str, bare: bool = False) -> str | None:
    """The TLP 2.0 level a tag or label such as "tlp:white" or "TLP:AMBER+STRICT" names, or
    with `bare` a level name alone ("amber"); None when it is no TLP level."""
    name = text.strip().lower()
    if not bare:
        if not name.startswith("tlp:"):
            return None
        name = name.removeprefix("tlp:")
    name = name.strip('" ')
    if name == "white":
        return "clear"
    return name if name in TLP_LEVELS else None


def strictest_tlp(levels: Iterable[str | None]) -> str | None:
    known = [level for level in levels if level in TLP_LEVELS]
    return max(known, key=TLP_LEVELS.index) if known else None


# --- RSIT from taxonomy tags and labels -----------------------------------------------------------

_MACHINE_TAG = re.compile(r'^\s*([^:="\s]+):([^="]+?)(?:\s*=\s*"(.*)")?\s*$', re.S)
# eCSIRT taxonomy values that RSIT renamed or merged (as IntelMQ migrated them).
_ECSIRT_TYPES = {
    "c&c": "c2-server",
    "botnet-drone": "infected-system",
    "bot": "infected-system",
    "dropzone": "malware-configuration",
    "defacement": "application-compromise",
    "compromised": "system-compromise",
    "backdoor": "system-compromise",
    "unauthorized-use-of-resources": "unauthorised-use-of-resources",
    "unauthorised-information-access": "unauthorised-information-access",
    "unauthorised-information-modification": "unauthorised-information-modification",
    "vulnerable-service": "vulnerable-system",
    "blacklist": "undetermined",
    "unknown": "undetermined",
}
# eCSIRT malware families say what the malware is, not what the reported value does (hosts
# it, is infected by it ...): they name the class only.
_ECSIRT_MALWARE = frozenset(
    {"malware", "ransomware", "virus", "worm", "trojan", "spyware", "dialer", "rootkit"}
)
# circl:incident-classification values. "malware" names the class only: the caller picks the
# type (MISP: from the attribute category).
_CIRCL: dict[str, tuple[str, str | None]] = {
    "malware": ("malicious-code", None),
    "domain-malware": ("malicious-code", "malware-distribution"),
    "phishing": ("fraud", "phishing"),
    "whaling": ("fraud", "phishing"),
    "smishing": ("fraud", "phishing"),
    "vishing": ("fraud", "phishing"),
    "domain-phishing": ("fraud", "phishing"),
    "domain-typosquatting": ("fraud", "masquerade"),
    "domain-fraud": ("fraud", "masquerade"),
    "copyright-issue": ("fraud", "copyright"),
    "spam": ("abusive-content", "spam"),
    "scan": ("information-gathering", "scanner"),
    "denial-of-service": ("availability", "dos"),
    "system-compromise": ("intrusions", "system-compromise"),
    "sql-injection": ("intrusion-attempts", "exploit"),
    "xss": ("intrusion-attempts", "exploit"),
    "information-leak": ("information-content-security", "data-leak"),
    "vulnerability": ("vulnerable", "vulnerable-system"),
}
# The type used when a tag names only a class; classes without a natural default fall back to
# other/undetermined.
_CLASS_DEFAULT = {
    "malicious-code": "infected-system",
    "abusive-content": "spam",
    "information-gathering": "scanner",
    "intrusion-attempts": "ids-alert",
    "intrusions": "system-compromise",
    "vulnerable": "vulnerable-system",
    "other": "undetermined",
    "test": "test",
}


def rsit_from_tags(tags: Iterable[str]) -> tuple[str, str | None] | None:
    """The RSIT (class, type) a list of tags or labels states, first found; type None when a
    tag names only the class. None when no tag speaks of RSIT."""
    for tag in tags:
        found = _rsit_of_tag(tag)
        if found is not None:
            return found
    return None


def _rsit_of_tag(tag: str) -> tuple[str, str | None] | None:
    match = _MACHINE_TAG.match(tag)
    if match is None:
        word = tag.strip().lower()
        return (TYPE_TO_CLASS[word], word) if word in TYPE_TO_CLASS else None
    namespace, predicate, value = (g.strip().lower() if g else "" for g in match.groups())
    if namespace in ("rsit", "ecsirt") and predicate in RSIT:
        if namespace == "ecsirt" and value in _ECSIRT_MALWARE:
            return "malicious-code", None
        rsit_type = _ECSIRT_TYPES.get(value, value) if namespace == "ecsirt" else value
        if rsit_type in RSIT[predicate]:
            return predicate, rsit_type
        if rsit_type in TYPE_TO_CLASS:
            return TYPE_TO_CLASS[rsit_type], rsit_type
        return predicate, None
    if namespace == "circl" and predicate == "incident-classification":
        return _CIRCL.get(value)
    return None


def resolve_rsit(
    found: tuple[str, str | None], preferred: tuple[str, str] | None = None
) -> tuple[str, str]:
    """A complete (class, type): a missing type comes from `preferred` when that is in the same
    class, else from the class default."""
    rsit_class, rsit_type = found
    if rsit_type:
        return rsit_class, rsit_type
    if preferred is not None and preferred[0] == rsit_class:
        return preferred
    if rsit_class in _CLASS_DEFAULT:
        return rsit_class, _CLASS_DEFAULT[rsit_class]
    return "other", "undetermined"


# --- ATT&CK -----------------------------------------------------------------------------------

ATTACK_ID = re.compile(r"T\d{4}(?:\.\d{3})?")
_ATTACK_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])T\d{4}(?:\.\d{3})?(?![0-9.])")


def attack_ids_in(text: str) -> list[str]:
    """Technique ids written in a name such as "Spearphishing Attachment - T1566.001"."""
    return _ATTACK_ID_IN_TEXT.findall(text)
