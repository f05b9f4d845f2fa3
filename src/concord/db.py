"""Engine, sessions and column types shared by every domain."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, DateTime, Engine, MetaData, create_engine, event, true
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from concord.config import get_settings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


IN_LIST = 1000  # ids per IN (...) list: well inside every driver's parameter limit


def chunks(items: Sequence[Any], size: int = IN_LIST) -> Iterator[Sequence[Any]]:
    """`items` in slices of `size`, for statements that take a bounded IN (...) list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC, a naive one taken as UTC. ValueError when UTC has no such time: a
    time zone can push the first or last day a datetime holds out of its range."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of range in UTC") from None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Concord stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level so SQLAlchemy's "begin" event can issue BEGIN IMMEDIATE:
    # taking the write lock up front avoids deadlocks when a reader upgrades to a writer.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
    # SQLite's own lower() folds ASCII only: "Степной" would never match "степной".
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def is_set(flag: Any) -> ColumnElement[bool]:
    """A boolean column that is true, written as partial indexes on such flags are (`= 1`
    on SQLite): SQLite uses such an index only for the terms it names, and SQLAlchemy's
    `is_(True)` writes `IS 1`, which scans instead."""
    return cast("ColumnElement[bool]", flag == true())


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character backslash) matching `text` anywhere, lower-cased,
    its own % and _ taken literally: a search for "100%" is not a wildcard."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _sqlite_begin(conn: Any) -> None:
    # Read-only units of work (page and API reads, long reports, audit verification) must not
    # hold the write lock. A request's read is refused any write: one would take the lock
    # halfway, and fail at once (SQLITE_BUSY_SNAPSHOT) whenever another writer came between.
    options = conn.get_execution_options()
    conn.exec_driver_sql(f"PRAGMA query_only={int(bool(options.get('concord_query_only')))}")
    conn.exec_driver_sql("BEGIN" if options.get("concord_readonly") else "BEGIN IMMEDIATE")


def _postgresql_begin(conn: Any) -> None:
    # A request's read is as read-only here as on SQLite, so a write slipped into one is
    # found by either suite.
    if conn.get_execution_options().get("concord_query_only"):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "begin", _postgresql_begin)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or one in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def get_engine(url: str | None = None, *, pool: str = "") -> Engine:
    """The engine of `url`; `pool` names a pool of connections of its own (see
    `write_for_read`)."""
    url = url or get_settings().database_url
    with _lock:
        engine = _engines.get(pool + url)
        if engine is None:
            engine = make_engine(url)
            _engines[pool + url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(url: str | None = None, *, readonly: bool = False) -> sessionmaker[Session]:
    engine = get_engine(url)
    if readonly:
        return sessionmaker(
            bind=engine.execution_options(concord_readonly=True), expire_on_commit=False
        )
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def reading_beside(session: Session) -> Iterator[Session]:
    """A read-only session on `session`'s database, for long reads (a report built on
    request): on SQLite it takes no write lock, which `session` would hold all along."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    reading = Session(bind=engine.execution_options(concord_readonly=True), expire_on_commit=False)
    try:
        yield reading
    finally:
        reading.rollback()
        reading.close()


# How a read's session makes what the read must write (see `write_for_read`): "beside" it,
# in a short transaction of its own, or "skip" it (an error page).
READ_WRITES = "concord_read_writes"


def write_for_read(session: Session, write: Callable[[Session], None]) -> None:
    """Run `write` in the caller's transaction; or, when `session` only reads (`read_scope`),
    at once in a short transaction of its own. What a read must record (the audit record of
    what it shows, a token's last use) then holds SQLite's write lock for milliseconds, not
    for the whole read, and is committed before anything is shown: when it cannot be, the
    request fails rather than show what it could not record."""
    how = session.info.get(READ_WRITES)
    if how is None:
        write(session)
    elif how == "beside":
        # From a pool of its own: a read holding its connection while it waits for one from
        # the same pool would, with enough reads at once, wait for ever.
        url = session.get_bind().url.render_as_string(hide_password=False)
        writing = Session(bind=get_engine(url, pool="beside:"), expire_on_commit=False)
        with _unit_of_work(writing):
            write(writing)


@contextmanager
def read_scope() -> Iterator[Session]:
    """A unit of work that only reads: on SQLite it takes no write lock, and a write in it
    fails (it would take the lock halfway, and fail at once whenever another writer came
    between). What it must write goes through `write_for_read`."""
    bind = get_engine().execution_options(concord_readonly=True, concord_query_only=True)
    with _unit_of_work(Session(bind=bind, expire_on_commit=False)) as session:
        session.info[READ_WRITES] = "beside"
        yield session


@contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error."""
    with _unit_of_work(session_factory(url, readonly=readonly)()) as session:
        yield session


@contextmanager
def _unit_of_work(session: Session) -> Iterator[Session]:
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
