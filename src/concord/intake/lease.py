"""Who is writing a submission: one run at a time.

The same file sent twice at once (a client retrying an upload its proxy timed out, two
analysts, a CLI run started twice) must not be taken in by both: each would resume from the
rows the other has committed and count them again. A run holds its submission's lease while
it writes; another run finds it held and is refused. The lease is one the holder's death
releases by itself (a PostgreSQL session lock, a lock on an open file), so a killed run
never blocks the next one, which resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from concord.errors import Conflict

# First key of PostgreSQL's two-key advisory locks: intake's name space.
_PG_SPACE = 0x1A7A


def busy(submission_id: int | None = None) -> Conflict:
    receipt = f" (receipt {submission_id})" if submission_id else ""
    return Conflict(
        f"this file is being taken in right now{receipt}; its receipt says when it is "
        "done, and sending it again then changes nothing"
    )


@contextlib.contextmanager
def writing(factory: sessionmaker[Session], submission_id: int) -> Iterator[None]:
    """Hold the lease of `submission_id` while the block runs; Conflict when another run
    holds it."""
    engine = factory.kw["bind"]
    if not isinstance(engine, Engine):
        raise TypeError("intake needs a session factory bound to an engine")
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:  # its own connection: the lock lives as long as it
            held = conn.exec_driver_sql(
                "SELECT pg_try_advisory_lock(%s, %s)", (_PG_SPACE, submission_id)
            ).scalar()
            conn.commit()
            if not held:
                raise busy(submission_id)
            try:
                yield
            finally:
                # the connection may have been dropped meanwhile, taking the lock with it:
                # nothing to release then, and the run's own outcome stands
                with contextlib.suppress(SQLAlchemyError):
                    conn.exec_driver_sql(
                        "SELECT pg_advisory_unlock(%s, %s)", (_PG_SPACE, submission_id)
                    )
                    conn.commit()
        return
    path = _lock_path(engine, submission_id)
    if path is None:  # a database in memory: one process, no other run can reach it
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:  # one lock per open file: a second thread of this process is refused too
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(submission_id) from None
        yield
    finally:
        os.close(fd)


def held(engine: Engine, submission_id: int) -> bool:
    """Whether a run holds the lease of `submission_id` now: a submission still marked
    running whose lease nobody holds was interrupted (its run killed)."""
    if engine.dialect.name == "postgresql":
        # read from the lock table: trying the lock would refuse a run starting meanwhile
        with engine.connect() as conn:
            return bool(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = %s AND objid = %s AND objsubid = 2 AND granted",
                    (_PG_SPACE, submission_id),
                ).scalar()
            )
    path = _lock_path(engine, submission_id)
    if path is None:
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # none, or not ours to open: no run of this service holds it
        return False
    try:
        # held for an instant: a run starting in that very instant is told to send again
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of a lock this test took
    return False


def release_done(factory: sessionmaker[Session], submission_id: int) -> None:
    """Remove a finished submission's lock file (while still holding it): a run that opened
    the old file waits for nothing, and finds the submission done when it reads it."""
    engine = factory.kw["bind"]
    path = _lock_path(engine, submission_id) if isinstance(engine, Engine) else None
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def _lock_path(engine: Engine, submission_id: int) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    db = Path(database)
    return db.with_name(f"{db.name}.intake") / f"{submission_id}.lock"
