"""The job queue: one huey instance built lazily from `CONCORD_JOBS_URL`.

Tasks are plain functions recorded in a registry by the `job` and `periodic` decorators; every
time the huey instance is (re)built they are registered on it, so a change of settings (tests,
a reconfigured process) never leaves tasks bound to a stale queue.

    sqlite:///var/jobs.db                  -> SqliteHuey (embedded default, polling)
    postgresql+psycopg://user@host/db      -> PostgresHuey (SKIP LOCKED + LISTEN/NOTIFY)
    redis://host:6379/0                    -> RedisHuey (needs the `redis` extra)
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import huey
from huey.api import TaskWrapper
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from concord.config import get_settings
from concord.errors import ConfigurationError, InvalidInput, NotFound

log = logging.getLogger(__name__)

QUEUE_NAME = "concord"

# Modules whose import registers tasks; a domain that adds background work lists itself here.
TASK_MODULES: tuple[str, ...] = (
    "concord.jobs.tasks",
    "concord.events.tasks",
    "concord.reports.tasks",
)

# Any int64 works; it only has to be the same in every process creating the queue tables.
_DDL_LOCK_KEY = 0x636F6E636F7264

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[..., Any]
    retries: int = 0
    retry_delay: int = 0
    # crontab() keyword arguments (UTC) for periodic tasks, None for tasks run on demand.
    cron: dict[str, str] | None = None


_registry: dict[str, JobSpec] = {}


@dataclass
class _Current:
    url: str
    instance: huey.Huey
    wrappers: dict[str, TaskWrapper] = field(default_factory=dict)


_lock = threading.RLock()
_current: _Current | None = None


def job(name: str | None = None, *, retries: int = 0, retry_delay: int = 0) -> Callable[[F], F]:
    """Register a function as a task run on demand (see `enqueue`). The function is returned
    unchanged, so it can still be called directly."""

    def decorator(func: F) -> F:
        _add(JobSpec(name or func.__name__, func, retries, retry_delay))
        return func

    return decorator


def periodic(name: str | None = None, **cron: str) -> Callable[[F], F]:
    """Register a function run on a crontab schedule in UTC, e.g. `periodic(minute="0")`."""

    def decorator(func: F) -> F:
        huey.crontab(**cron, strict=True)  # fail at import on a typo, not at 03:00
        _add(JobSpec(name or func.__name__, func, cron=dict(cron)))
        return func

    return decorator


def _add(spec: JobSpec) -> None:
    with _lock:
        existing = _registry.get(spec.name)
        # A module reloaded in place replaces its own task; two functions may not share a name.
        if existing is not None and _origin(existing.func) != _origin(spec.func):
            raise ValueError(f"job name {spec.name!r} is already registered")
        _registry[spec.name] = spec
        if _current is not None:
            _register(_current, spec)


def _origin(func: Callable[..., Any]) -> tuple[str, str]:
    return func.__module__, func.__qualname__


def _register(current: _Current, spec: JobSpec) -> None:
    h = current.instance
    wrapper = current.wrappers.get(spec.name)
    if wrapper is not None:
        wrapper.unregister()
    if spec.cron is None:
        wrapper = h.task(retries=spec.retries, retry_delay=spec.retry_delay, name=spec.name)(
            spec.func
        )
    else:
        wrapper = h.periodic_task(huey.crontab(**spec.cron), name=spec.name)(spec.func)
    current.wrappers[spec.name] = wrapper


def registered_jobs() -> dict[str, JobSpec]:
    _load_task_modules()
    with _lock:
        return dict(_registry)


def _load_task_modules() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)


# --- building the instance from a URL --------------------------------------------------------


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(f"CONCORD_JOBS_URL is not a valid URL: {exc}") from exc


def libpq_dsn(url: str) -> str:
    """`postgresql+psycopg://user:pw@host:5432/db?sslmode=require` as a libpq URI
    (`postgresql://...`): the driver suffix is SQLAlchemy's, libpq does not know it."""
    parsed = _parse(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """The URL without its password, for logs."""
    return _parse(url).render_as_string(hide_password=True)


def build_huey(url: str) -> huey.Huey:
    """A huey instance for a jobs URL, with its storage tables created."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ":memory:"
        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # results=False: callers never wait on results, outcomes go to job_runs instead, and
        # unread results would pile up in the kv table.
        return huey.SqliteHuey(QUEUE_NAME, filename=database, results=False, timeout=10)
    if backend == "postgresql":
        instance = huey.PostgresHuey(
            QUEUE_NAME, dsn=libpq_dsn(url), results=False, create_tables=False
        )
        _create_pg_tables(instance)
        return instance
    if backend in {"redis", "rediss"}:
        try:
            import redis  # noqa: F401 (huey's own message names a bare pip command)
        except ImportError:
            raise ConfigurationError(
                "CONCORD_JOBS_URL names Redis, whose client is not installed: "
                "pip install -e '.[redis]' (see the README)"
            ) from None
        return huey.RedisHuey(QUEUE_NAME, url=url, results=False)
    raise InvalidInput(
        f"CONCORD_JOBS_URL backend {backend!r} is not supported; use sqlite, postgresql or redis"
    )


def _create_pg_tables(instance: huey.Huey) -> None:
    # Several workers starting together would race on CREATE TABLE IF NOT EXISTS (a unique
    # violation in pg_type), so the DDL runs under an advisory lock.
    import psycopg

    storage = instance.storage
    with psycopg.connect(storage.dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_DDL_LOCK_KEY,))
        try:
            storage.initialize_schema()
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_DDL_LOCK_KEY,))


# --- the current instance ----------------------------------------------------------------------


def get_huey() -> huey.Huey:
    """The huey instance for the current settings, rebuilt when `jobs_url` changed."""
    global _current
    _load_task_modules()
    url = get_settings().jobs_url
    with _lock:
        if _current is not None and _current.url == url:
            return _current.instance
        _close(_current)
        current = _Current(url, build_huey(url))
        for spec in _registry.values():
            _register(current, spec)
        _current = current
        log.debug("job queue %r on %s", QUEUE_NAME, describe_url(url))
        return current.instance


def reset_huey() -> None:
    """Forget the current instance (closing its connection); the next use rebuilds it."""
    global _current
    with _lock:
        _close(_current)
        _current = None


def _close(current: _Current | None) -> None:
    if current is None:
        return
    try:
        current.instance.storage.close()
    except Exception:  # a dead connection must not stop a rebuild
        log.debug("closing the job queue storage failed", exc_info=True)


def enqueue(name: str, *args: Any, **kwargs: Any) -> str:
    """Queue the registered task `name` with these arguments; returns the huey task id.

    Arguments are pickled; pass ids and plain values, not ORM objects or sessions."""
    return enqueue_at(None, name, *args, **kwargs)


def enqueue_at(eta: datetime | None, name: str, *args: Any, **kwargs: Any) -> str:
    """`enqueue`, to run at `eta` (UTC) rather than as soon as a worker is free."""
    instance = get_huey()
    with _lock:
        current = _current
        wrapper = current.wrappers.get(name) if current is not None else None
    if wrapper is None:
        raise NotFound(f"no background job named {name!r}")
    # Built directly rather than with wrapper.s(), which would take task keyword arguments
    # named eta, delay, id, priority, retries... as huey options.
    due = eta.astimezone(UTC).replace(tzinfo=None) if eta is not None else None  # huey: naive UTC
    task = wrapper.task_class(args, kwargs, eta=due)
    instance.enqueue(task)
    return str(task.id)
