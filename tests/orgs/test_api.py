"""The organisations, contacts, assets and lookup API over HTTP."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def faults_of(answer) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A problem's faults, by field, in the order told."""
    return {e["field"]: e["detail"] for e in answer.json()["errors"]}


def test_create_and_read_organisation(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = {
        "slug": "kz-rail",
        "kind": "owner",
        "name_en": "Steppe Rail",
        "name_ru": "Степная железная дорога",
        "parent": "kz-cert",
        "sector": "transport",
    }
    r = client.post("/api/v1/organizations", json=body, headers=auth["kz-analyst"])
    assert r.status_code == 201, r.text
    assert r.json()["country"] == "KZ"
    assert r.json()["tlp"] == "amber" and r.json()["parent"] == "kz-cert"
    got = client.get("/api/v1/organizations/kz-rail", headers=auth["centre-reader"]).json()
    assert got["name_ru"] == "Степная железная дорога"
    # Not shared with the UZ national body.
    assert (
        client.get("/api/v1/organizations/kz-rail", headers=auth["uz-analyst"]).status_code == 404
    )
    again = client.post("/api/v1/organizations", json=body, headers=auth["kz-analyst"])
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)


def test_invalid_fields_are_problems_with_locations(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/organizations",
        headers=auth["centre-admin"],
        json={"slug": "Bad Slug", "kind": "owner", "name_en": "X"},
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "slug"
    r = client.post(
        "/api/v1/organizations",
        headers=auth["centre-admin"],
        json={"slug": "zz-cert", "kind": "national-body", "name_en": "X", "country": "ZZ"},
    )
    assert r.status_code == 422 and "country" in r.json()["detail"]
    r = client.post("/api/v1/organizations", headers=auth["centre-admin"], json={"slug": 1})
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} >= {"/body/kind", "/body/name_en"}
    r = client.post(
        "/api/v1/organizations",
        headers={**auth["centre-admin"], "content-type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)


def test_every_fault_of_a_new_organisation_is_told_at_once(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = {
        "slug": "Bad Slug",
        "kind": "owner",
        "name_en": " ",
        "country": "ZZ",
        "language": "xx",
        "parent": "no-such-cert",
        "tlp": "blue",
    }
    r = client.post("/api/v1/organizations", headers=auth["centre-admin"], json=body)
    assert r.status_code == 422
    faults = faults_of(r)
    assert list(faults) == ["slug", "name_en", "country", "language", "parent", "tlp"]
    assert faults["parent"] == "no parent organisation 'no-such-cert'"
    # A rule across fields is told once its fields read: an owner's parent, a state's body.
    r = client.post(
        "/api/v1/organizations",
        headers=auth["centre-admin"],
        json={"slug": "lonely", "kind": "owner", "name_en": " ", "tlp": "blue"},
    )
    faults = faults_of(r)
    assert faults["parent"] == "an owner needs its national body as parent"
    assert set(faults) == {"name_en", "parent", "tlp"}
    r = client.post(
        "/api/v1/organizations",
        headers=auth["centre-admin"],
        json={"slug": "x-cert", "kind": "national-body", "name_en": "X", "language": "xx"},
    )
    faults = faults_of(r)
    assert faults == {
        "language": faults["language"],
        "country": "a national body needs its country",
    }
    r = client.post(
        "/api/v1/organizations",
        headers=auth["centre-admin"],
        json={
            "slug": "kz-rail",
            "kind": "owner",
            "name_en": "R",
            "parent": "kz-cert",
            "country": "UZ",
        },
    )
    assert [e["field"] for e in r.json()["errors"]] == ["country"]
    assert "is in KZ, not UZ" in r.json()["errors"][0]["detail"]


def test_what_the_caller_may_not_do_is_said_before_the_faults_of_the_input(client, auth) -> None:  # type: ignore[no-untyped-def]
    owner = {"slug": "kz-rail", "kind": "owner", "name_en": "R", "parent": "kz-cert", "tlp": "blue"}
    r = client.post("/api/v1/organizations", json=owner, headers=auth["kz-reader"])
    assert r.status_code == 403
    second = {"slug": "centre-2", "kind": "centre", "name_en": "C", "tlp": "blue"}
    r = client.post("/api/v1/organizations", json=second, headers=auth["centre-admin"])
    assert r.status_code == 409
    user = {"username": "uz-x", "org": "uz-cert", "role": "reader", "password": "short"}
    r = client.post("/api/v1/users", json=user, headers=auth["kz-admin"])
    assert r.status_code == 403


def test_every_fault_of_a_new_user_is_told_at_once(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = {
        "username": "bad name",
        "org": "kz-bank",
        "role": "admin",
        "password": "short",
        "email": "not-an-address",
        "language": "xx",
    }
    r = client.post("/api/v1/users", json=body, headers=auth["centre-admin"])
    assert r.status_code == 422
    faults = faults_of(r)
    assert list(faults) == ["username", "role", "password", "email", "language"]
    assert "may have the roles owner-contact, reader" in faults["role"]
    r = client.post(
        "/api/v1/users",
        json={**body, "org": "no-such-org", "role": "chief"},
        headers=auth["centre-admin"],
    )
    faults = faults_of(r)
    assert faults["org"] == "no organisation 'no-such-org'" and "unknown role" in faults["role"]


def test_lists_are_paginated_with_cursors_and_filtered(client, auth) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        client.post(
            "/api/v1/organizations",
            headers=auth["kz-analyst"],
            json={
                "slug": f"kz-owner-{i}",
                "kind": "owner",
                "name_en": f"Owner {i}",
                "parent": "kz-cert",
            },
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, "parent": "kz-cert", **({"cursor": cursor} if cursor else {})}
        page = client.get(
            "/api/v1/organizations", params=params, headers=auth["centre-reader"]
        ).json()
        seen += [o["slug"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(["kz-bank"] + [f"kz-owner-{i}" for i in range(5)])
    assert len(seen) == len(set(seen))
    kinds = client.get(
        "/api/v1/organizations", params={"kind": "national-body"}, headers=auth["kz-bank-contact"]
    ).json()["items"]
    assert {o["slug"] for o in kinds} == {"kz-cert", "uz-cert"}
    bad = client.get(
        "/api/v1/organizations", params={"cursor": "%%%"}, headers=auth["centre-reader"]
    )
    assert bad.status_code == 422


def test_contacts(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/contacts",
        headers=auth["kz-bank-contact"],
        json={
            "org": "kz-bank",
            "name": "Айгерим Сейт",
            "email": "soc@steppe-bank.example",
            "phone": "+7 727 000 00 00",
            "language": "ru",
        },
    )
    assert r.status_code == 201, r.text
    bad = client.post(
        "/api/v1/contacts",
        headers=auth["kz-bank-contact"],
        json={"org": "kz-bank", "name": "X", "email": "not-an-address"},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "email"
    bad = client.post(
        "/api/v1/contacts",
        headers=auth["kz-bank-contact"],
        json={"org": "kz-bank", "name": " ", "email": "x@y", "phone": "call me", "language": "xx"},
    )  # every fault at once
    assert [e["field"] for e in bad.json()["errors"]] == ["name", "email", "phone", "language"]
    assert (
        client.post(
            "/api/v1/contacts",
            headers=auth["uz-telecom-contact"],
            json={"org": "kz-bank", "name": "X", "email": "x@a.example"},
        ).status_code
        == 422  # another state's owner is as unknown as a typo
    )
    listed = client.get("/api/v1/contacts", headers=auth["kz-reader"]).json()["items"]
    assert [c["email"] for c in listed] == ["soc@steppe-bank.example"]
    assert client.get("/api/v1/contacts", headers=auth["uz-analyst"]).json()["items"] == []
    cid = r.json()["id"]
    assert client.delete(f"/api/v1/contacts/{cid}", headers=auth["kz-analyst"]).status_code == 204


def test_asset_import_upload_and_body(client, auth) -> None:  # type: ignore[no-untyped-def]
    csv_text = (
        "kind,value,version\n,198.51.100.0/27,\n,steppe-bank.example,\n"
        "software,pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1,\n"
    )
    r = client.post(
        "/api/v1/assets/import",
        params={"org": "kz-bank"},
        files={"file": ("assets.csv", csv_text.encode(), "text/csv")},
        headers=auth["kz-bank-contact"],
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 3, "changed": 0, "unchanged": 0, "refused": [], "imported": True}
    body = [{"value": "198.51.100.32/27"}, {"value": "2001:db8:10::/33"}]
    r = client.post(
        "/api/v1/assets/import", params={"org": "kz-bank"}, json=body, headers=auth["kz-analyst"]
    )
    report = r.json()
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert report["imported"] is False and report["added"] == 0
    assert report["refused"][0]["pointer"] == "/1" and "host bits" in report["refused"][0]["reason"]
    assert report["errors"] == [
        {"source": "body", "pointer": "/1", "detail": report["refused"][0]["reason"]}
    ]
    assert "1 row(s) refused, nothing imported (first: body:/1: " in report["detail"]
    binary = client.post(
        "/api/v1/assets/import",
        params={"org": "kz-bank"},
        files={"file": ("assets.csv", b"\x00\xff\xfe" * 50, "text/csv")},
        headers=auth["kz-analyst"],
    )
    assert binary.status_code == 422 and binary.json()["errors"][0]["source"] == "assets.csv"
    assets = client.get(
        "/api/v1/assets", params={"org": "kz-bank", "kind": "software"}, headers=auth["kz-reader"]
    ).json()["items"]
    assert assets[0]["value"] == "pkg:maven/org.apache.logging.log4j/log4j-core"
    assert assets[0]["version"] == "2.14.1"
    bogus = client.get("/api/v1/assets", params={"kind": "bogus"}, headers=auth["kz-reader"])
    assert bogus.status_code == 422 and bogus.json()["errors"][0]["field"] == "kind"
    assert "ipv4-prefix" in bogus.json()["detail"]
    who = client.get("/api/v1/whois/198.51.100.7", headers=auth["kz-reader"]).json()
    assert who["owners"][0]["slug"] == "kz-bank"
    assert who["owners"][0]["national_body"]["slug"] == "kz-cert"
    assert client.get("/api/v1/whois/198.51.100.7", headers=auth["uz-analyst"]).status_code == 404
    assert client.get("/api/v1/whois/192.0.2.1", headers=auth["kz-reader"]).status_code == 404
    bad = client.get("/api/v1/whois/999.1.1.1", headers=auth["kz-reader"])
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query"
    added = client.post(
        "/api/v1/assets/import",
        params={"org": "kz-bank"},
        content="kind,value\nasn,AS64511\n",
        headers={**auth["kz-analyst"], "content-type": "text/csv"},
    )
    assert added.status_code == 200, added.text
    for query in ("AS64511", "64511"):  # a bare number is an AS number, as whois tools read it
        found = client.get(f"/api/v1/whois/{query}", headers=auth["kz-reader"]).json()
        assert found["owners"][0]["slug"] == "kz-bank", (query, found)


def test_whois_names_the_national_body_of_a_bodys_or_the_centres_own_resource(  # type: ignore[no-untyped-def]
    client, session, auth
) -> None:
    """A national body's own network is its own; the centre's has no national body (its
    parent is no national body of its)."""
    from tests.intake.test_service import give_prefix

    give_prefix(session, "kz-cert", "198.51.100.0/25")
    give_prefix(session, "ccc", "203.0.113.0/24")
    body = client.get("/api/v1/whois/198.51.100.7", headers=auth["centre-analyst"]).json()
    assert body["owners"][0]["slug"] == "kz-cert"
    assert body["owners"][0]["national_body"]["slug"] == "kz-cert"
    centre = client.get("/api/v1/whois/203.0.113.7", headers=auth["centre-analyst"]).json()
    assert centre["owners"][0]["slug"] == "ccc" and centre["owners"][0]["national_body"] is None


def test_oversized_upload_is_413(client, auth, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.config import reset_settings

    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", "100")
    reset_settings()
    r = client.post(
        "/api/v1/assets/import",
        params={"org": "kz-bank"},
        content=b"value\n" + b"198.51.100.0/27\n" * 20,
        headers={**auth["kz-analyst"], "content-type": "text/csv"},
    )
    assert r.status_code == 413 and "100 bytes" in r.json()["detail"]


def test_openapi_and_health(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/organizations" in spec["paths"] and "/api/v1/whois/{query}" in spec["paths"]
    # a generated client learns to send its token
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert spec["security"] == [{"token": []}]
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/v1/health").json()["status"] == "ok"
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_health_is_not_ok_on_a_database_without_this_releases_schema(
    env, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from fastapi.testclient import TestClient

    from concord import db
    from concord.config import reset_settings
    from concord.web.app import create_app

    for name, older in (("empty.db", None), ("older.db", "0021")):
        path = tmp_path / name
        with sqlite3.connect(path) as conn:
            if older:
                conn.execute("create table alembic_version (version_num varchar(32))")
                conn.execute("insert into alembic_version values (?)", (older,))
        monkeypatch.setenv("CONCORD_DATABASE_URL", f"sqlite:///{path}")
        reset_settings()
        db.dispose_engines()
        with TestClient(create_app()) as client:
            r = client.get("/api/v1/health")
        assert r.status_code == 503, r.text
        said = "upgrade it" if older else "run `concord init` first"
        assert said in r.json()["status"], r.text


def test_an_owner_is_in_the_state_of_its_national_body(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = {"slug": "uz-in-kz", "kind": "owner", "name_en": "X", "parent": "kz-cert"}
    r = client.post(
        "/api/v1/organizations", json={**body, "country": "UZ"}, headers=auth["kz-analyst"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "country"
    assert "under kz-cert is in KZ, not UZ" in r.json()["detail"]
    r = client.patch(
        "/api/v1/organizations/kz-bank", json={"country": "UZ"}, headers=auth["kz-analyst"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "country"
    kept = client.get("/api/v1/organizations/kz-bank", headers=auth["kz-analyst"]).json()
    assert kept["country"] == "KZ"


def test_an_owner_contact_cannot_claim_what_another_organisation_holds(client, auth) -> None:  # type: ignore[no-untyped-def]
    def send(user: str, org: str, values: list[str], **params: object):  # type: ignore[no-untyped-def]
        return client.post(
            "/api/v1/assets/import",
            params={"org": org, **params},
            json=[{"value": v} for v in values],
            headers=auth[user],
        ).json()

    held = send("uz-analyst", "uz-telecom", ["203.0.113.0/28", "telecom.example", "AS64501"])
    assert held["imported"] is True and held["added"] == 3
    claims = [
        "0.0.0.0/0",  # the whole Internet: too wide for anyone
        "203.0.113.7/32",  # inside uz-telecom's network
        "203.0.112.0/23",  # around it
        "mail.telecom.example",  # under its domain
        "AS64501",
        "198.51.100.0/27",  # its own, held by nobody else
    ]
    report = send("kz-bank-contact", "kz-bank", claims)
    assert report["imported"] is False
    refused = {r["pointer"]: r["reason"] for r in report["refused"]}
    assert set(refused) == {"/0", "/1", "/2", "/3", "/4"}
    assert "too wide" in refused["/0"] and "another organisation" in refused["/1"]
    assert "uz-telecom" not in " ".join(refused.values())  # who holds it is not told
    assert send("kz-bank-contact", "kz-bank", claims, valid_only=True)["added"] == 1
    who = client.get("/api/v1/whois/203.0.113.7", headers=auth["uz-analyst"]).json()
    assert [o["slug"] for o in who["owners"]] == ["uz-telecom"]
    # a national body records overlaps among its own constituents, not over another state's
    over = send("kz-analyst", "kz-bank", ["203.0.113.8/32"])
    assert over["imported"] is False and "ask the centre" in over["refused"][0]["reason"]
    assert send("kz-analyst", "kz-bank", ["::/0"])["imported"] is False
    assert send("kz-analyst", "kz-bank", ["198.51.100.0/28"])["added"] == 1  # kz-bank's own
    assert send("centre-admin", "kz-bank", ["203.0.113.8/32"])["added"] == 1


def test_asset_import_in_an_unknown_format_is_415(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/assets/import",
        params={"org": "kz-bank", "format": "xml"},
        content=b"<assets/>",
        headers={**auth["kz-analyst"], "content-type": "application/xml"},
    )
    assert r.status_code == 415 and "use csv or json" in r.json()["detail"]


def test_a_national_body_cannot_become_another_state(client, auth) -> None:  # type: ignore[no-untyped-def]
    # Its country decides whose reports, alerts and events it reads.
    r = client.patch(
        "/api/v1/organizations/kz-cert", json={"country": "UZ"}, headers=auth["kz-analyst"]
    )
    assert r.status_code == 403 and "only the centre" in r.json()["detail"]
    moved = client.patch(
        "/api/v1/organizations/kz-cert", json={"country": "UZ"}, headers=auth["centre-admin"]
    )
    assert moved.status_code == 409 and "uz-cert" in moved.json()["detail"]
    kept = client.get("/api/v1/organizations/kz-cert", headers=auth["kz-analyst"]).json()
    assert kept["country"] == "KZ"
    renamed = client.patch(
        "/api/v1/organizations/kz-cert", json={"name_en": "KZ-CERT"}, headers=auth["kz-analyst"]
    )
    assert renamed.status_code == 200


def test_every_fault_of_a_change_is_told_at_once_and_nothing_changes(client, auth) -> None:  # type: ignore[no-untyped-def]
    change = {"name_en": " ", "language": "xx", "tlp": "blue", "sector": "rail"}
    r = client.patch("/api/v1/organizations/kz-bank", json=change, headers=auth["kz-analyst"])
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["name_en", "language", "tlp"]
    kept = client.get("/api/v1/organizations/kz-bank", headers=auth["kz-analyst"]).json()
    assert kept["sector"] != "rail"  # the valid field is not applied alone


def test_one_centre_and_one_national_body_per_state(client, auth) -> None:  # type: ignore[no-untyped-def]
    def add(body: dict[str, str]):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/organizations", json=body, headers=auth["centre-admin"])

    second = add({"slug": "kz-cert-2", "kind": "national-body", "name_en": "X", "country": "KZ"})
    assert second.status_code == 409 and "kz-cert" in second.json()["detail"]
    centre = add({"slug": "centre-2", "kind": "centre", "name_en": "Second centre"})
    assert centre.status_code == 409
    new = add({"slug": "tj-cert", "kind": "national-body", "name_en": "TJ", "country": "TJ"})
    assert new.status_code == 201 and new.json()["parent"] is not None


def test_text_search_folds_any_letters_and_takes_wildcards_literally(client, auth) -> None:  # type: ignore[no-untyped-def]
    def names(q: str) -> list[str]:
        r = client.get("/api/v1/organizations", params={"q": q}, headers=auth["centre-admin"])
        assert r.status_code == 200, r.text
        return [o["slug"] for o in r.json()["items"]]

    # kz-cert's Russian name is "Национальный CERT Казахстана"
    assert names("НАЦИОНАЛЬНЫЙ cert казах") == ["kz-cert"]
    assert names("%") == [] and names("_") == []  # not "any text"
    assert sorted(names("kz-")) == ["kz-bank", "kz-cert"]


def test_a_creation_answers_where_the_new_thing_is(client, auth) -> None:  # type: ignore[no-untyped-def]
    admin = auth["centre-admin"]
    body = {"slug": "kz-rail", "kind": "owner", "name_en": "Rail", "parent": "kz-cert"}
    org = client.post("/api/v1/organizations", json=body, headers=admin)
    assert org.status_code == 201 and org.headers["location"] == "/api/v1/organizations/kz-rail"
    assert client.get(org.headers["location"], headers=admin).json()["slug"] == "kz-rail"
    user = {
        "username": "rail-contact",
        "org": "kz-rail",
        "role": "owner-contact",
        "password": "long-enough-pw",
    }
    made = client.post("/api/v1/users", json=user, headers=admin)
    assert made.status_code == 201 and made.headers["location"] == "/api/v1/users/rail-contact"
    case = client.post("/api/v1/cases", json={"title": "Rail"}, headers=auth["centre-analyst"])
    assert case.status_code == 201
    assert case.headers["location"] == f"/api/v1/cases/{case.json()['id']}"
