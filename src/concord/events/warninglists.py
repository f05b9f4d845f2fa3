"""MISP warning lists: values every state sees without sharing any incident.

Public resolvers, cloud and CDN ranges, top sites, hashes of empty files: an indicator like
8.8.8.8 reported by two states says nothing about a common attack, so correlation skips
values found here. The lists are MISP's own (CC0-1.0, shipped in `warninglists/`), matched
as MISP matches them, by the list's `type`:

* ``string``: the whole value, exactly (compared in lower case);
* ``cidr``: an IP address inside a listed network (or equal to a listed address);
* ``hostname``: the host or any parent domain of it is listed (for a URL, its host);
* ``substring``: a listed string occurs in the value;
* ``regex``: a listed regular expression (PHP-style ``/.../flags``) matches.

A list applies to an indicator kind when its `matching_attributes` name one of the MISP
attribute types of that kind (a list without them applies to every kind).

Two deliberate departures from MISP, both so that correlation keeps real indicators:

* **User subdomains are not the platform.** Top-site lists hold platforms whose subdomains
  belong to their customers (tranco10k lists github.io, duckdns.org, amazonaws.com ...); in
  MISP every subdomain of them would match. Here a host below such a platform matches only
  if it is listed itself. The platforms are the entries of the `dynamic-dns` list plus
  `PLATFORM_SUFFIXES`, a short list of our own of well-known user-content hosts. The
  `dynamic-dns` list is therefore used as that boundary only: a name under a dynamic DNS
  provider is someone's own name, often an attacker's, not a false positive.
* **A URL with a path is not its site.** A URL matches a hostname or string list only when
  it names the site itself (no path beyond "/", no query): a phishing form on a big
  platform, reported by two states, is exactly what correlation should find.

The shipped `tranco10k` list covers top domains (google.com, microsoft.com ...), so no list
of our own is needed for them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from urllib.parse import urlsplit

import pytricia

# Lists that describe what a value is rather than declaring it harmless (see above).
BOUNDARY_LISTS = frozenset({"dynamic-dns"})

# Our own, deliberately short: hosting platforms whose subdomains are their users' sites.
PLATFORM_SUFFIXES = frozenset(
    {
        "000webhostapp.com",
        "amazonaws.com",
        "appspot.com",
        "azureedge.net",
        "azurewebsites.net",
        "blogspot.com",
        "cloudfront.net",
        "firebaseapp.com",
        "github.io",
        "glitch.me",
        "googleusercontent.com",
        "herokuapp.com",
        "myshopify.com",
        "netlify.app",
        "ngrok-free.app",
        "ngrok.io",
        "onrender.com",
        "pages.dev",
        "r2.dev",
        "sharepoint.com",
        "trycloudflare.com",
        "vercel.app",
        "web.app",
        "webflow.io",
        "weebly.com",
        "windows.net",
        "wixsite.com",
        "wordpress.com",
        "workers.dev",
    }
)

# The MISP attribute types each Concord observable kind corresponds to.
KIND_TYPES: dict[str, frozenset[str]] = {
    "ipv4": frozenset({"ip-src", "ip-dst"}),
    "ipv6": frozenset({"ip-src", "ip-dst"}),
    # a network reported, as MISP's ip-src and ip-dst take one too
    "ipv4-net": frozenset({"ip-src", "ip-dst"}),
    "ipv6-net": frozenset({"ip-src", "ip-dst"}),
    "domain": frozenset({"domain", "hostname"}),
    "url": frozenset({"url", "uri"}),
    "email": frozenset({"email", "email-src", "email-dst"}),
    "md5": frozenset({"md5"}),
    "sha1": frozenset({"sha1"}),
    "sha256": frozenset({"sha256"}),
    "sha512": frozenset({"sha512"}),
    "asn": frozenset({"AS"}),
}
TYPES = ("string", "cidr", "hostname", "substring", "regex")


@dataclass(frozen=True)
class WarningList:
    id: str  # the list's directory name in MISP, e.g. "public-dns-v4"; what match() returns
    name: str
    description: str
    version: int
    type: str
    matching_attributes: frozenset[str]

    def applies_to(self, kind: str) -> bool:
        return not self.matching_attributes or bool(
            self.matching_attributes & KIND_TYPES.get(kind, frozenset())
        )


@dataclass
class _KindIndex:
    """Everything one indicator kind is matched against, merged across lists."""

    exact: dict[str, str] = field(default_factory=dict)  # lower-case value -> list id
    hosts: dict[str, str] = field(default_factory=dict)  # host or parent domain -> list id
    substrings: list[tuple[str, str]] = field(default_factory=list)
    patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    cidr: bool = False


@dataclass
class _Index:
    lists: dict[str, WarningList]
    kinds: dict[str, _KindIndex]
    v4: pytricia.PyTricia
    v6: pytricia.PyTricia
    platforms: frozenset[str]


def _read_lists() -> Iterable[tuple[str, dict]]:  # type: ignore[type-arg]
    folder = resources.files("concord.events").joinpath("warninglists")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield entry.name.removesuffix(".json"), json.loads(entry.read_text("utf-8"))


def _php_regex(text: str) -> re.Pattern[str]:
    """MISP stores PHP (PCRE) patterns with delimiters and flags: /pattern/i."""
    if len(text) > 2 and not text[0].isalnum() and text[0] != "\\":
        end = text.rfind(text[0])
        if end > 0:
            flags = re.IGNORECASE if "i" in text[end + 1 :] else 0
            return re.compile(text[1:end], flags)
    return re.compile(text)


def _add_cidr(index: _Index, entry: str, list_id: str) -> bool:
    try:
        network = ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return False
    tree = index.v4 if network.version == 4 else index.v6
    # The first list (in file-name order) keeps a network listed twice; more specific
    # networks from other lists still win by longest-prefix match.
    if not tree.has_key(str(network)):
        tree.insert(str(network), list_id)
    return True


@lru_cache(maxsize=1)
def _index() -> _Index:
    index = _Index(
        lists={},
        kinds={k: _KindIndex() for k in KIND_TYPES},
        v4=pytricia.PyTricia(32),
        v6=pytricia.PyTricia(128),
        platforms=PLATFORM_SUFFIXES,
    )
    platforms = set(PLATFORM_SUFFIXES)
    for list_id, data in _read_lists():
        kind_of_list = data.get("type", "string")
        if kind_of_list not in TYPES:
            continue  # a type MISP added later; better skipped than misread
        wl = WarningList(
            list_id,
            str(data.get("name", list_id)),
            str(data.get("description", "")),
            int(data.get("version", 0)),
            kind_of_list,
            frozenset(data.get("matching_attributes") or ()),
        )
        index.lists[list_id] = wl
        values = [str(v) for v in data.get("list", []) if str(v).strip()]
        if list_id in BOUNDARY_LISTS:
            platforms.update(v.strip().strip(".").lower() for v in values)
            continue
        kinds = [index.kinds[k] for k in KIND_TYPES if wl.applies_to(k)]
        if kind_of_list == "cidr":
            leftovers = [v for v in values if not _add_cidr(index, v, list_id)]
            for k in kinds:
                k.cidr = True
                for v in leftovers:  # MISP falls back to exact comparison
                    k.exact.setdefault(v.strip().lower(), list_id)
        elif kind_of_list == "string":
            for k in kinds:
                for v in values:
                    k.exact.setdefault(v.strip().lower(), list_id)
        elif kind_of_list == "hostname":
            for k in kinds:
                for v in values:
                    k.hosts.setdefault(v.strip().strip(".").lower(), list_id)
        elif kind_of_list == "substring":
            for k in kinds:
                k.substrings.extend((v.lower(), list_id) for v in values)
        else:
            patterns = []
            for v in values:
                try:
                    patterns.append((_php_regex(v), list_id))
                except re.error:
                    continue
            for k in kinds:
                k.patterns.extend(patterns)
    if not index.lists:
        # Correlating without them would flag every public resolver: fail loudly instead.
        raise RuntimeError("no MISP warning lists found in concord/events/warninglists/")
    index.platforms = frozenset(platforms)
    return index


def lists() -> dict[str, WarningList]:
    """The loaded lists by id (`match` returns these ids)."""
    return dict(_index().lists)


def _host_of_url(value: str) -> tuple[str | None, bool]:
    """(host, whether the URL names just the site)."""
    try:
        parts = urlsplit(value if "://" in value else "//" + value)
        host = parts.hostname
    except ValueError:
        return None, False
    bare = parts.path in ("", "/") and not parts.query and not parts.fragment
    return host, bare


_ADDRESS_KINDS = frozenset({"ipv4", "ipv6", "ipv4-net", "ipv6-net"})


def _within(index: _Index, text: str) -> str | None:
    """The list whose most specific range holds the address or the network `text`."""
    tree = index.v6 if ":" in text else index.v4
    try:
        return tree.get(text)
    except ValueError:  # not an address or a network
        return None


def _match_host(index: _Index, k: _KindIndex, host: str) -> str | None:
    host = host.rstrip(".").lower()
    if not host or not k.hosts:
        return None
    labels = host.split(".")
    suffixes = [".".join(labels[i:]) for i in range(len(labels))]
    if any(s in index.platforms for s in suffixes[1:]):
        return k.hosts.get(host)  # a user's site on a platform: only if listed itself
    for s in suffixes:
        found = k.hosts.get(s)
        if found is not None:
            return found
    return None


def match(kind: str, value: str) -> str | None:
    """The id of the first warning list `value` (an indicator of `kind`) is on, or None."""
    index = _index()
    k = index.kinds.get(str(kind))
    if k is None or not value:
        return None
    text = value.strip().lower()
    if k.cidr and kind in _ADDRESS_KINDS:
        # an address, or a network, within a listed range (a CDN's, a resolver's)
        found = _within(index, text)
        if found is not None:
            return found
    found = k.exact.get(text)
    if found is not None:
        return found
    if kind == "url":
        host, bare = _host_of_url(text)
        if bare and host:
            found = k.exact.get(host) or _match_host(index, k, host)
            if found is None and index.kinds["ipv4"].cidr:
                found = _within(index, host.strip("[]"))  # a site named by its address
    elif kind == "domain":
        found = _match_host(index, k, text)
    if found is not None:
        return found
    for needle, list_id in k.substrings:
        if needle in text:
            return list_id
    for pattern, list_id in k.patterns:
        if pattern.search(value):
            return list_id
    return None
