"""A throw-away Concord database for a benchmark: SQLite in a temporary directory, or a
temporary schema in the PostgreSQL database given (dropped afterwards)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Scratch:
    work: Path
    url: str

    @property
    def database(self) -> str:
        return self.url.split(":", 1)[0]


@contextmanager
def scratch_database(database: str | None) -> Iterator[Scratch]:
    from sqlalchemy import create_engine, text

    work = Path(tempfile.mkdtemp(prefix="concord-bench-"))
    (work / "var").mkdir(parents=True, exist_ok=True)
    os.environ["CONCORD_HOME"] = str(work)
    os.environ["CONCORD_ARGON2_FAST"] = "1"
    schema = None
    url = database or f"sqlite:///{work / 'var' / 'concord.db'}"
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f"create schema {schema}"))
        admin.dispose()
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    os.environ["CONCORD_DATABASE_URL"] = url

    from concord.config import reset_settings
    from concord.db import dispose_engines
    from concord.migrate import upgrade

    reset_settings()
    upgrade(url)
    try:
        yield Scratch(work, url)
    finally:
        dispose_engines()
        shutil.rmtree(work, ignore_errors=True)
        if schema and database:
            admin = create_engine(database)
            with admin.begin() as conn:
                conn.execute(text(f"drop schema {schema} cascade"))
            admin.dispose()
