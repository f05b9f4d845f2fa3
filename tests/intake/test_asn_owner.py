"""An AS number names whose network a record concerns: the event's owner when nothing else
in it names one, and the event's own observable when it names nothing else."""

from __future__ import annotations

import json

from sqlalchemy import select

from concord.events.model import Event, EventObservable, Indicator
from concord.orgs import service as orgs
from tests.conftest import FIXTURES
from tests.events.test_correlation import correlate
from tests.intake.test_service import give_prefix, run


def _observables(session, event: Event) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return sorted(
        session.execute(
            select(Indicator.kind, Indicator.value)
            .join(EventObservable, EventObservable.indicator_id == Indicator.id)
            .where(EventObservable.event_id == event.id)
        ).all()
    )


def test_an_event_naming_only_an_as_is_about_it_and_its_operator(session, network) -> None:  # type: ignore[no-untyped-def]
    give_prefix(session, "kz-bank", "AS174")
    bundle = (FIXTURES / "stix" / "misp-stix_test_event1_stix21.json").read_bytes()
    receipt = run(network["uz-analyst"], bundle, "misp-stix_test_event1_stix21.json")
    assert receipt.accepted >= 1, receipt.errors
    session.rollback()
    event = session.scalar(select(Event).where(Event.primary_value == "174"))
    assert event is not None
    assert _observables(session, event) == [("asn", "174")]
    assert event.owner_org_id == orgs.get_org_for_write(session, "kz-bank").id
    # named by another state too, an AS joins nothing: it is where things live
    run(network["kz-analyst"], bundle, "misp-stix_test_event1_stix21.json")
    session.rollback()
    correlate()  # the bundle's domain correlates; its AS does not
    session.rollback()
    assert session.scalar(select(Indicator.cross_state).where(Indicator.kind == "asn")) is False


def test_beside_an_address_the_as_names_the_owner_only_when_the_address_does_not(  # type: ignore[no-untyped-def]
    session, network
) -> None:
    give_prefix(session, "kz-bank", "AS64500")
    give_prefix(session, "uz-telecom", "198.51.100.0/24")
    lines = "".join(
        json.dumps(
            {
                "__type": "Event",
                "source.ip": address,
                "source.asn": 64500,
                "time.source": "2026-11-20T00:00:00Z",
                "classification.taxonomy": "vulnerable",
                "classification.type": "vulnerable-system",
            }
        )
        + "\n"
        for address in ("198.51.100.7", "192.0.2.10")
    )
    receipt = run(network["uz-analyst"], lines.encode(), "events.jsonl", fmt="intelmq")
    assert receipt.accepted == 2, receipt.errors
    session.rollback()
    owners = {
        e.primary_value: e.owner_org_id for e in session.scalars(select(Event).order_by(Event.id))
    }
    assert owners == {
        "198.51.100.7": orgs.get_org_for_write(session, "uz-telecom").id,  # its address's
        "192.0.2.10": orgs.get_org_for_write(session, "kz-bank").id,  # its AS's
    }
    # the AS stays context, not an indicator of either event
    assert session.scalar(select(Indicator).where(Indicator.kind == "asn")) is None
