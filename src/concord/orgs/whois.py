"""In-memory lookup index: "who owns this IP address, domain or AS number?"

Built from the assets table in one streaming query and cached per process; every asset
write bumps a revision counter, so each process rebuilds its index only after a change.
Longest prefix and longest domain suffix win.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytricia
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.orgs.model import Asset, AssetKind


@dataclass(frozen=True)
class Match:
    query: str
    kind: str  # "ip", "domain" or "asn"
    matched: str  # the prefix, domain or ASN that matched
    org_ids: tuple[int, ...]


class LookupIndex:
    def __init__(self) -> None:
        self._prefixes = pytricia.PyTricia(128)
        self._domains: dict[str, tuple[int, ...]] = {}
        self._asns: dict[int, tuple[int, ...]] = {}
        self.size = 0

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str, str]]) -> LookupIndex:
        """rows: (org_id, kind, canonical value)."""
        index = cls()
        for org_id, kind, value in rows:
            index.add(org_id, kind, value)
        return index

    def add(self, org_id: int, kind: str, value: str) -> None:
        self.size += 1
        if kind in (AssetKind.IPV4_PREFIX, AssetKind.IPV6_PREFIX):
            key = value
            if kind == AssetKind.IPV4_PREFIX:
                # One tree for both families: IPv4 lives in its IPv4-mapped IPv6 space.
                net = ipaddress.ip_network(value)
                key = f"::ffff:{net.network_address}/{96 + net.prefixlen}"
            current = self._prefixes.get(key) if self._prefixes.has_key(key) else ()
            if org_id not in current:
                self._prefixes[key] = (*current, org_id)
        elif kind in (AssetKind.DOMAIN, AssetKind.EMAIL_DOMAIN):
            current = self._domains.get(value, ())
            if org_id not in current:
                self._domains[value] = (*current, org_id)
        elif kind == AssetKind.ASN:
            number = int(value.removeprefix("AS"))
            current = self._asns.get(number, ())
            if org_id not in current:
                self._asns[number] = (*current, org_id)

    def lookup_ip(self, address: str) -> Match | None:
        key = f"::ffff:{address}" if "." in address else address
        try:
            matched = self._prefixes.get_key(key)
        except (ValueError, KeyError):
            return None
        if matched is None:
            return None
        shown = matched
        if matched.startswith("::ffff:") and "." in matched:
            base, length = matched[7:].split("/")
            shown = f"{base}/{int(length) - 96}"
        return Match(address, "ip", shown, self._prefixes[matched])

    def lookup_domain(self, name: str) -> Match | None:
        labels = name.lower().rstrip(".").split(".")
        domains = self._domains
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            found = domains.get(candidate)
            if found is not None:
                return Match(name, "domain", candidate, found)
        return None

    def lookup_asn(self, number: int) -> Match | None:
        found = self._asns.get(number)
        return Match(f"AS{number}", "asn", f"AS{number}", found) if found else None

    def lookup(self, query: str) -> Match | None:
        text = query.strip()
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            return self.lookup_ip(str(ip))
        upper = text.upper()
        if upper.startswith("AS") and upper[2:].isdigit():
            return self.lookup_asn(int(upper[2:]))
        if "@" in text:
            text = text.rsplit("@", 1)[1]
        return self.lookup_domain(text)


_lock = threading.Lock()
_cached: dict[str, tuple[int, LookupIndex]] = {}

_INDEXED = (
    AssetKind.IPV4_PREFIX.value,
    AssetKind.IPV6_PREFIX.value,
    AssetKind.DOMAIN.value,
    AssetKind.EMAIL_DOMAIN.value,
    AssetKind.ASN.value,
)


def load_index(session: Session) -> LookupIndex:
    rows = session.execute(
        select(Asset.org_id, Asset.kind, Asset.value)
        .where(Asset.kind.in_(_INDEXED))
        .execution_options(yield_per=10_000)
    )
    return LookupIndex.build((r[0], r[1], r[2]) for r in rows)


def current_index(session: Session) -> LookupIndex:
    """The process-wide index for this database, rebuilt only when assets changed."""
    from concord.orgs.service import asset_revision

    bind: Any = session.get_bind()
    key = str(bind.url)
    revision = asset_revision(session)
    with _lock:
        cached = _cached.get(key)
        if cached is not None and cached[0] == revision:
            return cached[1]
    index = load_index(session)
    with _lock:
        _cached[key] = (revision, index)
    return index


def forget_indexes() -> None:
    with _lock:
        _cached.clear()
