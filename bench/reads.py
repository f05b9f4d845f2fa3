"""Read benchmark: what analysts ask of a database of N reports by six states, and how fast.

Loads the reports of bench/correlate.py (the same generator and bulk load) into a fresh
database (SQLite in a temporary directory by default, or --database URL), runs one
correlation pass with campaigns, then times the reads behind the pages and the API, each
as the centre and as one state's national body sees the data: the event search (newest
first, by value, by a day, by class, by state, deep in the list), the campaign list (its
first page and one deep in it), the cross-state indicators, the alerts and the month's
network report. Prints one JSON line: p50 and p95 in milliseconds per read and viewer
(the report once, in seconds), and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any


def timed(read: Callable[[], Any], runs: int) -> dict[str, float]:
    took = []
    for _ in range(runs):
        t0 = time.perf_counter()
        read()
        took.append((time.perf_counter() - t0) * 1000)
    took.sort()
    p95 = took[min(len(took) - 1, round(0.95 * (len(took) - 1)))]
    return {"p50": round(statistics.median(took), 1), "p95": round(p95, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each read")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from correlate import STATES, T0, load_in_child
    from scratch import scratch_database
    from sqlalchemy import func, select

    from concord.access import policy
    from concord.db import session_scope
    from concord.events import correlation
    from concord.events import service as events
    from concord.events.model import Event
    from concord.orgs import service as orgs
    from concord.reports import service as reports

    with scratch_database(args.database) as scratch:
        with session_scope() as s:
            centre = orgs.create_org(s, None, orgs.OrgInput("ccc", "centre", "Centre"))
            bodies = [
                orgs.create_org(
                    s,
                    None,
                    orgs.OrgInput(f"{c.lower()}-cert", "national-body", f"{c} CERT", country=c),
                )
                for c in STATES
            ]
            viewers = {
                "centre": policy.organisation_view(centre.id, centre.kind, None),
                "state": policy.organisation_view(
                    bodies[0].id, bodies[0].kind, bodies[0].parent_id
                ),
            }
            org_ids = [b.id for b in bodies]
        n_events, _indicators = load_in_child(scratch.url, org_ids, args.reports, args.seed)
        with session_scope() as s:
            correlation.correlate(s, campaigns=True)

        with session_scope(readonly=True) as s:
            top = s.scalar(select(func.max(Event.id))) or 0
            some_value = s.scalar(select(Event.primary_value).where(Event.id == top // 2))
        day = T0 + timedelta(days=3)
        searches: dict[str, events.EventQuery] = {
            "events_newest": events.EventQuery(newest_first=True),
            "events_by_value": events.EventQuery(value=some_value, newest_first=True),
            "events_one_day": events.EventQuery(
                since=day, until=day + timedelta(days=1), newest_first=True
            ),
            "events_by_class": events.EventQuery(rsit_class="malicious-code", newest_first=True),
            "events_by_state": events.EventQuery(country=STATES[-1], newest_first=True),
            "events_deep": events.EventQuery(after_id=top * 9 // 10),
        }
        figures: dict[str, Any] = {}
        for who, viewer in viewers.items():
            with session_scope(readonly=True) as s:
                for name, query in searches.items():
                    figures[f"{name}_{who}"] = timed(
                        lambda q=query, v=viewer: events.search(s, v, q), args.runs
                    )
                figures[f"campaigns_first_{who}"] = timed(
                    lambda v=viewer: correlation.campaign_page(s, v, 0, 50), args.runs
                )
                figures[f"campaigns_deep_{who}"] = timed(
                    lambda v=viewer: correlation.campaign_page(s, v, top // 2, 50), args.runs
                )
                figures[f"indicators_{who}"] = timed(
                    lambda v=viewer: correlation.cross_state_indicators(s, v, 0, 100), args.runs
                )
                figures[f"alerts_{who}"] = timed(
                    lambda v=viewer: correlation.list_alerts(s, v, 0, 50, newest_first=True),
                    args.runs,
                )
        with session_scope(readonly=True) as s:
            t0 = time.perf_counter()
            reports.build_report(s, None, T0.strftime("%Y-%m"), "network")
            report_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "reports": args.reports,
        "events": n_events,
        **figures,
        "report_network_s": round(report_s, 2),
        "peak_rss_mb": round(peak, 1),
        "database": scratch.database,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
