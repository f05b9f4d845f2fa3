"""Background work of reports: the monthly network and state reports, and those users ask for.

Each period is built once: the run leaves a `job_runs` row keyed by the period label in the
same transaction as the stored reports, so a retry or a second scheduler finds it and skips.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.db import session_scope
from concord.jobs.model import JobRun
from concord.jobs.queue import enqueue, job, periodic
from concord.jobs.tasks import record_run
from concord.reports import period as periods
from concord.reports import service

log = logging.getLogger(__name__)

TASK = "monthly_reports"


def _done(session: Session, label: str) -> bool:
    return (
        session.scalar(
            select(JobRun.id).where(
                JobRun.task == TASK, JobRun.key == label, JobRun.outcome.like("ok%")
            )
        )
        is not None
    )


def build_period(label: str, *, force: bool = False) -> str:
    """Build and store the network report and every state's report of a period.

    The reports are built in a read-only transaction (on SQLite a long one must not hold the
    write lock that intake needs) and stored, with the run's record, in a short one."""
    p = periods.parse(label)
    try:
        with session_scope(readonly=True) as session:
            if _done(session, p.label) and not force:
                log.info("reports of %s were built already", p.label)
                return "skipped"
            reports = service.build_all(session, p)
        with session_scope() as session:
            if _done(session, p.label) and not force:  # another worker was quicker
                return "skipped"
            for report in reports:
                service.store(session, report)
            outcome = f"ok: {len(reports)} reports"
            record_run(session, TASK, p.label, outcome)
    except Exception as exc:
        with session_scope() as session:
            record_run(session, TASK, p.label, f"error: {exc!r}")
        raise
    log.info("reports of %s: %s", p.label, outcome)
    return outcome


@periodic(minute="0", hour="2", day="1")
def monthly_reports() -> str:
    """On the 1st at 02:00 UTC: the previous month's network report and each state's."""
    return build_period(periods.previous_month(datetime.now(UTC)).label)


@job(retries=2, retry_delay=60)
def build_reports(label: str, force: bool = False) -> str:
    """On demand (e.g. to rebuild a month after late reports): same as the monthly run."""
    return build_period(label, force=force)


@job()
def build_requested(request_id: int) -> str:
    """A report a user asked for (`POST /api/v1/reports`, the reports page). Not retried: a
    failure is the request's answer, which its requester reads."""
    return service.run_request(request_id)


def queue_request(request_id: int) -> None:
    """Hand a committed request to the workers."""
    enqueue("build_requested", request_id)
