"""Spamhaus DROP lists (DROP, EDROP, DROPv6): networks hijacked or leased by spam and
cyber-crime operations, which no one should route or peer with.

One network per line, `1.4.0.0/17 ; SBL256893`, after comment lines starting with `;`; the
`; Last-Modified:` comment dates the list, and every network in it. Each network becomes an
indicator (RSIT abusive-content/spam, as IntelMQ classifies these lists) with its SBL
reference in `extra["blocklist"]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import BinaryIO

from concord.errors import FaultLocation
from concord.intake.readers import Reader
from concord.intake.readers.csvfeed import (
    bad_utf8,
    clip_raw,
    is_cut,
    stream_lines,
)
from concord.intake.readers.values import network_value
from concord.intake.records import EventRecord, ReadError, utc

MARKER = b"spamhaus.org/drop"
FEED = "spamhaus-drop"
_LAST_MODIFIED = "last-modified:"


def _list_time(comment: str) -> datetime | None:
    text = comment.lstrip(";").strip()
    if not text.lower().startswith(_LAST_MODIFIED):
        return None
    try:
        return utc(parsedate_to_datetime(text[len(_LAST_MODIFIED) :].strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def read_drop(lines: Iterator[str], source: str) -> Iterator[EventRecord | ReadError]:
    """Records and errors from the lines of a DROP list."""
    listed: datetime | None = None
    cut = False
    number = 0
    for chunk in lines:
        if cut:  # the rest of an over-long line, reported with its head
            cut = is_cut(chunk)
            continue
        number += 1
        if is_cut(chunk):
            cut = True
            yield ReadError(FaultLocation(source, number), "line too long, skipped")
            continue
        line = chunk.strip()
        if not line:
            continue
        if line.startswith(";"):
            listed = _list_time(line) or listed
            continue
        if reason := bad_utf8(line):
            yield ReadError(FaultLocation(source, number), f"the line holds {reason}")
            continue
        entry, _, reference = line.partition(";")
        try:
            observable = network_value(entry.strip())
        except ValueError as exc:
            yield ReadError(FaultLocation(source, number), str(exc))
            continue
        reference = reference.strip()
        yield EventRecord(
            time=listed,
            rsit_class="abusive-content",
            rsit_type="spam",
            observables=(observable,),
            location=FaultLocation(source, number),
            raw=clip_raw(chunk),
            feed=FEED,
            nature="indicator",
            extra={"blocklist": reference[:100]} if reference else {},
        )


class SpamhausDropReader(Reader):
    name = "spamhaus-drop"
    description = "Spamhaus DROP, EDROP or DROPv6 list (network ; SBL reference)"

    def sniff(self, head: bytes, filename: str) -> bool:
        return head.lstrip().startswith(b";") and MARKER in head[:2048].lower()

    def read(self, stream: BinaryIO, source: str) -> Iterator[EventRecord | ReadError]:
        yield from read_drop(stream_lines(stream), source)


READER = SpamhausDropReader()
