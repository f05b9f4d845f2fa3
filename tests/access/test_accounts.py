"""Passwords, lockout, sessions and API tokens."""

from __future__ import annotations

import pytest

from concord.access import service as access
from concord.access.model import ApiToken, TokenScope, User
from concord.errors import Forbidden, InvalidInput, Unauthorized
from tests.conftest import PASSWORD, sign_in


def test_passwords_are_stored_as_argon2(session, network) -> None:  # type: ignore[no-untyped-def]
    user = session.query(User).filter_by(username="kz-admin").one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_lockout_after_repeated_failures(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        with pytest.raises(Unauthorized):
            access.authenticate(session, "kz-reader", "wrong password!", "127.0.0.1")
        session.commit()
    # A guess at a locked account reads as at an unknown name: the lock tells no one it exists.
    for name in ("kz-reader", "nobody-at-all"):
        with pytest.raises(Unauthorized, match=r"^wrong username or password$"):
            access.authenticate(session, name, "another guess", "127.0.0.1")
    # Even the right password is refused while locked, and its holder is told why.
    with pytest.raises(Unauthorized, match="too many failed attempts"):
        access.authenticate(session, "kz-reader", PASSWORD, "127.0.0.1")
    assert access.authenticate(session, "kz-analyst", PASSWORD, None).username == "kz-analyst"


def test_a_failed_login_is_logged_as_nobodys_from_where_it_came(session, network) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from concord.audit.model import AuditRecord
    from concord.audit.service import system_actor

    # a server started from a console does not make the attempts the console user's
    token = system_actor.set("cli:operator")
    try:
        for name in ("kz-reader", "nobody-at-all"):
            with pytest.raises(Unauthorized):
                access.authenticate(session, name, "wrong password!", "198.51.100.9")
    finally:
        system_actor.reset(token)
    attempts = session.scalars(
        select(AuditRecord).where(AuditRecord.action == "login-failed").order_by(AuditRecord.seq)
    ).all()
    assert [(r.actor, r.address, r.actor_org_id, r.object_id) for r in attempts] == [
        ("anonymous", "198.51.100.9", None, "kz-reader"),
        ("anonymous", "198.51.100.9", None, "nobody-at-all"),
    ]


def test_token_shown_once_stored_hashed_and_revocable(session, network) -> None:  # type: ignore[no-untyped-def]
    secret, token = access.create_token(
        session, network["kz-analyst"], "kz-analyst", "script", frozenset({TokenScope.READ})
    )
    session.commit()
    stored = session.get(ApiToken, token.id)
    assert secret.split("_")[2] not in (stored.secret_hash, stored.key_id)
    principal = access.resolve_token(session, secret, "127.0.0.1")
    assert principal is not None and principal.scopes == {TokenScope.READ}
    session.commit()
    assert session.get(ApiToken, token.id).last_used_at is not None
    access.revoke_token(session, network["kz-analyst"], token.id)
    session.commit()
    assert access.resolve_token(session, secret, None) is None
    assert access.resolve_token(session, secret[:-2] + "xx", None) is None


def test_token_scopes_bounded_by_role(session, network) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        access.create_token(session, None, "kz-reader", "x", frozenset({TokenScope.WRITE}))
    with pytest.raises(Forbidden):  # an analyst cannot mint tokens for others
        access.create_token(
            session, network["kz-analyst"], "kz-reader", "x", frozenset({TokenScope.READ})
        )


def test_a_token_needs_a_scope_on_every_channel(session, network, client, auth) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from concord.cli import app

    with pytest.raises(InvalidInput, match="choose at least one scope") as refused:
        access.create_token(session, network["kz-analyst"], "kz-analyst", "x", frozenset())
    assert refused.value.locations[0].field == "scopes"
    # the API: an empty list chooses no scope and is refused; no list at all is read
    none = client.post("/api/v1/tokens", json={"scopes": []}, headers=auth["kz-analyst"])
    assert none.status_code == 422, none.text
    assert none.json()["errors"][0]["field"] == "scopes"
    assert "choose at least one scope" in none.json()["errors"][0]["detail"]
    default = client.post("/api/v1/tokens", json={"name": "ci"}, headers=auth["kz-analyst"])
    assert default.status_code == 201 and default.json()["scopes"] == ["read"]
    # the command line: a list naming no scope is refused, not stored as a token of none
    with pytest.raises(InvalidInput, match="choose at least one scope"):
        CliRunner().invoke(
            app,
            ["token", "create", "--user", "kz-analyst", "--scopes", ","],
            catch_exceptions=False,
        )
    session.expire_all()
    created = [t.scopes for t in session.query(ApiToken) if t.name in ("x", "token", "cli")]
    assert created == [] and all(t.scopes for t in session.query(ApiToken))


def test_nobody_mints_a_token_for_someone_else(client, auth) -> None:  # type: ignore[no-untyped-def]
    # A token acts as its user, RED shares included: an admin holding one for an analyst
    # would read what was given to that analyst alone.
    for admin, target in (("centre-admin", "kz-analyst"), ("kz-admin", "kz-analyst")):
        r = client.post(
            "/api/v1/tokens",
            json={"user": target, "scopes": ["read"]},
            headers=auth[admin],
        )
        assert r.status_code == 403 and "user who will hold it" in r.json()["detail"], r.text
    # the same answer whether the user exists or not
    ghost = client.post(
        "/api/v1/tokens", json={"user": "nobody-here", "scopes": ["read"]}, headers=auth["kz-admin"]
    )
    assert ghost.status_code == 403
    own = client.post(
        "/api/v1/tokens", json={"user": "kz-admin", "scopes": ["read"]}, headers=auth["kz-admin"]
    )
    assert own.status_code == 201


def test_both_faults_of_a_new_token_are_told_at_once(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = {"scopes": ["read", "write"], "expires_at": "2020-01-01T00:00:00Z"}
    r = client.post("/api/v1/tokens", json=body, headers=auth["kz-reader"])
    assert r.status_code == 422
    faults = {e["field"]: e["detail"] for e in r.json()["errors"]}
    assert list(faults) == ["expires_at", "scopes"]
    assert faults["scopes"] == "a reader cannot hold the scope(s) write"


def test_a_token_neither_mints_successors_nor_outlives_itself(client, auth) -> None:  # type: ignore[no-untyped-def]
    def mint(headers: dict[str, str], **body: object):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/tokens", json={"scopes": ["read"], **body}, headers=headers)

    soon = "2030-01-01T06:00:00Z"
    minted = mint(auth["kz-analyst"], scopes=["read", "write"], expires_at=soon)
    assert minted.headers["cache-control"] == "no-store"  # it holds the secret
    short = minted.json()
    read_only = mint(auth["kz-analyst"]).json()
    bearer = {"Authorization": f"Bearer {read_only['token']}"}
    # a read-only token (leaked, say) neither mints a successor nor revokes
    assert mint(bearer).status_code == 403
    assert client.delete(f"/api/v1/tokens/{short['id']}", headers=bearer).status_code == 403
    # a token that may write mints ones that end when it ends, however long they ask for
    writing = {"Authorization": f"Bearer {short['token']}"}
    endless = mint(writing)
    assert endless.status_code == 201 and endless.json()["expires_at"].startswith("2030-01-01T06")
    later = mint(writing, expires_at="2031-01-01T00:00:00Z").json()
    assert later["expires_at"].startswith("2030-01-01T06")
    sooner = mint(writing, expires_at="2029-01-01T00:00:00Z").json()
    assert sooner["expires_at"].startswith("2029-01-01")
    # a token without an end (as the UI mints by default) mints tokens without one
    assert mint(auth["kz-analyst"]).json()["expires_at"] is None
    # ... and revoking a token revokes what it minted, and what those minted
    grandchild = mint({"Authorization": f"Bearer {later['token']}"})
    assert grandchild.status_code == 403  # a read-only child mints nothing
    deeper = mint(writing, scopes=["read", "write"]).json()
    grandchild = mint({"Authorization": f"Bearer {deeper['token']}"}).json()
    assert (
        client.delete(f"/api/v1/tokens/{short['id']}", headers=auth["kz-analyst"]).status_code
        == 204
    )
    for child in (endless.json(), later, sooner, deeper, grandchild):
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {child['token']}"})
        assert me.status_code == 401, child
    listed = {
        t["id"]: t for t in client.get("/api/v1/tokens", headers=auth["kz-analyst"]).json()["items"]
    }
    assert listed[deeper["id"]]["parent"] == short["id"] and listed[deeper["id"]]["revoked"]
    assert (
        listed[grandchild["id"]]["parent"] == deeper["id"] and listed[grandchild["id"]]["revoked"]
    )
    assert listed[read_only["id"]]["revoked"] is False  # minted by the user, not by the token


def test_role_must_fit_the_organisation(session, network) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="roles"):
        access.create_user(
            session, None, access.UserInput("x-admin", "kz-bank", "admin", "long-enough-pw")
        )


def test_api_token_flow(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/tokens", json={"name": "ci", "scopes": ["read"]}, headers=auth["kz-analyst"]
    )
    assert r.status_code == 201
    secret = r.json()["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
    assert me == {
        "username": "kz-analyst",
        "org": "kz-cert",
        "org_kind": "national-body",
        "role": "analyst",
        "scopes": ["read"],
        "language": "",
    }
    listed = client.get("/api/v1/tokens", headers=auth["kz-analyst"]).json()["items"]
    assert all("token" not in item for item in listed)
    # A read-only token cannot write.
    r = client.post(
        "/api/v1/contacts",
        headers={"Authorization": f"Bearer {secret}"},
        json={"org": "kz-bank", "name": "A", "email": "a@kz-bank.example"},
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    token_id = r.json() and listed[-1]["id"]
    assert (
        client.delete(f"/api/v1/tokens/{token_id}", headers=auth["kz-analyst"]).status_code == 204
    )
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401
    # a token dead on arrival is a mistake to name, not a secret to hand out
    for past in ("2000-01-01T00:00:00Z", -1):
        r = client.post(
            "/api/v1/tokens",
            json={"scopes": ["read"], "expires_at": past},
            headers=auth["kz-analyst"],
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_at", r.text


def test_session_cookie_is_httponly_and_csrf_guards_api_writes(client, network) -> None:  # type: ignore[no-untyped-def]
    r = sign_in(client, "kz-analyst", follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    r = client.post(
        "/api/v1/contacts", json={"org": "kz-bank", "name": "A", "email": "a@kz-bank.example"}
    )
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]


def test_an_admin_keeps_a_way_back_in(client, auth) -> None:  # type: ignore[no-untyped-def]
    # nobody signs in again to undo it: the centre's only admin would lock everyone out
    me = client.patch(
        "/api/v1/users/centre-admin", json={"active": False}, headers=auth["centre-admin"]
    )
    assert me.status_code == 409 and "your own account" in me.json()["detail"]
    assert client.get("/api/v1/me", headers=auth["centre-admin"]).status_code == 200
    other = client.patch(
        "/api/v1/users/centre-analyst", json={"active": False}, headers=auth["centre-admin"]
    )
    assert other.status_code == 200 and other.json()["active"] is False


def test_an_admin_lifts_a_lock_through_the_api_and_nothing_else_locks(client, auth) -> None:  # type: ignore[no-untyped-def]
    from concord.config import get_settings

    for _ in range(get_settings().login_max_failures):
        sign_in(client, "kz-reader", "wrong-password")
    h = auth["kz-admin"]
    assert client.get("/api/v1/users/kz-reader", headers=h).json()["locked"] is True
    r = client.patch("/api/v1/users/kz-reader", json={"locked": False}, headers=h)
    assert r.status_code == 200 and r.json()["locked"] is False, r.text
    again = client.patch("/api/v1/users/kz-reader", json={"locked": False}, headers=h)
    assert again.status_code == 409 and "is not locked" in again.json()["detail"]
    # only failed sign-ins lock: true is refused, at its field
    r = client.patch("/api/v1/users/kz-reader", json={"locked": True}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "locked", r.text
    # an admin of another state does not reach the account
    r = client.patch("/api/v1/users/kz-reader", json={"locked": False}, headers=auth["uz-admin"])
    assert r.status_code == 404


def test_the_api_lists_users_found_by_a_part_of_a_name_and_tells_filters_that_cannot_match(  # type: ignore[no-untyped-def]
    client, auth
) -> None:
    h = auth["kz-admin"]
    r = client.get("/api/v1/users", params={"q": "Bank"}, headers=h)
    assert r.status_code == 200 and [u["username"] for u in r.json()["items"]] == [
        "kz-bank-contact"
    ]
    r = client.get("/api/v1/users", params={"org": "uz-cert", "role": "boss"}, headers=h)
    assert r.status_code == 422, r.text
    assert [(e["field"], e["pointer"]) for e in r.json()["errors"]] == [
        ("org", "/query/org"),
        ("role", "/query/role"),
    ]
    # a % is a character searched for, not a wildcard
    r = client.get("/api/v1/users", params={"q": "%"}, headers=h)
    assert r.status_code == 200 and r.json()["items"] == []
