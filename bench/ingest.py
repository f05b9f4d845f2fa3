"""Intake benchmark: a Shadowserver-like scan report through the `concord ingest` code path.

Generates N rows (about 20% duplicates), ingests them into a fresh database (SQLite in a
temporary directory by default, or --database URL; on PostgreSQL a temporary schema that is
dropped afterwards) and prints one JSON line: events_per_s, dedup_ratio, peak_rss_mb, ...

Every row is validated and normalized, classified (RSIT), its owner looked up in the
whois index, checked against stored state for duplicates, stored with a reference to its
raw row, its indicators and sightings indexed, and committed in batches. A file this size
is read and prepared in a second process while the first writes: `peak_rss_mb` is the sum
of both processes' peaks (also printed apart).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import threading
import time
from pathlib import Path

HEADER = (
    '"timestamp","ip","port","hostname","tag","handshake","asn","geo","region","city",'
    '"naics","sic","sector"\n'
)


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    unique = int(rows * 0.8)
    with path.open("w", newline="") as fh:
        fh.write(HEADER)
        for i in range(rows):
            n = i if i < unique else rng.randrange(unique)  # ~20% repeat an earlier row
            a, b, c = 192 + (n >> 24 & 7), (n >> 16) & 255, (n >> 8) & 255
            ip = f"{a}.{b}.{c}.{n & 255}"
            minute = n % 60
            fh.write(
                f'"2026-11-30 10:{minute:02d}:00","{ip}",3389,"host{n}.example","rdp",,'
                f'{64496 + n % 16},"KZ","ALMATY","ALMATY",517311,0,"Communications"\n'
            )


class DescendantPeaks:
    """Peak resident memory of this process's descendants (the process preparing rows is a
    fork-server child, which getrusage does not count), sampled from /proc."""

    def __init__(self) -> None:
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for pid in self._descendants():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        self.peaks[pid] = max(self.peaks.get(pid, 0), kb)

    @staticmethod
    def _descendants() -> list[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found, frontier = [], [os.getpid()]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found.extend(children)
            frontier.extend(children)
        return found

    @property
    def largest_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    parser.add_argument("--batch", type=int, default=10_000, help="records per transaction")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from scratch import scratch_database

    with scratch_database(args.database) as scratch:
        result = run(scratch.work, args.rows, args.batch)
        result["database"] = scratch.database
    sys.stdout.write(json.dumps(result) + "\n")


def run(work: Path, rows: int, batch: int) -> dict[str, object]:
    from concord.db import session_factory, session_scope
    from concord.errors import FaultLocation
    from concord.intake.service import Source, ingest
    from concord.orgs import readers
    from concord.orgs import service as orgs

    with session_scope() as s:
        orgs.create_org(s, None, orgs.OrgInput("kz-cert", "national-body", "KZ CERT", country="KZ"))
        for k in range(200):  # owners holding some of the scanned space
            slug = f"owner-{k}"
            orgs.create_org(s, None, orgs.OrgInput(slug, "owner", f"Owner {k}", parent="kz-cert"))
            prefix = f"{192 + (k & 7)}.{k}.0.0/16"
            orgs.import_assets(
                s, None, slug, [readers.normalise("", prefix, "", "", FaultLocation())]
            )

    csv_path = work / "scan_rdp.csv"
    t0 = time.perf_counter()
    generate(csv_path, rows)
    gen_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    with DescendantPeaks() as children, csv_path.open("rb") as fh:
        receipt = ingest(
            session_factory(),
            None,
            Source(fh, csv_path.name),
            fmt="shadowserver",
            as_org="kz-cert",
            channel="cli",
            batch_size=batch,
        )
    elapsed = time.perf_counter() - t0
    writer_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = writer_peak + children.largest_mb  # the writer and the process preparing rows
    total = receipt.accepted + receipt.duplicates + receipt.rejected
    return {
        "rows": rows,
        "events_per_s": round(total / elapsed),
        "accepted": receipt.accepted,
        "duplicates": receipt.duplicates,
        "rejected": receipt.rejected,
        "dedup_ratio": round(receipt.duplicates / max(total, 1), 3),
        "seconds": round(elapsed, 2),
        "generate_s": round(gen_s, 2),
        "peak_rss_mb": round(peak, 1),
        "writer_peak_rss_mb": round(writer_peak, 1),
        "preparer_peak_rss_mb": round(children.largest_mb, 1),
        "batch": batch,
    }


if __name__ == "__main__":
    main()
