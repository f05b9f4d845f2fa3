"""Create or upgrade the schema with Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from concord.db import get_engine, sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def make_folder(url: str) -> None:
    """The folder of a SQLite database about to be created. Only creating the database
    makes it: elsewhere a mistyped path is an error, not an empty database in a new folder."""
    if (path := sqlite_file(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str) -> None:
    make_folder(url)
    cfg = alembic_config(url)
    with get_engine(url).connect() as conn, _foreign_keys_deferred(conn), conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        _check_foreign_keys(conn)


@contextmanager
def _foreign_keys_deferred(conn: Connection) -> Iterator[None]:
    """On SQLite, foreign keys are off while migrating: a migration that alters a table
    rebuilds it (copy, drop, rename), and dropping a parent table with them on would delete
    every child row through ON DELETE CASCADE (a case's timeline with the case table). The
    pragma only takes effect outside a transaction, so it is set on the driver's connection
    before the migration's transaction begins; the rows are checked before it commits."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        return
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = ", ".join(sorted({str(row[0]) for row in broken}))
        raise RuntimeError(f"the migration left rows without their parent in {tables}")


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@lru_cache(maxsize=1)
def _revisions() -> tuple[str | None, frozenset[str]]:
    """This release's head revision, and every revision its migrations know."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head(), frozenset(s.revision for s in script.walk_revisions())


def schema_fault(current: str | None) -> str | None:
    """Why a database whose schema is at revision `current` cannot serve this release (no
    schema, or an older one), or None. Newer is not refused: a rolling upgrade runs the old
    release beside the new schema for a while."""
    head, known = _revisions()
    if current is None:
        return "has no schema yet: run `concord init` first"
    if current != head and current in known:
        return (
            f"has the schema of an older release ({current}, this one needs {head}): "
            "run `concord init` to upgrade it"
        )
    return None


def schema_behind(url: str) -> str | None:
    """`schema_fault` of the database at `url`."""
    return schema_fault(current_revision(url))
