"""What every intake reader produces: normalized records and read errors.

Readers are pure: bytes (or a binary stream) in, these values out; no database, no network.
Storage, deduplication, enrichment and correlation happen after them, in the services.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from concord.db import as_utc as utc  # noqa: F401 (the readers' name for it)
from concord.errors import FaultLocation


class ObservableKind(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    DOMAIN = "domain"
    URL = "url"
    EMAIL = "email"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    ASN = "asn"
    # A network wider than one address, in CIDR notation (1.4.0.0/17): blocklists such as
    # Spamhaus DROP name networks. It correlates with the same network exactly.
    IPV4_NET = "ipv4-net"
    IPV6_NET = "ipv6-net"


# Kinds that say where a thing lives, not what was seen: thousands of unrelated events share
# an AS. Beside another observable one is kept with the event (its extra fields), not as an
# observable; a record that names nothing else is about it, its observable. Either way it
# never correlates: two states naming one AS does not join their reports.
CONTEXT_KINDS = frozenset({ObservableKind.ASN.value})


# The kinds as a reader names them ("domain" and "ipv4-net" are the data's words): translated
# through the catalogue where shown
KIND_LABELS: dict[str, str] = {
    ObservableKind.IPV4: "IPv4 address",
    ObservableKind.IPV6: "IPv6 address",
    ObservableKind.IPV4_NET: "IPv4 network",
    ObservableKind.IPV6_NET: "IPv6 network",
    ObservableKind.DOMAIN: "domain",
    ObservableKind.URL: "URL",
    ObservableKind.EMAIL: "e-mail address",
    ObservableKind.MD5: "MD5",
    ObservableKind.SHA1: "SHA-1",
    ObservableKind.SHA256: "SHA-256",
    ObservableKind.SHA512: "SHA-512",
    ObservableKind.ASN: "AS number",
}


@dataclass(frozen=True)
class Observable:
    """One observable value, in canonical form (lower-case domain, compressed IPv6, ...)."""

    kind: ObservableKind
    value: str
    # The role the value plays in the event, e.g. "source", "destination", "c2", "target".
    role: str = "source"


@dataclass(frozen=True)
class EventRecord:
    """One normalized observation: an event or an indicator reported by a source.

    `raw` keeps the exact source text of the record (a CSV row, a JSON object, the message
    part), bounded in size, so that an analyst can always see what was reported.
    """

    time: datetime | None  # timezone-aware UTC; None when the source gives none
    rsit_class: str
    rsit_type: str
    observables: tuple[Observable, ...]
    location: FaultLocation
    raw: str
    feed: str  # the source family, e.g. "shadowserver:scan_rdp", "stix", "misp", "arf"
    # What the record is: "event" (something observed happening) or "indicator" (a
    # pattern/value to watch for, e.g. a STIX indicator or a MISP attribute with to_ids).
    nature: str = "event"
    port: int | None = None
    protocol: str | None = None  # transport: tcp, udp, icmp
    application: str | None = None  # application protocol: http, rdp, ssh, smtp ...
    tlp: str | None = None  # the TLP the record itself carries (MISP tag, STIX marking)
    confidence: int | None = None  # 0-100
    description: str = ""
    attack_techniques: tuple[str, ...] = ()  # MITRE ATT&CK ids, e.g. "T1566.001"
    extra: dict[str, str] = field(default_factory=dict)
    # The record's own identity where its format gives one ("misp:<attribute uuid>",
    # "stix:<object id>"): the same record in another file is not counted twice.
    identity: str = ""
    # How many times the record says it was seen (a STIX sighting's count, an observed-data's
    # number_observed): its event's and its indicators' sightings count that many.
    times: int = 1


@dataclass(frozen=True)
class ReadError:
    location: FaultLocation
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {**self.location.as_dict(), "reason": self.reason}


@dataclass(frozen=True)
class Skipped:
    """A record read whole that names nothing intake takes in (a MISP comment or file name):
    not a fault, but counted on the receipt so that every record of a file is accounted for."""

    location: FaultLocation


# What a reader yields.
ReadItem = EventRecord | ReadError | Skipped


MAX_RAW = 4096  # bytes of source text kept per record


def unnamed(reason: str, name: str) -> str:
    """A refusal's reason without the file's name that starts it: where the file is named
    beside the reason (a receipt's `source`, a mail's part), it need not be said twice."""
    return reason.removeprefix(f"{name}: ")
