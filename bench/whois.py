"""Benchmark of the whois lookup index: build time, lookups per second, latency, memory.

    .venv/bin/python bench/whois.py [--prefixes N] [--domains N] [--lookups N] [--sqlite]

Builds N prefixes (IPv4 /16-/28 and about one in ten IPv6 /32-/64) and N domains into a
`LookupIndex` the way the application does (rows of org id, kind, canonical value), then
times random lookups through `LookupIndex.lookup`, the entry point the API and the UI call:
addresses inside and outside the known prefixes, sub-domains of known domains and unknown
names. With --sqlite the same assets are also written to a migrated SQLite database and the
index is loaded from it with `load_index`, as a process does after an import.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import platform
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from concord.orgs.model import AssetKind
from concord.orgs.whois import LookupIndex

ORGS = 5_000
WORDS = [
    "alpha",
    "bank",
    "steppe",
    "silk",
    "telecom",
    "mail",
    "post",
    "gov",
    "energy",
    "rail",
    "port",
    "water",
    "health",
    "city",
    "school",
    "market",
    "trade",
    "air",
    "grid",
    "data",
    "cloud",
    "net",
    "host",
    "web",
]
TLDS = ("kz", "uz", "kg", "tj", "am", "by", "ru", "org", "com", "net", "gov.kz", "com.uz")


def make_prefixes(rng: random.Random, count: int) -> list[tuple[int, str, str]]:
    rows: dict[str, tuple[int, str, str]] = {}
    while len(rows) < count:
        org = rng.randrange(1, ORGS + 1)
        if rng.random() < 0.1:
            length = rng.randrange(32, 65)
            base = (0x2001 << 112) | rng.getrandbits(112)
            net: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv6Network(
                (base >> (128 - length) << (128 - length), length)
            )
            kind = AssetKind.IPV6_PREFIX.value
        else:
            length = rng.randrange(16, 29)
            base = rng.randrange(1 << 24, 224 << 24)  # 1.0.0.0 - 223.255.255.255
            net = ipaddress.IPv4Network((base >> (32 - length) << (32 - length), length))
            kind = AssetKind.IPV4_PREFIX.value
        rows.setdefault(str(net), (org, kind, str(net)))
    return list(rows.values())


def make_domains(rng: random.Random, count: int) -> list[tuple[int, str, str]]:
    rows: dict[str, tuple[int, str, str]] = {}
    while len(rows) < count:
        name = f"{rng.choice(WORDS)}-{rng.getrandbits(24):x}.{rng.choice(TLDS)}"
        if rng.random() < 0.2:
            name = f"{rng.choice(WORDS)}.{name}"
        kind = AssetKind.EMAIL_DOMAIN.value if rng.random() < 0.2 else AssetKind.DOMAIN.value
        rows.setdefault(name, (rng.randrange(1, ORGS + 1), kind, name))
    return list(rows.values())


def ip_queries(rng: random.Random, prefixes: Sequence[tuple[int, str, str]], n: int) -> list[str]:
    nets = [ipaddress.ip_network(value) for _, _, value in prefixes]
    queries = []
    for i in range(n):
        if i % 2 == 0:  # inside a known prefix
            net = rng.choice(nets)
            address = net[rng.randrange(net.num_addresses)]
        elif rng.random() < 0.9:  # anywhere in IPv4, mostly outside
            address = ipaddress.IPv4Address(rng.getrandbits(32))
        else:
            address = ipaddress.IPv6Address((0x2001 << 112) | rng.getrandbits(112))
        queries.append(str(address))
    return queries


def domain_queries(
    rng: random.Random, domains: Sequence[tuple[int, str, str]], n: int
) -> list[str]:
    queries = []
    for i in range(n):
        if i % 2 == 0:  # the domain, a sub-domain of it, or a mailbox at it
            known = rng.choice(domains)[2]
            shape = rng.randrange(3)
            if shape == 0:
                queries.append(known)
            elif shape == 1:
                queries.append(f"{rng.choice(WORDS)}.{rng.choice(WORDS)}.{known}")
            else:
                queries.append(f"{rng.choice(WORDS)}@{known}")
        else:  # unknown
            queries.append(
                f"www.{rng.choice(WORDS)}-{rng.getrandbits(40):x}.example.{rng.choice(TLDS)}"
            )
    return queries


def throughput(fn: Callable[[str], object], queries: Sequence[str]) -> tuple[float, int]:
    hits = 0
    start = time.perf_counter()
    for q in queries:
        if fn(q) is not None:
            hits += 1
    return len(queries) / (time.perf_counter() - start), hits


def latency(fn: Callable[[str], object], queries: Sequence[str]) -> tuple[float, float]:
    clock = time.perf_counter_ns
    samples = []
    for q in queries:
        t0 = clock()
        fn(q)
        samples.append(clock() - t0)
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000
    return round(p50, 2), round(p99, 2)


def sqlite_build(rows: list[tuple[int, str, str]]) -> dict[str, float]:
    """Write the assets to a migrated SQLite database, then time load_index."""
    from sqlalchemy import insert

    from concord import db
    from concord.migrate import upgrade
    from concord.orgs.model import Asset, Organization
    from concord.orgs.readers import pad
    from concord.orgs.whois import load_index

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        now = db.utcnow()
        session = db.session_factory(url)()
        try:
            session.execute(
                insert(Organization),
                [
                    {"id": i, "slug": f"owner-{i}", "kind": "owner", "name_en": f"Owner {i}"}
                    for i in range(1, ORGS + 1)
                ],
            )
            assets = []
            for org, kind, value in rows:
                start = end = None
                if kind in (AssetKind.IPV4_PREFIX, AssetKind.IPV6_PREFIX):
                    net = ipaddress.ip_network(value)
                    start = pad(int(net.network_address))
                    end = pad(int(net.broadcast_address))
                assets.append(
                    {
                        "org_id": org,
                        "kind": kind,
                        "value": value,
                        "version": "",
                        "description": "",
                        "range_start": start,
                        "range_end": end,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            t0 = time.perf_counter()
            for i in range(0, len(assets), 10_000):
                session.execute(insert(Asset.__table__), assets[i : i + 10_000])
            session.commit()
            insert_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            index = load_index(session)
            load_s = time.perf_counter() - t0
            assert index.size == len(rows), (index.size, len(rows))
        finally:
            session.close()
            db.dispose_engines()
    return {"sqlite_insert_s": round(insert_s, 3), "sqlite_index_build_s": round(load_s, 3)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20_261_204)
    parser.add_argument(
        "--sqlite", action="store_true", help="also load the index from a SQLite database"
    )
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    prefixes = make_prefixes(rng, args.prefixes)
    domains = make_domains(rng, args.domains)
    asns = [
        (rng.randrange(1, ORGS + 1), AssetKind.ASN.value, f"AS{64_512 + i}") for i in range(1000)
    ]
    rows = prefixes + domains + asns
    rng.shuffle(rows)

    gc.collect()
    t0 = time.perf_counter()
    index = LookupIndex.build(rows)
    build_s = time.perf_counter() - t0

    ips = ip_queries(rng, prefixes, args.lookups)
    names = domain_queries(rng, domains, args.lookups)
    as_numbers = [f"AS{64_000 + rng.randrange(2_000)}" for _ in range(args.lookups)]
    lookup = index.lookup
    ip_rate, ip_hits = throughput(lookup, ips)
    domain_rate, domain_hits = throughput(lookup, names)
    asn_rate, _ = throughput(lookup, as_numbers)
    sample = max(1, min(args.lookups, 50_000))
    ip_p50, ip_p99 = latency(lookup, ips[:sample])
    domain_p50, domain_p99 = latency(lookup, names[:sample])
    asn_p50, asn_p99 = latency(lookup, as_numbers[:sample])

    result: dict[str, object] = {
        "prefixes": len(prefixes),
        "ipv6_prefixes": sum(1 for _, kind, _ in prefixes if kind == AssetKind.IPV6_PREFIX),
        "domains": len(domains),
        "asns": len(asns),
        "lookups": args.lookups,
        "index_build_s": round(build_s, 3),
        "ip_lookups_per_s": round(ip_rate),
        "domain_lookups_per_s": round(domain_rate),
        "asn_lookups_per_s": round(asn_rate),
        "ip_hit_ratio": round(ip_hits / len(ips), 3),
        "domain_hit_ratio": round(domain_hits / len(names), 3),
        "ip_p50_us": ip_p50,
        "ip_p99_us": ip_p99,
        "domain_p50_us": domain_p50,
        "domain_p99_us": domain_p99,
        "asn_p50_us": asn_p50,
        "asn_p99_us": asn_p99,
    }
    if args.sqlite:
        result.update(sqlite_build(rows))
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_rss_mb"] = round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    result["python"] = platform.python_version()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
