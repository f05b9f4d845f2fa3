"""A case's timeline names only the linked events and indicators its reader may see.

The stored 'link' entry keeps every id; each reader gets the ids their own TLP view allows,
on the API and on the case page alike. Nothing tells how many stay hidden, and a link a
reader cannot see moves neither the case's time nor its version (its ETag).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.cases import service
from concord.cases.model import TimelineEntry
from tests.cases.test_service import add_event
from tests.conftest import Network
from tests.intake.test_views import login

Auth = dict[str, dict[str, str]]
GREEN_VALUE = "192.0.2.113"
RED_VALUE = "203.0.113.114"  # in the RED event alone


def kz_case_linking_green_and_red(session: Session, network: Network) -> tuple[int, int, int]:
    """A case of KZ with UZ taking part, linking a GREEN event and a RED one only the
    KZ analyst (its reporter) may see; (case id, green event id, red event id)."""
    kz = network["kz-analyst"]
    green = add_event(session, "kz-cert", "green", GREEN_VALUE)
    red = add_event(session, "kz-cert", "red", RED_VALUE, user_id=kz.user_id)
    case = service.create_case(
        session,
        kz,
        service.CaseInput(
            title="Brute force",
            tlp="amber",
            event_ids=[green.id, red.id],
            indicators=[GREEN_VALUE, RED_VALUE],
            participants=["uz-cert"],
        ),
    )
    session.commit()
    return case.id, green.id, red.id


def link_detail(timeline: list[service.TimelineItem]) -> dict[str, object]:
    (item,) = [t for t in timeline if t.entry.kind == "link"]
    return item.detail


def test_the_timeline_lists_only_visible_events(session: Session, network: Network) -> None:
    case_id, green, red = kz_case_linking_green_and_red(session, network)
    # The stored entry names both; the reporter sees both.
    stored = session.scalar(select(TimelineEntry.detail).where(TimelineEntry.kind == "link"))
    assert str(red) in stored
    own = service.case_detail(session, network["kz-analyst"], case_id)
    assert link_detail(own.timeline)["events"] == sorted([green, red])
    assert len(link_detail(own.timeline)["indicators"]) == 2  # type: ignore[arg-type]

    seen = service.case_detail(session, network["uz-analyst"], case_id)
    assert [e.id for e in seen.events] == [green]
    assert [i.value for i in seen.indicators] == [GREEN_VALUE]
    detail = link_detail(seen.timeline)
    assert detail["events"] == [green]
    assert detail["indicators"] == [seen.indicators[0].id]
    # Reading it changed nothing stored.
    session.rollback()
    assert (
        session.scalar(select(TimelineEntry.detail).where(TimelineEntry.kind == "link")) == stored
    )


def test_the_api_timeline_lists_only_visible_events(
    client: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    case_id, green, red = kz_case_linking_green_and_red(session, network)
    url = f"/api/v1/cases/{case_id}"
    assert client.get(f"/api/v1/events/{red}", headers=auth["uz-analyst"]).status_code == 404
    body = client.get(url, headers=auth["uz-analyst"]).json()
    (link,) = [t for t in body["timeline"] if t["kind"] == "link"]
    assert link["detail"]["events"] == [green] and len(link["detail"]["indicators"]) == 1
    assert "hidden_events" not in body and "hidden_indicators" not in body
    own = client.get(url, headers=auth["kz-analyst"]).json()
    (link,) = [t for t in own["timeline"] if t["kind"] == "link"]
    assert link["detail"]["events"] == sorted([green, red])


def test_the_case_page_lists_only_visible_events(
    client: TestClient, session: Session, network: Network
) -> None:
    case_id, green, red = kz_case_linking_green_and_red(session, network)
    login(client, "uz-analyst")
    page = client.get(f"/cases/{case_id}").text
    assert f"Linked events: {green};" in page and f"Linked indicators: {GREEN_VALUE}" in page
    assert f'href="/events/{red}"' not in page and RED_VALUE not in page
    assert f"Linked events: {green}, {red}" not in page
    login(client, "kz-analyst")
    page = client.get(f"/cases/{case_id}").text
    assert f"Linked events: {', '.join(map(str, sorted([green, red])))};" in page


def test_a_link_a_reader_cannot_see_changes_nothing_they_read(
    client: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    case_id, _green, _red = kz_case_linking_green_and_red(session, network)
    url = f"/api/v1/cases/{case_id}"
    before = client.get(url, headers=auth["uz-analyst"])
    hidden = add_event(
        session, "kz-cert", "red", "203.0.113.115", user_id=network["kz-analyst"].user_id
    )
    session.commit()
    r = client.post(f"{url}/events", json={"event_ids": [hidden.id]}, headers=auth["kz-analyst"])
    assert r.status_code == 200, r.text
    after = client.get(url, headers=auth["uz-analyst"])
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json() == before.json()
    listed = client.get("/api/v1/cases", headers=auth["uz-analyst"]).json()["items"]
    assert [c["updated_at"] for c in listed if c["id"] == case_id] == [before.json()["updated_at"]]
    # a change every reader sees moves both
    client.post(f"{url}/comments", json={"text": "contained"}, headers=auth["kz-analyst"])
    later = client.get(url, headers=auth["uz-analyst"])
    assert later.headers["ETag"] != before.headers["ETag"]
    assert later.json()["updated_at"] > before.json()["updated_at"]
