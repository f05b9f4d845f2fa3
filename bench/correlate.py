"""Correlation benchmark: N indicator reports by six states, then `correlate()` and campaigns.

Builds a fresh database (SQLite in a temporary directory by default, or --database URL; on
PostgreSQL a temporary schema that is dropped afterwards), loads the reports straight into
events, event_observables, indicators and sightings with the same bulk SQL the intake uses
(the intake itself is measured by bench/ingest.py), then times one full correlation pass
and one campaign computation. Prints one JSON line.

The reports: each state's national body reports events of one to three observables. A
quarter of the events belong to planted campaigns seen by two to four states; the rest are
each state's own, with a few coincidences across states; well-known values (public
resolvers, top sites) sprinkled into campaign events would merge all campaigns into one if
the warning lists did not stop them. `campaigns` should come out close to the planted
campaigns reported by two or more states, plus small groups from coincidences.

`peak_rss_mb` is that of the process that correlates; the reports are generated and loaded
in a child process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STATES = ("KZ", "UZ", "KG", "TJ", "AM", "BY")
COMMON = ("ipv4:8.8.8.8", "ipv4:1.1.1.1", "domain:www.google.com", "domain:microsoft.com")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


_addresses: dict[tuple[str, int], int] = {}


def value(pool: str, n: int) -> tuple[str, str]:
    """A deterministic observable: kind and value, from a pool name and a number; distinct
    (pool, n) give distinct values, so only the planted sharing links events."""
    kind = ("ipv4", "domain", "url", "sha256")[n % 4]
    if kind == "ipv4":
        # Addresses in 45.0.0.0/8 in order of first use: unique and reproducible.
        address = 0x2D000001 + _addresses.setdefault((pool, n), len(_addresses))
        return kind, ".".join(str(address >> s & 255) for s in (24, 16, 8, 0))
    if kind == "domain":
        return kind, f"{pool}-{n}.bad-{n % 97}.net"
    if kind == "url":
        return kind, f"http://{pool}-{n}.drop-{n % 89}.info/payload/{n}.bin"
    return kind, f"{pool}{n:x}".encode().hex().ljust(64, "0")[:64]


def reports(total: int, seed: int) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    """(state index, minute, observables) per event until `total` observables are reported.

    A quarter of the events belong to planted campaigns (one per 200 reports): each has
    two to eight indicators of its own and two to four states that report it; the rest is
    each state's own background, with some coincidences (a value two states happen to see)
    and well-known values that would join every campaign if no warning list stopped them.
    """
    rng = random.Random(seed)
    planted = []
    for c in range(max(total // 200, 1)):
        first = rng.randrange(4)  # so that campaigns differ in their mix of kinds
        planted.append(
            (
                [value(f"c{c}x", k) for k in range(first, first + rng.randint(2, 8))],
                rng.sample(range(len(STATES)), rng.randint(2, 4)),
            )
        )
    coincidences = max(total // 10, 100)
    done = 0
    local = [0] * len(STATES)
    while done < total:
        want = min(rng.choice((1, 1, 2, 3)), total - done)
        obs: list[tuple[str, str]] = []
        if rng.random() < 0.25:
            indicators, states = rng.choice(planted)
            state = rng.choice(states)
            obs = rng.sample(indicators, min(want, len(indicators)))
            if rng.random() < 0.05:
                obs.append(tuple(rng.choice(COMMON).split(":", 1)))  # type: ignore[arg-type]
        else:
            state = rng.randrange(len(STATES))
            for _ in range(want):
                if rng.random() < 0.03:
                    obs.append(value("coincidence", rng.randrange(coincidences)))
                else:
                    local[state] += 1
                    obs.append(value(f"s{state}", local[state]))
        obs = list(dict.fromkeys(obs))
        done += len(obs)
        yield state, rng.randrange(60 * 24 * 30), obs


def load(url: str, org_ids: list[int], total: int, seed: int, out: Any) -> None:
    """Bulk-load the reports (in a child process, so that the parent's peak RSS is that of
    correlation alone); sends (events, indicators) through `out`."""
    from sqlalchemy import select

    from concord.bulk import Bulk
    from concord.db import session_scope
    from concord.events.model import Event, Indicator
    from concord.intake.prepare import EVENT_COLUMNS

    events: list[tuple[Any, ...]] = []
    per_event: list[tuple[int, list[tuple[str, str]]]] = []
    seen: dict[tuple[str, str], list[datetime]] = {}  # observable -> [first, last]
    sightings: dict[tuple[tuple[str, str], int], list[Any]] = {}  # (obs, state) -> n, first, last
    with session_scope(url) as session:
        bulk = Bulk(session)
        ts = bulk.timestamp
        for number, (state, minute, obs) in enumerate(reports(total, seed), start=1):
            when = T0 + timedelta(minutes=minute)
            row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
            row.update(
                time=ts(when),
                last_seen=ts(when),
                count=1,
                rsit_class="malicious-code",
                rsit_type="c2-server",
                nature="indicator",
                feed="bench",
                description="",
                attack_techniques="",
                primary_value=obs[0][1],
                country=STATES[state],
                dedup_key=number,
                submission_id=1,
                raw_location=f"line {number}",
                extra="{}",
                tlp="green",
                origin_org_id=org_ids[state],
                share_constituents=False,
            )
            events.append(tuple(row[c] for c in EVENT_COLUMNS))
            per_event.append((state, obs))
            for o in obs:
                span = seen.setdefault(o, [when, when])
                span[0], span[1] = min(span[0], when), max(span[1], when)
                sight = sightings.setdefault((o, state), [0, when, when])
                sight[0] += 1
                sight[1], sight[2] = min(sight[1], when), max(sight[2], when)
        bulk.insert("events", EVENT_COLUMNS, events)
        del events
        bulk.insert(
            "indicators",
            ("kind", "value", "first_seen", "last_seen", "cross_state"),
            [(k, v, ts(a), ts(b), False) for (k, v), (a, b) in seen.items()],
        )
        ids = {
            (k, v): i
            for i, k, v in session.execute(select(Indicator.id, Indicator.kind, Indicator.value))
        }
        # A fresh table: ids follow insertion order.
        event_ids = session.scalars(select(Event.id).order_by(Event.id)).all()
        bulk.insert(
            "event_observables",
            ("event_id", "indicator_id", "role"),
            [
                (event_id, ids[o], "source")
                for event_id, (_state, obs) in zip(event_ids, per_event, strict=True)
                for o in obs
            ],
        )
        bulk.insert(
            "sightings",
            ("indicator_id", "org_id", "country", "count", "first_seen", "last_seen"),
            [
                (ids[o], org_ids[state], STATES[state], n, ts(a), ts(b))
                for (o, state), (n, a, b) in sightings.items()
            ],
        )
    out.send((len(per_event), len(ids)))


def load_in_child(url: str, org_ids: list[int], total: int, seed: int) -> tuple[int, int]:
    """`load` in a child process (this one's peak memory stays that of what it measures);
    (events, indicators) loaded."""
    from concord.db import dispose_engines

    dispose_engines()  # the child opens its own connections
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=load, args=(url, org_ids, total, seed, send))
    child.start()
    send.close()  # so that a failed child ends recv() instead of leaving it waiting
    try:
        loaded: tuple[int, int] = receive.recv()
    except EOFError:
        raise SystemExit("loading the reports failed") from None
    finally:
        child.join()
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from scratch import scratch_database

    from concord.db import session_scope
    from concord.events import correlation
    from concord.orgs import service as orgs

    with scratch_database(args.database) as scratch:
        url = scratch.url
        with session_scope() as s:
            org_ids = [
                orgs.create_org(
                    s,
                    None,
                    orgs.OrgInput(f"{c.lower()}-cert", "national-body", f"{c} CERT", country=c),
                ).id
                for c in STATES
            ]
        t0 = time.perf_counter()
        n_events, n_indicators = load_in_child(url, org_ids, args.reports, args.seed)
        load_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        with session_scope() as s:
            result = correlation.correlate(s, campaigns=False)
        correlate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with session_scope() as s:
            campaigns = correlation.update_campaigns(s)
        campaigns_s = time.perf_counter() - t0
        # A second pass with nothing new: what the five-minute job costs in steady state.
        t0 = time.perf_counter()
        with session_scope() as s:
            correlation.correlate(s, campaigns=True)
        again_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "reports": args.reports,
        "events": n_events,
        "indicators": n_indicators,
        "cross_state": result.cross_state,
        "warning_listed": result.warning_listed,
        "alerts": result.alerts,
        "campaigns": campaigns.campaigns,
        "campaign_events": campaigns.events,
        "load_s": round(load_s, 2),
        "correlate_s": round(correlate_s, 2),
        "campaigns_s": round(campaigns_s, 2),
        "steady_pass_s": round(again_s, 2),
        "peak_rss_mb": round(peak, 1),
        "database": scratch.database,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
