"""Background correlation: every five minutes, and on demand (e.g. after a large intake).

The indicator pass and the campaign pass run in two transactions, so that on SQLite neither
holds the write lock (and delays intake) for the length of both.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from concord.db import session_scope
from concord.errors import FaultLocation, InvalidInput
from concord.events import correlation
from concord.jobs.queue import enqueue_at, job, periodic
from concord.jobs.tasks import record_run

log = logging.getLogger(__name__)


def run_correlation(task: str, key: str, since: datetime | None = None) -> str:
    """One full correlation (indicators, alerts, campaigns); leaves a job_runs row."""
    try:
        with session_scope() as session:
            result = correlation.correlate(session, since, campaigns=False)
        with session_scope() as session:
            result.campaigns = correlation.update_campaigns(session)
            outcome = result.summary()
            record_run(session, task, key, outcome)
    except Exception as exc:
        with session_scope() as session:
            record_run(session, task, key, f"error: {exc!r}")
        raise
    log.info("correlation: %s", outcome)
    return outcome


# Minutes 2, 7, 12 ...: off the top of the hour, where the hourly housekeeping runs.
@periodic("correlate", minute="2-59/5")
def correlate_periodic() -> str:
    """Every five minutes: a full pass (it also catches reports dated in the past)."""
    return run_correlation("correlate", datetime.now(UTC).isoformat(timespec="seconds"))


@job("correlate_now")
def correlate_now(since: str | None = None) -> str:
    """On demand; `since` (ISO 8601 with a zone) limits the indicator pass to recent
    sightings. Queue it with `enqueue("correlate_now", since=...)`."""
    when = None
    if since:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(
                f"since {since!r} is not an ISO 8601 time", FaultLocation(field="since")
            ) from None
        if when.tzinfo is None:
            raise InvalidInput("since needs a time zone", FaultLocation(field="since"))
    key = f"{datetime.now(UTC).isoformat(timespec='seconds')} since={since or 'all'}"
    return run_correlation("correlate_now", key, when)


# After an intake, a pass runs this many seconds later; what else arrives meanwhile is
# correlated by the same pass.
SOON_SECONDS = 30
_soon_lock = threading.Lock()
_soon_until = 0.0  # time.monotonic() of the pass this process has asked for


def correlate_soon() -> None:
    """Ask for a correlation pass shortly after an intake, so that the analysts of the states
    that reported the same indicator are alerted within a minute, not at the next
    five-minute pass. One pass per SOON_SECONDS per process, however many submissions
    arrive: a submission that finishes while a pass is pending is covered by it. A queue
    out of reach delays the alert to the periodic pass and never fails the intake."""
    global _soon_until
    now = time.monotonic()
    with _soon_lock:
        if now < _soon_until:
            return
        _soon_until = now + SOON_SECONDS
    try:
        enqueue_at(datetime.now(UTC) + timedelta(seconds=SOON_SECONDS), "correlate_now")
    except Exception:
        log.warning("cannot queue a correlation pass; the periodic one will do", exc_info=True)
        with _soon_lock:
            _soon_until = 0.0
