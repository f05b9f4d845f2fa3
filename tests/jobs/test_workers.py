"""The job queue and its workers, on the backend the suite runs against."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from concord.config import reset_settings
from concord.db import session_scope
from concord.errors import NotFound
from concord.jobs import tasks
from concord.jobs.model import JobRun
from concord.jobs.queue import enqueue, get_huey, libpq_dsn, reset_huey
from concord.jobs.worker import ClaimingScheduler, EmbeddedWorker, run_ready, run_worker


@pytest.fixture(autouse=True)
def fresh_queue() -> Iterator[None]:
    # Each test starts with its own connection to the queue and leaves none behind.
    reset_huey()
    yield
    reset_huey()


def runs(task: str = "heartbeat") -> list[JobRun]:
    with session_scope() as s:
        return list(s.scalars(select(JobRun).where(JobRun.task == task)))


def heartbeat_count() -> int:
    with session_scope() as s:
        return (
            s.scalar(select(func.count()).select_from(JobRun).where(JobRun.task == "heartbeat"))
            or 0
        )


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_run_once_executes_queued_heartbeats(env: object) -> None:
    for i in range(5):
        enqueue("heartbeat", f"once-{i}")
    assert heartbeat_count() == 0  # nothing runs until a worker does

    assert run_worker(once=True) == 5

    done = runs()
    assert sorted(r.key for r in done) == [f"once-{i}" for i in range(5)]
    assert {r.outcome for r in done} == {"ok"}
    assert all(r.worker.endswith(f":{os.getpid()}") for r in done)
    assert get_huey().pending_count() == 0
    assert run_worker(once=True) == 0


def test_unknown_job_is_refused(env: object) -> None:
    with pytest.raises(NotFound):
        enqueue("no-such-job")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


@pytest.mark.slow
def test_two_worker_processes_never_run_a_job_twice(env: object, tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    try:
        for log in logs:
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "concord.jobs.worker", "--threads", "2"],
                        env=os.environ.copy(),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        # Enqueued while the workers start, so both compete for the queue from the outset.
        keys = [f"job-{i:03d}" for i in range(200)]
        for key in keys:
            enqueue("heartbeat", key)

        def finished() -> bool:
            dead = [p for p in procs if p.poll() is not None]
            assert not dead, "a worker exited:\n" + "\n".join(log.read_text() for log in logs)
            return heartbeat_count() >= 200

        assert wait_for(finished, 60), f"only {heartbeat_count()} of 200 jobs ran in 60 s"
    finally:
        _stop(procs)

    done = runs()
    assert len(done) == 200
    assert sorted(r.key for r in done) == keys
    assert get_huey().pending_count() == 0


def test_verify_audit_records_ok_on_a_fresh_database(env: object) -> None:
    assert tasks.verify_audit() == "ok"

    [run] = runs("verify_audit")
    assert run.outcome == "ok"
    assert run.worker.endswith(f":{os.getpid()}")


def test_purge_sessions_records_a_run(env: object) -> None:
    assert tasks.purge_sessions() == "ok"
    assert [r.outcome for r in runs("purge_sessions")] == ["ok"]


def test_embedded_worker_runs_a_queued_job(env: object) -> None:
    enqueue("heartbeat", "embedded")
    worker = EmbeddedWorker(threads=1)
    # serve starts it from wherever its lifespan runs; installing no signal handler makes
    # a non-main thread fine.
    starter = threading.Thread(target=worker.start)
    starter.start()
    starter.join()
    try:
        assert worker.running
        assert wait_for(lambda: heartbeat_count() == 1, 10)
    finally:
        worker.stop()
    assert not worker.running
    assert [r.key for r in runs()] == ["embedded"]


def test_each_periodic_slot_is_enqueued_by_one_scheduler_only(env: object) -> None:
    h = get_huey()
    schedulers = [ClaimingScheduler(h, threading.Event(), 1, True) for _ in range(3)]
    three_am = datetime(2030, 1, 1, 3, 0, 12)  # both hourly purge and daily verify are due
    for scheduler in schedulers:
        scheduler.enqueue_periodic_tasks(three_am)
    assert h.pending_count() == 2

    schedulers[0].enqueue_periodic_tasks(datetime(2030, 1, 1, 4, 0))  # next hour: purge only
    assert h.pending_count() == 3

    assert run_ready(h) == 3
    assert len(runs("purge_sessions")) == 2
    assert [r.outcome for r in runs("verify_audit")] == ["ok"]


def test_queue_follows_the_settings(
    env: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = get_huey()
    assert get_huey() is first

    other = tmp_path / "elsewhere" / "jobs.db"
    monkeypatch.setenv("CONCORD_JOBS_URL", f"sqlite:///{other}")
    reset_settings()
    second = get_huey()
    assert second is not first
    assert second.storage.filename == str(other)
    enqueue("heartbeat", "moved")  # tasks are registered on the new instance too
    assert second.pending_count() == 1


def test_libpq_dsn_drops_the_driver_and_keeps_the_rest() -> None:
    assert (
        libpq_dsn("postgresql+psycopg://concord:p%40ss@db.example:5433/concord?sslmode=require")
        == "postgresql://concord:p%40ss@db.example:5433/concord?sslmode=require"
    )
    assert libpq_dsn("postgresql+psycopg://postgres@127.0.0.1:5432/test") == (
        "postgresql://postgres@127.0.0.1:5432/test"
    )


def test_a_redis_queue_without_its_client_says_how_to_install_it() -> None:
    import importlib.util

    from concord.errors import ConfigurationError
    from concord.jobs.queue import build_huey

    if importlib.util.find_spec("redis") is not None:
        pytest.skip("the redis client is installed here")
    with pytest.raises(ConfigurationError, match=r"pip install -e '\.\[redis\]'"):
        build_huey("redis://127.0.0.1:6379/0")
