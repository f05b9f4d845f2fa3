"""The audit log: every write is recorded, the chain detects alteration and removal."""

from __future__ import annotations

from sqlalchemy import text

from concord.audit import service as audit
from concord.audit.model import AuditRecord
from concord.orgs import service as orgs


def _tamper(session, sql: str) -> None:  # type: ignore[no-untyped-def]
    """Bypass the append-only triggers, as an intruder with database access could."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("alter table audit_log disable trigger audit_log_append_only"))
        session.execute(text(sql))
        session.execute(text("alter table audit_log enable trigger audit_log_append_only"))
    else:
        session.execute(text("drop trigger audit_log_no_update"))
        session.execute(text("drop trigger audit_log_no_delete"))
        session.execute(text(sql))
    session.commit()


def test_writes_are_recorded_and_chain_verifies(session, network) -> None:  # type: ignore[no-untyped-def]
    orgs.create_org(
        session,
        network["kz-analyst"],
        orgs.OrgInput("kz-power", "owner", "KZ Power", parent="kz-cert"),
    )
    session.commit()
    last = session.query(AuditRecord).order_by(AuditRecord.seq.desc()).first()
    assert last.action == "create" and last.object_id == "kz-power"
    assert last.actor == "kz-analyst"
    result = audit.verify(session)
    assert result.ok and result.checked == last.seq


def test_log_refuses_update_and_delete(session, network) -> None:  # type: ignore[no-untyped-def]
    import pytest
    from sqlalchemy.exc import DatabaseError

    with pytest.raises(DatabaseError):
        session.execute(text("update audit_log set actor = 'someone' where seq = 1"))
    session.rollback()
    with pytest.raises(DatabaseError):
        session.execute(text("delete from audit_log where seq = 1"))
    session.rollback()


def test_altered_record_is_named(session, network) -> None:  # type: ignore[no-untyped-def]
    _tamper(session, "update audit_log set actor = 'nobody' where seq = 3")
    result = audit.verify(session)
    assert not result.ok
    assert [p.seq for p in result.problems] == [3]
    assert "altered" in str(result.problems[0])


def test_removed_records_are_named(session, network) -> None:  # type: ignore[no-untyped-def]
    _tamper(session, "delete from audit_log where seq in (4, 5)")
    result = audit.verify(session)
    assert not result.ok
    assert any("records 4-5 were removed" in str(p) for p in result.problems)


def test_truncated_tail_is_detected(session, network) -> None:  # type: ignore[no-untyped-def]
    last = session.query(AuditRecord).order_by(AuditRecord.seq.desc()).first().seq
    _tamper(session, f"delete from audit_log where seq >= {last - 1}")
    result = audit.verify(session)
    assert not result.ok
    assert f"records {last - 1}-{last} at the end were removed" in str(result.problems[-1])


def test_reads_of_amber_objects_are_recorded(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/organizations/kz-bank", headers=auth["kz-reader"])
    assert r.status_code == 200 and r.json()["tlp"] == "amber"
    session.rollback()
    last = session.query(AuditRecord).order_by(AuditRecord.seq.desc()).first()
    assert (last.action, last.actor, last.object_kind) == ("read", "kz-reader", "organization")
    # CLEAR records are not logged as reads.
    client.get("/api/v1/organizations/kz-cert", headers=auth["kz-reader"])
    session.rollback()
    assert session.query(AuditRecord).order_by(AuditRecord.seq.desc()).first().seq == last.seq


def test_audit_api_scoped_to_admins(client, auth) -> None:  # type: ignore[no-untyped-def]
    for user, org in (("kz-analyst", "kz-bank"), ("uz-analyst", "uz-telecom")):
        r = client.post(
            "/api/v1/contacts",
            headers=auth[user],
            json={"org": org, "name": "Duty", "email": f"duty@{org}.example"},
        )
        assert r.status_code == 201, r.text
    refused = client.get("/api/v1/audit", headers=auth["kz-analyst"])
    assert refused.status_code == 403, refused.text
    assert "'admin' scope" in refused.json()["detail"]
    kz = client.get("/api/v1/audit", headers=auth["kz-admin"]).json()["items"]
    actors = {item["actor"] for item in kz}
    assert "kz-analyst" in actors and "uz-analyst" not in actors
    # an admin's token without the admin scope reads no more than an analyst's
    narrow = client.post("/api/v1/tokens", json={"scopes": ["read"]}, headers=auth["kz-admin"])
    bearer = {"Authorization": f"Bearer {narrow.json()['token']}"}
    narrowed = client.get("/api/v1/audit", headers=bearer)
    assert narrowed.status_code == 403, narrowed.text
    assert narrowed.json()["detail"] == "this credential lacks the 'admin' scope"
    verify = client.get("/api/v1/audit/verify", headers=auth["centre-admin"]).json()
    assert verify["ok"] is True and verify["checked"] > 0
    assert client.get("/api/v1/audit/verify", headers=auth["kz-admin"]).status_code == 403
