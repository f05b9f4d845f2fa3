"""The reports API and UI: build on demand, list and read as each organisation may."""

from __future__ import annotations

import csv
import io
import re

import pytest

from concord.reports import period as periods
from concord.reports import service
from tests.conftest import sign_in
from tests.reports import seed

API = "/api/v1/reports"


@pytest.fixture
def data(session, network, auth):  # type: ignore[no-untyped-def]
    return seed(session)


def _create(client, auth, user: str, **body: str):  # type: ignore[no-untyped-def]
    """Built within the request (`wait`), answered with the report."""
    return client.post(API, json={"period": "2024-07", "wait": True, **body}, headers=auth[user])


def test_a_report_asked_for_is_built_by_a_worker(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    from concord.jobs.worker import run_ready

    r = client.post(API, json={"period": "2024-07", "scope": "KZ"}, headers=auth["kz-analyst"])
    assert r.status_code == 202, r.text
    asked = r.json()
    assert (asked["status"], asked["report_id"], asked["period"]) == ("queued", None, "2024-07")
    follow = r.headers["location"]
    assert follow == f"/api/v1/report-requests/{asked['id']}"
    assert client.get(API, headers=auth["kz-analyst"]).json()["items"] == []  # not yet built
    # the request is its requester's to follow; a colleague is told of no such request
    assert client.get(follow, headers=auth["kz-admin"]).status_code == 404
    assert run_ready() == 1
    done = client.get(follow, headers=auth["kz-analyst"]).json()
    assert done["status"] == "ready" and done["finished_at"] and done["error"] is None
    built = client.get(f"{API}/{done['report_id']}", headers=auth["kz-analyst"]).json()
    assert built["report"]["totals"]["events"] == 18 and built["tlp"] == "green"
    # what can be refused at once is, before any work is queued
    for body, status in (
        ({"period": "2024-07", "scope": "UZ"}, 403),
        ({"period": "2999-01", "scope": "KZ"}, 422),
        ({"period": "2024-07", "scope": "TJ"}, 422),  # no national body: a wrong value
    ):
        r = client.post(API, json=body, headers=auth["kz-analyst"])
        assert r.status_code == status, (body, r.text)
    assert run_ready() == 0


def test_a_request_that_cannot_be_built_says_why(client, auth, data, session) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from concord.access.model import User
    from concord.jobs.worker import run_ready

    asked = client.post(
        API, json={"period": "2024-07", "scope": "network"}, headers=auth["centre-analyst"]
    ).json()
    # the requester leaves before a worker comes to it
    session.execute(update(User).where(User.username == "centre-analyst").values(active=False))
    session.commit()
    assert run_ready() == 1
    session.execute(update(User).where(User.username == "centre-analyst").values(active=True))
    session.commit()
    done = client.get(f"/api/v1/report-requests/{asked['id']}", headers=auth["centre-analyst"])
    assert done.json()["status"] == "failed"
    assert done.json()["error"] == "the requesting user is no longer active"
    assert client.get(API, headers=auth["centre-analyst"]).json()["items"] == []


def test_build_on_demand_as_json_html_and_csv(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    r = _create(client, auth, "kz-analyst", scope="KZ")
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"{API}/{body['id']}"
    assert (body["scope"], body["period"], body["tlp"], body["format"]) == (
        "KZ",
        "2024-07",
        "green",
        "json",
    )
    assert body["report"]["totals"]["events"] == 18

    r = _create(client, auth, "centre-analyst", scope="network", format="html", language="ru")
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("text/html")
    assert r.text.count("TLP:AMBER</div>") == 2 and "<svg" in r.text
    assert "Обобщённый отчёт" in r.text

    r = _create(client, auth, "centre-admin", scope="network", format="csv")
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/csv")
    # with a byte-order mark, so that spreadsheet programs read the file as UTF-8
    assert r.content.startswith(b"\xef\xbb\xbfsection,")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["section", "key", "metric", "value"]
    assert rows[1] == ["report", "", "tlp", "amber"]


def test_who_may_build(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    for user, scope, status in (
        ("kz-analyst", "network", 403),
        ("kz-analyst", "UZ", 403),
        ("uz-admin", "KZ", 403),
        ("kz-reader", "KZ", 403),  # a reader's token has no write scope
        ("centre-reader", "network", 403),
        ("kz-bank-contact", "KZ", 403),
        ("centre-analyst", "UZ", 201),
    ):
        r = _create(client, auth, user, scope=scope)
        assert r.status_code == status, (user, scope, r.text)
    assert client.post(API, json={"period": "2024-07"}).status_code == 401


def test_bad_input_is_a_problem_with_its_field(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    r = client.post(API, json={"period": "2024-13"}, headers=auth["centre-analyst"])
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["pointer"] == "/body/period"
    r = client.post(
        API, json={"period": "2024-07", "scope": "Kazakhstan"}, headers=auth["centre-analyst"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/scope"
    # each read with the rest of the body: told together
    r = client.post(
        API,
        json={"period": "2024-13", "scope": "Kazakhstan", "format": "pdf", "wait": True},
        headers=auth["centre-analyst"],
    )
    assert [e["pointer"] for e in r.json()["errors"]] == [
        "/body/period",
        "/body/scope",
        "/body/format",
    ]
    assert r.json()["errors"][1]["detail"] == (
        "'Kazakhstan' is not a scope; use 'network' or a two-letter country code"
    )
    # a state without a national body is a wrong value of `scope`, like a malformed one
    for wait in (True, False):
        body = {"period": "2024-07", "scope": "TJ", "wait": wait}
        r = client.post(API, json=body, headers=auth["centre-analyst"])
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["field"] == "scope"
        assert "no national body of TJ" in r.json()["detail"]
    r = client.post(
        API, json={"period": "2024-07", "format": "pdf"}, headers=auth["centre-analyst"]
    )
    assert r.status_code == 422
    # in the command line's words, not a pattern's
    said = "unknown report format 'pdf'; use one of html, json, csv"
    assert r.json()["errors"][0]["pointer"] == "/body/format"
    assert said in r.json()["errors"][0]["detail"], r.text
    r = client.get(f"{API}/1", params={"format": "PDF"}, headers=auth["centre-analyst"])
    assert r.status_code == 422 and "unknown report format 'PDF'" in r.text, r.text
    assert r.json()["errors"][0]["pointer"] == "/query/format"
    # a language no page is written in is named, as for users and organisations
    body = {"period": "2024-07", "format": "html", "language": "klingon"}
    r = client.post(API, json=body, headers=auth["centre-analyst"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "language"
    assert client.get(API, headers=auth["centre-analyst"]).json()["items"] == []  # none built
    made = _create(client, auth, "centre-analyst").json()
    r = client.get(
        f"{API}/{made['id']}", params={"language": "klingon"}, headers=auth["centre-analyst"]
    )
    assert r.status_code == 422 and "unsupported language" in r.json()["detail"]


def test_listing_and_reading_follow_scope_and_tlp(client, auth, session, data) -> None:  # type: ignore[no-untyped-def]
    service.build_scheduled(session, periods.parse("2024-07"))
    session.commit()

    def scopes(user: str) -> list[str]:
        r = client.get(API, headers=auth[user])
        assert r.status_code == 200, r.text
        return sorted(item["scope"] for item in r.json()["items"])

    # A state's own report is its national body's; the centre reads its own version of each
    # (seen by the centre), whatever the state's own is marked: whether the state's report
    # is listed to it would tell it of AMBER+STRICT content it may not see.
    assert scopes("centre-reader") == ["KZ", "UZ", "network"]
    assert scopes("kz-reader") == ["KZ"]
    assert scopes("uz-analyst") == ["UZ"]
    assert scopes("kz-bank-contact") == []
    assert client.get(API).status_code == 401

    items = client.get(API, headers=auth["centre-admin"]).json()["items"]
    assert {i["scope"]: i["seen_by"] for i in items} == {
        "KZ": "centre",
        "UZ": "centre",
        "network": None,
    }
    centre_ids = {i["scope"]: i["id"] for i in items}
    ids = {
        **{i["scope"]: i["id"] for i in client.get(API, headers=auth["kz-reader"]).json()["items"]},
        **{
            i["scope"]: i["id"] for i in client.get(API, headers=auth["uz-analyst"]).json()["items"]
        },
    }
    for hidden in (ids["UZ"], ids["KZ"]):  # the states' own: not the centre's to read
        assert client.get(f"{API}/{hidden}", headers=auth["centre-admin"]).status_code == 404
    r = client.get(f"{API}/{centre_ids['UZ']}", headers=auth["uz-analyst"])
    assert r.status_code == 404  # the centre's version is the centre's
    r = client.get(f"{API}/{ids['UZ']}", headers=auth["kz-analyst"])
    assert r.status_code == 404
    r = client.get(f"{API}/{centre_ids['network']}", headers=auth["uz-admin"])
    assert r.status_code == 404
    r = client.get(f"{API}/{ids['UZ']}", headers=auth["uz-analyst"])
    assert r.status_code == 200 and r.json()["report"]["totals"]["events"] == 7
    r = client.get(f"{API}/{ids['KZ']}?format=csv", headers=auth["kz-reader"])
    assert r.status_code == 200 and "by_state,UZ,events,<3" in r.text
    r = client.get(f"{API}/{ids['KZ']}?format=html&language=ru", headers=auth["kz-reader"])
    assert r.status_code == 200 and "TLP:GREEN" in r.text and "Обобщённый" in r.text
    r = client.get(f"{API}?scope=network&period=2024-07", headers=auth["centre-admin"])
    assert [i["scope"] for i in r.json()["items"]] == ["network"]
    page = client.get(f"{API}?limit=2", headers=auth["centre-admin"]).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(f"{API}?limit=2&cursor={page['next_cursor']}", headers=auth["centre-admin"])
    assert len(rest.json()["items"]) == 1


def test_ui_lists_builds_and_shows_a_report(client, data) -> None:  # type: ignore[no-untyped-def]
    r = sign_in(client, "kz-analyst")
    assert r.status_code == 200
    page = client.get("/reports")
    assert page.status_code == 200 and 'id="build-report"' in page.text
    assert '<option value="KZ"' in page.text and 'value="network"' not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/reports", data={"period": "2024-07", "scope": "KZ"}, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = client.post(
        "/reports",
        data={"period": "2024-07", "scope": "KZ", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/reports#request-1"
    waiting = client.get("/reports").text
    assert '<tr id="request-1" data-status="queued">' in waiting
    assert 'hx-trigger="every 3s"' in waiting  # the page follows the build by itself
    from concord.jobs.worker import run_ready

    assert run_ready() == 1
    ready = client.get("/reports").text
    assert '<tr id="request-1" data-status="ready">' in ready and "every 3s" not in ready
    link = re.search(r'<a href="(/reports/\d+)">ready: open report \d+</a>', ready)
    assert link, ready
    shown = client.get(link.group(1))
    assert shown.status_code == 200
    assert shown.text.count("TLP:GREEN</div>") == 2 and "<svg" in shown.text
    assert 'aria-current="page">Reports' in shown.text
    listed = client.get("/reports")
    assert "2024-07" in listed.text and "TLP:GREEN" in listed.text
    r = client.post("/reports", data={"period": "July", "scope": "KZ", "csrf_token": token})
    assert r.status_code == 422 and "is not a period" in r.text


def test_a_report_page_downloads_each_format_rather_than_opening_it(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    report_id = _create(client, auth, "kz-analyst", scope="KZ").json()["id"]
    sign_in(client, "kz-analyst")
    page = client.get(f"/reports/{report_id}").text
    links = re.findall(r'<a href="(/api/v1/reports/\d+\?format=(\w+)[^"]*)"([^>]*)>', page)
    assert [fmt for _url, fmt, _rest in links] == ["html", "csv", "json"]
    for url, fmt, rest in links:
        assert rest == " download", rest  # saved, not opened in place of the page
        saved = client.get(url.replace("&amp;", "&"))
        assert saved.status_code == 200
        name = f'filename="concord-report-KZ-2024-07.{fmt}"'
        assert name in saved.headers["content-disposition"]
    # the page itself still shows the report
    assert "TLP:GREEN" in page and "<svg" in page


def test_ui_for_a_reader_has_no_form(client, data) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "kz-reader")
    page = client.get("/reports")
    assert page.status_code == 200 and 'id="build-report"' not in page.text
    assert client.get("/reports/999").status_code == 404


def test_ui_tells_an_owner_contact_that_reports_go_to_states_and_the_centre(client, data) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "kz-bank-contact")
    page = client.get("/reports").text
    assert 'id="no-reports-for-you"' in page and 'id="build-report"' not in page
    assert "Monthly reports are built" not in page
    client.cookies.clear()
    sign_in(client, "kz-reader")
    assert 'id="no-reports-for-you"' not in client.get("/reports").text


def test_a_threshold_of_two_is_refused_at_once(client, auth, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "2")
    for wait in (True, False):
        body = {"period": "2024-07", "scope": "network", "wait": wait}
        r = client.post(API, json=body, headers=auth["centre-analyst"])
        assert r.status_code == 500 and "CONCORD_REPORT_MIN_COUNT=2" in r.json()["detail"]
    assert client.get(API, headers=auth["centre-analyst"]).json()["items"] == []


def test_a_scope_with_no_national_body_is_refused_in_the_list_too(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    for scope in ("XX", "tj"):
        r = client.get(API, params={"scope": scope}, headers=auth["centre-analyst"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope", r.text
        assert f"no national body of {scope.upper()}" in r.json()["detail"]
    for scope in ("network", "KZ", " kz"):
        r = client.get(API, params={"scope": scope}, headers=auth["centre-analyst"])
        assert r.status_code == 200, (scope, r.text)
    # a national body asking one built is told the same, not that it may not (403)
    for wait in (True, False):
        body = {"period": "2024-07", "scope": "XX", "wait": wait}
        r = client.post(API, json=body, headers=auth["uz-analyst"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scope", r.text
    r = client.post(API, json={**body, "scope": "KZ"}, headers=auth["uz-analyst"])
    assert r.status_code == 403  # another state's report: not theirs


def test_a_bad_period_and_a_bad_scope_are_told_at_once(client, auth) -> None:  # type: ignore[no-untyped-def]
    for wait in (True, False):
        body = {"period": "July", "scope": "Kazakhstan", "wait": wait}
        r = client.post(API, json=body, headers=auth["centre-analyst"])
        assert r.status_code == 422
        pointers = [e["pointer"] for e in r.json()["errors"]]
        assert pointers == ["/body/period", "/body/scope"], r.text


def test_a_format_or_language_a_worker_cannot_answer_in_is_refused(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    from concord.jobs.worker import run_ready

    h = auth["centre-analyst"]
    for extra, pointer in (
        ({"format": "csv", "language": "ru"}, "/body/format"),
        ({"format": "html"}, "/body/format"),
        ({"language": "ru"}, "/body/language"),
    ):
        r = client.post(API, json={"period": "2024-07", **extra}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == pointer, r.text
        assert "GET /api/v1/reports/<report_id>?" in r.json()["detail"]
    assert run_ready() == 0  # nothing queued
    # as told: asked for, built, then read in CSV and in Russian
    asked = client.post(API, json={"period": "2024-07", "format": "json"}, headers=h)
    assert asked.status_code == 202, asked.text
    assert run_ready() == 1
    report_id = client.get(asked.headers["location"], headers=h).json()["report_id"]
    r = client.get(f"{API}/{report_id}", params={"format": "csv", "language": "ru"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    # with wait, the answer is in the format asked for
    r = client.post(
        API, json={"period": "2024-07", "format": "csv", "wait": True, "language": "ru"}, headers=h
    )
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/csv")


def test_a_report_built_within_the_request_leaves_others_free_to_write(
    client, auth, data, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # On SQLite a request's session holds the write lock from its first statement: a build
    # of many seconds in it would make every other writer wait (and fail after the timeout).
    from concord.audit import service as audit
    from concord.db import session_scope
    from concord.reports import service

    real, wrote = service.build_for, []

    def build(reading, principal, period, scope):  # type: ignore[no-untyped-def]
        with session_scope() as other:  # another writer, meanwhile, in no mood to wait
            if other.get_bind().dialect.name == "sqlite":
                other.connection().exec_driver_sql("PRAGMA busy_timeout=100")
            audit.record(other, None, "request", "report", None)
        wrote.append(True)
        return real(reading, principal, period, scope)

    monkeypatch.setattr(service, "build_for", build)
    body = {"period": "2024-07", "scope": "network", "wait": True}
    r = client.post(API, json=body, headers=auth["centre-analyst"])
    assert r.status_code == 201, r.text
    assert wrote == [True]
