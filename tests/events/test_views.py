"""The event search page: a filter it cannot apply is told beside the form, and its period
reads as the API's does."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy.orm import Session

from concord.events.rsit import RSIT
from tests.cases.test_service import add_event
from tests.conftest import Network, sign_in

VALUE = "198.51.100.40"  # the one event: intrusion-attempts / brute-force, 2026-12-01 12:00 UTC
ALERT_RE = re.compile(r'<div class="form-error" role="alert">(.*?)</div>', re.S)


@pytest.fixture
def event_id(network: Network, session: Session) -> int:
    event = add_event(session, "kz-cert", "green", VALUE)
    assert event.time == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    session.commit()
    return event.id


@pytest.fixture
def ui(client: TestClient, event_id: int) -> TestClient:
    assert sign_in(client, "centre-analyst", follow_redirects=False).status_code == 303
    return client


def alert(text: str) -> str:
    found = ALERT_RE.search(text)
    assert found, text
    return " ".join(found.group(1).split())


def listed(text: str) -> list[str]:
    return re.findall(r"<code>([^<]+)</code>", text)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"class": "bogus"},
            "class",
            f"unknown RSIT class 'bogus'; use one of {', '.join(RSIT)}",
        ),
        # the name the search form used before it took the API's
        (
            {"rsit_class": "bogus"},
            "class",
            f"unknown RSIT class 'bogus'; use one of {', '.join(RSIT)}",
        ),
        (
            {"type": "bogus"},
            "type",
            "unknown RSIT type 'bogus', such as phishing or brute-force",
        ),
    ],
)
def test_an_unknown_choice_is_told_beside_the_form_not_ignored(
    ui: TestClient, params: dict[str, str], field: str, message: str
) -> None:
    r = ui.get("/events", params={"value": VALUE, **params})
    assert r.status_code == 422
    assert alert(r.text) == f"<strong>Invalid input:</strong> {escape(message)}"
    assert re.search(rf'<select name="{field}" aria-invalid="true" class="invalid">', r.text)
    # the form stays, as typed; no list, not even an empty one
    assert 'id="event-search"' in r.text and f'value="{VALUE}"' in r.text
    assert 'id="event-table"' not in r.text and 'id="no-events"' not in r.text
    assert listed(r.text) == []
    # the API refuses the same filter, under its name there, naming it
    api = ui.get("/api/v1/events", params={field: "bogus"})
    assert api.status_code == 422
    assert api.json()["errors"] == [
        {"pointer": f"/query/{field}", "field": field, "detail": message}
    ]


def test_an_unknown_choice_reads_in_russian(ui: TestClient) -> None:
    ui.cookies.set("concord_lang", "ru")
    r = ui.get("/events", params={"class": "bogus"})
    assert r.status_code == 422
    assert "неизвестный класс RSIT &#39;bogus&#39;; используйте один из: abusive-content" in (
        alert(r.text)
    )


def test_class_and_type_filter_under_the_apis_names(ui: TestClient) -> None:
    for params, found in (
        ({"class": "intrusion-attempts"}, [VALUE]),
        ({"class": "fraud"}, []),
        ({"rsit_class": "intrusion-attempts"}, [VALUE]),
        ({"type": "brute-force"}, [VALUE]),
        ({"type": "phishing"}, []),
        ({"class": "intrusion-attempts", "type": "brute-force"}, [VALUE]),
    ):
        r = ui.get("/events", params=params)
        assert r.status_code == 200 and listed(r.text) == found, params
        assert 'role="alert"' not in r.text
    r = ui.get("/events", params={"class": "intrusion-attempts", "type": "brute-force"})
    assert '<option value="intrusion-attempts" selected>' in r.text
    assert '<option value="brute-force" selected>' in r.text


# (since, until, whether the event at 2026-12-01 12:00 UTC is in the period)
PERIODS = [
    ("", "2026-12-01", True),  # a bare day as "until" includes that whole day
    ("", "2026-11-30", False),
    ("", "20261201", True),  # the basic ISO form is a bare day too
    ("", "2026-12-01T12:00:00", False),  # a full time is the bound itself: before it
    ("", "2026-12-01T12:00:01", True),
    ("", "2026-12-01T00:00:00", False),  # midnight written out is a time, not the day
    ("", "2026-12-01T17:00:01+05:00", True),  # 12:00:01 UTC
    ("2026-12-01", "2026-12-01", True),  # one day, from its start to its end
    ("2026-12-01T12:00:00", "", True),  # "since" includes its bound
    ("2026-12-02", "", False),
]


@pytest.mark.parametrize(("since", "until", "included"), PERIODS)
def test_the_page_and_the_api_read_a_period_alike(
    ui: TestClient, auth: dict[str, dict[str, str]], since: str, until: str, included: bool
) -> None:
    params = {k: v for k, v in (("since", since), ("until", until)) if v}
    page = ui.get("/events", params=params)
    assert page.status_code == 200, page.text
    assert listed(page.text) == ([VALUE] if included else [])
    api = ui.get("/api/v1/events", params=params, headers=auth["centre-analyst"])
    assert api.status_code == 200, api.text
    assert [e["observables"][0]["value"] for e in api.json()["items"]] == (
        [VALUE] if included else []
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("until", "9999-12-31", "the date '9999-12-31' is out of range in UTC"),
        (
            "since",
            "yesterday",
            "invalid date 'yesterday'; use YYYY-MM-DD or a time such as 2024-03-10T23:30:00Z",
        ),
        (
            "until",
            "2024-W10",
            "invalid date '2024-W10'; use YYYY-MM-DD or a time such as 2024-03-10T23:30:00Z",
        ),
        (
            "since",
            "2024-03-10T23:30:00 01:00",
            "invalid date '2024-03-10T23:30:00 01:00': a + in "
            "a web address reads as a space; write it %2B",
        ),
    ],
)
def test_a_date_that_cannot_be_read_is_named_alike(
    ui: TestClient, auth: dict[str, dict[str, str]], name: str, value: str, message: str
) -> None:
    page = ui.get("/events", params={name: value})
    assert page.status_code == 422
    assert alert(page.text) == f"<strong>Invalid input:</strong> {escape(message)}"
    assert 'id="event-table"' not in page.text and 'id="no-events"' not in page.text
    api = ui.get("/api/v1/events", params={name: value}, headers=auth["centre-analyst"])
    assert api.status_code == 422
    assert api.json()["errors"] == [{"pointer": f"/query/{name}", "field": name, "detail": message}]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("owner", "nosuch", "no organisation 'nosuch' among those you may see"),
        ("owner", "kz-bank", "no organisation 'kz-bank' among those you may see"),  # hidden
        ("value", "  ", "the value is blank"),
    ],
)
def test_a_filter_no_event_can_match_is_told_not_answered_empty(
    ui: TestClient, auth: dict[str, dict[str, str]], name: str, value: str, message: str
) -> None:
    """An owner the reader cannot see reads as one that does not exist: the same words."""
    api = ui.get("/api/v1/events", params={name: value}, headers=auth["uz-analyst"])
    assert api.status_code == 422, api.text
    assert api.json()["errors"] == [{"pointer": f"/query/{name}", "field": name, "detail": message}]
    page = ui.get("/events", params={name: value})  # the centre sees kz-bank
    if value == "nosuch":
        assert alert(page.text) == f"<strong>Invalid input:</strong> {escape(message)}"
    elif not value.strip():  # a search box holding spaces is empty: every event
        assert page.status_code == 200 and listed(page.text) == [VALUE]


def test_the_page_takes_the_api_s_feed_filter_and_an_event_links_its_feed(
    ui: TestClient, event_id: int
) -> None:
    page = ui.get(f"/events/{event_id}")
    assert '<a href="/events?feed=test"' in page.text
    found = ui.get("/events", params={"feed": "test"})
    assert listed(found.text) == [VALUE] and 'id="feed-filter"' in found.text
    assert 'type="hidden" name="feed" value="test"' in found.text  # kept by the form
    other = ui.get("/events", params={"feed": "spamhaus-drop"})
    assert listed(other.text) == [] and 'id="no-events"' in other.text


def test_the_api_documents_how_it_reads_until(client: TestClient) -> None:
    parameters = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/events"]["get"]
    until = next(p for p in parameters["parameters"] if p["name"] == "until")
    assert "a bare day YYYY-MM-DD includes that whole day" in until["description"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"submission": "abc"}, "the submission number must be a whole number, not 'abc'"),
        ({"submission": "9" * 20}, f"no submission has the number {'9' * 20}: it is past any id"),
        ({"before": f"2024-03-01T00:00:00_{'9' * 20}"}, "invalid page position"),
    ],
)
def test_a_number_past_any_id_is_told_beside_the_form(
    ui: TestClient, params: dict[str, str], message: str
) -> None:
    r = ui.get("/events", params={"value": VALUE, **params})
    assert r.status_code == 422
    assert alert(r.text).startswith(f"<strong>Invalid input:</strong> {escape(message)}")
    assert 'id="event-search"' in r.text and f'value="{VALUE}"' in r.text  # the form stays
    ui.cookies.set("concord_lang", "ru")
    said = alert(ui.get("/events", params=params).text)
    if "past any id" in message:  # said whole, the field's name included
        assert f"отправки с номером {'9' * 20} нет: он больше любого идентификатора" in said
    elif "whole number" in message:
        assert escape("номер отправки должен быть целым числом, а не 'abc'") in said


def marked(text: str) -> list[str]:
    """The fields of the search form marked as at fault."""
    return re.findall(r'<(?:input|select) name="(\w+)"[^>]*aria-invalid="true"', text)


def test_every_fault_of_a_search_is_told_beside_the_form_at_once(ui: TestClient) -> None:
    params = {
        "value": "10.0.0.0/33",
        "class": "bogus",
        "type": "phishing",
        "country": "ZZ",
        "owner": "nosuch",
        "since": "yesterday",
        "until": "2024-W10",
        "submission": "abc",
    }
    r = ui.get("/events", params=params)
    assert r.status_code == 422
    hint = "use YYYY-MM-DD or a time such as 2024-03-10T23:30:00Z"
    told = [
        f"invalid date 'yesterday'; {hint}",
        f"invalid date '2024-W10'; {hint}",
        "the submission number must be a whole number, not 'abc'",
        "invalid IP network '10.0.0.0/33': the prefix length is at most 32 for IPv4 and 128 "
        "for IPv6",
        f"unknown RSIT class 'bogus'; use one of {', '.join(RSIT)}",
        "invalid country code 'ZZ': use ISO 3166-1 alpha-2, such as KZ",
        "no organisation 'nosuch' among those you may see",
    ]
    said = alert(r.text)
    assert said.startswith("<strong>Invalid input:</strong> <ul")  # one item per fault
    assert re.findall(r"<li>(.*?)</li>", said) == [escape(fault) for fault in told]
    # each field at fault marked; the type, of another class, waits until the class reads
    assert marked(r.text) == ["value", "class", "country", "owner", "since", "until"]
    assert 'id="event-search"' in r.text and 'value="nosuch"' in r.text  # kept as typed
    assert 'id="event-table"' not in r.text and 'id="no-events"' not in r.text
    ui.cookies.set("concord_lang", "ru")  # each fault in the reader's language
    said = alert(ui.get("/events", params=params).text)
    assert escape("номер отправки должен быть целым числом, а не 'abc'") in said
    assert escape("неверный код страны 'ZZ'") in said
    assert "неизвестный класс RSIT" in said


def test_an_inverted_period_is_said_with_the_faults_of_the_other_filters(ui: TestClient) -> None:
    r = ui.get("/events", params={"since": "2026-12-10", "until": "2026-12-01", "country": "ZZ"})
    assert r.status_code == 422
    assert 'id="inverted-range"' in r.text  # said as before, beside the form
    country = escape("invalid country code 'ZZ': use ISO 3166-1 alpha-2, such as KZ")
    assert alert(r.text) == f"<strong>Invalid input:</strong> {country}"
    assert marked(r.text) == ["country"]
    alone = ui.get("/events", params={"since": "2026-12-10", "until": "2026-12-01"})
    assert alone.status_code == 200 and 'id="inverted-range"' in alone.text
    assert 'class="form-error"' not in alone.text  # no fault: the notice alone


def test_the_indicator_page_tells_an_impossible_network_as_the_api_does(ui: TestClient) -> None:
    r = ui.get("/indicators", params={"value": "10.0.0.0/33"})
    assert r.status_code == 422
    said = alert(r.text)
    assert "invalid IP network &#39;10.0.0.0/33&#39;" in said
    assert marked(r.text) == ["value"] and 'id="no-indicators"' not in r.text
    assert ui.get("/indicators", params={"value": "10.0.0.0/8"}).status_code == 200
