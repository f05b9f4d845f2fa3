"""The raw record behind an event: only the event's own bytes, never its neighbours'.

One submission can hold records of different TLP (an e-mail whose X-ARF attachment carries
a GREEN and a RED report): whoever reads one of them must not read the other through it.
"""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.events import service
from concord.events.model import Event
from tests.conftest import FIXTURES, Network
from tests.intake.test_service import run
from tests.intake.test_views import login

GREEN_IP = "198.51.100.77"
RED_IP = "203.0.113.66"
RED_MARK = "red-only-evidence-7d1f"  # text that appears in the RED report alone


def xarf(source: str, **more: object) -> dict[str, object]:
    """The public X-ARF v4 login-attack sample, about `source`."""
    sample = json.loads((FIXTURES / "email" / "connection-login-attack.json").read_text())
    return {**sample, "report_id": f"report-{source}", "source_identifier": source, **more}


def mail_with_green_and_red_reports() -> bytes:
    """An e-mail with a body and an X-ARF array: report 0 without TLP, report 1 RED."""
    msg = EmailMessage()
    msg["From"] = "hp@hp.example"
    msg["To"] = "abuse@concord.example"
    msg["Subject"] = "X-ARF reports"
    msg["Date"] = "Sat, 11 Jan 2025 12:20:00 +0000"
    msg.set_content("Two X-ARF reports are attached.")
    reports = [xarf(GREEN_IP), xarf(RED_IP, tlp="red", description=RED_MARK)]
    msg.add_attachment(
        json.dumps(reports, indent=1).encode(),
        maintype="application",
        subtype="json",
        filename="reports.json",
        cte="7bit",  # as many senders do: the whole mail, RED report included, is readable
    )
    return msg.as_bytes()


@pytest.fixture
def mailed(session: Session, network: Network) -> tuple[Event, Event]:
    """The GREEN and the RED event kz-analyst's submission of that e-mail made."""
    receipt = run(
        network["kz-analyst"], mail_with_green_and_red_reports(), "reports.eml", tlp="green"
    )
    assert receipt.accepted == 2, receipt.errors
    session.rollback()
    green = session.scalar(select(Event).where(Event.primary_value == GREEN_IP))
    red = session.scalar(select(Event).where(Event.primary_value == RED_IP))
    assert green is not None and red is not None
    assert (green.tlp, red.tlp) == ("green", "red")
    assert green.raw_location.endswith(":/part/2/0"), green.raw_location
    return green, red


def test_the_raw_record_of_a_report_in_a_mail_is_that_report_alone(
    session: Session, mailed: tuple[Event, Event]
) -> None:
    green, red = mailed
    raw = service.raw_record(session, green)
    assert json.loads(raw)["source_identifier"] == GREEN_IP
    assert RED_IP not in raw and RED_MARK not in raw
    assert "Subject:" not in raw  # nor the rest of the message
    assert RED_MARK in service.raw_record(session, red)


def test_another_state_never_reads_the_red_sibling_through_the_green_event(
    client: TestClient, auth: dict[str, dict[str, str]], mailed: tuple[Event, Event]
) -> None:
    green, red = mailed
    h = auth["uz-analyst"]
    assert client.get(f"/api/v1/events/{red.id}", headers=h).status_code == 404
    r = client.get(f"/api/v1/events/{green.id}", headers=h)
    assert r.status_code == 200, r.text
    assert GREEN_IP in r.json()["raw"]
    assert RED_IP not in r.text and RED_MARK not in r.text
    login(client, "uz-analyst")
    page = client.get(f"/events/{green.id}")
    assert page.status_code == 200 and GREEN_IP in page.text
    assert RED_IP not in page.text and RED_MARK not in page.text


def test_what_cannot_be_isolated_is_not_shown(
    session: Session, mailed: tuple[Event, Event]
) -> None:
    green, _red = mailed
    source = green.raw_location.rsplit(":", 1)[0]
    # A pointer past the end of the array, into a part that is no JSON, or to a part that
    # does not exist: no raw text rather than the submission's first bytes.
    for pointer in ("/part/2/5", "/part/1/0", "/part/7/0", "/part/2.1/0", "/nothing"):
        green.raw_location = f"{source}:{pointer}"
        assert service.raw_record(session, green) == "", pointer
    # The whole message is the record's own location only when the location says so.
    green.raw_location = f"{source}:/part/1"
    assert service.raw_record(session, green).strip() == "Two X-ARF reports are attached."
    session.rollback()


def test_the_event_page_says_when_there_is_no_raw_text(
    client: TestClient, session: Session, mailed: tuple[Event, Event]
) -> None:
    green, _red = mailed
    green.raw_location = green.raw_location.replace("/part/2/0", "/part/2/9")
    session.commit()
    login(client, "uz-analyst")
    page = client.get(f"/events/{green.id}").text
    assert 'id="no-raw"' in page and "Subject:" not in page and RED_MARK not in page
    assert client.get(f"/api/v1/events/{green.id}").json()["raw"] == ""
