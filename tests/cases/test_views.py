"""The cases board and case page: rendering, forms through the service, CSRF, translations."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from concord.cases.model import Case, TimelineEntry
from tests.cases.test_service import add_event
from tests.conftest import Network, sign_in

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "concord"
TEMPLATES = PACKAGE / "cases" / "templates"
PO_FILE = PACKAGE / "i18n" / "ru" / "LC_MESSAGES" / "messages.po"
POT_FILE = PACKAGE / "i18n" / "messages.pot"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
MSG_RE = re.compile(r"""(?<![\w.])_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


class UI:
    """A signed-in browser stand-in: a TestClient with the session cookie and CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
        response = self.client.get(url, **kwargs)
        found = CSRF_RE.search(response.text)
        if found and found.group(1):
            self.csrf = found.group(1)
        return response

    def post(self, url: str, data: dict[str, object] | None = None, csrf: bool = True):  # type: ignore[no-untyped-def]
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=body, follow_redirects=False)


@pytest.fixture
def app(network: Network):  # type: ignore[no-untyped-def]
    from concord.web.app import create_app

    return create_app()


@pytest.fixture
def login(app) -> Iterator[Callable[[str], UI]]:  # type: ignore[no-untyped-def]
    clients: list[TestClient] = []

    def signed_in(username: str) -> UI:
        client = TestClient(app)
        clients.append(client)
        r = sign_in(client, username)
        assert r.status_code == 200, r.text
        ui = UI(client)
        ui.get("/cases")
        assert ui.csrf
        return ui

    yield signed_in
    for client in clients:
        client.close()


def open_case(ui: UI, **fields: object) -> int:
    r = ui.post("/cases", {"title": "Phishing wave", "severity": "high", **fields})
    assert r.status_code == 303, r.text
    match = re.fullmatch(r"/cases/(\d+)", r.headers["location"])
    assert match
    return int(match.group(1))


def test_board_renders_with_columns_and_filters(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    open_case(ui, title="Ransomware at a hospital", severity="critical", tlp="green")
    r = ui.get("/cases")
    assert r.status_code == 200 and "Traceback" not in r.text
    for status in ("new", "triage", "in-progress", "resolved", "closed"):
        assert f'data-status="{status}"' in r.text
    # a code reads as words in English too
    assert '<h2 id="col-in-progress"><span>in progress</span>' in r.text
    assert '<option value="in-progress" >in progress</option>' in r.text
    assert "Ransomware at a hospital" in r.text
    assert 'class="tlp tlp-green"' in r.text and "severity-critical" in r.text
    assert 'id="case-form"' in r.text
    # national bodies to choose from, by checkbox; not the centre, which sees every case
    choices = re.findall(r'name="participants" value="([^"]+)"', r.text)
    assert "kz-cert" in choices and "ccc" not in choices
    kz = login("kz-analyst").get("/cases").text
    assert "kz-cert" not in re.findall(r'name="participants" value="([^"]+)"', kz)  # its own
    r = ui.get("/cases", params={"status": "triage"})
    assert "Ransomware" not in r.text
    r = ui.get("/cases", params={"severity": "critical", "q": "hospital"})
    assert "Ransomware at a hospital" in r.text
    r = ui.get("/cases", params={"status": "bogus"})
    assert r.status_code == 422 and 'role="alert"' in r.text


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"status": "bogus"},
            "status",
            "unknown status &#39;bogus&#39;; use one of new, triage, in-progress, resolved, closed",
        ),
        (
            {"severity": "bogus", "q": "Phishing"},
            "severity",
            "unknown severity &#39;bogus&#39;; use one of low, medium, high, critical",
        ),
    ],
)
def test_an_unknown_choice_is_told_beside_the_filters_not_ignored(
    login: Callable[[str], UI], params: dict[str, str], field: str, message: str
) -> None:
    ui = login("centre-analyst")
    open_case(ui)
    r = ui.get("/cases", params=params)
    assert r.status_code == 422
    alert = re.search(r'<div class="form-error" role="alert">(.*?)</div>', r.text, re.S)
    assert alert is not None
    assert " ".join(alert.group(1).split()) == f"<strong>Invalid input:</strong> {message}"
    assert f'<select name="{field}" aria-invalid="true" class="invalid">' in r.text
    # no board, not even empty columns that would read as "no such cases"
    assert 'id="case-board"' not in r.text and "Phishing wave" not in r.text
    assert 'id="case-filters"' in r.text and 'id="case-form"' in r.text
    # the API refuses the same filter, naming it
    api = ui.client.get("/api/v1/cases", params=params)
    assert api.status_code == 422 and api.json()["errors"][0]["field"] == field


def test_an_unknown_choice_on_the_board_reads_in_russian(login: Callable[[str], UI]) -> None:
    ui = login("centre-analyst")
    ui.post("/language", {"language": "ru", "next": "/cases"})
    r = ui.get("/cases", params={"status": "bogus"})
    assert r.status_code == 422
    assert "неизвестный статус &#39;bogus&#39;; используйте один из: new, triage" in r.text


def test_anonymous_visitors_are_sent_to_login(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        for url in ("/cases", "/cases/1"):
            r = client.get(url, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_create_case_through_the_form(login, session: Session) -> None:  # type: ignore[no-untyped-def]
    event = add_event(session, "kz-cert", "amber", "198.51.100.23")
    session.commit()
    ui = login("kz-analyst")
    case_id = open_case(
        ui,
        summary="Lures sent to bank staff",
        event_ids=f"{event.id}",
        indicators="198.51.100.23",
        participants=["uz-cert"],
    )
    r = ui.get(f"/cases/{case_id}")
    assert r.status_code == 200
    assert "Phishing wave" in r.text and "Lures sent to bank staff" in r.text
    assert f'data-event="{event.id}"' in r.text and "198.51.100.23" in r.text
    assert 'data-org="uz-cert"' in r.text and 'data-org="kz-cert"' in r.text
    case = session.get(Case, case_id)
    assert case is not None and case.tlp == "amber" and case.severity == "high"


def test_create_case_errors_are_shown_next_to_the_form(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    r = ui.post("/cases", {"title": " ", "summary": "kept"})
    assert r.status_code == 422
    assert 'role="alert"' in r.text and "kept" in r.text
    r = ui.post("/cases", {"title": "x", "event_ids": "12, abc"})
    assert r.status_code == 422 and "abc" in r.text
    # every field at fault is told and marked at once, not one per attempt
    r = ui.post("/cases", {"title": " ", "event_ids": "111", "indicators": "198.51.100.88"})
    assert r.status_code == 422
    told = r.text.split('role="alert"')[1].split("</div>")[0]
    said = [re.sub(r"\s+", " ", m).strip() for m in re.findall(r"<li>(.*?)</li>", told, re.S)]
    assert said == ["a case needs a title", "no events 111", "no indicators 198.51.100.88"]
    for name in ("title", "event_ids", "indicators"):
        assert re.search(rf'name="{name}"[^>]*aria-invalid="true"', r.text), name
    ui.client.cookies.set("concord_lang", "ru")
    r = ui.post("/cases", {"title": " ", "event_ids": "111"})
    told = r.text.split('role="alert"')[1].split("</div>")[0]
    assert "у дела должен быть заголовок</li>" in told and "нет событий 111</li>" in told, told


def test_comment_status_assign_participant_and_technique(login, session: Session) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    case_id = open_case(ui)
    url = f"/cases/{case_id}"
    page = ui.get(url).text
    for form in (
        "comment-form",
        "status-form",
        "assign-form",
        "participant-form",
        "technique-form",
    ):
        assert f'id="{form}"' in page, form

    r = ui.post(f"{url}/comments", {"text": "The bank's SOC confirms <b>three</b> lures."})
    assert r.status_code == 303 and r.headers["location"] == f"{url}#comment"
    r = ui.post(f"{url}/status", {"status": "triage"})
    assert r.status_code == 303
    r = ui.post(f"{url}/assign", {"assignee": "kz-admin"})
    assert r.status_code == 303
    r = ui.post(f"{url}/participants", {"org": "uz-cert"})
    assert r.status_code == 303
    r = ui.post(f"{url}/techniques", {"technique_id": "T1566.001"})
    assert r.status_code == 303
    r = ui.post(f"{url}/details", {"severity": "critical", "tlp": "amber"})
    assert r.status_code == 303

    page = ui.get(url).text
    assert "&lt;b&gt;three&lt;/b&gt;" in page  # escaped, never markup
    assert 'data-field="status">triage<' in page
    assert 'data-field="assignee">kz-admin<' in page
    assert "T1566.001" in page and 'data-org="uz-cert"' in page
    assert "Status changed from new to triage" in page
    assert "Assigned to kz-admin" in page
    assert "Severity changed from high to critical" in page
    kinds = list(
        session.scalars(
            select(TimelineEntry.kind)
            .where(TimelineEntry.case_id == case_id)
            .order_by(TimelineEntry.id)
        )
    )
    assert kinds == [
        "create",
        "participant",
        "comment",
        "status",
        "assign",
        "participant",
        "technique",
        "update",
    ]


def test_title_and_summary_are_edited_from_the_case_page(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    case_id = open_case(ui, summary="First thoughts")
    url = f"/cases/{case_id}"
    assert 'id="text-form"' in ui.get(url).text
    r = ui.post(f"{url}/details", {"title": "Phishing wave, banks", "summary": "Three banks"})
    assert r.status_code == 303
    page = ui.get(url).text
    assert "#" + str(case_id) + " Phishing wave, banks" in page and "Three banks" in page
    assert "Title changed to “Phishing wave, banks”" in page and "Summary changed" in page
    r = ui.post(f"{url}/details", {"title": "  ", "summary": "kept as typed"})
    assert (
        r.status_code == 422
        and "kept as typed" in r.text
        and '<details id="edit-case" open' in r.text
    )


def _shown(page: str, *names: str) -> dict[str, str]:
    """What a case page's form says it showed of each field (its hidden `was_` inputs)."""
    return {
        name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
        for name in names
    }


@pytest.mark.parametrize("title", ["", "   "])
def test_a_title_refused_is_told_in_the_open_edit_section_with_what_was_typed(
    login: Callable[[str], UI], title: str
) -> None:
    ui = login("centre-analyst")
    case_id = open_case(ui, summary="First thoughts")
    url = f"/cases/{case_id}"
    page = ui.get(url).text
    shown = _shown(page, "was_title", "was_summary")
    typed = {"part": "text", "title": title, "summary": "Three banks, typed", **shown}
    r = ui.post(f"{url}/details", typed)
    assert r.status_code == 422
    section = re.search(r'<details id="edit-case"( open)?>(.*?)</details>', r.text, re.S)
    assert section is not None and section.group(1) == " open", r.text
    inside = section.group(2)
    assert 'role="alert"' in inside and "a case needs a title" in inside
    assert r.text.count('class="form-error"') == 1  # there only, not atop another form
    field = f'<input name="title" value="{title}" required maxlength="300" aria-invalid="true"'
    assert field in inside
    assert ">Three banks, typed</textarea>" in inside
    assert ui.client.get(f"/api/v1/cases/{case_id}").json()["summary"] == "First thoughts"


def test_techniques_and_links_are_taken_off_from_the_case_page(login, network) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from concord.db import session_scope
    from concord.events.model import Event
    from tests.intake.test_service import run, scan_csv

    run(network["kz-analyst"], scan_csv([("2026-11-30 10:00:00", "203.0.113.81", 3389)]))
    with session_scope() as s:
        event_id = s.scalar(select(Event.id))
    ui = login("kz-analyst")
    case_id = open_case(ui, event_ids=str(event_id), indicators="203.0.113.81")
    url = f"/cases/{case_id}"
    assert ui.post(f"{url}/techniques", {"technique_id": "T1190"}).status_code == 303
    page = ui.get(url).text
    assert f'action="/cases/{case_id}/techniques/remove"' in page
    r = ui.post(f"{url}/techniques/remove", {"technique_id": "T1190"})
    assert r.status_code == 303 and r.headers["location"].endswith("#techniques")
    assert ui.post(f"{url}/events/remove", {"event_id": str(event_id)}).status_code == 303
    assert ui.post(f"{url}/events/remove", {"indicator": "203.0.113.81"}).status_code == 303
    page = ui.get(url).text
    assert "Technique T1190 removed" in page and f"Unlinked events: {event_id}" in page
    assert "No linked events you can see." in page and 'id="technique-list"' not in page
    again = ui.post(f"{url}/events/remove", {"event_id": str(event_id)})
    assert again.status_code == 404 and "none of these is linked" in again.text


def test_form_errors_are_shown_on_the_case_page(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    url = f"/cases/{open_case(ui)}"
    r = ui.post(f"{url}/status", {"status": "resolved"})
    assert r.status_code == 409 and 'role="alert"' in r.text
    r = ui.post(f"{url}/techniques", {"technique_id": "T99"})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    r = ui.post(f"{url}/comments", {"text": "   "})
    assert r.status_code == 422


def test_forms_without_the_csrf_token_are_refused(login, session: Session) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    case_id = open_case(ui)
    url = f"/cases/{case_id}"
    r = ui.post(f"{url}/comments", {"text": "forged"}, csrf=False)
    assert r.status_code == 403
    r = ui.post(f"{url}/status", {"status": "triage", "csrf_token": "wrong"}, csrf=False)
    assert r.status_code == 403
    r = ui.post("/cases", {"title": "forged case"}, csrf=False)
    assert r.status_code == 403
    session.expire_all()
    assert session.get(Case, case_id).status == "new"  # type: ignore[union-attr]
    assert session.scalar(select(Case).where(Case.title == "forged case")) is None
    texts = session.scalars(select(TimelineEntry.text).where(TimelineEntry.case_id == case_id))
    assert "forged" not in list(texts)


def test_readers_see_no_forms_and_cannot_post(login) -> None:  # type: ignore[no-untyped-def]
    analyst = login("kz-analyst")
    case_id = open_case(analyst)
    reader = login("kz-reader")
    board = reader.get("/cases").text
    assert 'id="case-form"' not in board and "Phishing wave" in board
    page = reader.get(f"/cases/{case_id}").text
    assert 'id="comment-form"' not in page and 'id="status-form"' not in page
    r = reader.post(f"/cases/{case_id}/comments", {"text": "hi"})
    assert r.status_code == 403
    # UZ does not see KZ's AMBER case at all.
    uz = login("uz-analyst")
    assert "Phishing wave" not in uz.get("/cases").text
    assert uz.get(f"/cases/{case_id}").status_code == 404


def test_board_and_case_page_in_russian(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    case_id = open_case(ui)
    ui.post(f"/cases/{case_id}/status", {"status": "triage"})
    ui.post("/language", {"language": "ru", "next": "/cases"})
    board = ui.get("/cases").text
    assert "Дела" in board and "Открыть дело" in board and "разбор" in board
    page = ui.get(f"/cases/{case_id}").text
    assert "Хронология" in page and "Состояние изменено: новое → разбор" in page


def _template_messages() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(TEMPLATES.glob("*.html")):
        for match in MSG_RE.finditer(path.read_text(encoding="utf-8")):
            message = match.group(1) if match.group(1) is not None else match.group(2)
            found.setdefault(message, []).append(path.name)
    return found


def test_every_case_template_string_has_a_russian_translation() -> None:
    messages = _template_messages()
    assert len(messages) > 30
    with PO_FILE.open("rb") as fh:
        russian = read_po(fh, locale="ru")
    with POT_FILE.open("rb") as fh:
        template_ids = {m.id for m in read_po(fh) if m.id}
    missing = []
    for message, files in sorted(messages.items()):
        entry = russian.get(message)
        if entry is None or not entry.string or entry.fuzzy or message not in template_ids:
            missing.append(f"{message!r} ({', '.join(sorted(set(files)))})")
            continue
        assert set(re.findall(r"\{(\w+)\}", message)) == set(
            re.findall(r"\{(\w+)\}", entry.string)
        ), message
    assert not missing, "untranslated:\n" + "\n".join(missing)
    from concord.cases.model import CaseStatus, Resolution, Severity
    from concord.i18n import translator

    ru = translator("ru")
    for value in [*CaseStatus, *Severity, *Resolution]:
        assert ru(value) != value, value


def test_timeline_of_a_link_names_events_and_indicators_apart(login, network) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from concord.cases import service as cases
    from concord.db import session_scope
    from concord.events.model import Event
    from tests.intake.test_service import run, scan_csv

    run(network["kz-analyst"], scan_csv([("2026-11-30 10:00:00", "203.0.113.80", 3389)]))
    with session_scope() as s:
        event_id = s.scalar(select(Event.id))
        case = cases.create_case(
            s,
            network["kz-analyst"],
            cases.CaseInput(
                title="RDP exposure", event_ids=[event_id], indicators=["203.0.113.80"]
            ),
        )
        case_id = case.id
    page = login("kz-analyst").get(f"/cases/{case_id}").text
    assert re.search(rf"Linked events: {event_id}; \s*Linked indicators: 203.0.113.80", page)
    assert 'href="/indicators?value=203.0.113.80"' in page
    # taken off the case, it is still named by its value, where it was linked and unlinked
    with session_scope() as s:
        cases.unlink(s, network["kz-analyst"], case_id, [], ["203.0.113.80"])
    page = login("kz-analyst").get(f"/cases/{case_id}").text
    assert re.search(rf"Linked events: {event_id}; \s*Linked indicators: 203.0.113.80", page)
    assert "Unlinked indicators: 203.0.113.80" in page


def test_a_form_error_names_no_internal_field_in_russian(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    case_id = open_case(ui)
    ui.post("/language", {"language": "ru", "next": f"/cases/{case_id}"})
    ui.get(f"/cases/{case_id}")
    r = ui.post(f"/cases/{case_id}/assign", {"assignee": "uz-analyst"})
    assert r.status_code == 422
    alert = re.search(r'<div class="form-error" role="alert">(.*?)</div>', r.text, re.S)
    assert alert is not None
    assert "нет пользователя" in alert.group(1) and "(assignee)" not in alert.group(1)


def test_a_state_code_no_state_has_is_told_not_an_empty_board(
    login: Callable[[str], UI],
) -> None:
    ui = login("centre-analyst")
    r = ui.get("/cases", params={"country": "KAZ"})
    assert r.status_code == 422 and "invalid country code &#39;KAZ&#39;" in r.text
    assert 'name="country" value="KAZ" maxlength="2" placeholder="KZ" aria-invalid="true"' in r.text
    api = ui.client.get("/api/v1/cases", params={"country": "KAZ"})
    assert api.status_code == 422 and api.json()["errors"][0]["field"] == "country"


def test_a_form_saves_what_was_changed_on_it_not_a_colleagues_change(
    login: Callable[[str], UI],
) -> None:
    a = login("centre-analyst")
    case_id = open_case(a, summary="Three banks")
    url = f"/cases/{case_id}"
    page = a.get(url).text
    shown = _shown(page, "was_severity", "was_tlp", "was_title", "was_summary")
    # meanwhile a colleague lowers the severity and rewrites the summary
    b = login("centre-admin")
    assert b.post(f"{url}/details", {"severity": "low", "tlp": shown["was_tlp"]}).status_code == 303
    r = b.post(f"{url}/details", {"title": "Phishing wave", "summary": "Four banks"})
    assert r.status_code == 303
    # the first, from the page as it was, changes only the TLP, then only the title
    labels = {"part": "labels", "severity": shown["was_severity"], "tlp": "amber"}
    assert a.post(f"{url}/details", {**labels, **shown}).status_code == 303
    text = {"part": "text", "title": "Phishing wave, banks", "summary": shown["was_summary"]}
    assert a.post(f"{url}/details", {**shown, **text}).status_code == 303
    api = a.client.get(f"/api/v1/cases/{case_id}").json()
    assert (api["severity"], api["tlp"]) == ("low", "amber")
    assert (api["title"], api["summary"]) == ("Phishing wave, banks", "Four banks")
    # changing a field a colleague changed since the page was shown is refused, not done
    b.post(f"{url}/details", {"severity": "low", "tlp": "red"})
    stale = {**shown, "part": "labels", "severity": shown["was_severity"], "tlp": "green"}
    r = a.post(f"{url}/details", stale)
    assert r.status_code == 409 and "the TLP was changed meanwhile (it is now TLP:RED)" in r.text
    assert a.client.get(f"/api/v1/cases/{case_id}").json()["tlp"] == "red"
    b.post(f"{url}/details", {"severity": "low", "tlp": "amber"})
    # and a summary emptied on the form is emptied
    page = a.get(url).text
    was = re.search(r'name="was_summary" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    emptied = {
        "part": "text",
        "title": "Phishing wave, banks",
        "summary": "",
        "was_title": "Phishing wave, banks",
        "was_summary": was,
    }
    assert a.post(f"{url}/details", emptied).status_code == 303
    assert a.client.get(f"/api/v1/cases/{case_id}").json()["summary"] == ""


def test_a_long_column_shows_more_on_request(
    login: Callable[[str], UI], monkeypatch: pytest.MonkeyPatch
) -> None:
    from concord.cases import views

    monkeypatch.setattr(views, "PER_COLUMN", 2)
    ui = login("centre-analyst")
    for n in range(3):
        open_case(ui, title=f"Phishing wave {n}")
    board = ui.get("/cases").text
    assert board.count('class="case-card"') == 2
    more = re.search(r'href="(/cases\?[^"]*)" class="column-more">Show more \(1 not shown\)', board)
    assert more is not None and "status=new" in more.group(1)
    whole = ui.get(more.group(1).replace("&amp;", "&")).text
    assert whole.count('class="case-card"') == 3 and 'class="column-more"' not in whole


def test_a_count_of_cards_that_is_no_number_is_told_beside_the_filters(
    login: Callable[[str], UI],
) -> None:
    ui = login("centre-analyst")
    open_case(ui)
    r = ui.get("/cases", params={"shown": "abc", "severity": "high", "q": "wave"})
    assert r.status_code == 422
    alert = re.search(r'<div class="form-error" role="alert">(.*?)</div>', r.text, re.S)
    assert alert is not None
    assert " ".join(alert.group(1).split()) == (
        "<strong>Invalid input:</strong> the number of cases a column shows is a whole "
        "number, not &#39;abc&#39;"
    )
    # the filters as chosen and typed, no board
    assert 'id="case-filters"' in r.text and 'id="case-form"' in r.text
    assert '<option value="high" selected>' in r.text and 'value="wave"' in r.text
    assert 'id="case-board"' not in r.text
    # with a filter at fault too, both are told at once
    both = ui.get("/cases", params={"shown": "abc", "status": "bogus"})
    assert both.status_code == 422
    assert '<ul class="faults">' in both.text and "unknown status" in both.text
    assert '<select name="status" aria-invalid="true" class="invalid">' in both.text
    ui.post("/language", {"language": "ru", "next": "/cases"})
    ru = ui.get("/cases", params={"shown": "abc"})
    assert "число дел, показываемых в колонке, — целое число, а не &#39;abc&#39;" in ru.text


def test_a_case_is_closed_with_its_resolution_from_the_page(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    case_id = open_case(ui)
    url = f"/cases/{case_id}"
    page = ui.get(url).text
    assert 'name="resolution"' in page  # new → closed is offered
    # the chooser counts only where the case ends
    assert ui.post(f"{url}/status", {"status": "triage", "resolution": "duplicate"}).is_redirect
    r = ui.post(f"{url}/status", {"status": "closed", "resolution": "duplicate"})
    assert r.status_code == 303
    page = ui.get(url).text
    assert 'data-field="resolution">duplicate<' in page
    assert "Status changed from triage to closed (duplicate)" in page
    ru = ui.get(url, headers={"Accept-Language": "ru"}).text
    assert "дубликат" in ru.lower()


def test_a_participating_state_withdraws_from_the_page(login) -> None:  # type: ignore[no-untyped-def]
    kz = login("kz-analyst")
    case_id = open_case(kz, participants="uz-cert")
    url = f"/cases/{case_id}"
    uz = login("uz-analyst")
    page = uz.get(url).text
    assert "Withdraw" in page and 'id="participant-form"' not in page
    r = uz.post(f"{url}/participants/remove", {"org": "uz-cert"})
    assert r.status_code == 303 and r.headers["location"] == "/cases"
    assert uz.get(url).status_code == 404
    page = kz.get(url).text
    assert "uz-cert no longer takes part" in page


def test_a_change_made_meanwhile_is_told_whole_in_russian() -> None:
    from concord.cases.service import _changed_meanwhile
    from concord.i18n import gettext

    severity = gettext("ru", _changed_meanwhile("severity", "low"))
    assert severity.startswith("критичность тем временем изменена (сейчас: низкая)")
    assert "TLP:RED" in gettext("ru", _changed_meanwhile("tlp", "red"))
    assert gettext("ru", _changed_meanwhile("title", "x")).startswith("заголовок")
    assert gettext("ru", _changed_meanwhile("summary", "")).startswith("описание")


def test_a_case_ended_without_a_resolution_says_so(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    case_id = open_case(ui)
    url = f"/cases/{case_id}"
    assert 'data-field="resolution"' not in ui.get(url).text  # open: nothing to say yet
    for status in ("triage", "in-progress", "resolved"):
        assert ui.post(f"{url}/status", {"status": status, "resolution": ""}).is_redirect
    page = ui.get(url).text
    assert 'data-field="resolution" class="muted">not given<' in page  # as reports count it
    assert 'name="resolution"' in page  # and it may be given on closing
    assert ui.post(f"{url}/status", {"status": "closed", "resolution": "mitigated"}).is_redirect
    assert 'data-field="resolution">mitigated<' in ui.get(url).text


def test_an_assignment_made_meanwhile_is_not_overwritten_unseen(login) -> None:  # type: ignore[no-untyped-def]
    kz, uz = login("kz-analyst"), login("uz-analyst")
    case_id = open_case(kz, participants="uz-cert")
    url = f"/cases/{case_id}"
    assert 'name="was_assignee" value=""' in uz.get(url).text  # uz's page: nobody
    assert kz.post(f"{url}/assign", {"assignee": "kz-analyst", "was_assignee": ""}).is_redirect
    r = uz.post(f"{url}/assign", {"assignee": "uz-analyst", "was_assignee": ""})
    assert r.status_code == 409
    assert "the assignee was changed meanwhile" in r.text
    assert 'name="was_assignee" value="kz-analyst"' in r.text  # the page shows it now
    uz.client.cookies.set("concord_lang", "ru")
    ru = uz.post(f"{url}/assign", {"assignee": "uz-analyst", "was_assignee": ""})
    assert "исполнитель тем временем изменён" in ru.text
    uz.client.cookies.set("concord_lang", "en")
    # seen, it may be changed
    assert uz.post(f"{url}/assign", {"assignee": "uz-analyst", "was_assignee": "kz-analyst"})
    assert 'data-field="assignee">uz-analyst<' in uz.get(url).text


def test_a_status_refused_keeps_the_choice_and_reads_in_russian(login) -> None:  # type: ignore[no-untyped-def]
    kz = login("kz-analyst")
    case_id = open_case(kz)
    url = f"/cases/{case_id}"
    assert kz.post(f"{url}/status", {"status": "in-progress"}).is_redirect
    # a page still showing "new" offers "closed", which a case in progress cannot go to
    kz.client.cookies.set("concord_lang", "ru")
    r = kz.post(f"{url}/status", {"status": "closed", "resolution": "duplicate"})
    assert r.status_code == 409
    said = "дело не может перейти из состояния «в работе» в «закрыто»; возможно: решено, разбор"
    assert said in r.text
    assert '<option value="duplicate" selected>' in r.text  # as it was chosen


def test_case_resolutions_read_as_words_in_english_as_in_russian() -> None:
    from concord.cases.model import Resolution
    from concord.i18n import translator

    en = translator("en")
    words = [en(r.value) for r in Resolution]
    assert words == ["remediated", "mitigated", "false positive", "duplicate", "no action"]
