"""Abuse reports sent by e-mail: ARF (RFC 5965), X-ARF (0.2, v3 and v4 JSON) and plain text.

One message in, records and located errors out; no database, no network.

* ARF: a multipart/report whose message/feedback-report part gives Feedback-Type, Source-IP,
  Reported-Domain ...; the original message (message/rfc822 or text/rfc822-headers) gives
  the Received chain, From and Subject. One record per feedback-report part. RFC 5965 lets
  the reporter truncate the original: a multipart cut short inside it, in a MIME structure
  that is itself whole, is noted in `extra["original_truncated"]`, not an error.
* X-ARF 0.2: an `X-ARF: Yes` header and a YAML (or JSON) second part. X-ARF v4 and v3 JSON
  documents, bare or attached to a mail: see `read_xarf_json`. One record per report.
* Anything else is read as a plain-text abuse mail: the IP addresses, networks, domains,
  URLs and e-mail addresses found in its text and HTML parts, defanged forms included, as
  one record per host it names (an address, a network or a domain), since each event
  concerns the owner of its host. Each record holds its host, the URLs on it and the
  e-mail addresses of its domain, with the mail's time, classification, description and
  TLP; it is located at the part that first names its host. The reader does not count
  the lines of a decoded part, which are not the input's: no line is given.

Plain-text choices, because free text is noisy:

* The mail's own addresses (From, Reply-To, Sender, To, Cc) and the reporter's domains (of
  From, Reply-To, Sender) are not observables: they name the reporter and the recipient.
* Loopback, link-local, unspecified, multicast and broadcast addresses are dropped. Private
  addresses (RFC 1918, RFC 6598 shared space, IPv6 ULA) are not observables either, since
  they cannot name a network owner, but they are listed in `extra["private_addresses"]`
  for the analyst. Documentation ranges (192.0.2.0/24, 2001:db8::/32 ...) are kept.
* A name whose last label is a common file extension (invoice.zip, index.html) is taken for
  a file name, not a domain; the host of a URL or an e-mail address is not repeated as a
  domain.
* A CIDR network (198.51.100.0/24) is an ipv4-net or ipv6-net observable; one written with
  host bits set (198.51.100.5/24) gives the host too.
* What the signature names (below a "-- " line, up to a quoted message) is the reporter's.
  A link to a page about an address the mail names, on another host (a blocklist entry,
  https://blocklist.example/ip/203.0.113.77), is a reference, listed in
  `extra["reference_links"]`, not an observable.
* The hosts of the mail's own Received chain (its sender's mail servers, the relays, ours)
  carried the report: they are not observables. Nor is what mail headers pasted into the
  text (a forwarded spam's, quoted or not) say of the receiving side: a Received header
  from "by" on (and the whole hop when it was sent from a host in a recipient's domain,
  the recipient's own relay), the recipients (To, Cc, Delivered-To ...), message
  identifiers and the receiver's checks (Authentication-Results, ARC, Received-SPF). The
  sender's part (the other hops' from-clauses, From, Return-Path, DKIM-Signature) is read.
* A URL on a private address is set aside with the private addresses, one on a loopback
  or link-local address dropped, as those addresses are.
* An e-mail address is no host: it goes with the record of its domain when the mail
  names that host, else with the first record, as what the report says beside it (so a
  contact named in passing makes no event of its own). A mail that names e-mail addresses
  alone is one record of them.
* Order: records come in the order the mail first names their hosts. In each, the host
  itself is the primary value (it names the owner), then the network an address was
  written in, the URLs and the e-mail addresses; in a phishing or malware-download report
  (by its subject) the URLs come first.
* A mail makes at most MAX_HOSTS records, MAX_OBSERVABLES observables each: past them, an
  error on the receipt says how many hosts were left out (a longer list is a feed), and
  `extra["observables_left_out"]` how many values of one host.
* The TLP is the strictest marking in the subject and the top of the body.

MIME locations: `pointer` is "/part/N" with IMAP section numbers (RFC 3501: "/part/3.1" is
the first part inside part 3; the body of a single-part message is "/part/1"); "/" is the
message itself. `field` names a header or report field. Inside an attached JSON document
the JSON pointer follows the part: "/part/2/source_identifier".

A mail whose own MIME structure is cut short (a multipart without its closing or its start
boundary, outside any attached message) was cut in transport: it is refused whole, with one
error, and nothing of it is read. The error is at the line where the input ends when the
mail's own multipart is cut, at the cut part when one inside it is. The exception is an ARF
report cut in its original message, its last part (see above).

Size: parts larger than MAX_PART_BYTES are not decoded (a located error says so); they are
dropped while the input is read, so a 50 MB attachment costs no more memory than 10 MB.
"""

from __future__ import annotations

import base64
import bisect
import codecs
import contextlib
import ipaddress
import itertools
import json
import quopri
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from email import errors as email_errors
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser, Parser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from concord.access.model import TLP
from concord.errors import FaultLocation
from concord.intake.readers import Reader
from concord.intake.readers.values import WIDEST_PREFIX, ip_value, strictest_tlp
from concord.intake.records import (
    MAX_RAW,
    EventRecord,
    Observable,
    ObservableKind,
    ReadError,
    ReadItem,
    Skipped,
    utc,
)
from concord.orgs import validate

MAX_PART_BYTES = 10 * 1024 * 1024  # a part larger than this is not decoded
MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # what is kept of one message once big parts are dropped
MAX_INPUT_BYTES = 256 * 1024 * 1024  # reading stops here
MAX_REPORT_BYTES = 256 * 1024  # an X-ARF 0.2 YAML report is a few lines
# A plain-text mail makes an event per host it names, up to MAX_HOSTS: a log of 100 000
# addresses is a feed, not a mail's worth of events. An event holds at most MAX_OBSERVABLES.
MAX_HOSTS = 500
MAX_OBSERVABLES = 500
MAX_DEPTH = 32  # MIME nesting
_LINE = 64 * 1024  # read in lines of at most this many bytes

_STRUCTURE_DEFECTS: dict[type, str] = {
    email_errors.StartBoundaryNotFoundDefect: (
        "multipart body has no start boundary: the message is truncated or its boundary is wrong"
    ),
    email_errors.CloseBoundaryNotFoundDefect: (
        "multipart is truncated: its closing boundary is missing"
    ),
    email_errors.NoBoundaryInMultipartDefect: "multipart has no boundary parameter",
    email_errors.MultipartInvariantViolationDefect: "declared multipart but has no parts",
}
# Defects of a multipart cut short: in the mail's own structure they refuse the mail, inside
# an ARF report's original message they are no fault.
_TRUNCATION_DEFECTS = (
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
)
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers")
ORIGINAL_TRUNCATED = "the original message is truncated, as RFC 5965 allows"

# RFC 5965 Feedback-Type -> RSIT (class, type).
FEEDBACK_TYPES: dict[str, tuple[str, str]] = {
    "abuse": ("abusive-content", "spam"),
    "fraud": ("fraud", "phishing"),
    "virus": ("malicious-code", "malware-distribution"),
    "auth-failure": ("fraud", "masquerade"),
    "dmarc": ("fraud", "masquerade"),  # pre-RFC 6591 name of auth-failure
    "other": ("other", "undetermined"),
    # The user says the message is wanted mail: kept, but as nothing to act on.
    "not-spam": ("other", "other"),
}

# X-ARF types (0.2 Report-Type, v3 ReportType, v4 type), compared without case or punctuation:
# "login_attack", "login-attack" and "LoginAttack" are one key.
XARF_TYPES: dict[str, tuple[str, str]] = {
    "spam": ("abusive-content", "spam"),
    "bulkmessaging": ("abusive-content", "spam"),
    "harassment": ("abusive-content", "harmful-speech"),
    "csam": ("abusive-content", "violence"),
    "csem": ("abusive-content", "violence"),
    "childabuse": ("abusive-content", "violence"),
    "phishing": ("fraud", "phishing"),
    "phishingsite": ("fraud", "phishing"),
    "fraud": ("fraud", "masquerade"),
    "fakeshop": ("fraud", "masquerade"),
    "spoofing": ("fraud", "masquerade"),
    "brandinfringement": ("fraud", "masquerade"),
    "trademark": ("fraud", "masquerade"),
    "suspiciousregistration": ("fraud", "masquerade"),
    "copyright": ("fraud", "copyright"),
    "cyberlocker": ("fraud", "copyright"),
    "linksite": ("fraud", "copyright"),
    "p2p": ("fraud", "copyright"),
    "usenet": ("fraud", "copyright"),
    "ugcplatform": ("fraud", "copyright"),
    "malware": ("malicious-code", "malware-distribution"),
    "malwaredistribution": ("malicious-code", "malware-distribution"),
    "malwareattack": ("malicious-code", "infected-system"),  # X-ARF 0.2: a host spreading it
    "botnet": ("malicious-code", "infected-system"),
    "bot": ("malicious-code", "infected-system"),
    "infectedhost": ("malicious-code", "infected-system"),
    "c2server": ("malicious-code", "c2-server"),
    "loginattack": ("intrusion-attempts", "brute-force"),
    "bruteforce": ("intrusion-attempts", "brute-force"),
    "authfailure": ("intrusion-attempts", "brute-force"),
    "sshattack": ("intrusion-attempts", "brute-force"),
    "rdpattack": ("intrusion-attempts", "brute-force"),
    "exploit": ("intrusion-attempts", "exploit"),
    "exploitattempt": ("intrusion-attempts", "exploit"),
    "sqlinjection": ("intrusion-attempts", "exploit"),
    "idsalert": ("intrusion-attempts", "ids-alert"),
    "portscan": ("information-gathering", "scanner"),
    "vulnscanning": ("information-gathering", "scanner"),
    "vulnerabilityscan": ("information-gathering", "scanner"),
    "reconnaissance": ("information-gathering", "scanner"),
    "ddos": ("availability", "ddos"),
    "dos": ("availability", "dos"),
    # The reported address is the reflector, not the attacker.
    "ddosamplification": ("vulnerable", "ddos-amplifier"),
    "openservice": ("vulnerable", "potentially-unwanted-accessible"),
    "open": ("vulnerable", "potentially-unwanted-accessible"),
    "cve": ("vulnerable", "vulnerable-system"),
    "misconfiguration": ("vulnerable", "vulnerable-system"),
    "compromisedserver": ("intrusions", "system-compromise"),
    "remotecompromise": ("intrusions", "application-compromise"),
    "defacement": ("intrusions", "application-compromise"),
    "webhack": ("intrusions", "application-compromise"),
    "exposeddata": ("information-content-security", "data-leak"),
    "scraping": ("other", "other"),
    "webcrawler": ("other", "other"),
}
# When the type is unknown, the category alone decides where it is unambiguous.
XARF_CATEGORIES: dict[str, tuple[str, str]] = {
    "messaging": ("abusive-content", "spam"),
    "infrastructure": ("malicious-code", "infected-system"),
    "vulnerability": ("vulnerable", "vulnerable-system"),
    "copyright": ("fraud", "copyright"),
}
# MITRE ATT&CK techniques implied by an RSIT type.
_TECHNIQUES: dict[str, tuple[str, ...]] = {
    "brute-force": ("T1110",),
    "scanner": ("T1595",),
    "phishing": ("T1566",),
    "ddos": ("T1498",),
    "exploit": ("T1190",),
}

# Subject keywords of a plain-text mail, first match wins (English and Russian).
SUBJECT_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), rsit_class, rsit_type)
    for pattern, rsit_class, rsit_type in (
        (r"phish|фишинг", "fraud", "phishing"),
        (r"spam|спам", "abusive-content", "spam"),
        (
            r"\bd?dos\b|denial[- ]of[- ]service|ддос|отказ[а-я]* в обслуживании",
            "availability",
            "ddos",
        ),
        (
            r"brute[- ]?forc|login attempt|password guess|брутфорс|перебор|подбор[а-я]* парол",
            "intrusion-attempts",
            "brute-force",
        ),
        (r"\bscan|сканир", "information-gathering", "scanner"),
        (r"\bc2\b|\bc&c\b|command[- ]and[- ]control", "malicious-code", "c2-server"),
        (
            r"(malware|virus|вредонос|вирус).*(host|distribut|download|распростран|размещ)",
            "malicious-code",
            "malware-distribution",
        ),
        (
            r"malware|botnet|\bbot\b|infected|trojan|virus|вредонос|ботнет|заражен|вирус",
            "malicious-code",
            "infected-system",
        ),
    )
)

# Reports whose URL is the incident (the phishing page, the download): their URL comes
# first; in the others the host named comes first, the URLs being about it.
_ABOUT_A_URL = frozenset({"phishing", "malware-distribution"})

# Names that look like domains but are file names.
_FILE_EXTENSION_NAMES = """
html htm xhtml php asp aspx jsp cgi pl py sh js css json xml yml yaml txt log csv tsv
pdf doc docx xls xlsx ppt pptx rtf odt eml msg exe dll bat cmd ps1 vbs jar apk msi bin
iso img zip rar gz tgz bz2 xz 7z tar cab png jpg jpeg gif bmp svg ico webp mp3 mp4 mov
avi wav ini cfg conf bak tmp old md
"""
_FILE_EXTENSIONS = frozenset(_FILE_EXTENSION_NAMES.split())
_NOISE_DOMAINS = frozenset(
    {"w3.org", "www.w3.org", "schemas.microsoft.com", "schemas.openxmlformats.org", "purl.org"}
)
_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)

_HEADER_LINE = re.compile(r"([!-9;-~]+)[ \t]*:[ \t]*(.*)")
_KNOWN_HEADER_NAMES = """
from to cc subject date received return-path message-id mime-version delivered-to
dkim-signature x-arf reply-to sender authentication-results content-type x-original-to
arc-seal x-received
"""
_KNOWN_HEADERS = frozenset(_KNOWN_HEADER_NAMES.split())
_XARF_KEYS = re.compile(rb'"(?:xarf_version|ReporterInfo|source_identifier)"\s*:', re.IGNORECASE)
_NEWLINES = re.compile(r"\r\n|\r|\n")

# Free-text extraction.
_URL_RE = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`{}|\\^]+", re.IGNORECASE)
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@(?:[^\W_](?:[^\W_]|-){0,62}\.)+[^\W\d_]{2,63}"
)
_IPV4_RE = re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9]|\.[0-9]|/[0-9])")
_IPV6_RE = re.compile(r"(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f.]{0,15}){2,8}(?![/\w])")
# A CIDR network: a prefix length that is a whole number in range, not followed by more
# digits or dots, so that "1.2.3.4/56", "10.1.2.3/24.5" and dates such as 1.2.3.4/12/2024
# are not read as one.
_NET4_RE = re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}/(?:3[0-2]|[12]?\d)(?![0-9]|[./][0-9])")
_NET6_RE = re.compile(
    r"(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f.]{0,15}){2,8}"
    r"/(?:12[0-8]|1[01]\d|[1-9]?\d)(?![0-9]|[./][0-9])"
)
# Where a signature ends: a quoted message, an Outlook or Gmail forward line, "X wrote:".
# The start of a quoted or forwarded message: "> ", a rule of dashes or underscores, or an
# attribution line ending "… wrote:". Matched on the stripped line's ends only, so that a long
# line costs linear time (a leading \s* beside .* made it quadratic).
_QUOTE_OPENERS = (">", "-----", "_____")
_ATTRIBUTION_END = re.compile(
    r"\b(?:wrote|schrieb|a écrit|пишет|писал[аи]?(?:\(а\))?)\s*:$", re.IGNORECASE
)
MAX_ATTRIBUTION = 300  # an attribution line's tail worth reading
_DOMAIN_RE = re.compile(
    r"(?<![\w.@-])(?:[^\W_](?:[^\W_]|-){0,62}\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})(?![\w-])",
)
_REFANG: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bh(?:xx|\*\*|XX)p(s?)\b", r"http\1"),
        (r"\bfxp(?=\[:\]//|\[://\]|://)", "ftp"),  # a scheme only: "fxp" is a word too
        (r"\[:\]//|\[://\]", "://"),
        (r"\[:\]", ":"),
        (r"\s?[\[({]\s?(?:\.|dot)\s?[\])}]\s?", "."),
        (r"\s?[\[({]\s?(?:@|at)\s?[\])}]\s?", "@"),
    )
)
_TLP_RE = re.compile(r"\bTLP\s*:\s*(CLEAR|WHITE|GREEN|AMBER\+STRICT|AMBER|RED)\b", re.IGNORECASE)
# Mail headers pasted into a report's text (see `_without_receivers`): the hops, the
# recipients (whose domains tell the recipient's own relays among the hops), and the other
# headers the receiving side wrote or that name no host (message identifiers). Then the
# address literals of a Received header.
_PASTED_HEADER = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:")
_QUOTE_MARKS = re.compile(r"(?:[ \t]*>)+ ?")
_HOP_HEADERS = frozenset({"received", "x-received"})
_RECIPIENT_HEADER_NAMES = """
to cc bcc delivered-to x-original-to envelope-to x-envelope-to resent-to resent-cc
x-forwarded-to
"""
_RECIPIENT_HEADERS = frozenset(_RECIPIENT_HEADER_NAMES.split())
# The results of the receiver's checks name the receiver: "Authentication-Results:
# mx.example; spf=pass (mx.example: ...)".
_RECEIVER_HEADER_NAMES = """
message-id in-reply-to references resent-message-id authentication-results
arc-authentication-results arc-seal arc-message-signature received-spf
"""
_RECEIVER_HEADERS = _RECIPIENT_HEADERS | frozenset(_RECEIVER_HEADER_NAMES.split())
_BY = re.compile(r"(?<!\S)by(?=\s)", re.IGNORECASE)
_FOR_RECIPIENT = re.compile(r"(?<!\S)for\s+<?([^\s<>;]+@[^\s<>;]+)", re.IGNORECASE)
_FROM_HOST = re.compile(r"\s*from\s+([^\s(;]+)", re.IGNORECASE)
_RECEIVED_LITERAL = re.compile(r"[\[(]\s*(?:ipv6:)?([0-9a-fA-F:.]{2,45})\s*[\])]", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# ARF feedback report


@dataclass(frozen=True)
class FeedbackReport:
    """The fields of one message/feedback-report part (RFC 5965 section 3)."""

    feedback_type: str | None
    user_agent: str | None = None
    version: str | None = None
    arrival_date: str | None = None
    received_date: str | None = None  # the draft name of Arrival-Date, still sent
    source_ip: str | None = None
    source_port: str | None = None
    incidents: int = 1
    reported_domain: tuple[str, ...] = ()
    reported_uri: tuple[str, ...] = ()
    original_mail_from: str | None = None
    original_rcpt_to: tuple[str, ...] = ()
    original_envelope_id: str | None = None
    reporting_mta: str | None = None
    authentication_results: tuple[str, ...] = ()
    auth_failure: str | None = None
    fields: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def parse_fields(text: str) -> list[tuple[str, str]]:
    """`Name: value` lines with folding, any line ending; blank and junk lines are skipped,
    since real reports come with stray blank lines and odd folding."""
    fields: list[tuple[str, str]] = []
    for line in _NEWLINES.split(text):
        if not line.strip():
            continue
        if line[0] in " \t":
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        match = _HEADER_LINE.match(line)
        if match:
            fields.append((match.group(1), match.group(2).strip()))
    return fields


def parse_feedback_report(text: str) -> FeedbackReport:
    fields = parse_fields(text)
    values: dict[str, list[str]] = {}
    for name, value in fields:
        values.setdefault(name.lower(), []).append(value)

    def one(name: str) -> str | None:
        found = [v for v in values.get(name, []) if v]
        return found[0] if found else None

    def many(name: str) -> tuple[str, ...]:
        return tuple(v for v in values.get(name, []) if v)

    incidents = 1
    with contextlib.suppress(TypeError, ValueError):
        incidents = max(1, int(one("incidents") or "1"))
    return FeedbackReport(
        feedback_type=(one("feedback-type") or "").lower() or None,
        user_agent=one("user-agent"),
        version=one("version"),
        arrival_date=one("arrival-date"),
        received_date=one("received-date"),
        source_ip=one("source-ip"),
        source_port=one("source-port"),
        incidents=incidents,
        reported_domain=many("reported-domain"),
        reported_uri=many("reported-uri"),
        original_mail_from=one("original-mail-from"),
        original_rcpt_to=many("original-rcpt-to"),
        original_envelope_id=one("original-envelope-id"),
        reporting_mta=one("reporting-mta"),
        authentication_results=many("authentication-results"),
        auth_failure=one("auth-failure"),
        fields=tuple(fields),
    )


# ---------------------------------------------------------------------------------------------
# The reader


class EmailReader(Reader):
    name = "email"
    description = "abuse report e-mail (.eml): ARF (RFC 5965), X-ARF, plain text"

    def sniff(self, head: bytes, filename: str) -> bool:
        if filename.lower().endswith(".eml"):
            return True
        body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if body[:1] in (b"{", b"["):
            return bool(_XARF_KEYS.search(head))
        return _looks_like_headers(body[:8192].decode("latin-1"))

    def read(self, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
        first = stream.readline(_LINE)
        start = first.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not start:
            # Only whitespace so far: look a little further before deciding.
            first += stream.readline(_LINE)
            start = first.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not start:
            yield ReadError(FaultLocation(source=source, line=1), "the input is empty")
            return
        if start[:1] in (b"{", b"["):
            data = first + stream.read(MAX_PART_BYTES + 1 - len(first))
            if len(data) > MAX_PART_BYTES:
                yield ReadError(
                    FaultLocation(source=source, pointer=""),
                    f"JSON document larger than {_size(MAX_PART_BYTES)}; not read",
                )
                return
            yield from read_xarf_json(data, source)
            return
        yield from _read_email(first, stream, source)


READER = EmailReader()


def _looks_like_headers(text: str) -> bool:
    lines = _NEWLINES.split(text)
    if lines and lines[0].startswith("From "):  # mbox separator line
        lines = lines[1:]
    names: list[str] = []
    for line in lines[:200]:
        if not line:
            break
        if line[0] in " \t" and names:
            continue
        match = _HEADER_LINE.match(line)
        if not match:
            break
        names.append(match.group(1).lower())
    return len(names) >= 2 and any(n in _KNOWN_HEADERS for n in names)


# ---------------------------------------------------------------------------------------------
# Reading one message


@dataclass
class _Cut:
    """What reading left out: oversized runs dropped (a marker line stands in the kept text),
    and the number of the input's last line, which the parsed message no longer tells."""

    token: str
    sizes: dict[int, int] = field(default_factory=dict)
    last_line: int = 1

    def size_in(self, text: str) -> int | None:
        match = re.search(re.escape(self.token) + r"-(\d+)", text)
        return self.sizes.get(int(match.group(1))) if match else None


def _read_bounded(first: bytes, stream: BinaryIO) -> tuple[bytes, _Cut, str | None]:
    """Read the message, dropping the bytes of any run longer than MAX_PART_BYTES between two
    lines that start with "--" (every MIME boundary line does). The parser then never sees a
    giant part; the part still tells, by its marker, that it was cut and how big it was."""
    cut = _Cut(token=f"concord-cut-{secrets.token_hex(8)}")
    kept = bytearray()
    run = 0
    total = 0
    at_line_start = True
    cutting: int | None = None
    line = first
    newlines = 0
    while line:
        total += len(line)
        newlines += line.count(b"\n")
        cut.last_line = newlines if line.endswith(b"\n") else newlines + 1
        if at_line_start and line.startswith(b"--"):
            run = 0
            cutting = None
        run += len(line)
        if run <= MAX_PART_BYTES + 2 * _LINE:
            kept += line
        else:
            if cutting is None:
                cutting = len(cut.sizes)
                cut.sizes[cutting] = run - len(line)
                kept += f"\n{cut.token}-{cutting}\n".encode()
            cut.sizes[cutting] += len(line)
        at_line_start = line.endswith(b"\n")
        if total > MAX_INPUT_BYTES:
            return b"", cut, f"input larger than {_size(MAX_INPUT_BYTES)}; not read"
        if len(kept) > MAX_MESSAGE_BYTES:
            return (
                b"",
                cut,
                f"message larger than {_size(MAX_MESSAGE_BYTES)} once parts over "
                f"{_size(MAX_PART_BYTES)} are set aside; not read",
            )
        line = stream.readline(_LINE)
    return bytes(kept), cut, None


def _read_email(first: bytes, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
    data, cut, too_big = _read_bounded(first, stream)
    if too_big:
        yield ReadError(FaultLocation(source=source, pointer="/"), too_big)
        return
    try:
        msg = parse_message(data)
        yield from _Message(msg, source, cut).read()
    except Exception as exc:  # the stdlib parser has bugs of its own on hostile input
        yield ReadError(
            FaultLocation(source=source, pointer="/"),
            f"the e-mail could not be parsed ({type(exc).__name__})",
        )


class _Message:
    """One parsed message and the parts found in it."""

    def __init__(self, msg: Message, source: str, cut: _Cut) -> None:
        self.msg = msg
        self.source = source
        self.cut = cut
        self.nodes: list[tuple[str, Message]] = []
        self.errors: list[ReadError] = []
        self.oversized: set[str] = set()
        # Structure defects as found: (path, defect type, the error reporting it).
        self.structure: list[tuple[str, type, ReadError]] = []
        self.truncated_originals: set[str] = set()  # report paths

    def loc(self, pointer: str | None = "/", fld: str | None = None) -> FaultLocation:
        return FaultLocation(source=self.source, pointer=pointer, field=fld)

    def error(self, reason: str, pointer: str | None = "/", fld: str | None = None) -> ReadError:
        return ReadError(self.loc(pointer, fld), reason)

    def read(self) -> Iterator[ReadItem]:
        if not list(self.msg.raw_items()):
            yield ReadError(
                FaultLocation(source=self.source, line=1),
                "not an e-mail message: no header block (Name: value lines) at the start",
            )
            return
        self._walk()
        reports = [
            (path, part)
            for path, part in self.nodes
            if _content_type(part) == "message/feedback-report"
        ]
        # Tolerate senders that label the machine-readable part text/plain.
        if not reports and report_type(self.msg) == "feedback-report":
            children = [n for n in self.nodes if n[0].count(".") == 0 and n[0] != "/"]
            if len(children) >= 2:
                reports = [children[1]]
        self._excuse_truncated_originals(reports)
        transport_cut = self._cut_short()
        if transport_cut is not None:
            yield transport_cut  # alone: what was read of a cut mail is not its report
            return
        yield from self._drain_errors()
        if reports:
            for path, part in reports:
                yield from self._arf(path, part)
            return
        if (_header(self.msg, "X-ARF") or "").strip().lower() in ("yes", "true", "1"):
            yield from self._xarf02()
            return
        found = False
        for path, part in self._leaves():
            if _looks_like_json_part(part):
                data = self._bytes(path, part)
                if data is not None and _is_xarf_json(data):
                    found = True
                    yield from read_xarf_json(data, self.source, pointer=_pointer(path))
        if not found:
            if answers_a_mail(self.msg):
                # an out-of-office reply, a bounce, a newsletter: no one reports anything
                yield Skipped(FaultLocation(source=self.source, line=1))
                return
            yield from self._plain()

    # -- structure -----------------------------------------------------------------------------

    def _walk(self) -> None:
        stack: list[tuple[str, Message, int]] = [("/", self.msg, 0)]
        while stack:
            path, part, depth = stack.pop()
            self.nodes.append((path, part))
            for defect in getattr(part, "defects", []):
                reason = _STRUCTURE_DEFECTS.get(type(defect))
                if reason:
                    error = self.error(reason, _pointer(path))
                    self.structure.append((path, type(defect), error))
                    self.errors.append(error)
            children = _children(part)
            if children and depth >= MAX_DEPTH:
                self.errors.append(
                    self.error(
                        f"MIME parts nested deeper than {MAX_DEPTH} levels; not read",
                        _pointer(path),
                    )
                )
                continue
            for index in range(len(children), 0, -1):
                child = f"{index}" if path == "/" else f"{path}.{index}"
                stack.append((child, children[index - 1], depth + 1))
        for path, part in self._leaves():
            payload = _payload(part)
            if _damaged_base64(part, payload):
                self.errors.append(
                    self.error(
                        f"the base64 of this {_content_type(part)} part is damaged: it is read "
                        "only as far as it can be",
                        _pointer(path),
                    )
                )
            if isinstance(payload, str) and (
                len(payload) > MAX_PART_BYTES or self.cut.token in payload
            ):
                size = self.cut.size_in(payload) or len(payload)
                self.oversized.add(path)
                self.errors.append(
                    self.error(
                        f"{_content_type(part)} part of about {_size(size)} is larger than "
                        f"{_size(MAX_PART_BYTES)}; not decoded",
                        _pointer(path),
                    )
                )

    def _excuse_truncated_originals(self, reports: list[tuple[str, Message]]) -> None:
        """RFC 5965 lets an ARF report's third part, the original message, be headers only or
        truncated, and feedback loops cut it, at times with the report's closing boundary.
        Truncation there costs nothing of the report: it becomes a note on the record. A cut
        anywhere else refuses the mail (see `_cut_short`)."""
        parts = dict(self.nodes)
        excused: list[ReadError] = []
        for report_path, _ in reports:
            parent, _, last = report_path.rpartition(".")
            if not last.isdigit():
                continue
            original = f"{parent}.{int(last) + 1}" if parent else str(int(last) + 1)
            part = parts.get(original)
            if part is None or _content_type(part) not in _ORIGINAL_TYPES:
                continue
            inside = [n for p, n in self.nodes if p == original or p.startswith(original + ".")]
            found = [
                error
                for path, kind, error in self.structure
                if issubclass(kind, _TRUNCATION_DEFECTS)
                and (
                    path.startswith(original + ".")
                    # A missing closing boundary is the cut only if the original is last:
                    # feedback loops cut it there, the report's parts whole before it.
                    or (
                        kind is email_errors.CloseBoundaryNotFoundDefect
                        and self._ends_in(path, original, parts)
                    )
                )
            ]
            if found or any(_inner_truncated(node) for node in inside):
                self.truncated_originals.add(report_path)
                excused += found
        if excused:
            ids = {id(error) for error in excused}
            self.errors = [error for error in self.errors if id(error) not in ids]
            self.structure = [entry for entry in self.structure if id(entry[2]) not in ids]

    def _ends_in(self, container: str, target: str, parts: dict[str, Message]) -> bool:
        """Whether `target` is the last part of `container`, or of its last part, and so on:
        where a message cut short ends."""
        path = container
        while path != target:
            node = parts.get(path)
            count = len(_children(node)) if node is not None else 0
            if not count:
                return False
            path = f"{count}" if path == "/" else f"{path}.{count}"
        return True

    def _cut_short(self) -> ReadError | None:
        """The error refusing a mail whose own MIME structure is cut short, or None. A
        multipart of the mail itself (not of a message attached to it) that lacks its
        closing or start boundary was cut in transport: what is left of it may read as a
        report, but a wrong one (a description cut mid-word, a source missing), so the mail
        is refused whole. The outermost cut is the one named; the mail's own is at the line
        where the input ends (a part's, with the mail closed after it, is where the part
        ends, which the parser does not tell)."""
        parts = dict(self.nodes)
        for path, kind, error in self.structure:
            if issubclass(kind, _TRUNCATION_DEFECTS) and not self._in_attached_message(path, parts):
                if path != "/":
                    return error
                return ReadError(replace(error.location, line=self.cut.last_line), error.reason)
        return None

    def _in_attached_message(self, path: str, parts: dict[str, Message]) -> bool:
        """Whether the part at `path` is inside a message/* part (its parts are numbered
        under it): its structure is the attached message's, not the mail's."""
        numbers = [] if path == "/" else path.split(".")
        for end in range(1, len(numbers)):
            ancestor = parts.get(".".join(numbers[:end]))
            if ancestor is not None and _content_maintype(ancestor) == "message":
                return True
        return False

    def _leaves(self) -> Iterator[tuple[str, Message]]:
        for path, part in self.nodes:
            if not _children(part):
                yield ("1" if path == "/" else path), part

    def _bytes(self, path: str, part: Message) -> bytes | None:
        if path in self.oversized:
            return None
        try:
            data = part.get_payload(decode=True)
        except Exception:  # an odd Content-Transfer-Encoding: read the text as it stands
            data = None
        if isinstance(data, bytes):
            return data
        payload = _payload(part)
        return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else None

    def _text(self, path: str, part: Message) -> str | None:
        data = self._bytes(path, part)
        if data is None:
            return None
        text, problem = _decode(data, _charset(part))
        if problem:
            self.errors.append(self.error(problem, _pointer(path)))
        return text

    def _drain_errors(self) -> Iterator[ReadError]:
        while self.errors:
            yield self.errors.pop(0)

    # -- ARF -----------------------------------------------------------------------------------

    def _arf(self, path: str, part: Message) -> Iterator[EventRecord | ReadError]:
        pointer = _pointer("1" if path == "/" else path)
        text = self._feedback_text(path, part)
        yield from self._drain_errors()
        if text is None:
            return
        report = parse_feedback_report(text)
        if not report.feedback_type:
            yield self.error(
                "the feedback report has no Feedback-Type field (RFC 5965 requires it)",
                pointer,
                "Feedback-Type",
            )
            return
        original = self._original(path)
        yield from self._drain_errors()
        rsit = FEEDBACK_TYPES.get(report.feedback_type, ("other", "undetermined"))
        extra: dict[str, str] = {"feedback_type": report.feedback_type}
        observables: list[Observable] = []

        if report.source_ip:
            ip = _ip(report.source_ip)
            if ip is None:
                yield self.error(
                    f"Source-IP {report.source_ip[:100]!r} is not an IP address",
                    pointer,
                    "Source-IP",
                )
            else:
                observables.append(ip)
                extra["source_ip_from"] = "Source-IP"
        if not observables and original is not None:
            # No Source-IP: the first external hop of the original message is the sender.
            ip = _received_source(_headers(original, "Received"))
            if ip is not None:
                observables.append(ip)
                extra["source_ip_from"] = "Received"
        # For auth-failure the domain is the one whose name was abused: the victim.
        auth_failure = report.feedback_type in ("auth-failure", "dmarc")
        domain_role = "target" if auth_failure else "source"
        for value in report.reported_domain:
            try:
                observables.append(
                    Observable(ObservableKind.DOMAIN, validate.domain(value), domain_role)
                )
            except ValueError:
                yield self.error(
                    f"Reported-Domain {value[:100]!r} is not a domain name",
                    pointer,
                    "Reported-Domain",
                )
        for value in report.reported_uri:
            observable = _url(value.strip("<> ")) or _email(value.removeprefix("mailto:"))
            if observable is None:
                yield self.error(
                    f"Reported-URI {value[:100]!r} is not a URL", pointer, "Reported-URI"
                )
            else:
                observables.append(observable)
        if report.original_mail_from:
            # Often "<>" or redacted: quietly left out then.
            observable = _email(report.original_mail_from.strip("<> "))
            if observable is not None:
                observables.append(observable)

        time, time_from = None, ""
        for name, value in (
            ("Arrival-Date", report.arrival_date),
            ("Received-Date", report.received_date),
        ):
            if value and time is None:
                time = _rfc_date(value)
                if time is None:
                    yield self.error(f"{name} {value[:100]!r} is not a date", pointer, name)
                else:
                    time_from = name
        if time is None and original is not None:
            for received in _headers(original, "Received"):
                time = _rfc_date(received.rpartition(";")[2])
                if time is not None:
                    time_from = "Received"
                    break
        if time is None:
            time = _rfc_date(_header(self.msg, "Date") or "")
            time_from = "Date" if time else ""
        if time_from:
            extra["time_from"] = time_from

        # Source-Port is the sending client's port, one of many for one sender: no service
        # port (that would be the receiving MTA's), so it goes to extra, not the event's port.
        source_port = _port(report.source_port)
        for key, value in (
            ("source_port", str(source_port) if source_port else None),
            ("user_agent", report.user_agent),
            ("version", report.version),
            ("incidents", str(report.incidents)),
            ("original_envelope_id", report.original_envelope_id),
            ("original_rcpt_to", ", ".join(report.original_rcpt_to)),
            ("reporting_mta", report.reporting_mta),
            ("authentication_results", " | ".join(report.authentication_results)),
            ("auth_failure", report.auth_failure),
            ("reporter", _header(self.msg, "From")),
            ("report_subject", _header(self.msg, "Subject")),
        ):
            if value:
                extra[key] = value[:1000]
        if path in self.truncated_originals:
            extra["original_truncated"] = ORIGINAL_TRUNCATED
        if original is not None:
            for key, name in (
                ("original_from", "From"),
                ("original_subject", "Subject"),
                ("original_message_id", "Message-ID"),
                ("original_date", "Date"),
            ):
                value = _header(original, name)
                if value:
                    extra[key] = value[:1000]
        if not observables:
            yield self.error(
                "the feedback report names no source: no Source-IP, Reported-Domain, "
                "Reported-URI or Original-Mail-From, and no Received header to fall back on",
                pointer,
                "Source-IP",
            )
            return
        subject = extra.get("original_subject", "")
        yield EventRecord(
            time=time,
            rsit_class=rsit[0],
            rsit_type=rsit[1],
            observables=tuple(_unique(observables)),
            location=self.loc(pointer),
            raw=_bounded(text),
            feed="arf",
            application="smtp",
            description=f"ARF {report.feedback_type} report"
            + (f": {subject[:200]}" if subject else ""),
            attack_techniques=_TECHNIQUES.get(rsit[1], ()),
            extra=extra,
        )

    def _feedback_text(self, path: str, part: Message) -> str | None:
        payload = _payload(part)
        if isinstance(payload, list):
            # message/* is parsed as a message: its fields are the headers, and anything after
            # a stray line lands in the body. Put both back together.
            lines: list[str] = []
            for sub in payload:
                if not isinstance(sub, Message):
                    continue
                lines += [f"{k}: {_unfold(v)}" for k, v in sub.raw_items()]
                body = _payload(sub)
                if isinstance(body, str):
                    lines.append(_clean(body))
            text = "\n".join(lines)
            # RFC 2046 forbids encoding message/* parts, yet some senders base64 them.
            encoding = (_header(part, "Content-Transfer-Encoding") or "").strip().lower()
            if encoding in ("base64", "quoted-printable"):
                data = text.encode("ascii", "replace")
                with contextlib.suppress(ValueError):
                    data = (
                        base64.b64decode(b"".join(data.split()))
                        if encoding == "base64"
                        else quopri.decodestring(data)
                    )
                    text = _decode(data, "utf-8")[0]
            return text
        return self._text(path, part)

    def _original(self, report_path: str) -> Message | None:
        """The reported message (its headers at least): the part after the report, else the
        first message/rfc822 or text/rfc822-headers part anywhere."""
        wanted = ("message/rfc822", "text/rfc822-headers")
        candidates = [n for n in self.nodes if _content_type(n[1]) in wanted]
        head, _, last = report_path.rpartition(".")
        if last.isdigit():
            following = f"{head}.{int(last) + 1}" if head else str(int(last) + 1)
            candidates = [n for n in candidates if n[0] == following] + candidates
        for path, part in candidates:
            payload = _payload(part)
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            text = self._text(path, part)
            if text is not None:
                return Parser(policy=policy.default).parsestr(text, headersonly=True)
        return None

    # -- X-ARF 0.2 -----------------------------------------------------------------------------

    def _xarf02(self) -> Iterator[EventRecord | ReadError]:
        leaves = list(self._leaves())
        # The report is the second part; look at the others too, for tolerance.
        ordered = leaves[1:2] + leaves[2:] + leaves[:1]
        for path, part in ordered:
            if path in self.oversized or _content_maintype(part) not in ("text", "application"):
                continue
            data = self._bytes(path, part)
            if data is None or len(data) > MAX_REPORT_BYTES:
                continue
            text, problem = _decode(data, _charset(part))
            if problem:
                self.errors.append(self.error(problem, _pointer(path)))
            if _is_xarf_json(data):
                yield from self._drain_errors()
                yield from read_xarf_json(data, self.source, pointer=_pointer(path))
                return
            fields = _report_fields(text)
            keys = {k.lower() for k in fields}
            if "source" in keys and ("report-type" in keys or "category" in keys):
                yield from self._drain_errors()
                yield from self._xarf02_record(path, fields, text)
                return
        yield from self._drain_errors()
        yield self.error(
            "X-ARF message without a machine-readable report (a YAML part with Report-Type "
            "and Source)",
            "/part/2",
        )

    def _xarf02_record(
        self, path: str, fields: dict[str, object], text: str
    ) -> Iterator[EventRecord | ReadError]:
        pointer = _pointer(path)
        get = {k.lower(): v for k, v in fields.items()}

        def text_of(name: str) -> str:
            value = get.get(name)
            if value is None or isinstance(value, dict | list):
                return ""
            return _clean(str(value)).strip()

        source_value = text_of("source")
        observable = _observable(source_value, text_of("source-type"))
        if observable is None:
            yield self.error(
                f"Source {source_value[:100]!r} is not an IP address, domain, URL or e-mail "
                "address",
                pointer,
                "Source",
            )
            return
        rsit = _xarf_rsit(text_of("report-type"), text_of("category"))
        time = _any_date(get.get("date"))
        if get.get("date") is not None and time is None:
            yield self.error(f"Date {text_of('date')[:100]!r} is not a date", pointer, "Date")
        if time is None:
            time = _rfc_date(_header(self.msg, "Date") or "")
        port = _port(get.get("port"))
        extra = {"xarf_version": text_of("version") or "0.2"}
        for key, name in (
            ("report_type", "report-type"),
            ("category", "category"),
            ("report_id", "report-id"),
            ("reported_from", "reported-from"),
            ("user_agent", "user-agent"),
            ("occurrences", "occurrences"),
            ("schema_url", "schema-url"),
        ):
            if text_of(name):
                extra[key] = text_of(name)[:1000]
        service = text_of("service").lower() or None
        subject = _header(self.msg, "Subject")
        title = f"X-ARF {text_of('report-type') or 'report'}"
        yield EventRecord(
            time=time,
            rsit_class=rsit[0],
            rsit_type=rsit[1],
            observables=(observable,),
            location=self.loc(pointer),
            raw=_bounded(text),
            feed="xarf",
            port=port,
            application=service,
            tlp=_tlp_label(text_of("tlp")) or _tlp_in(subject or ""),
            description=f"{title}: {subject}"[:200] if subject else title,
            attack_techniques=_TECHNIQUES.get(rsit[1], ()),
            extra=extra,
        )

    # -- plain text ----------------------------------------------------------------------------

    def _plain(self) -> Iterator[EventRecord | ReadError]:
        texts: list[str] = []
        paths: list[str] = []
        for path, part in self._leaves():
            ctype = _content_type(part)
            if ctype not in ("text/plain", "text/html") or path in self.oversized:
                continue
            text = self._text(path, part)
            if text is None:
                continue
            if ctype == "text/html":
                text = _html_text(text)
            texts.append(text)
            paths.append(path)
        yield from self._drain_errors()
        if not paths:
            yield self.error("the mail has no text part to read")
            return
        own_emails: set[str] = set()
        own_domains: set[str] = set()
        for name in ("From", "Reply-To", "Sender", "To", "Cc"):
            for address in _addresses(self.msg, name):
                own_emails.add(address.lower())
                if name in ("From", "Reply-To", "Sender"):
                    own_domains.add(address.rpartition("@")[2].lower())
        subject = _header(self.msg, "Subject") or ""
        rsit = ("other", "undetermined")
        for pattern, rsit_class, rsit_type in SUBJECT_RULES:
            if pattern.search(subject):
                rsit = (rsit_class, rsit_type)
                break
        # Each part on its own: a signature ends its part, not the next one. `starts` tells
        # in which part an offset of the text read lies.
        read = [_without_receivers(refang(_without_signature(t))) for t in texts]
        starts = list(itertools.accumulate((len(t) + 1 for t in read[:-1]), initial=0))
        found = _extract(
            "\n".join(read),
            own_emails,
            own_domains,
            _transport_hosts(_headers(self.msg, "Received")),
        )
        hosts = found.hosts(url_first=rsit[1] in _ABOUT_A_URL)

        def pointer_at(offset: int) -> str:
            return _pointer(paths[bisect.bisect_right(starts, offset) - 1])

        if not hosts:
            yield self.error(
                "no IP address, domain, URL or e-mail address found in the text",
                _pointer(paths[0]),
            )
            return
        common: dict[str, str] = {}
        if found.private:
            common["private_addresses"] = ", ".join(list(found.private)[:50])
        reporter = _header(self.msg, "From")
        if reporter:
            common["reporter"] = reporter[:1000]
        if subject:
            common["subject"] = subject[:1000]
        date_header = _header(self.msg, "Date")
        time = _rfc_date(date_header or "")
        if date_header and time is None:
            yield self.error(f"Date {date_header[:100]!r} is not a date", "/", "Date")
        joined = "\n".join(texts)
        raw = _bounded(joined)
        tlp = _tlp_in(subject, joined[:4096])
        for host in hosts[:MAX_HOSTS]:
            extra = dict(common)
            observables = host.observables
            if len(observables) > MAX_OBSERVABLES:
                extra["observables_left_out"] = str(len(observables) - MAX_OBSERVABLES)
                observables = observables[:MAX_OBSERVABLES]
            if host.references:
                extra["reference_links"] = " ".join(host.references)[:1000]
            yield EventRecord(
                time=time,
                rsit_class=rsit[0],
                rsit_type=rsit[1],
                observables=observables,
                location=self.loc(pointer_at(host.at)),
                raw=raw,
                feed="email",
                tlp=tlp,
                description=subject[:200],
                attack_techniques=_TECHNIQUES.get(rsit[1], ()),
                extra=extra,
            )
        if len(hosts) > MAX_HOSTS:
            # said on the receipt, where the first host left out is named
            yield self.error(
                f"the mail names {len(hosts)} hosts: an event was made for each of the first "
                f"{MAX_HOSTS} and the other {len(hosts) - MAX_HOSTS} were left out; send a "
                "longer list as a feed file",
                pointer_at(hosts[MAX_HOSTS].at),
            )


# ---------------------------------------------------------------------------------------------
# X-ARF JSON (v4 and v3)


def read_xarf_json(
    data: bytes, source: str, pointer: str = ""
) -> Iterator[EventRecord | ReadError]:
    """X-ARF JSON: one v4 (xarf-spec) or v3 (abusix) report, or an array of them.
    `pointer` is where the document sits (a MIME part path); JSON pointers are appended."""
    try:
        doc = json.loads(data)
    except RecursionError:
        yield ReadError(FaultLocation(source=source, pointer=pointer or ""), "JSON nested too deep")
        return
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        yield ReadError(
            FaultLocation(source=source, line=getattr(exc, "lineno", None), pointer=pointer),
            f"not valid JSON: {getattr(exc, 'msg', None) or type(exc).__name__}",
        )
        return
    if isinstance(doc, list):
        items = [(f"{pointer}/{i}", item, None) for i, item in enumerate(doc)]
    else:
        # One document: its raw text is the input itself, as the sender wrote it.
        items = [(pointer, doc, data.decode("utf-8", "replace"))]
    if not items:
        yield ReadError(FaultLocation(source=source, pointer=pointer), "empty JSON array")
    for at, item, text in items:
        raw = _bounded(text if text is not None else json.dumps(item, ensure_ascii=False))
        if not isinstance(item, dict):
            yield ReadError(
                FaultLocation(source=source, pointer=at), "an X-ARF report must be a JSON object"
            )
        elif isinstance(item.get("Report"), dict) or "ReporterInfo" in item:
            yield from _xarf_v3(item, source, at, raw)
        else:
            yield from _xarf_v4(item, source, at, raw)


def _xarf_v4(doc: dict, source: str, at: str, raw: str) -> Iterator[EventRecord | ReadError]:
    def loc(key: str = "") -> FaultLocation:
        return FaultLocation(source=source, pointer=f"{at}/{key}" if key else at)

    def text(key: str) -> str:
        value = doc.get(key)
        return _clean(str(value)).strip() if isinstance(value, str | int | float) else ""

    observables, invalid, refusal = _xarf_values(
        [
            ("source_identifier", text("source_identifier"), "", "source"),
            ("url", text("url"), "url", "source"),
            ("domain", text("domain"), "domain", "source"),
            ("smtp_from", text("smtp_from"), "email", "source"),
            ("destination_ip", text("destination_ip"), "ip", "destination"),
            ("c2_server", text("c2_server"), "", "c2"),
        ]
    )
    if refusal is not None:
        key, reason = refusal
        yield ReadError(loc(key), reason)
        return
    category, xtype = text("category"), text("type")
    rsit = _xarf_rsit(xtype, category)
    time = None
    for key in ("timestamp", "reported_at", "first_seen", "last_seen"):
        if text(key):
            time = _any_date(text(key))
            if time is None:  # when it happened is no optional value: as a feed's row
                yield ReadError(loc(key), f"{key} {text(key)[:100]!r} is not a date")
                return
            break
    given: dict[str, int | None] = {}
    for key in ("destination_port", "service_port", "source_port"):
        if doc.get(key) is not None:
            given[key] = _port(doc[key])
            if given[key] is None:
                invalid[f"invalid.{key}"] = _clean(str(doc[key]))[:200]
    port, source_port = _service_port(given, bool(text("destination_ip")))
    protocol, application = _protocol(text("protocol"))
    application = text("service").lower() or application
    confidence = None
    if isinstance(doc.get("confidence"), int | float) and not isinstance(doc["confidence"], bool):
        value = float(doc["confidence"])
        confidence = round(value * 100 if value <= 1 else value)
        confidence = confidence if 0 <= confidence <= 100 else None
    reporter = doc.get("reporter") if isinstance(doc.get("reporter"), dict) else {}
    extra = {
        "xarf_version": text("xarf_version") or "4",
        "category": category,
        "type": xtype,
        "source_port": source_port,
        **invalid,
    }
    for key in (
        "report_id",
        "evidence_source",
        "malware_family",
        "target_brand",
        "cve_id",
        "service_version",
        "attack_vector",
        "first_seen",
        "last_seen",
    ):
        if text(key):
            extra[key] = text(key)[:1000]
    for key in ("org", "contact", "domain"):
        if isinstance(reporter.get(key), str):
            extra[f"reporter_{key}"] = reporter[key][:1000]
    if isinstance(doc.get("tags"), list):
        extra["tags"] = ", ".join(str(t) for t in doc["tags"] if isinstance(t, str))[:1000]
    if isinstance(doc.get("evidence"), list):
        extra["evidence_items"] = str(len(doc["evidence"]))
    description = text("description") or f"X-ARF {category}/{xtype}"
    yield EventRecord(
        time=time,
        rsit_class=rsit[0],
        rsit_type=rsit[1],
        observables=tuple(_unique(observables)),
        location=loc(),
        raw=raw,
        feed="xarf",
        port=port,
        protocol=protocol,
        application=application,
        tlp=_tlp_label(text("tlp")),
        confidence=confidence,
        description=description[:500],
        attack_techniques=_TECHNIQUES.get(rsit[1], ()),
        extra={k: v for k, v in extra.items() if v},
    )


def _xarf_v3(doc: dict, source: str, at: str, raw: str) -> Iterator[EventRecord | ReadError]:
    report = doc.get("Report")
    if not isinstance(report, dict):
        yield ReadError(FaultLocation(source=source, pointer=f"{at}/Report"), "no Report object")
        return

    def loc(key: str = "") -> FaultLocation:
        return FaultLocation(source=source, pointer=f"{at}/Report/{key}" if key else at)

    def text(key: str) -> str:
        value = report.get(key)
        return _clean(str(value)).strip() if isinstance(value, str | int | float) else ""

    observables: list[Observable] = []
    src = report.get("Source")
    candidates = [("SourceIp", text("SourceIp"), "ip", "source")]
    if isinstance(src, dict):
        candidates.append(("Source/IP", str(src.get("IP") or src.get("Value") or ""), "", "source"))
    elif isinstance(src, str):
        candidates.append(("Source", src, "", "source"))
    candidates += [
        ("SourceUrl", text("SourceUrl"), "url", "source"),
        ("SmtpMailFromAddress", text("SmtpMailFromAddress"), "email", "source"),
        ("DestinationIp", text("DestinationIp"), "ip", "destination"),
    ]
    info = report.get("AdditionalInfo")
    if isinstance(info, dict) and isinstance(info.get("C2Server"), str):
        candidates.append(("AdditionalInfo/C2Server", info["C2Server"], "", "c2"))
    observables, invalid, refusal = _xarf_values(candidates, no_source="SourceIp")
    if refusal is not None:
        key, reason = refusal
        yield ReadError(loc(key), reason)
        return
    rsit = _xarf_rsit(text("ReportType"), text("ReportClass"))
    time = _any_date(text("Date")) if text("Date") else None
    if text("Date") and time is None:  # when it happened is no optional value
        yield ReadError(loc("Date"), f"Date {text('Date')[:100]!r} is not a date")
        return
    given: dict[str, int | None] = {}
    for key, name in (("DestinationPort", "destination_port"), ("SourcePort", "source_port")):
        if report.get(key) is not None:
            given[name] = _port(report[key])
            if given[name] is None:
                invalid[f"invalid.{key}"] = _clean(str(report[key]))[:200]
    port, source_port = _service_port(given, bool(text("DestinationIp")))
    reporter = doc.get("ReporterInfo") if isinstance(doc.get("ReporterInfo"), dict) else {}
    extra = {
        "xarf_version": str(doc.get("Version") or "3")[:20],
        "report_class": text("ReportClass"),
        "report_type": text("ReportType"),
        "report_subtype": text("ReportSubType"),
        "source_port": source_port,
        "malware_name": text("MalwareName"),
        "reporter_org": str(reporter.get("ReporterOrg") or "")[:1000],
        "reporter_contact": str(reporter.get("ReporterOrgEmail") or "")[:1000],
    }
    extra.update(invalid)
    samples = report.get("Samples") or report.get("Attachment")
    if isinstance(samples, list):
        extra["evidence_items"] = str(len(samples))
    yield EventRecord(
        time=time,
        rsit_class=rsit[0],
        rsit_type=rsit[1],
        observables=tuple(_unique(observables)),
        location=loc(),
        raw=raw,
        feed="xarf",
        port=port,
        description=f"X-ARF {text('ReportClass')}/{text('ReportType')}"[:500],
        attack_techniques=_TECHNIQUES.get(rsit[1], ()),
        extra={k: v for k, v in extra.items() if v},
    )


def _xarf_values(
    candidates: list[tuple[str, str, str, str]], no_source: str = "source_identifier"
) -> tuple[list[Observable], dict[str, str], tuple[str, str] | None]:
    """The observables of an X-ARF report from (key, value, kind hint, role): those read,
    the unreadable ones kept as "invalid.<key>" (an optional value does not cost the report,
    as in a feed's row), and the one fault that does, (key, reason), when no source is left."""
    observables: list[Observable] = []
    invalid: dict[str, str] = {}
    unread_source: tuple[str, str] | None = None
    for key, given, hint, role in candidates:
        value = given.strip()
        if not value:
            continue
        observable = _observable(value, hint, role)
        if observable is not None:
            observables.append(observable)
            continue
        invalid[f"invalid.{key}"] = value[:200]
        if role == "source" and unread_source is None:
            unread_source = (
                key,
                f"{key} {value[:100]!r} is not an IP address, domain, URL or e-mail address",
            )
    if any(o.role == "source" for o in observables):
        return observables, invalid, None
    return observables, invalid, unread_source or (no_source, "the X-ARF report names no source")


def _xarf_rsit(xtype: str, category: str) -> tuple[str, str]:
    key = re.sub(r"[^a-z0-9]", "", xtype.lower())
    if key in XARF_TYPES:
        return XARF_TYPES[key]
    return XARF_CATEGORIES.get(category.strip().lower(), ("other", "undetermined"))


def _is_xarf_json(data: bytes) -> bool:
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start in (b"{", b"[") and bool(_XARF_KEYS.search(data[:65536]))


def _looks_like_json_part(part: Message) -> bool:
    ctype = _content_type(part)
    if ctype in ("application/json", "text/json", "text/plain"):
        return True
    try:
        name = part.get_filename() or ""
    except Exception:  # a malformed Content-Disposition
        return False
    return isinstance(name, str) and name.lower().endswith(".json")


def _report_fields(text: str) -> dict[str, object]:
    """An X-ARF 0.2 report: YAML, or JSON, or failing both, plain `Name: value` lines."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, dict):
            return {str(k): v for k, v in doc.items()}
    try:
        doc = yaml.safe_load(stripped)
    except Exception:  # any YAML error, or a constructor failure on a hostile document
        doc = None
    if isinstance(doc, dict):
        # Scalars only: a YAML alias bomb must not be walked.
        return {
            str(k): v
            for k, v in doc.items()
            if isinstance(v, str | int | float | bool | date) or v is None
        }
    return dict(parse_fields(text))


# ---------------------------------------------------------------------------------------------
# Values


def _ip(value: str, role: str = "source") -> Observable | None:
    text = value.strip().strip("[]")
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        # a link-local zone (fe80::1%eth0) names an interface of the reporter's own host,
        # not an address anyone else can reach: none, as the other readers hold
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    kind = ObservableKind.IPV4 if ip.version == 4 else ObservableKind.IPV6
    return Observable(kind, str(ip), role)


def _url(value: str, role: str = "source") -> Observable | None:
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https", "ftp", "ftps") or not host:
        return None
    if _ip(host) is None:
        try:
            host = validate.domain(host)
        except ValueError:
            return None
    elif ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    if parts.username is not None:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, parts.fragment))
    return Observable(ObservableKind.URL, url, role)


_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _email(value: str, role: str = "source") -> Observable | None:
    local, at, domain = value.strip().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    try:
        return Observable(ObservableKind.EMAIL, f"{local}@{validate.domain(domain)}", role)
    except ValueError:
        return None


def _observable(value: str, kind_hint: str, role: str = "source") -> Observable | None:
    """A value of a stated kind (ipv4, ip-address, uri, domain, email ...) or guessed."""
    value = value.strip()
    if not value:
        return None
    hint = kind_hint.strip().lower()
    if hint.startswith("ip"):
        return _ip(value, role)
    if hint in ("uri", "url"):
        return _url(value, role)
    if hint in ("email", "e-mail", "mail"):
        return _email(value, role)
    if hint in ("domain", "hostname", "fqdn"):
        try:
            return Observable(ObservableKind.DOMAIN, validate.domain(value), role)
        except ValueError:
            return None
    if "://" in value:
        return _url(value, role)
    if "@" in value:
        return _email(value, role)
    found = _ip(value, role)
    if found is not None:
        return found
    try:
        return Observable(ObservableKind.DOMAIN, validate.domain(value), role)
    except ValueError:
        return None


def _port(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 0 < value < 65536 else None


def _service_port(given: dict[str, int | None], has_destination: bool) -> tuple[int | None, str]:
    """(the event's port, the source port for extra) from the port fields present, read or
    None when unreadable. The event's port is the attacked or offered service's, as in the
    IntelMQ reader: it is part of the dedup key, and a client's source port changes with every
    connection. The source's port stands in only when no destination is named (a spam
    sender's SMTP port, an open service): there the source is the service."""
    source = given.get("source_port")
    if "destination_port" in given:
        # an unreadable destination port is still the service's: the client's does not
        # stand in for it
        port = given["destination_port"]
    elif "service_port" in given:
        port = given["service_port"]
    elif not has_destination:
        port = source
    else:
        port = None
    return port, str(source) if source is not None and source != port else ""


def _protocol(value: str) -> tuple[str | None, str | None]:
    """(transport, application) from a protocol field that may hold either."""
    name = value.strip().lower()
    if not name:
        return None, None
    if name in ("tcp", "udp", "icmp", "sctp"):
        return name, None
    return None, name


def _tlp_label(value: str) -> str | None:
    """A field that holds a TLP label: "amber", "TLP:AMBER", "white" ..."""
    try:
        return TLP.parse(value).value if value else None
    except ValueError:
        return None


def _tlp_in(*texts: str) -> str | None:
    """The strictest "TLP:AMBER" marking in free text (a subject, the top of a body): a mail
    marked CLEAR on top with a RED paragraph below is RED, as the STIX and MISP readers read
    several markings."""
    return strictest_tlp(
        _tlp_label(match.group(1)) for text in texts for match in _TLP_RE.finditer(text)
    )


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or (any(ip in net for net in _PRIVATE_NETS))
    )


def _received_source(received: list[str]) -> Observable | None:
    """The first external address in the from-clauses of a Received chain, top down."""
    for header in received:
        clause = re.split(r"\bby\b", header, maxsplit=1, flags=re.IGNORECASE)[0]
        if not re.match(r"\s*from\b", clause, re.IGNORECASE):
            continue
        for literal in re.findall(r"[\[(]\s*(?:ipv6:)?([0-9a-fA-F:.]{2,45})\s*[\])]", clause):
            observable = _ip(literal)
            if observable is not None:
                if not _internal(ipaddress.ip_address(observable.value)):
                    return observable
                break
    return None


def _rfc_date(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return _iso_date(text)
    return _utc(when)


def _iso_date(text: str) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        return None


def _any_date(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return _utc(datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        return _iso_date(value) or _rfc_date(value)
    return None


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    try:
        return utc(when)  # no zone (or -0000, "unknown" per RFC 5322): taken as UTC
    except ValueError:
        return None


def _unique(observables: Iterable[Observable]) -> list[Observable]:
    seen: set[tuple[str, str]] = set()
    out: list[Observable] = []
    for o in observables:
        if (o.kind, o.value) not in seen:
            seen.add((o.kind, o.value))
            out.append(o)
    return out


def _bounded(text: str) -> str:
    return text.encode("utf-8", "replace")[:MAX_RAW].decode("utf-8", "ignore")


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _clean(text: str) -> str:
    """Text fit to store: BytesParser carries raw bytes as surrogates, and a JSON escape or a
    UTF-7 text can carry lone surrogates of its own."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _unfold(value: str) -> str:
    return _clean(_NEWLINES.sub("", value)).strip()


# ---------------------------------------------------------------------------------------------
# MIME helpers, each safe on malformed input


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a broken Content-Type header: RFC 2045 says treat it as text/plain
        return "text/plain"


def _content_maintype(part: Message) -> str:
    return _content_type(part).partition("/")[0]


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    return value.lower() if isinstance(value, str) else None


def _charset(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:
        return None
    return charset if isinstance(charset, str) else None


def _payload(part: Message) -> list[Message] | str | None:
    """The payload as stored (parts, or the encoded text), safe on a hostile charset."""
    try:
        return part.get_payload()
    except Exception:  # the stdlib decodes 8-bit text with the charset parameter, which may
        # be no codec name at all ("utf-8\0"); fall back to the bytes as they are
        try:
            data = part.get_payload(decode=True)
        except Exception:
            return None
        return data.decode("ascii", "surrogateescape") if isinstance(data, bytes) else None


def _damaged_base64(part: Message, payload: object) -> bool:
    """Whether a base64 part holds characters or padding that base64 does not allow: the
    standard library then decodes what it can, silently."""
    encoding = (_header(part, "Content-Transfer-Encoding") or "").strip().lower()
    if encoding != "base64" or not isinstance(payload, str) or len(payload) > MAX_PART_BYTES:
        return False
    try:
        base64.b64decode("".join(payload.split()), validate=True)
    except ValueError:  # binascii.Error, or characters beyond ASCII
        return True
    return False


def _children(part: Message) -> list[Message]:
    payload = _payload(part)
    if not isinstance(payload, list):
        return []
    children = [p for p in payload if isinstance(p, Message)]
    if _content_maintype(part) == "message" and len(children) == 1:
        inner = children[0]
        # An attached message: its parts are numbered under it (IMAP "3.1"); a single-part
        # one is itself the only child.
        if _content_maintype(inner) == "multipart":
            return _children(inner) or [inner]
        return [inner]
    return children


def _inner_truncated(part: Message) -> bool:
    """Whether the multipart message attached in a message/* part is cut short: it is no node
    of its own (its parts are), so its defects are not seen on the walk."""
    if _content_maintype(part) != "message":
        return False
    payload = _payload(part)
    inner = payload[0] if isinstance(payload, list) and payload else None
    return isinstance(inner, Message) and any(
        isinstance(defect, _TRUNCATION_DEFECTS) for defect in getattr(inner, "defects", [])
    )


# multipart/report types that notify of a mail: a delivery status (RFC 3464, a bounce) and
# a disposition (RFC 8098, a read receipt)
MAIL_NOTICES = frozenset({"delivery-status", "disposition-notification"})


def report_type(msg: Message) -> str:
    """The report-type of a multipart/report mail ("feedback-report" for ARF), else ""."""
    if _content_type(msg) != "multipart/report":
        return ""
    return (_param(msg, "report-type") or "").strip()


def answers_a_mail(msg: Message) -> bool:
    """Whether a mail that is not ARF or X-ARF answers another mail instead of reporting
    anything: an auto-reply (RFC 3834 "auto-replied"), a delivery or read notice (a bounce).
    Machine-generated complaints ("auto-generated") and mail through a list (an abuse@
    address that is a list adds List-Id) are reports, and are read."""
    submitted = (_header(msg, "Auto-Submitted") or "").strip().lower()
    precedence = (_header(msg, "Precedence") or "").strip().lower()
    return (
        submitted.startswith("auto-replied")
        or bool(_header(msg, "X-Autoreply") or _header(msg, "X-Autorespond"))
        or precedence == "auto_reply"
        or report_type(msg) in MAIL_NOTICES
    )


def _pointer(path: str) -> str:
    return "/" if path == "/" else f"/part/{path}"


def parse_message(data: bytes) -> Message:
    """A message as this reader parses it (so that its part numbers hold)."""
    return BytesParser(policy=policy.default).parsebytes(data)


def part_at(message: Message, section: str) -> Message | None:
    """The part at IMAP section `section` ("2", "3.1") as this reader numbers the parts in
    its locations: an attached message's parts under it, a single-part body as "1"."""
    if section == "1" and not _children(message):
        return message
    node = message
    for number in section.split("."):
        children = _children(node)
        index = int(number) - 1
        if not 0 <= index < len(children):
            return None
        node = children[index]
    return node


def _headers(msg: Message, name: str) -> list[str]:
    wanted = name.lower()
    return [_unfold(v) for k, v in msg.raw_items() if k.lower() == wanted]


def _header(msg: Message, name: str) -> str | None:
    values = _headers(msg, name)
    if not values:
        return None
    try:
        return _clean(str(make_header(decode_header(values[0]))))  # RFC 2047 encoded words
    except Exception:  # unknown charset or a broken encoded word: keep it as written
        return values[0]


def _addresses(msg: Message, name: str) -> list[str]:
    try:
        pairs = getaddresses(_headers(msg, name))
    except Exception:
        return []
    return [address for _, address in pairs if "@" in address]


def _decode(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text and, when the bytes do not fit the declared charset, the problem to report."""
    text, problem = _decode_as(data, charset)
    return _clean(text), problem


def _decode_as(data: bytes, charset: str | None) -> tuple[str, str | None]:
    declared = (charset or "").strip().lower()
    if not declared:
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace"), None  # undeclared 8-bit: the usual guess
    try:
        codecs.lookup(declared)
    except (LookupError, ValueError):
        return (
            data.decode("utf-8", "replace"),
            f"unknown charset {declared[:40]!r}; read as UTF-8, undecodable bytes replaced",
        )
    try:
        return data.decode(declared), None
    except Exception:  # UnicodeDecodeError, or a codec that is not a text encoding
        pass
    if declared in ("us-ascii", "ascii", "iso-8859-1", "latin-1"):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("utf-8"), None  # mislabelled UTF-8, common and harmless
    return (
        data.decode("utf-8", "replace"),
        f"text is not valid {declared[:40]}; read as UTF-8, undecodable bytes replaced",
    )


_BLOCK_TAGS = "br p div tr td li h1 h2 h3 h4 h5 h6 table pre blockquote"


class _HTMLText(HTMLParser):
    """Text and link targets of an HTML part."""

    _BLOCK = frozenset(_BLOCK_TAGS.split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self._BLOCK:
            self.out.append("\n")
        if tag in ("a", "area"):
            for name, value in attrs:
                if name == "href" and value:
                    self.out.append(f" {value} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        if tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def _html_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser still trips on some broken markup: strip tags crudely
        return re.sub(r"<[^>]*>", " ", html)
    return "".join(parser.out)


# ---------------------------------------------------------------------------------------------
# Free text


def refang(text: str) -> str:
    """Undo the usual defanging: hxxp://, [.], (dot), [at], [:] ..."""
    for pattern, replacement in _REFANG:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class _Host:
    """A host a plain-text mail names: an address, a network or a domain, with what the mail
    names on it (URLs, and the addresses of mail of its domain), where the text read first
    names it, and the links about it (a blocklist's entry)."""

    name: str
    at: int
    observables: tuple[Observable, ...]
    references: tuple[str, ...] = ()


# After a host itself in its record (1): the network it was written in (2), then these.
_RANKS = {ObservableKind.URL: 3, ObservableKind.EMAIL: 4}


@dataclass
class _Found:
    """What a plain-text mail names: each value with the host it is on and the offset in the
    text read where it is named."""

    named: list[tuple[int, str, Observable]] = field(default_factory=list)
    private: dict[str, None] = field(default_factory=dict)  # ordered, fast on a long log
    references: dict[str, list[str]] = field(default_factory=dict)  # address: links about it

    def hosts(self, url_first: bool) -> list[_Host]:
        """One entry per host, in the order the mail first names them: each is an event of
        its own, whose owner is that host's. The host's own value comes first, as the
        event's primary value, unless the report is about a URL (a phishing page, a
        download): then its URLs do. An address of mail is no host: it goes with its
        domain when the mail names that host, else with the first host, as what the report
        says beside it (a contact named in passing makes no event); a mail that names
        addresses of mail alone is one entry of them."""
        named = sorted(self.named, key=lambda item: item[0])  # stable: a host before its net
        groups: dict[str, list[tuple[int, Observable]]] = {}
        mail: list[tuple[int, str, Observable]] = []
        for at, host, observable in named:
            if observable.kind == ObservableKind.EMAIL:
                mail.append((at, host, observable))
            else:
                groups.setdefault(host, []).append((at, observable))
        loose = [(at, o) for at, host, o in mail if host not in groups]
        for at, host, observable in mail:
            if host in groups:
                groups[host].append((at, observable))
        if loose:
            groups.setdefault(next(iter(groups), ""), []).extend(loose)

        def rank(host: str, item: tuple[int, Observable]) -> tuple[int, int]:
            at, observable = item
            if url_first and observable.kind == ObservableKind.URL:
                return 0, at
            if observable.value == host:
                return 1, at
            return _RANKS.get(observable.kind, 2), at  # 2: the network of an address

        return [
            _Host(
                name=host,
                at=items[0][0],
                observables=tuple(
                    _unique(o for _, o in sorted(items, key=lambda item: rank(host, item)))
                ),
                references=tuple(dict.fromkeys(self.references.get(host, ()))),
            )
            for host, items in groups.items()
        ]


def _extract(text: str, own_emails: set[str], own_domains: set[str], own_hosts: set[str]) -> _Found:
    """Observables (URLs, e-mail addresses, IP addresses and networks, domains), each with
    its host, and the private addresses set aside. `text` is refanged already."""
    found = _Found()

    def own(host: str) -> bool:
        return (
            host in own_hosts
            or any(host == d or host.endswith("." + d) for d in own_domains)
            or host in _NOISE_DOMAINS
        )

    def kept(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, value: str) -> bool:
        """Whether an address (or a network's first address) may name a host: not a
        loopback or other address of no host, not a transport hop of the mail itself, and
        not a private one, which is set aside."""
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
            return False
        if ip.is_multicast or str(ip) == "255.255.255.255" or value in own_hosts:
            return False
        if _internal(ip):
            found.private[value] = None
            return False
        return True

    spans: list[tuple[int, int]] = []
    urls: list[tuple[int, str, Observable]] = []
    for match in _URL_RE.finditer(text):
        spans.append(match.span())
        observable = _url(_trim_url(match.group(0)))
        if observable is None:
            continue
        host = _url_host(observable.value)
        ip = _ip(host)
        if ip is not None and not kept(ipaddress.ip_address(ip.value), observable.value):
            continue
        if not own(host):
            urls.append((match.start(), host, observable))
    text = _blank(text, spans)
    spans = []
    for match in _EMAIL_RE.finditer(text):
        spans.append(match.span())
        observable = _email(match.group(0).strip("."))
        if observable is not None and observable.value.lower() not in own_emails:
            host = observable.value.rpartition("@")[2]
            if not own(host):
                found.named.append((match.start(), host, observable))
    text = _blank(text, spans)
    # Networks before addresses: the address patterns stop short of a "/24".
    addresses: set[str] = set()
    for pattern in (_NET4_RE, _NET6_RE, _IPV4_RE, _IPV6_RE):
        spans = []
        for match in pattern.finditer(text):
            if pattern in (_NET4_RE, _NET6_RE):
                spans.append(match.span())
                # 198.51.100.5/24: the host, with its network
                host = ""
                for observable in _networks(match.group(0)):
                    network = ipaddress.ip_network(observable.value)
                    if kept(network.network_address, observable.value):
                        host = host or observable.value
                        found.named.append((match.start(), host, observable))
                        if network.num_addresses == 1:
                            addresses.add(observable.value)
                continue
            observable = _ip(match.group(0))
            if observable is not None:
                spans.append(match.span())
                if kept(ipaddress.ip_address(observable.value), observable.value):
                    found.named.append((match.start(), observable.value, observable))
                    addresses.add(observable.value)
        text = _blank(text, spans)
    for match in _DOMAIN_RE.finditer(text):
        candidate = match.group(0)
        tld = candidate.rpartition(".")[2]
        # "Hello.World" and "attack.Please" are sentences missing a space, not domains.
        if tld.lower() in _FILE_EXTENSIONS or (tld[:1].isupper() and not tld.isupper()):
            continue
        try:
            name = validate.domain(candidate)
        except ValueError:
            continue
        if not own(name):
            found.named.append((match.start(), name, Observable(ObservableKind.DOMAIN, name)))
    for at, host, url in urls:
        about = _about_an_address(url.value, addresses)
        if about is not None:
            found.references.setdefault(about, []).append(url.value)
        else:
            found.named.append((at, host, url))
    return found


def _url_host(url: str) -> str:
    """The host of a URL as its own value would read: an address in canonical form, else the
    (validated) domain."""
    host = urlsplit(url).hostname or ""
    ip = _ip(host)
    return ip.value if ip is not None else host


def _networks(text: str) -> list[Observable]:
    """A CIDR network written in free text: the network (as the STIX and MISP readers read
    one), and the address too when it has host bits set (198.51.100.5/24 names that host in
    its network). A /32 or /128 is the address alone; a network wider than any blocklist
    names (0.0.0.0/0 in a firewall rule) is nothing."""
    try:
        kind, value, is_network = ip_value(text)
    except ValueError:
        return []
    if not is_network:
        return [Observable(kind, value)]
    network = ipaddress.ip_network(value)
    if network.prefixlen < WIDEST_PREFIX[network.version]:
        return []
    net_kind = ObservableKind.IPV4_NET if network.version == 4 else ObservableKind.IPV6_NET
    found = [Observable(net_kind, network.compressed)]
    written = ipaddress.ip_address(text.partition("/")[0])  # ip_value read it already
    host = _ip(str(written))
    if host is not None and written != network.network_address:
        found.insert(0, host)
    return found


def _about_an_address(url: str, named: set[str]) -> str | None:
    """The address a URL is a page about, when the mail names it and the URL is on another
    host (a blocklist's or a lookup service's entry, https://blocklist.example/ip/203.0.113.77):
    a reference for the analyst, not a place the incident happens. None for any other."""
    parts = urlsplit(url)
    host = _ip(parts.hostname or "")
    rest = unquote(f"{parts.path}?{parts.query}#{parts.fragment}")
    for pattern in (_IPV4_RE, _IPV6_RE):
        for match in pattern.finditer(rest):
            ip = _ip(match.group(0))
            if ip is not None and ip.value in named and (host is None or host.value != ip.value):
                return ip.value
    return None


def _transport_hosts(received: list[str]) -> set[str]:
    """The addresses and host names the mail's own Received chain names: its sender's mail
    servers, the relays, ours. They carried the report; they are not what it reports."""
    hosts: set[str] = set()
    for header in received:
        literals = _RECEIVED_LITERAL.findall(header) + _IPV4_RE.findall(header)
        for literal in literals:
            ip = _ip(literal)
            if ip is not None:
                hosts.add(ip.value)
        for match in _DOMAIN_RE.finditer(header):
            with contextlib.suppress(ValueError):
                hosts.add(validate.domain(match.group(0)))
    return hosts


def _without_receivers(text: str) -> str:
    """The text without what mail headers pasted into it (a forwarded spam's, quoted or
    indented) say of the receiving side: the hosts that received it (a Received header from
    "by" on, and the whole of a hop sent from a host in a recipient's domain: the
    recipient's own relay), its recipients (To, Cc, Delivered-To ...), message identifiers,
    which read as addresses of mail, and the results of the receiver's checks
    (Authentication-Results, ARC, Received-SPF). They name the victim's or the reporter's
    servers and mailboxes. The sender's stay: From, Return-Path, and each other hop's
    from-clause, which names the host that handed the mail on (the host that received it
    before, in its "by", may be the sender's own server: it is named again there)."""
    lines = text.split("\n")
    pasted = _pasted_headers(lines)
    if not pasted:
        return text
    recipients: set[str] = set()  # the recipients' domains
    for name, segments in pasted:
        value = " ".join(lines[n][at:] for n, at in segments)
        if name in _HOP_HEADERS:
            value = " ".join(_FOR_RECIPIENT.findall(value))
        elif name not in _RECIPIENT_HEADERS:
            continue
        recipients.update(a.rpartition("@")[2].lower() for a in _EMAIL_RE.findall(value))

    def recipients_own(host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in recipients)

    for name, segments in pasted:
        whole = name not in _HOP_HEADERS
        if not whole:
            sender = _FROM_HOST.match(lines[segments[0][0]][segments[0][1] :])
            whole = sender is not None and recipients_own(sender.group(1))
        cut = False
        for n, at in segments:
            if not (whole or cut):
                by = _BY.search(lines[n], at)
                if by is None:
                    continue
                at, cut = by.start(), True
            lines[n] = lines[n][:at]
    return "\n".join(lines)


def _pasted_headers(lines: list[str]) -> list[tuple[str, list[tuple[int, int]]]]:
    """The pasted headers `_without_receivers` reads: (name, the (line, column) where each
    of its lines' value starts), a folded header's continuation lines included. Only a header
    block counts: a hop, or two header lines or more in a row. A report's own line that
    starts "To:" or "References:" is the report's text."""
    found: list[tuple[str, list[tuple[int, int]]]] = []
    block: list[tuple[str, list[tuple[int, int]]]] = []  # the block's headers read here
    lines_in_block = 0  # its header lines, read here or not
    current: list[tuple[int, int]] | None = None
    indent = 0

    def block_ends() -> None:
        nonlocal lines_in_block
        if lines_in_block >= 2 or any(name in _HOP_HEADERS for name, _ in block):
            found.extend(block)
        block.clear()
        lines_in_block = 0

    for number, line in enumerate(lines):
        quote = _QUOTE_MARKS.match(line)
        start = quote.end() if quote else 0
        body = line[start:].lstrip(" \t")
        depth = len(line) - start - len(body)
        if not body:
            current = None
            block_ends()
            continue
        if current is not None and depth > indent:
            current.append((number, start + depth))
            continue
        current = None
        header = _PASTED_HEADER.match(body)
        if header is None:
            block_ends()
            continue
        lines_in_block += 1
        name = header.group(1).lower()
        current = [(number, start + depth + header.end())]
        indent = depth
        if name in _HOP_HEADERS or name in _RECEIVER_HEADERS:
            block.append((name, current))
    block_ends()
    return found


def _quote_starts(line: str) -> bool:
    stripped = line.strip()
    if stripped.startswith(_QUOTE_OPENERS):
        return True
    return stripped.endswith(":") and bool(_ATTRIBUTION_END.search(stripped[-MAX_ATTRIBUTION:]))


def _without_signature(text: str) -> str:
    """The text without its signature: from a "-- " line (RFC 3676, 4.3) to the end, or to a
    quoted or forwarded message below it (a reply written above the quote). What the
    signature names (the reporter's site, phone, PGP key server) is not the incident."""
    kept: list[str] = []
    in_signature = False
    for line in _NEWLINES.split(text):
        # "--" alone is no delimiter: grep prints it between groups of a pasted log.
        if len(line) > 2 and line.rstrip(" \t\xa0") == "--":
            in_signature = True
            continue
        if in_signature and _quote_starts(line):
            in_signature = False
        if not in_signature:
            kept.append(line)
    return "\n".join(kept)


def _trim_url(url: str) -> str:
    url = url.rstrip(".,;:!?'\"")
    for close, open_ in ((")", "("), ("]", "["), (">", "<")):
        while url.endswith(close) and url.count(close) > url.count(open_):
            url = url[:-1].rstrip(".,;:!?'\"")
    return url


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace matched spans by spaces so that a later pattern does not match inside them."""
    if not spans:
        return text
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        pieces += [text[last:start], " " * (end - start)]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


__all__ = [
    "FEEDBACK_TYPES",
    "MAX_PART_BYTES",
    "ORIGINAL_TRUNCATED",
    "READER",
    "SUBJECT_RULES",
    "XARF_TYPES",
    "EmailReader",
    "FeedbackReport",
    "parse_feedback_report",
    "parse_fields",
    "read_xarf_json",
    "refang",
]
