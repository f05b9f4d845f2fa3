"""Requests the database or the calendar cannot hold get a 422 that names the field, never a
500: numbers too large for a key, times a zone pushes out of range, report periods at the
ends of the calendar, a form without its file part."""

from __future__ import annotations

import base64

PROBLEM = "application/problem+json"
HUGE = "99999999999999999999"


def test_a_time_without_a_zone_is_utc_and_one_utc_cannot_hold_is_named(client, auth) -> None:  # type: ignore[no-untyped-def]
    for since in ("2024-01-01", "2024-01-01T00:00:00", "2024-01-01T05:00:00+05:00"):
        r = client.get("/api/v1/events", params={"since": since}, headers=auth["kz-reader"])
        assert r.status_code == 200, (since, r.text)
    assert (
        client.get(
            "/api/v1/audit", params={"since": "2024-01-01T00:00:00"}, headers=auth["kz-admin"]
        ).status_code
        == 200
    )
    r = client.get(
        "/api/v1/events", params={"until": "9999-12-31T23:59:59-14:00"}, headers=auth["kz-reader"]
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["pointer"] == "/query/until"
    created = client.post(
        "/api/v1/tokens",
        json={"name": "ci", "expires_at": "2030-01-01T00:00:00"},
        headers=auth["kz-analyst"],
    )
    assert created.status_code == 201 and created.json()["expires_at"].startswith("2030-01-01")


def test_numbers_too_large_for_a_key_are_named(client, auth) -> None:  # type: ignore[no-untyped-def]
    for url in (f"/api/v1/events/{HUGE}", f"/api/v1/cases/{HUGE}", f"/api/v1/intake/{HUGE}"):
        r = client.get(url, headers=auth["centre-analyst"])
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (url, r.text)
        assert r.json()["errors"][0]["pointer"].startswith("/path/")
    r = client.get("/api/v1/events", params={"submission": HUGE}, headers=auth["kz-reader"])
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/submission"
    cursor = base64.urlsafe_b64encode(f"id:{HUGE}".encode()).decode().rstrip("=")
    r = client.get("/api/v1/events", params={"cursor": cursor}, headers=auth["kz-reader"])
    assert r.status_code == 422 and "invalid cursor" in r.text


def test_report_periods_at_the_ends_of_the_calendar_are_refused(client, auth) -> None:  # type: ignore[no-untyped-def]
    for period in ("9999-W52", "0001-W01", "0001-01-01", "9999-12-31"):
        r = client.post(
            "/api/v1/reports",
            json={"period": period, "scope": "network"},
            headers=auth["centre-analyst"],
        )
        assert r.status_code == 422 and "ends of the calendar" in r.text, (period, r.text)


def test_a_form_without_its_file_part_is_told_where_the_file_goes(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/intake",
        files={"upload": ("scan_rdp.csv", b'"timestamp","ip"\n')},
        headers=auth["kz-analyst"],
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["errors"][0]["field"] == "file"
    assert "pointer" not in r.json()["errors"][0]  # the form has no such part: none is guessed


def test_a_nul_character_is_refused_in_words_and_usernames_are_latin(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/cases", json={"title": "t\u0000"}, headers=auth["kz-analyst"])
    assert r.status_code in (201, 422)  # SQLite stores it; PostgreSQL cannot
    if r.status_code == 422:
        assert "NUL character" in r.json()["detail"]
    lookalike = client.post(
        "/api/v1/users",
        json={
            "username": "\u0441\u0441\u0441-admin",  # Cyrillic, like ccc-admin
            "org": "kz-cert",
            "role": "reader",
            "password": "a long enough password 1",
        },
        headers=auth["centre-admin"],
    )
    assert lookalike.status_code == 422 and "Latin letters" in lookalike.text


def test_event_filters_no_event_can_match_are_refused(client, auth) -> None:  # type: ignore[no-untyped-def]
    for params, field in (
        ({"class": "bogus"}, "class"),
        ({"type": "bogus"}, "type"),
        ({"country": "zzz"}, "country"),
    ):
        r = client.get("/api/v1/events", params=params, headers=auth["kz-reader"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    ok = {"class": "fraud", "type": "phishing", "country": "kz"}
    assert client.get("/api/v1/events", params=ok, headers=auth["kz-reader"]).status_code == 200


def test_a_body_nested_too_deeply_is_told_so(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/cases",
        content=b"[" * 10000 + b"]" * 10000,
        headers={**auth["kz-analyst"], "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    assert "nested too deeply" in r.json()["detail"]
    assert r.json()["errors"][0]["pointer"] == "/body"
    latin = client.post(
        "/api/v1/cases",
        content='{"title": "Caf\u00e9"}'.encode("latin-1"),
        headers={**auth["kz-analyst"], "content-type": "application/json"},
    )
    assert latin.status_code == 400 and latin.json()["errors"] == [
        {"pointer": "/body", "detail": "the body is not UTF-8, which JSON must be"}
    ], latin.text


def test_list_filters_nothing_can_match_are_refused(client, auth) -> None:  # type: ignore[no-untyped-def]
    for url, params, field in (
        ("/api/v1/organizations", {"kind": "bogus"}, "kind"),
        ("/api/v1/organizations", {"country": "ZZZ"}, "country"),
        ("/api/v1/users", {"role": "god"}, "role"),
        ("/api/v1/indicators", {"kind": "ipv5"}, "kind"),
        ("/api/v1/indicators", {"kind": "ipv5", "value": "192.0.2.1"}, "kind"),
        ("/api/v1/reports", {"scope": "Kazakhstan"}, "scope"),
    ):
        r = client.get(url, params=params, headers=auth["centre-admin"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (url, r.text)
    listed = client.get(
        "/api/v1/organizations",
        params={"kind": "owner", "country": "kz"},
        headers=auth["centre-admin"],
    )
    assert listed.status_code == 200 and listed.json()["items"]
    by_kind = client.get("/api/v1/indicators", params={"kind": "IPv4"}, headers=auth["kz-reader"])
    assert by_kind.status_code == 200


def test_a_field_a_body_does_not_know_is_refused_not_ignored(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from concord.access.model import User

    # a role cannot be changed through PATCH: before, this answered 200 having done nothing
    r = client.patch(
        "/api/v1/users/kz-reader", json={"role": "admin"}, headers=auth["centre-admin"]
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["errors"][0]["pointer"] == "/body/role"
    assert session.scalar(select(User.role).where(User.username == "kz-reader")) == "reader"
    # a misspelt field of a new case is named too, and no case is made
    r = client.post(
        "/api/v1/cases",
        json={"title": "Spelling", "severty": "high"},
        headers=auth["centre-analyst"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/severty"
    assert client.get("/api/v1/cases", headers=auth["centre-analyst"]).json()["items"] == []


def test_what_no_column_can_hold_is_named_in_the_body(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = {**auth["centre-admin"], "content-type": "application/json"}
    cases = [
        # an unpaired surrogate in a name or reference: a 500 before, from the database driver
        (
            "post",
            "/api/v1/users",
            '{"username": "x", "org": "\\ud800", "role": "reader"}',
            "/body/org",
        ),
        (
            "post",
            "/api/v1/cases",
            '{"title": "t", "participants": ["\\ud800"]}',
            "/body/participants",
        ),
        # a NUL kept by SQLite would reach every page showing the title
        ("post", "/api/v1/cases", '{"title": "nul\\u0000title"}', "/body/title"),
        ("patch", "/api/v1/organizations/kz-bank", '{"name_en": "a\\u0000b"}', "/body/name_en"),
        # a number past 64 bits, named where it is
        (
            "post",
            "/api/v1/cases",
            '{"title": "t", "event_ids": [99999999999999999999]}',
            "/body/event_ids",
        ),
    ]
    for method, url, body, pointer in cases:
        r = client.request(method, url, content=body.encode(), headers=h)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (url, r.text)
        assert r.json()["errors"][0]["pointer"] == pointer, (url, r.text)
    assert client.get("/api/v1/cases", headers=h).json()["items"] == []


def test_a_value_of_another_type_is_refused_not_converted(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from concord.access.model import User

    # "yes" read as true would deactivate or keep an account on a guess
    r = client.patch("/api/v1/users/kz-reader", json={"active": "no"}, headers=auth["centre-admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/active"
    assert session.scalar(select(User.active).where(User.username == "kz-reader")) is True
    # true is not event 1, nor "12" event 12
    for ids in ([True], ["12"], [1.5]):
        r = client.post(
            "/api/v1/cases",
            json={"title": "Types", "event_ids": ids},
            headers=auth["centre-analyst"],
        )
        assert r.status_code == 422, ids
        # the schema's faults name the field they are in, as the services' faults do
        assert r.json()["errors"][0]["pointer"] == "/body/event_ids/0", ids
        assert r.json()["errors"][0]["field"] == "event_ids", ids
    r = client.post(
        "/api/v1/reports", json={"period": "2024-07", "wait": 1}, headers=auth["centre-analyst"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/wait"
    # a time is still written as text in JSON
    r = client.post(
        "/api/v1/tokens",
        json={"name": "soon", "expires_at": "2099-01-01T00:00:00Z"},
        headers=auth["kz-analyst"],
    )
    assert r.status_code == 201, r.text


def test_a_json_body_sent_as_another_type_is_refused_as_such(client, auth) -> None:  # type: ignore[no-untyped-def]
    body = b'{"title": "Typed"}'
    for content_type in ("text/plain", None, "application/x-www-form-urlencoded"):
        headers = dict(auth["kz-analyst"])
        if content_type:
            headers["content-type"] = content_type
        r = client.post("/api/v1/cases", content=body, headers=headers)
        assert r.status_code == 415 and r.headers["content-type"] == PROBLEM, (content_type, r)
        assert "application/json" in r.json()["detail"]
    # a JSON type of its own is JSON
    r = client.post(
        "/api/v1/cases",
        content=body,
        headers={**auth["kz-analyst"], "content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 201, r.text
    # JSON is UTF-8 (RFC 8259), whatever the body holds
    for content in (b'{"title": "Caf\xe9"}', body):
        r = client.post(
            "/api/v1/cases",
            content=content,
            headers={**auth["kz-analyst"], "content-type": "application/json; charset=latin-1"},
        )
        assert r.status_code == 415 and "UTF-8" in r.json()["detail"], r.text
    r = client.post(
        "/api/v1/cases",
        content=b'{"title": "Caf\xe9"}',
        headers={**auth["kz-analyst"], "content-type": "application/json"},
    )
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"], r.text
    r = client.post(
        "/api/v1/cases",
        content='{"title": "Café"}'.encode(),
        headers={**auth["kz-analyst"], "content-type": "application/json; charset=UTF-8"},
    )
    assert r.status_code == 201, r.text


def test_a_query_parameter_given_twice_is_refused_naming_it(client, auth) -> None:  # type: ignore[no-untyped-def]
    for url in ("/api/v1/indicators?value=a&value=b", "/api/v1/events?limit=2000&limit=1"):
        r = client.get(url, headers=auth["kz-reader"])
        name = url.split("?")[1].split("=")[0]
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == f"/query/{name}", r.text
        assert "more than once" in r.json()["detail"]
    # a parameter that takes a list still does
    case = client.post("/api/v1/cases", json={"title": "Listed"}, headers=auth["kz-analyst"])
    r = client.delete(
        f"/api/v1/cases/{case.json()['id']}/events?event_id=1&event_id=2",
        headers=auth["kz-analyst"],
    )
    assert r.status_code != 422 or "more than once" not in r.text, r.text


def test_a_key_given_twice_in_a_body_is_refused_naming_it(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = {**auth["kz-analyst"], "content-type": "application/json"}
    for body, pointer in (
        (b'{"title": "x", "title": "y"}', "/body/title"),
        (b'{"name": "ci", "expires_at": null, "expires_at": null}', "/body/expires_at"),
    ):
        url = "/api/v1/cases" if b"title" in body else "/api/v1/tokens"
        r = client.post(url, content=body, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == pointer, r.text
        assert "more than once" in r.json()["detail"]
    assert client.get("/api/v1/cases", headers=h).json()["items"] == []


def test_malformed_json_is_located_in_the_body_not_at_a_field(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/cases",
        content=b'{"title": "x",',
        headers={**auth["kz-analyst"], "content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["pointer"] == "/body"
    assert error["detail"].startswith("malformed JSON at character 14"), error


def test_a_validator_s_message_comes_without_pydantic_s_prefix(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/events", params={"since": "yesterday"}, headers=auth["kz-reader"])
    assert r.status_code == 422
    assert (
        r.json()["errors"][0]["detail"]
        == "invalid date 'yesterday'; use YYYY-MM-DD or a time such as 2024-03-10T23:30:00Z"
    )
    assert "Value error" not in r.json()["detail"]


def test_refusals_keep_the_headers_that_say_what_to_do(client, auth) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, {"Authorization": "Bearer cnc_not-a-token"}):
        r = client.get("/api/v1/cases", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.headers
        assert r.headers["content-type"] == PROBLEM
    r = client.put("/api/v1/cases", json={}, headers=auth["kz-analyst"])
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_a_key_given_twice_deeper_in_a_body_is_located_by_its_pointer() -> None:
    from concord.web.deps import _repeated_key

    assert _repeated_key(b'{"a": [{"x/y": 1, "x/y": 2}], "b": 1}') == ("/a/0/x~1y", "x/y")
    assert _repeated_key(b'{"a": {"b": 1}, "c": {"b": 2}}') is None


def test_a_fault_named_by_a_field_is_located_at_the_input_holding_it(client, auth) -> None:  # type: ignore[no-untyped-def]
    """A fault a service names by its field is given a pointer to where the request holds
    that name, as the faults read from the request are: the field stays, as clients read it."""
    h = auth["centre-analyst"]
    # keys of the JSON body, each at its own
    body = {"title": " ", "event_ids": [111], "indicators": ["198.51.100.88"], "tlp": "blue"}
    r = client.post("/api/v1/cases", json=body, headers=h)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    told = r.json()["errors"]
    assert [(e["field"], e["pointer"]) for e in told] == [
        (name, f"/body/{name}") for name in ("title", "event_ids", "indicators", "tlp")
    ]
    assert told[0]["detail"] == r.json()["detail"] == "a case needs a title"
    # an organisation to share with, named in the body; the one in the path is another
    r = client.post("/api/v1/organizations/uz-telecom/shares", json={"org": "nosuch"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"pointer": "/body/org", "field": "org", "detail": "no organisation 'nosuch'"}
    ], r.text
    # a name the query string holds (the body is a list: it holds no names)
    r = client.post(
        "/api/v1/assets/import",
        params={"org": "nosuch"},
        json=[{"value": "192.0.2.0/28"}],
        headers=auth["kz-analyst"],
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org", r.text
    assert r.json()["errors"][0]["pointer"] == "/query/org"
    # a path parameter
    r = client.get("/api/v1/whois/999.1.1.1", headers=h)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"pointer": "/path/query", "field": "query", "detail": r.json()["detail"]}
    ], r.text
