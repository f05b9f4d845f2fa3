"""In-memory lookup index: "who owns this IP address, domain or AS number?"

Built from the assets table in one streaming query and cached per process; every asset
write bumps a revision counter, so each process rebuilds its index only after a change.
Longest prefix and longest domain suffix win.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytricia
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.orgs import validate
from concord.orgs.model import Asset, AssetKind


@dataclass(frozen=True)
class Match:
    query: str
    kind: str  # "ip", "domain" or "asn"
    matched: str  # the prefix, domain or ASN that matched
    org_ids: tuple[int, ...]


# A dotted-quad IPv4 address, each octet 0-255 without leading zeros (as ipaddress reads them).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_IPV4_PREFIX_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/(?:3[0-2]|[12]?[0-9])")


class LookupIndex:
    """Longest-prefix match on two trees (IPv4, IPv6), longest domain suffix, exact ASN.

    Each tree maps a prefix to (prefix text, owner ids), so one tree walk answers a query.
    Rows that cannot be indexed (a value no validator would accept today) are skipped and
    counted in `skipped`, so one bad row never takes the lookup down for everyone.
    """

    def __init__(self) -> None:
        self._v4 = pytricia.PyTricia(32)
        self._v6 = pytricia.PyTricia(128)
        self._domains: dict[str, tuple[int, ...]] = {}
        self._asns: dict[int, tuple[int, ...]] = {}
        self.size = 0
        self.skipped = 0

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str, str]]) -> LookupIndex:
        """rows: (org_id, kind, canonical value)."""
        index = cls()
        add = index.add
        for org_id, kind, value in rows:
            add(org_id, kind, value)
        return index

    def add(self, org_id: int, kind: str, value: str) -> None:
        if kind in (AssetKind.IPV4_PREFIX, AssetKind.IPV6_PREFIX):
            if _IPV4_PREFIX_RE.fullmatch(value):  # the common case, five times faster
                tree, key = self._v4, value
            else:
                try:
                    net = ipaddress.ip_network(value)
                except ValueError:
                    net = None
                if net is None or "%" in value:  # pytricia cannot hold a zone index
                    self.skipped += 1
                    return
                tree = self._v4 if net.version == 4 else self._v6
                key = str(net)
            current = tree[key][1] if tree.has_key(key) else ()
            if org_id not in current:
                tree[key] = (key, (*current, org_id))
        elif kind in (AssetKind.DOMAIN, AssetKind.EMAIL_DOMAIN):
            current = self._domains.get(value, ())
            if org_id not in current:
                self._domains[value] = (*current, org_id)
        elif kind == AssetKind.ASN:
            digits = value.removeprefix("AS")
            if not (digits.isascii() and digits.isdigit()):
                self.skipped += 1
                return
            number = int(digits)
            current = self._asns.get(number, ())
            if org_id not in current:
                self._asns[number] = (*current, org_id)
        else:
            return
        self.size += 1

    def lookup_ip(self, address: str) -> Match | None:
        """The most specific prefix holding an IPv4 or IPv6 address; None for no match or
        text that is not an address."""
        if _IPV4_RE.fullmatch(address):
            found = self._v4.get(address)
            return Match(address, "ip", found[0], found[1]) if found is not None else None
        try:
            ip = ipaddress.IPv6Address(address)
        except ValueError:
            return None
        return self._lookup_v6(ip)

    def _lookup_v6(self, ip: ipaddress.IPv6Address) -> Match | None:
        mapped = ip.ipv4_mapped
        if mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 address 192.0.2.1
            address = str(mapped)
            found = self._v4.get(address)
        else:
            address = str(ip)
            found = self._v6.get(ip.packed)  # by its bytes: a zone index (%eth0) plays no part
        return Match(address, "ip", found[0], found[1]) if found is not None else None

    def lookup_domain(self, name: str) -> Match | None:
        """The longest known domain that is `name` or a parent of it."""
        candidate = name.strip().rstrip(".").lower()
        if not candidate.isascii():
            try:
                candidate = validate.to_ascii(candidate)
            except UnicodeError:
                return None
        domains = self._domains
        while True:
            found = domains.get(candidate)
            if found is not None:
                return Match(name, "domain", candidate, found)
            dot = candidate.find(".")
            if dot < 0:
                return None
            candidate = candidate[dot + 1 :]

    def lookup_asn(self, number: int) -> Match | None:
        found = self._asns.get(number)
        return Match(f"AS{number}", "asn", f"AS{number}", found) if found else None

    def lookup(self, query: str) -> Match | None:
        """An IP address, an AS number (AS64500), a domain or an e-mail address."""
        text = query.strip()
        if _IPV4_RE.fullmatch(text):
            found = self._v4.get(text)
            return Match(text, "ip", found[0], found[1]) if found is not None else None
        if ":" in text:
            try:
                ip = ipaddress.IPv6Address(text)
            except ValueError:
                pass
            else:
                return self._lookup_v6(ip)
        digits = text[2:]
        if text[:2].upper() == "AS" and digits.isascii() and digits.isdigit():
            return self.lookup_asn(int(digits))
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
