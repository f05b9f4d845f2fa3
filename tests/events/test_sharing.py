"""Sharing an event with the organisations that need it: the owner of the resource it
concerns, another state's national body. Who may share, and what sharing changes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from concord.access.model import Share
from concord.audit.model import AuditRecord
from concord.errors import Forbidden, InvalidInput, NotFound
from concord.events import service
from concord.events.model import Event
from concord.orgs.model import Organization
from tests.intake.test_service import give_prefix, run, scan_csv
from tests.intake.test_views import login


def kz_event(session, network, tlp: str = "amber") -> int:  # type: ignore[no-untyped-def]
    """An event reported by kz-cert about an address of kz-bank."""
    give_prefix(session, "kz-bank", "198.51.100.0/24")
    run(network["kz-analyst"], scan_csv([("2026-11-30 10:00:00", "198.51.100.7", 3389)]), tlp=tlp)
    session.rollback()
    return session.scalar(select(Event.id).where(Event.primary_value == "198.51.100.7"))


def visible(session, principal, event_id: int) -> bool:  # type: ignore[no-untyped-def]
    rows = service.search(session, principal, service.EventQuery(value="198.51.100.7"))
    return [e.id for e in rows] == [event_id]


def test_the_reporting_state_shares_with_the_owner(session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network)
    owner = network["kz-bank-contact"]
    assert not visible(session, owner, event_id)
    assert service.share_event(session, network["kz-analyst"], event_id, "kz-bank")
    session.commit()
    assert visible(session, owner, event_id)
    assert service.get_event(session, owner, event_id).id == event_id
    assert not visible(session, network["uz-telecom-contact"], event_id)
    # again, or with the reporter itself: nothing changes
    assert not service.share_event(session, network["kz-analyst"], event_id, "kz-bank")
    assert not service.share_event(session, network["kz-analyst"], event_id, "kz-cert")
    assert service.event_recipients(session, network["kz-analyst"], event_id) == ["kz-bank"]
    # a share with another state's owner (as intake makes for the owner of the address)
    # names it only to those who see that owner
    uz_telecom = session.scalar(select(Organization.id).where(Organization.slug == "uz-telecom"))
    session.add(Share(object_kind="event", object_id=event_id, org_id=uz_telecom))
    session.commit()
    assert service.event_recipients(session, network["kz-analyst"], event_id) == ["kz-bank"]
    assert service.event_recipients(session, network["centre-analyst"], event_id) == [
        "kz-bank",
        "uz-telecom",
    ]
    shares = session.scalars(select(AuditRecord).where(AuditRecord.action == "share")).all()
    assert [(r.object_kind, r.object_id) for r in shares] == [("event", str(event_id))]


def test_sharing_with_another_state_brings_it_into_that_states_view(session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network)
    uz = network["uz-analyst"]
    with pytest.raises(NotFound):
        service.get_event(session, uz, event_id)
    service.share_event(session, network["centre-analyst"], event_id, "uz-cert")  # AMBER
    session.commit()
    assert visible(session, uz, event_id)


@pytest.mark.parametrize(
    ("who", "tlp", "error", "message"),
    [
        ("uz-analyst", "amber", NotFound, "no event"),  # may not even see it
        ("kz-reader", "amber", Forbidden, "it needs the 'write' scope"),
        ("centre-analyst", "amber+strict", NotFound, "no event"),  # not a recipient
        ("kz-analyst", "green", InvalidInput, "open to every organisation"),
        ("kz-analyst", "red", InvalidInput, "named people only"),
    ],
)
def test_who_may_share_what(session, network, who, tlp, error, message) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network, tlp)
    with pytest.raises(error, match=message):
        service.share_event(session, network[who], event_id, "kz-bank")


def test_a_recipient_of_a_strict_event_does_not_pass_it_on(session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network, "amber+strict")
    service.share_event(session, network["kz-analyst"], event_id, "uz-cert")
    session.commit()
    uz = network["uz-analyst"]
    assert service.get_event(session, uz, event_id).id == event_id
    with pytest.raises(Forbidden, match="only the organisation that reported"):
        service.share_event(session, uz, event_id, "uz-telecom")


def test_an_organisation_one_cannot_see_is_not_a_recipient(session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network)
    with pytest.raises(InvalidInput, match="no organisation"):
        service.share_event(session, network["kz-analyst"], event_id, "uz-telecom")


def test_share_over_the_api(client, auth, session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network)
    url = f"/api/v1/events/{event_id}/shares"
    r = client.post(url, json={"org": "kz-bank"}, headers=auth["kz-analyst"])
    assert r.status_code == 204, r.text
    seen = client.get(f"/api/v1/events/{event_id}", headers=auth["kz-bank-contact"])
    assert seen.status_code == 200 and seen.json()["owner"] == "kz-bank"
    r = client.post(url, json={"org": "kz-bank"}, headers=auth["kz-reader"])
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem")
    r = client.post(url, json={}, headers=auth["kz-analyst"])
    assert r.status_code == 422
    r = client.post(url, json={"org": "no-such-org"}, headers=auth["kz-analyst"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org", r.text


def test_share_from_the_event_page(client, session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network)
    csrf = login(client, "kz-analyst")
    page = client.get(f"/events/{event_id}").text
    # the owner of the resource is offered first
    assert re.search(r'<option value="kz-bank" selected>', page)
    r = client.post(f"/events/{event_id}/shares", data={"csrf_token": csrf, "org": "kz-bank"})
    assert r.status_code == 200 and 'id="shared"' in r.text and "Shared with: kz-bank" in r.text
    # the answer is the event's own page: reloading it sends nothing again
    assert r.url.path == f"/events/{event_id}" and r.history[0].status_code == 303
    # the organisation that reported it, or one it was shared with, reads it already
    for org in ("kz-cert", "kz-bank"):
        again = client.post(f"/events/{event_id}/shares", data={"csrf_token": csrf, "org": org})
        assert 'id="shared-already"' in again.text and 'id="shared"' not in again.text
    # a made-up confirmation in the address is not shown
    assert 'id="shared"' not in client.get(f"/events/{event_id}?shared=uz-cert").text
    refused = client.post(f"/events/{event_id}/shares", data={"csrf_token": csrf, "org": ""})
    assert refused.status_code == 422 and "choose an organisation" in refused.text
    # any other organisation by its slug, which wins over the list
    by_slug = client.post(
        f"/events/{event_id}/shares",
        data={"csrf_token": csrf, "org": "kz-bank", "other_org": "nope"},
    )
    assert by_slug.status_code == 422 and "no organisation &#39;nope&#39;" in by_slug.text
    client.cookies.clear()
    login(client, "kz-bank-contact")
    listing = client.get("/events").text
    assert "198.51.100.7" in listing
    assert 'id="share-form"' not in client.get(f"/events/{event_id}").text


# --- sharing a submission's events with their owners ----------------------------------------


def owner_feed() -> bytes:
    return scan_csv(
        [
            ("2026-11-30 10:00:00", "198.51.100.8", 3389),  # kz-bank's
            ("2026-11-30 10:00:00", "203.0.113.8", 3389),  # nobody's
        ]
    )


def test_a_submission_shares_its_events_with_their_owners(session, network) -> None:  # type: ignore[no-untyped-def]
    give_prefix(session, "kz-bank", "198.51.100.0/24")
    receipt = run(network["kz-analyst"], owner_feed(), share_owners=True)
    assert (receipt.accepted, receipt.shared) == (2, 1)
    session.rollback()
    owner = network["kz-bank-contact"]
    seen = service.search(session, owner, service.EventQuery())
    assert [e.primary_value for e in seen] == ["198.51.100.8"]
    # the same file again changes nothing, sharing included
    assert run(network["kz-analyst"], owner_feed(), share_owners=True).shared == 0
    # the receipt read back later still says what was shared
    sub_id = receipt.id
    assert service_receipt(session, network["kz-analyst"], sub_id).shared == 1
    # a GREEN submission needs no sharing: everyone in the network reads it
    green = scan_csv([("2026-11-30 11:00:00", "198.51.100.9", 3389)])
    assert run(network["kz-analyst"], green, tlp="green", share_owners=True).shared == 0


def service_receipt(session, principal, sub_id: int):  # type: ignore[no-untyped-def]
    from concord.intake import service as intake

    session.rollback()
    return intake.get_receipt(session, principal, sub_id)


def test_a_file_sent_again_with_sharing_shares_what_the_first_time_did_not(
    session, network
) -> None:  # type: ignore[no-untyped-def]
    give_prefix(session, "kz-bank", "198.51.100.0/24")
    first = run(network["kz-analyst"], owner_feed())
    assert first.shared == 0
    again = run(network["kz-analyst"], owner_feed(), share_owners=True)
    assert (again.accepted, again.shared) == (0, 1) and "now shared" in again.note
    assert service_receipt(session, network["kz-analyst"], first.id).shared == 1
    session.rollback()
    seen = service.search(session, network["kz-bank-contact"], service.EventQuery())
    assert [e.primary_value for e in seen] == ["198.51.100.8"]


def test_only_staff_share_a_submission_with_owners(session, network) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Forbidden, match="only admins and analysts share"):
        run(network["kz-bank-contact"], owner_feed(), share_owners=True)
    session.rollback()
    assert session.scalar(select(Event.id)) is None  # refused before anything was stored


def test_share_owners_from_the_api_the_form_and_the_cli(
    client, auth, session, network, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from concord.cli import app

    give_prefix(session, "kz-bank", "198.51.100.0/24")
    r = client.post(
        "/api/v1/intake",
        params={"share_owners": "true"},
        files={"file": ("scan_rdp.csv", owner_feed())},
        headers=auth["kz-analyst"],
    )
    assert r.status_code == 200 and r.json()["shared"] == 1, r.text
    csrf = login(client, "kz-analyst")
    assert 'name="share_owners"' in client.get("/intake").text
    form = client.post(
        "/intake",
        data={"csrf_token": csrf, "share_owners": "true"},
        files={"file": ("scan_ssh.csv", scan_csv([("2026-11-30 12:00:00", "198.51.100.10", 22)]))},
    )
    assert 'id="receipt-shared"' in form.text
    feed = tmp_path / "scan_rdp.csv"
    feed.write_bytes(scan_csv([("2026-11-30 13:00:00", "198.51.100.11", 3389)]))
    result = CliRunner().invoke(
        app, ["ingest", str(feed), "--as", "kz-cert", "--share-owners"], catch_exceptions=False
    )
    assert result.exit_code == 0 and "1 shared with their owners" in result.stdout
    client.cookies.clear()
    login(client, "kz-bank-contact")
    assert 'name="share_owners"' not in client.get("/intake").text
    listing = client.get("/events").text
    for value in ("198.51.100.8", "198.51.100.10", "198.51.100.11"):
        assert value in listing


def test_the_centre_is_offered_only_for_what_it_does_not_read_already(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.events.model import Event as EventRow

    amber = kz_event(session, network, "amber")
    event = session.get(EventRow, amber)
    offered = {o.slug for o in service.share_candidates(session, network["kz-analyst"], event)}
    assert "ccc" not in offered and "uz-cert" in offered and "kz-cert" not in offered
    centre = network["centre-analyst"]
    assert service.share_event(session, centre, amber, "ccc") is False  # reads it already


def test_the_centre_is_offered_for_a_strict_event(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.events.model import Event as EventRow

    strict = session.get(EventRow, kz_event(session, network, "amber+strict"))
    offered = {o.slug for o in service.share_candidates(session, network["kz-analyst"], strict)}
    assert "uz-cert" in offered
    centre_visible = {
        o.slug for o in service.share_candidates(session, network["centre-admin"], strict)
    }
    assert "ccc" in centre_visible  # it does not read AMBER+STRICT unless shared


def test_an_owner_is_named_only_where_its_page_opens(client, session, network) -> None:  # type: ignore[no-untyped-def]
    event_id = kz_event(session, network)
    service.share_event(session, network["kz-analyst"], event_id, "uz-cert")
    session.commit()
    login(client, "kz-analyst")
    assert 'href="/organizations/kz-bank"' in client.get(f"/events/{event_id}").text
    client.cookies.clear()
    login(client, "uz-analyst")  # reads the shared event, but not kz-bank's page
    page = client.get(f"/events/{event_id}").text
    # The owner's name is as hidden as its page (an AMBER organisation): not even unlinked.
    assert "kz-bank" not in page
