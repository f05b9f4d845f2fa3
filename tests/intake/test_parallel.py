"""Large submissions are prepared in a child process: same result as in one process."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from concord.access.model import TLP
from concord.db import session_factory
from concord.events.model import Event, Indicator, Sighting
from concord.intake import parallel, service
from concord.intake.prepare import DedupPolicy, Plan
from concord.intake.registry import choose
from concord.orgs.model import Organization
from tests.conftest import shared_file
from tests.intake.test_service import give_prefix, scan_csv, totals

SAMPLE = "feeds/shadowserver/scan_rdp.csv"


def ingest(principal, data: bytes, name: str, **kw):  # type: ignore[no-untyped-def]
    return service.ingest(
        session_factory(), principal, service.Source(io.BytesIO(data), name), **kw
    )


def events_of(session, country: str) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    session.rollback()
    rows = session.execute(
        select(
            Event.time,
            Event.last_seen,
            Event.count,
            Event.rsit_type,
            Event.primary_value,
            Event.port,
            Event.owner_org_id,
            Event.raw_location,
            Event.extra,
        )
        .where(Event.country == country)
        .order_by(Event.raw_location)
    )
    return [tuple(r) for r in rows]


def test_child_process_stores_what_one_process_stores(session, network) -> None:  # type: ignore[no-untyped-def]
    give_prefix(session, "kz-bank", "198.51.100.0/24")
    give_prefix(session, "uz-telecom", "198.51.100.0/25")
    rows = [("2026-11-30 10:00:00", f"198.51.100.{i % 150}", 3389) for i in range(400)]
    rows.insert(7, ("not a time", "198.51.100.9", 3389))
    data = scan_csv(rows)
    one = ingest(network["kz-analyst"], data, "scan_rdp.csv", batch_size=50)
    two = ingest(network["uz-analyst"], data, "scan_rdp.csv", batch_size=50, parallel_from=0)
    assert (one.accepted, one.duplicates, one.rejected) == (150, 250, 1)
    assert (two.accepted, two.duplicates, two.rejected) == (150, 250, 1)
    assert two.errors == one.errors and two.errors[0]["line"] == 9
    kz, uz = events_of(session, "KZ"), events_of(session, "UZ")
    assert len(kz) == 150
    # the same rows, each owned by whoever holds the most specific prefix in the index
    assert [r[:6] + r[7:] for r in kz] == [r[:6] + r[7:] for r in uz]
    owners = {r[4]: r[6] for r in uz}
    ids = dict(session.execute(select(Organization.slug, Organization.id)).all())
    assert owners["198.51.100.7"] == ids["uz-telecom"]
    assert owners["198.51.100.140"] == ids["kz-bank"]
    states = set(
        session.scalars(
            select(Sighting.country)
            .join(Indicator, Indicator.id == Sighting.indicator_id)
            .where(Indicator.value == "198.51.100.7")
        )
    )
    assert states == {"KZ", "UZ"}


def test_real_shadowserver_report_through_the_child(session, network) -> None:  # type: ignore[no-untyped-def]
    data = shared_file(SAMPLE).read_bytes()
    seen: list[int] = []
    one = ingest(network["kz-analyst"], data, "scan_rdp.csv")
    two = ingest(network["uz-analyst"], data, "scan_rdp.csv", parallel_from=0, progress=seen.append)
    assert two.accepted == one.accepted > 0
    assert (two.duplicates, two.rejected, two.errors) == (one.duplicates, one.rejected, one.errors)
    assert sum(seen) == two.accepted + two.duplicates + two.rejected
    assert [r[:6] for r in events_of(session, "UZ")] == [r[:6] for r in events_of(session, "KZ")]


def test_a_failing_child_is_reported_not_hung(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = Plan(
        submission_id=1,
        created_at=datetime(2026, 11, 30, tzinfo=UTC),
        org_id=1,
        country="KZ",
        user_id=None,
        tlp=TLP.AMBER,
        dedup=DedupPolicy(),
        dialect="sqlite",
    )
    data = scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 3389)])
    reader = choose(data, "scan_rdp.csv", None)
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'gone' / 'x.db'}?mode=ro"
    batches = parallel.ChildBatches(plan, missing, reader, io.BytesIO(data), "scan_rdp.csv", 0, 100)
    try:
        with pytest.raises(parallel.IntakeWorkerFailed) as info:
            list(batches)
    finally:
        batches.close()
    assert "intake worker" in str(info.value)
    assert not batches.child.is_alive()


def test_without_a_second_process_intake_prepares_in_its_own(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def no_fork(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("no room for the fork server's socket")

    monkeypatch.setattr(parallel, "ChildBatches", no_fork)
    data = scan_csv([("2026-11-30 10:00:00", f"192.0.2.{i}", 3389) for i in range(50)])
    receipt = ingest(network["kz-analyst"], data, "scan_rdp.csv", parallel_from=0)
    assert (receipt.accepted, receipt.rejected) == (50, 0)


def test_two_submissions_at_once_fold_into_the_same_events(session, network) -> None:  # type: ignore[no-untyped-def]
    import threading

    def rows(start: int, end: int, minute: int) -> bytes:
        return scan_csv(
            [
                (f"2026-11-30 10:{minute:02d}:00", f"146.185.{i >> 8}.{i & 255}", 3389)
                for i in range(start, end)
            ]
        )

    files = [rows(0, 600, 0), rows(300, 900, 30)]  # 300 observations in both
    receipts: list[object] = []
    failures: list[BaseException] = []

    def submit(data: bytes) -> None:
        try:
            receipts.append(ingest(network["kz-analyst"], data, "scan_rdp.csv", batch_size=20))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=submit, args=(data,)) for data in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == [] and len(receipts) == 2
    assert totals(session) == (900, 1200)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _fork_server(pid: int) -> int | None:
    for child in _children(pid):
        try:
            if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


def _handles_sigint(pid: int) -> bool:
    """Whether Python's handler of SIGINT is installed: a SIGINT would raise there."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & 1 << (signal.SIGINT - 1))


def _about_to_start(pid: int, moment: str) -> bool:
    """Whether the process `pid` is where a SIGINT used to print a traceback: the fork
    server importing what it preloads, or the child it forked setting out."""
    server = _fork_server(pid)
    if server is None:
        return False
    if moment == "fork server":
        try:
            importing = "sqlalchemy" in Path(f"/proc/{server}/maps").read_text()
        except OSError:
            return False
        return importing and _handles_sigint(server)
    return any(_handles_sigint(child) for child in _children(server))


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="needs /proc to follow the processes",
)
def test_ctrl_c_while_the_second_process_starts_prints_no_traceback(network, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C reaches the whole process group: the fork server while it imports, the child
    while it starts. Neither may print a traceback; the command says it was interrupted."""
    report = tmp_path / "scan_rdp.csv"
    report.write_bytes(
        scan_csv([("2026-11-30 10:00:00", f"192.0.{i >> 8}.{i & 255}", 3389) for i in range(2000)])
    )
    settings = {**os.environ, "CONCORD_INTAKE_PARALLEL_BYTES": "1"}
    caught = []
    for moment in ("fork server", "child"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "concord", "ingest", str(report), "--as", "kz-cert"],
            env=settings,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a group of its own, as a terminal gives a command
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _about_to_start(proc.pid, moment):
                # the child: into the imports it makes first (the fork server's own take long)
                time.sleep(0.05 if moment == "child" else 0)
                caught.append(moment)
                break
            time.sleep(0.001)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        _, said = proc.communicate(timeout=60)
        assert "Traceback" not in said, f"at the {moment}'s start:\n{said}"
        if moment in caught:  # else the command ran to its end before the moment was seen
            assert proc.returncode == 130 and said.startswith("interrupted: "), said
    if not caught:
        pytest.skip("neither moment was seen before the command ended")
