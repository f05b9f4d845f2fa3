"""The Share form of an event page: a share that fails, an expired form included, is told
beside the form, which keeps what was chosen and typed."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import Network
from tests.events.test_sharing import kz_event
from tests.intake.test_views import login

SHARING_RE = re.compile(r'<section class="card" id="sharing">(.*?)</section>', re.S)


def sharing(text: str) -> str:
    found = SHARING_RE.search(text)
    assert found, text
    return found.group(1)


def test_a_wrong_slug_stays_in_its_box_marked(
    client: TestClient, session: Session, network: Network
) -> None:
    event_id = kz_event(session, network)
    csrf = login(client, "kz-analyst")
    r = client.post(
        f"/events/{event_id}/shares",
        data={"csrf_token": csrf, "org": "", "other_org": "kz-rial"},
    )
    assert r.status_code == 422
    form = sharing(r.text)
    assert 'class="form-error"' in form and "no organisation &#39;kz-rial&#39;" in form
    box = re.search(r'<input name="other_org"[^>]*>', form)
    assert box and 'value="kz-rial"' in box.group(0) and 'aria-invalid="true"' in box.group(0)
    # the list is not the field at fault, and proposes nothing the user did not choose
    assert '<select name="org">' in form and " selected>" not in form


def test_a_wrong_choice_keeps_the_choice(
    client: TestClient, session: Session, network: Network
) -> None:
    event_id = kz_event(session, network)
    csrf = login(client, "kz-analyst")
    r = client.post(f"/events/{event_id}/shares", data={"csrf_token": csrf, "org": ""})
    assert r.status_code == 422
    form = sharing(r.text)
    assert '<select name="org" aria-invalid="true" class="invalid">' in form
    assert " selected>" not in form  # "choose…" stays chosen, not the owner again


def test_an_expired_form_is_told_beside_it_and_can_be_sent_again(
    client: TestClient, session: Session, network: Network
) -> None:
    event_id = kz_event(session, network)
    login(client, "kz-analyst")
    stale = {"csrf_token": "from-a-page-before-the-session-changed"}
    r = client.post(
        f"/events/{event_id}/shares", data={**stale, "org": "kz-bank", "other_org": "uz-cert"}
    )
    # not a dead end: the event page, the error in its Share form, the slug still typed
    assert r.status_code == 403 and "<h1>Event" in r.text
    form = sharing(r.text)
    assert "the form has expired" in form and 'value="uz-cert"' in form
    assert re.search(r'<option value="kz-bank"[^>]*selected', form)
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert fresh
    again = client.post(
        f"/events/{event_id}/shares", data={"csrf_token": fresh.group(1), "org": "kz-bank"}
    )
    assert again.status_code == 200 and 'id="shared"' in again.text
