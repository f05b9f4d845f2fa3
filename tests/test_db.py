"""Units of work: a request that only reads takes no write lock, and what it must record (its
audit record, a token's last use) is committed at once in a short transaction of its own,
before anything is shown."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from concord import db
from concord.access.model import ApiToken
from concord.audit import service as audit
from concord.audit.model import AuditRecord
from concord.db import read_scope, session_scope
from tests.conftest import BACKEND

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's write lock")


def _reads_logged(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "read")
    )


@contextmanager
def _write_lock_held(database_url: str) -> Iterator[None]:
    """The write lock, held by another connection as a long intake would."""
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        yield
    finally:
        writer.rollback()
        writer.close()


def test_a_read_s_audit_record_is_committed_before_anything_is_shown(session, network) -> None:  # type: ignore[no-untyped-def]
    amber = SimpleNamespace(id=41, tlp="amber")
    with read_scope() as reading:
        audit.record_reads(reading, network["kz-analyst"], "event", [amber])
        with session_scope() as other:
            assert _reads_logged(other) == 1
        audit.record_reads(reading, network["kz-analyst"], "event", [SimpleNamespace(id=42)])
    session.rollback()
    assert _reads_logged(session) == 1  # CLEAR content is not recorded


def test_as_many_reads_at_once_as_the_pool_holds_each_record_theirs(session, network) -> None:  # type: ignore[no-untyped-def]
    pool = db.get_engine().pool
    at_once = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    every_read_holds_its_connection = threading.Barrier(at_once, timeout=60)
    reader = network["kz-analyst"]

    def read(n: int) -> None:
        with read_scope() as reading:
            reading.execute(text("SELECT 1"))
            every_read_holds_its_connection.wait()
            audit.record_reads(reading, reader, "event", [SimpleNamespace(id=n, tlp="amber")])

    with ThreadPoolExecutor(at_once) as threads:
        list(threads.map(read, range(at_once)))
    session.rollback()
    assert _reads_logged(session) == at_once


def test_a_read_refuses_a_write_of_its_own(env, network) -> None:  # type: ignore[no-untyped-def]
    refused = "readonly|read-only"  # SQLite's words, PostgreSQL's
    with pytest.raises(DBAPIError, match=refused), read_scope() as reading:
        reading.execute(text("UPDATE api_tokens SET last_used_at = NULL"))
    with session_scope() as writing:  # the connection it left in the pool writes again
        writing.execute(text("UPDATE api_tokens SET last_used_at = NULL"))


@sqlite_only
def test_a_page_is_read_while_an_intake_holds_the_write_lock(env, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = auth["kz-analyst"]
    assert client.get("/api/v1/events", headers=headers).status_code == 200  # last use noted
    with _write_lock_held(env.database_url):
        # Before reads took no write lock, this waited out the busy timeout and failed.
        assert client.get("/api/v1/events", headers=headers).status_code == 200
        assert client.get("/events", headers=headers).status_code == 200


@sqlite_only
def test_amber_content_is_not_shown_when_its_reading_cannot_be_recorded(
    env, auth, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from concord.web.app import create_app

    given = db._sqlite_pragmas

    def impatient(connection: Any, record: Any) -> None:  # the lock is not waited for long
        given(connection, record)
        connection.execute("PRAGMA busy_timeout=200")

    db.dispose_engines()
    monkeypatch.setattr(db, "_sqlite_pragmas", impatient)
    headers = auth["kz-analyst"]
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/events", headers=headers).status_code == 200  # last use noted
        with _write_lock_held(env.database_url):
            r = client.get("/api/v1/organizations/kz-bank", headers=headers)  # AMBER
            assert r.status_code == 500 and "Steppe" not in r.text
            assert r.headers["content-type"].startswith("application/problem+json")
        shown = client.get("/api/v1/organizations/kz-bank", headers=headers)
        assert shown.status_code == 200 and shown.json()["tlp"] == "amber"
    with session_scope() as s:
        records = s.scalars(select(AuditRecord.detail).where(AuditRecord.action == "read")).all()
    assert len(records) == 1  # the read that was shown, and only it


def test_a_token_s_use_is_noted(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/v1/events", headers=auth["kz-reader"]).status_code == 200
    session.rollback()
    used = session.scalars(select(ApiToken.last_used_at).where(ApiToken.name == "test")).all()
    assert sum(u is not None for u in used) == 1
