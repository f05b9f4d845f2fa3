"""Background work of reports: the monthly network and state reports, and those users ask for.

The monthly run is hourly and catches up: it builds whichever of the network and state reports
of the last CATCH_UP_MONTHS months is not built yet, so a worker down at the turn of the month
(for weeks, even), or a run that failed, is made good an hour later. Months before the centre
was recorded are not reported, but for the previous one. Each (period, scope) is built once: a
`job_runs` row keyed by the period and the scope is written in the same transaction as the
stored report, under a lock, so a retry, a second scheduler or an on-demand run finds it and
skips.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from concord.db import session_scope
from concord.errors import NotFound
from concord.jobs.model import JobRun
from concord.jobs.queue import enqueue, job, periodic
from concord.jobs.tasks import record_run
from concord.orgs.model import Organization, OrgKind
from concord.reports import period as periods
from concord.reports import service
from concord.reports.model import Report

log = logging.getLogger(__name__)

TASK = "monthly_reports"
# A month is reported once it has been over this long: reports of its last hours come in late.
SETTLE = timedelta(hours=2)
_PG_LOCK = 7_262_010  # advisory lock: one store of the scheduled reports at a time
# A scope whose build failed this often for a period is left to an operator (`build_reports`
# with force), not rebuilt every hour for the rest of the month.
MAX_ATTEMPTS = 3
# Months the hourly run looks back over for reports not built yet.
CATCH_UP_MONTHS = 3


def _key(label: str, scope: str) -> str:
    return f"{label} {scope}"


def _done(session: Session, label: str, scope: str) -> bool:
    # A row keyed by the period alone is a run of an earlier release, which built the network
    # report and each state's, but none as seen by the centre ("KZ@centre").
    seen_by = service.split_scope(scope)[1]
    keys = [_key(label, scope)] if seen_by else [label, _key(label, scope)]
    return (
        session.scalar(
            select(JobRun.id).where(
                JobRun.task == TASK, JobRun.key.in_(keys), JobRun.outcome.like("ok%")
            )
        )
        is not None
    )


def _given_up(session: Session, label: str, scope: str) -> bool:
    failures = session.scalar(
        select(func.count())
        .select_from(JobRun)
        .where(
            JobRun.task == TASK,
            JobRun.key == _key(label, scope),
            JobRun.outcome.like("error%"),
        )
    )
    return (failures or 0) >= MAX_ATTEMPTS


def _lock(session: Session) -> None:
    # SQLite serialises writers already (BEGIN IMMEDIATE); on PostgreSQL two runs checking
    # `_done` at once would both store.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})


def build_period(label: str, *, force: bool = False) -> str:
    """Build and store the network report and each state's report of a period that is not
    built yet (`force`: all of them again, e.g. after late reports).

    The reports are built in a read-only transaction (on SQLite a long one must not hold the
    write lock that intake needs) and stored, each with its run's record, in a short one. A
    scope whose build fails is recorded as failed and left for the next run; the others are
    stored all the same."""
    p = periods.parse(label)
    built: list[Report] = []
    failed: list[tuple[str, Exception]] = []
    with session_scope(readonly=True) as session:
        try:
            service.audience(session, service.NETWORK)
        except NotFound:  # a new installation before its centre is recorded
            return "skipped: no centre organisation yet"
        # each known by its stored scope: "KZ", and "KZ@centre" for the centre's version
        todo = [
            t
            for t in service.scheduled_scopes(session)
            if force or not _done(session, p.label, t[0])
        ]
        if not force:
            for item in [t for t in todo if _given_up(session, p.label, t[0])]:
                log.error(
                    "the %s report of %s failed %d times: build it with build_reports(force)",
                    item[0],
                    p.label,
                    MAX_ATTEMPTS,
                )
                todo.remove(item)
        if not todo:
            log.info("reports of %s were built already", p.label)
            return "skipped"
        for kept, scope, who in todo:
            try:
                built.append(service.build_report(session, who, p, scope))
            except Exception as exc:
                log.exception("the %s report of %s failed", kept, p.label)
                failed.append((kept, exc))
    stored = 0
    with session_scope() as session:
        _lock(session)
        for report in built:
            kept = service.stored_scope(report.scope, report.seen_by)
            if not force and _done(session, p.label, kept):  # another run was quicker
                continue
            try:
                with session.begin_nested():  # one report that cannot be stored costs no other
                    service.store(session, report)
                    record_run(session, TASK, _key(p.label, kept), "ok")
            except Exception as exc:
                log.exception("the %s report of %s could not be stored", kept, p.label)
                failed.append((kept, exc))
                continue
            stored += 1
        for scope, exc in failed:
            record_run(session, TASK, _key(p.label, scope), f"error: {exc!r}")
    if failed:
        scopes_failed = ", ".join(scope for scope, _exc in failed)
        raise RuntimeError(
            f"reports of {p.label}: {stored} stored, failed for {scopes_failed}"
        ) from failed[0][1]
    outcome = f"ok: {stored} reports" if stored else "skipped"
    log.info("reports of %s: %s", p.label, outcome)
    return outcome


def due_period(now: datetime) -> str:
    """The month the hourly run reports: the one before `now`, once SETTLE has passed."""
    return periods.previous_month(now - SETTLE).label


def due_periods(now: datetime, since: datetime | None) -> list[str]:
    """The months the hourly run looks at, oldest first: the due month, and the
    CATCH_UP_MONTHS - 1 before it that began after the month of `since` (the centre's
    recording) did; a new installation reports no months it did not run in."""
    labels = [due_period(now)]
    start = periods.parse(labels[0]).start
    first = periods.month(since.year, since.month).start if since is not None else None
    for _ in range(CATCH_UP_MONTHS - 1):
        earlier = periods.previous_month(start)
        if first is None or earlier.start < first:
            break
        labels.insert(0, earlier.label)
        start = earlier.start
    return labels


def _centre_since() -> datetime | None:
    with session_scope(readonly=True) as session:
        return session.scalar(
            select(func.min(Organization.created_at)).where(Organization.kind == OrgKind.CENTRE)
        )


# Ten past the hour: clear of the session purge on the hour and of correlation (every five
# minutes from 2), so that the three do not start together.
@periodic(minute="10")
def monthly_reports() -> str:
    """Every hour: the network and state reports of the last months not built yet (the
    previous month's from 02:10 UTC on the 1st). Idle runs only read the run records."""
    labels = due_periods(datetime.now(UTC), _centre_since())
    outcomes: list[str] = []
    failures: list[Exception] = []
    for label in labels:
        try:
            outcome = build_period(label)
        except Exception as exc:  # the other months are built all the same
            failures.append(exc)
            outcome = f"error: {exc}"
        if len(labels) == 1:
            outcomes.append(outcome)
        elif outcome != "skipped" or label == labels[-1]:
            outcomes.append(f"{label}: {outcome}")
    if failures:
        raise failures[0]
    return "; ".join(outcomes)


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
