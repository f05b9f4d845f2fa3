"""Background tasks of the platform itself: liveness heartbeats and housekeeping.

Every run leaves a `job_runs` row, so operators (and tests) can see that workers are alive and
what the last housekeeping run found.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from concord.access.service import purge_expired_sessions
from concord.audit.service import verify
from concord.db import session_scope
from concord.jobs.model import JobRun
from concord.jobs.queue import job, periodic

log = logging.getLogger(__name__)

OUTCOME_MAX = 500  # the width of job_runs.outcome


def worker_id() -> str:
    """`host:pid` of this process, to tell workers apart in job_runs."""
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def record_run(session: Session, task: str, key: str, outcome: str = "ok") -> JobRun:
    run = JobRun(task=task, key=key[:200], worker=worker_id(), outcome=outcome[:OUTCOME_MAX])
    session.add(run)
    return run


def _slot() -> str:
    # The time a periodic run started, as its key: one row per scheduled slot.
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_periodic(task: str, body: Callable[[Session], str]) -> str:
    """Run `body` in one transaction together with its job_runs row; on failure the work is
    rolled back and the failure is still recorded, then re-raised for huey to log."""
    key = _slot()
    try:
        with session_scope() as session:
            outcome = body(session)
            record_run(session, task, key, outcome)
    except Exception as exc:
        with session_scope() as session:
            record_run(session, task, key, f"error: {exc!r}")
        raise
    return outcome


@job()
def heartbeat(key: str) -> None:
    """Prove a worker picked the job up and could write to the database."""
    with session_scope() as session:
        record_run(session, "heartbeat", key)


@periodic(minute="0")
def purge_sessions() -> str:
    """Hourly: delete expired web sessions."""

    def body(session: Session) -> str:
        removed = purge_expired_sessions(session)
        log.info("purged %d expired web sessions", removed)
        return "ok"

    return _run_periodic("purge_sessions", body)


@periodic(minute="0", hour="3")
def verify_audit() -> str:
    """Daily at 03:00 UTC: check the audit hash chain; the outcome names the first problems."""

    def body(session: Session) -> str:
        result = verify(session)
        if result.ok:
            log.info("audit chain verified: %d records", result.checked)
            return "ok"
        log.error(
            "audit chain broken: %d problems in %d records", len(result.problems), result.checked
        )
        return _shorten("; ".join(str(p) for p in result.problems[:10]))

    return _run_periodic("verify_audit", body)


def _shorten(text: str) -> str:
    return text if len(text) <= OUTCOME_MAX else text[: OUTCOME_MAX - 1] + "…"
