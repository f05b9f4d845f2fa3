"""Spamhaus DROP lists (DROP, EDROP, DROPv6): networks hijacked or leased by spam and
cyber-crime operations, which no one should route or peer with.

One network per line, `1.4.0.0/17 ; SBL256893`, after comment lines starting with `;`; the
`; Last-Modified:` comment dates the list, and every network in it. Each network becomes an
indicator (RSIT abusive-content/spam, as IntelMQ classifies these lists) with its SBL
reference in `extra["blocklist"]`.
"""

from __future__ import annotations

import ipaddress
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
from concord.intake.records import EventRecord, Observable, ObservableKind, ReadError, utc

MARKER = b"spamhaus.org/drop"
FEED = "spamhaus-drop"
_LAST_MODIFIED = "last-modified:"


# No blocklist names networks wider than these: a wider one is a typing slip ("5.0.0.0/1"
# for "5.0.0.0/16") that would flag a good part of the Internet.
WIDEST_PREFIX = {4: 8, 6: 16}


def network_value(text: str) -> Observable:
    """A DROP entry as an observable: a network, or an address for a /32 or /128.

    An entry with host bits set (1.2.3.4/16) is refused rather than widened to its network:
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
