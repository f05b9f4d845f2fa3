"""Units of work: a request that only reads takes no write lock, and what it asks to write
(its audit record, a token's last use) is written after it, only when it succeeded."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

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


def test_a_read_writes_its_audit_record_after_it(session, network) -> None:  # type: ignore[no-untyped-def]
    amber = SimpleNamespace(id=41, tlp="amber")
    with read_scope() as reading:
        audit.record_reads(reading, network["kz-analyst"], "event", [amber])
        with session_scope() as other:
            assert _reads_logged(other) == 0  # not yet: the read is still going on
    session.rollback()
    assert _reads_logged(session) == 1


def test_a_failed_read_writes_nothing(session, network) -> None:  # type: ignore[no-untyped-def]
    amber = SimpleNamespace(id=41, tlp="amber")
    with pytest.raises(LookupError), read_scope() as reading:
        audit.record_reads(reading, network["kz-analyst"], "event", [amber])
        raise LookupError
    session.rollback()
    assert _reads_logged(session) == 0


@sqlite_only
def test_a_read_refuses_a_write_of_its_own(env, network) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OperationalError, match="readonly"), read_scope() as reading:
        reading.execute(text("UPDATE api_tokens SET last_used_at = NULL"))
    with session_scope() as writing:  # the connection it left in the pool writes again
        writing.execute(text("UPDATE api_tokens SET last_used_at = NULL"))


@sqlite_only
def test_a_page_is_read_while_an_intake_holds_the_write_lock(env, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = auth["kz-analyst"]
    assert client.get("/api/v1/events", headers=headers).status_code == 200  # last use noted
    writer = sqlite3.connect(env.database_url.removeprefix("sqlite:///"), timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        # Before reads took no write lock, this waited out the busy timeout and failed.
        assert client.get("/api/v1/events", headers=headers).status_code == 200
        assert client.get("/events", headers=headers).status_code == 200
    finally:
        writer.rollback()
        writer.close()


def test_a_token_s_use_is_noted_after_the_read(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/v1/events", headers=auth["kz-reader"]).status_code == 200
    session.rollback()
    used = session.scalars(select(ApiToken.last_used_at).where(ApiToken.name == "test")).all()
    assert sum(u is not None for u in used) == 1
