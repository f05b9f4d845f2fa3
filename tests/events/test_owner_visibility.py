"""An event names its owner (and its reporter) only to those who may see that organisation.

Constituents are TLP:AMBER organisations by default: a GREEN event about one of them is
for every member, the owner's name is not.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.errors import InvalidInput
from concord.events import service
from concord.events.model import Event
from tests.conftest import Network
from tests.intake.test_service import give_prefix, run, scan_csv
from tests.intake.test_views import login

Auth = dict[str, dict[str, str]]
UZ_ADDRESS = "192.0.2.130"  # held by uz-telecom, an AMBER constituent of UZ


@pytest.fixture
def uz_event(session: Session, network: Network) -> int:
    """A GREEN event reported by UZ about an address of its constituent uz-telecom."""
    give_prefix(session, "uz-telecom", "192.0.2.128/25")
    rows = [("2026-11-30 10:00:00", UZ_ADDRESS, 3389)]
    run(network["uz-analyst"], scan_csv(rows), tlp="green")
    session.rollback()
    event = session.scalar(select(Event).where(Event.primary_value == UZ_ADDRESS))
    assert event is not None and event.tlp == "green" and event.owner_org_id is not None
    return event.id


def test_the_api_names_an_owner_only_to_who_may_see_it(
    client: TestClient, auth: Auth, uz_event: int
) -> None:
    h = auth["kz-reader"]
    assert client.get("/api/v1/organizations/uz-telecom", headers=h).status_code == 404
    (item,) = client.get("/api/v1/events", headers=h).json()["items"]
    assert (item["id"], item["owner"], item["reported_by"]) == (uz_event, None, "uz-cert")
    detail = client.get(f"/api/v1/events/{uz_event}", headers=h)
    assert detail.status_code == 200 and detail.json()["owner"] is None
    assert "uz-telecom" not in detail.text
    # Its own national body and the centre see it.
    for who in ("uz-analyst", "centre-analyst"):
        seen = client.get(f"/api/v1/events/{uz_event}", headers=auth[who]).json()
        assert seen["owner"] == "uz-telecom", who


def test_the_owner_filter_knows_only_visible_organisations(
    session: Session, network: Network, client: TestClient, auth: Auth, uz_event: int
) -> None:
    by_owner = service.EventQuery(owner="uz-telecom")
    assert [e.id for e in service.search(session, network["uz-analyst"], by_owner)] == [uz_event]
    # A hidden organisation's slug is told as a slug no organisation has: in the same words.
    kz = network["kz-analyst"]
    said = []
    for slug in ("uz-telecom", "no-such-org"):
        with pytest.raises(InvalidInput) as refused:
            service.search(session, kz, service.EventQuery(owner=slug))
        said.append(refused.value.message.replace(slug, "SLUG"))
        r = client.get("/api/v1/events", params={"owner": slug}, headers=auth["kz-analyst"])
        assert r.status_code == 422, slug
        assert r.json()["errors"] == [
            {"pointer": "/query/owner", "field": "owner", "detail": refused.value.message}
        ]
    assert said[0] == said[1] == "no organisation 'SLUG' among those you may see"


def test_the_event_pages_name_an_owner_only_to_who_may_see_it(
    client: TestClient, uz_event: int
) -> None:
    login(client, "kz-analyst")
    listing = client.get("/events").text
    assert f'href="/events/{uz_event}"' in listing and "uz-telecom" not in listing
    page = client.get(f"/events/{uz_event}").text
    assert UZ_ADDRESS in page and "uz-telecom" not in page
    # said as for an address no organisation holds: a hidden owner's existence is not told
    assert '<span class="muted" id="no-owner">none known to you</span>' in page
    # filtered by the hidden owner's slug: told as an unknown slug is
    hidden = client.get("/events", params={"owner": "uz-telecom"}).text
    unknown = client.get("/events", params={"owner": "no-such-org"}).text
    assert f'href="/events/{uz_event}"' not in hidden
    assert "no organisation &#39;uz-telecom&#39; among those you may see" in hidden
    assert "no organisation &#39;no-such-org&#39; among those you may see" in unknown
    login(client, "uz-analyst")
    page = client.get(f"/events/{uz_event}").text
    assert '<a href="/organizations/uz-telecom">uz-telecom</a>' in page


def test_a_constituent_that_reports_is_not_named_to_other_states(
    session: Session, network: Network, client: TestClient, auth: Auth
) -> None:
    rows = [("2026-11-30 10:00:00", "203.0.113.9", 22)]
    run(network["kz-bank-contact"], scan_csv(rows), tlp="green")
    (item,) = client.get("/api/v1/events", headers=auth["uz-analyst"]).json()["items"]
    assert item["reported_by"] is None and item["country"] == "KZ"
    (item,) = client.get("/api/v1/events", headers=auth["kz-analyst"]).json()["items"]
    assert item["reported_by"] == "kz-bank"
