"""A mail taken in as the feeds it carries, on every channel (SMTP, the API, the intake page,
`concord ingest`).

A mail whose attachments are feeds (a Shadowserver CSV, a STIX bundle, a MISP event, plain
or in a .zip or .gz) is taken in as those files, each a submission of its own; its text is
then a cover letter, not a report. An attachment that cannot be opened (a damaged or
encrypted archive, a possible compression bomb) is refused and named on the mail's receipt.
Other mail is read as an abuse report (ARF, X-ARF or plain text). Mail that answers a mail
(a bounce, a delivery or read notice, an auto-reply) reports nothing.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import BinaryIO, cast

from concord.errors import FaultLocation
from concord.intake import registry
from concord.intake.readers import Reader
from concord.intake.readers.email import MAIL_NOTICES, answers_a_mail, report_type
from concord.intake.records import ReadError, unnamed
from concord.intake.sources import Refused, open_file

log = logging.getLogger("concord.intake.mail")

NOTICE_NOT_A_REPORT = "a delivery notice is not a report: not stored"
AUTO_REPLY_NOT_A_REPORT = "an automatic reply is not a report: not stored"

# The empty line that ends a mail's header block (RFC 5322 2.1), in either line ending.
_HEADERS_END = re.compile(rb"\r?\n\r?\n")


def headers_of(data: bytes) -> EmailMessage:
    """The mail's header block alone, parsed as a parse of the whole mail reads it: all
    that `not_a_report` and `is_a_report` look at, for the cost of the headers, however large
    the body. The parser ends the headers at the first empty line, or before it (at a line
    that is no header), so the bytes up to that line hold every header it would read."""
    end = _HEADERS_END.search(data)
    return _parsed_headers(data if end is None else data[: end.end()])


def _parsed_headers(head: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(head, headersonly=True)
    return cast(EmailMessage, parsed)  # the default policy makes it an EmailMessage


HEADER_PEEK = 1 << 20  # bytes looked into for the header block before parsing a mail whole


def headers_in(stream: BinaryIO) -> EmailMessage | None:
    """`headers_of` the mail in `stream` when its header block ends within its first
    HEADER_PEEK bytes, else None (the caller parses it whole); the stream is left at its
    start either way."""
    data = stream.read(HEADER_PEEK)
    stream.seek(0)
    end = _HEADERS_END.search(data)
    return None if end is None else _parsed_headers(data[: end.end()])


def is_a_report(message: EmailMessage) -> bool:
    """Whether the mail is itself the report (ARF, X-ARF), read whole by the e-mail reader."""
    return message.get_content_type() == "multipart/report" or bool(message.get("X-ARF"))


def not_a_report(message: EmailMessage) -> str | None:
    """Why a mail that answers another mail reports nothing and is not stored; None for any
    other. An ARF or X-ARF report is read whatever its headers say, as the e-mail reader
    reads it."""
    kind = report_type(message)
    if kind in MAIL_NOTICES:
        return NOTICE_NOT_A_REPORT
    if kind == "feedback-report" or message.get("X-ARF"):
        return None
    if answers_a_mail(message):
        return AUTO_REPLY_NOT_A_REPORT
    return None


@dataclass(frozen=True)
class Attached:
    """A file found in a mail's attachments, with its reader, to be taken in on its own."""

    stream: BinaryIO
    name: str  # as sent: "report.zip!scan_rdp.csv"
    reader: Reader


def feeds_in(
    message: EmailMessage, take_in: Callable[[Attached], object], whole: int
) -> list[ReadError]:
    """Hand each attachment of `message` that is a feed (or each feed in an attached archive,
    which may unpack to `whole` bytes) to `take_in`, and return an error for each that could
    not be opened, located by its name as sent. Attachments that are neither (a letter, a
    picture, a mail) are left alone."""
    attached = [
        (part.get_filename() or "", part.get_payload(decode=True))
        for part in message.walk()
        if part.get_filename() and not part.is_multipart()
    ]
    refused: list[ReadError] = []
    with tempfile.TemporaryDirectory(prefix="concord-mail-") as folder:
        for number, (name, data) in enumerate(attached):
            if not isinstance(data, bytes) or not data.strip():
                continue
            shown, stored = attachment_names(number, name)
            path = Path(folder) / stored
            path.write_bytes(data)
            for found in open_file(path, stored, whole):
                named = _as_sent(found.filename, stored, shown)
                if isinstance(found, Refused):
                    # the location names the file as sent: the reason need not repeat the
                    # name it was stored under
                    reason = unnamed(found.reason, found.filename)
                    log.info("attachment %s refused: %s", named, reason)
                    refused.append(ReadError(FaultLocation(source=named), reason))
                    continue
                with found.stream:
                    reader = _feed_reader(found.stream, named)
                    if reader is not None:
                        take_in(Attached(found.stream, named, reader))
    return refused


def _feed_reader(stream: BinaryIO, named: str) -> Reader | None:
    """The reader of an attached file when it is a feed; None for a letter, a picture, a
    mail."""
    head = stream.read(registry.SNIFF_BYTES)
    stream.seek(0)
    try:
        reader = registry.choose(head, named, None)
    except registry.UnsupportedFormat:
        return None
    return None if reader.name == "email" else reader


def attachment_names(number: int, name: str) -> tuple[str, str]:
    """An attachment's name as sent (cleaned, bounded), and the name it is stored under: one
    of ours, as a sender's may be too long or hold a NUL, with its suffix, by which
    archives are told."""
    given = Path(name.replace("\x00", "")).name.lstrip(".") or "attachment"
    suffix = Path(given).suffix[:10]
    shown = given[: 200 - len(suffix)].removesuffix(suffix) + suffix
    return shown, f"{number}{suffix}"


def _as_sent(filename: str, stored: str, shown: str) -> str:
    """A file found in a stored attachment, named after the attachment as sent: "0.zip!
    scan.csv" is "report.zip!scan.csv", and "0" unpacked from "0.gz" is "report.csv"."""
    if filename.startswith(stored):
        return shown + filename[len(stored) :]
    return shown.removesuffix(Path(shown).suffix)
