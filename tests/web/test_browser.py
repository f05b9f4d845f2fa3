"""The UI in a real browser: Debian's headless chromium driven by Playwright against a real
uvicorn server on loopback. Never `playwright install`: the system chromium is used."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: a page that waits for a commit on a busy shared machine (the other backend's
# suite runs beside this one) may take seconds; a broken page never comes at all.
TIMEOUT_MS = 20_000

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One chromium for the whole module; each test gets a fresh context (no shared cookies)."""
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=server, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    yield page
    if os.environ.get("CONCORD_SCREENSHOTS"):
        page.screenshot(path=f"{os.environ['CONCORD_SCREENSHOTS']}/{time.time_ns()}.png")
    context.close()


def sign_in(page, username: str = "centre-admin", password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.locator('form[action="/login"] button[type="submit"]').click()


def test_login_wrong_password_then_right_one(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/organizations")
    expect(page).to_have_url(re.compile(r"/login\?next=/organizations$"))
    sign_in(page, password="not-the-password")
    expect(page.locator("p.error")).to_have_text("wrong username or password")
    expect(page.locator('input[name="username"]')).to_have_value("centre-admin")
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator(".who")).to_contain_text("centre-admin")


def test_create_organisation_and_see_it_listed(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.goto("/organizations")
    page.get_by_role("link", name="New organisation").click()
    form = page.locator("#org-form")
    form.locator('input[name="slug"]').fill("kz-rail")
    form.locator('select[name="kind"]').select_option("owner")
    form.locator('input[name="name_en"]').fill("Steppe Railways")
    form.locator('input[name="name_ru"]').fill("Степные железные дороги")
    form.locator('input[name="sector"]').fill("transport")
    form.locator('select[name="parent"]').select_option("kz-cert")
    form.locator('select[name="tlp"]').select_option("green")
    form.get_by_role("button", name="Create organisation").click()
    expect(page).to_have_url(re.compile(r"/organizations/kz-rail$"))
    expect(page.locator("h1")).to_contain_text("Steppe Railways")

    page.get_by_role("navigation").get_by_role("link", name="Organisations").click()
    row = page.locator("#organizations tr", has_text="kz-rail")
    expect(row).to_contain_text("Steppe Railways")
    expect(row.locator("span.tlp.tlp-green")).to_have_text("TLP:GREEN")


def test_create_organisation_error_is_shown_in_the_form(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.goto("/organizations/new")
    page.fill('input[name="slug"]', "kz-bank")
    page.fill('input[name="name_en"]', "Duplicate")
    page.select_option('select[name="parent"]', "kz-cert")
    page.get_by_role("button", name="Create organisation").click()
    expect(page.locator(".form-error")).to_contain_text("exists already")
    expect(page.locator('input[name="name_en"]')).to_have_value("Duplicate")


def test_import_asset_csv_and_see_report_and_assets(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.goto("/organizations/kz-bank")
    page.set_input_files('#import-form input[name="file"]', FIXTURES / "assets" / "kz-bank.csv")
    page.locator("#import-form").get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("The file was imported.")
    expect(report.locator('[data-count="added"]')).to_have_text("7")
    table = page.locator("#asset-table")
    for value in ("203.0.113.0/24", "AS64500", "steppe-bank.example", "pkg:pypi/django"):
        expect(table).to_contain_text(value)

    # A file with refused rows: nothing imported, each refused row with its line and reason.
    page.goto("/assets")
    page.select_option('#import-form select[name="org"]', "kz-bank")
    page.set_input_files(
        '#import-form input[name="file"]', FIXTURES / "assets" / "kz-bank-mixed.csv"
    )
    page.locator("#import-form").get_by_role("button", name="Import").click()
    refused = page.locator("#import-report table.refused tbody tr")
    expect(refused).to_have_count(4)
    expect(refused.first).to_contain_text("line 3")
    expect(refused.first).to_contain_text("host bits are set")


def test_switch_to_russian_and_it_persists(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.goto("/organizations")
    page.locator('button[data-lang="ru"]').click()
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name="Организации")).to_be_visible()
    expect(page.locator("h1")).to_have_text("Организации")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator(".who")).to_contain_text("администратор")
    page.reload()
    expect(page.locator("h1")).to_have_text("Организации")
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Обзор")
    page.locator('button[data-lang="en"]').click()
    expect(page.locator("h1")).to_have_text("Dashboard")


def test_verify_chain_button_swaps_the_result_in(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.goto("/audit")
    expect(page.locator("#audit tbody tr").first).to_be_visible()
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("The chain is intact")
    expect(page).to_have_url(re.compile(r"/audit$"))  # htmx swapped, no navigation


def test_a_file_over_the_upload_limit_is_told_before_it_is_sent(  # type: ignore[no-untyped-def]
    page, tmp_path, monkeypatch
) -> None:
    """Refused by the server, the form's choices would be lost with the body: the browser
    tells it when the file is chosen, sends nothing, and the choices stay."""
    from concord.config import reset_settings

    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", "1000")
    reset_settings()
    sign_in(page, "kz-analyst")
    page.goto("/intake")
    page.select_option('#intake-form select[name="tlp"]', "green")
    big = tmp_path / "scan_rdp.csv"
    big.write_bytes(b"x" * 1001)
    field = page.locator('#intake-form input[name="file"]')
    field.set_input_files(str(big))
    said = field.evaluate("input => input.validationMessage")
    assert said == "the upload exceeds the limit of 1000 bytes", said
    page.locator('#intake-form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/intake$"))
    expect(page.locator("#receipt")).to_have_count(0)  # nothing sent
    expect(page.locator('#intake-form select[name="tlp"]')).to_have_value("green")
    small = tmp_path / "small.csv"
    small.write_bytes(b"x" * 10)
    field.set_input_files(str(small))
    assert field.evaluate("input => input.validationMessage") == ""


def test_submit_a_report_search_events_and_open_one(page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.intake.test_service import scan_csv

    sign_in(page, "kz-analyst")
    expect(page.locator("h1")).to_have_text("Dashboard")
    report = tmp_path / "scan_rdp.csv"
    report.write_bytes(
        scan_csv([("2026-11-30 10:00:00", "146.185.0.7", 3389), ("garbled", "146.185.0.8", 3389)])
    )
    page.goto("/intake")
    page.set_input_files('#intake-form input[name="file"]', str(report))
    page.locator('#intake-form button[type="submit"]').click()
    receipt = page.locator("#receipt")
    expect(receipt.locator('[data-count="accepted"]')).to_have_text("1")
    expect(receipt.locator('[data-count="rejected"]')).to_have_text("1")
    expect(receipt).to_contain_text("line 3")
    receipt.locator("#receipt-events").click()  # just this submission's events
    expect(page.locator("#submission-filter")).to_be_visible()
    expect(page.locator("#event-table tbody tr")).to_have_count(1)
    page.goto("/events")
    page.fill('#event-search input[name="value"]', "146.185.0.7")
    page.locator('#event-search button[type="submit"]').click()
    rows = page.locator("#event-table tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("a").first.click()
    expect(page.locator("pre.raw")).to_contain_text("146.185.0.7")


def test_a_sent_form_says_it_is_working_and_cannot_be_sent_twice(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "kz-analyst")
    page.goto("/intake")
    # held back here, so that the page stays as the user sees it while the upload runs
    page.evaluate(
        "document.querySelector('#intake-form')"
        ".addEventListener('submit', (e) => e.preventDefault())"
    )
    page.set_input_files(
        '#intake-form input[name="file"]',
        files=[{"name": "a.csv", "mimeType": "text/csv", "buffer": b"x"}],
    )
    button = page.locator('#intake-form button[type="submit"]')
    button.click()
    expect(button).to_be_disabled()
    expect(button).to_have_text("Sending and reading the file…")


def test_case_page_leaves_room_for_linked_values(page, server) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    from concord.access import service as access
    from concord.cases import service as cases
    from concord.db import session_factory
    from concord.intake import service as intake
    from concord.orgs.model import Organization

    url = "https://login.example-bank-security-check.test/account/verify/session/" + "a" * 60
    with session_factory()() as s:
        user = access.get_user(s, None, "kz-analyst")
        analyst = access.principal_for(user, s.get(Organization, user.org_id))
    record = {
        "time.source": "2026-11-30T10:00:00+00:00",
        "source.url": url,
        # a long unbreakable type besides the long value, as malware reports have
        "classification.taxonomy": "malicious-code",
        "classification.type": "malware-distribution",
        "feed.name": "phish",
    }
    intake.ingest(
        session_factory(),
        analyst,
        intake.Source(io.BytesIO(json.dumps(record).encode() + b"\n"), "phish.jsonl"),
        fmt="intelmq",
    )
    with session_factory()() as s:
        from sqlalchemy import select

        from concord.events.model import Event

        case = cases.create_case(s, analyst, cases.CaseInput(title="Phishing"))
        cases.link(s, analyst, case.id, event_ids=list(s.scalars(select(Event.id))))
        s.commit()
        case_id = case.id
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, "kz-analyst")
    page.goto(f"/cases/{case_id}")
    cell = page.locator("#event-table td.value").first
    expect(cell).to_contain_text("example-bank-security-check")
    assert cell.bounding_box()["width"] >= 120
    # the table stays inside its column: the page itself never scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # ... and the whole table fits its column without scrolling, in Russian too
    page.locator('button[data-lang="ru"]').click()
    page.goto(f"/cases/{case_id}")
    assert page.evaluate(
        "(() => { const f = document.querySelector('#links .scroll');"
        " return f.scrollWidth <= f.clientWidth; })()"
    )
    frame = page.locator("#links .scroll").bounding_box()
    for cell in ("td.tlp-cell", "td.value button"):  # its TLP, and the button to unlink it
        box = page.locator(f"#event-table {cell}").first.bounding_box()
        assert box["x"] + box["width"] <= frame["x"] + frame["width"], cell


def _case_with_kz(title: str) -> int:
    """A case the centre's analyst opened with KZ's national body taking part: its id."""
    from concord.access import service as access
    from concord.cases import service as cases
    from concord.db import session_factory
    from concord.orgs.model import Organization

    with session_factory()() as s:
        user = access.get_user(s, None, "centre-analyst")
        analyst = access.principal_for(user, s.get(Organization, user.org_id))
        case = cases.create_case(s, analyst, cases.CaseInput(title=title, participants=["kz-cert"]))
        s.commit()
        return case.id


def test_case_page_buttons_show_and_a_failed_form_comes_into_view(page, server) -> None:  # type: ignore[no-untyped-def]
    case_id = _case_with_kz("Botnet C2")
    page.set_viewport_size({"width": 1280, "height": 700})
    sign_in(page, "centre-analyst")
    page.goto(f"/cases/{case_id}")
    remove = page.locator("#participant-table button", has_text="Remove")
    expect(remove).to_be_visible()
    colour = remove.evaluate("b => getComputedStyle(b).color")
    background = remove.evaluate("b => getComputedStyle(b.closest('.card')).backgroundColor")
    assert colour != background  # not white on white
    page.fill('#technique-form input[name="technique_id"]', "T9999")
    page.locator('#technique-form button[type="submit"]').click()
    error = page.locator("#techniques .form-error")
    expect(error).to_be_visible()
    expect(error).to_be_in_viewport()


def test_removing_a_participant_asks_first(page, server) -> None:  # type: ignore[no-untyped-def]
    """What cannot be taken back is asked first: dismissed, nothing is sent; accepted, the
    participant is removed."""
    case_id = _case_with_kz("Phishing wave")
    sign_in(page, "centre-analyst")
    page.goto(f"/cases/{case_id}")
    row = page.locator('#participant-table tr[data-org="kz-cert"]')
    asked: list[str] = []

    def answer(accept: bool):  # type: ignore[no-untyped-def]
        def handle(dialog) -> None:  # type: ignore[no-untyped-def]
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    row.locator("button", has_text="Remove").click()
    page.wait_for_timeout(300)
    assert asked and asked[0].startswith("Remove KZ national CERT from this case?"), asked
    expect(row).to_be_visible()  # not sent
    expect(row.locator("button")).to_have_text("Remove")  # nor left marked as working
    page.once("dialog", answer(True))
    row.locator("button", has_text="Remove").click()
    expect(page.locator('#participant-table tr[data-org="kz-cert"]')).to_have_count(0)


def test_an_admin_disables_a_user_after_being_asked_and_enables_them_again(page, server) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "kz-admin")
    page.goto("/users")
    row = page.locator("#user-kz-analyst")
    asked: list[str] = []

    def dismiss(dialog) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.locator("button", has_text="Disable").click()
    page.wait_for_timeout(300)
    assert asked and asked[0].startswith("Disable kz-analyst?"), asked
    expect(row.locator(".badge")).to_have_text("active")  # not sent
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button", has_text="Disable").click()
    expect(page.locator("#user-changed")).to_contain_text("User kz-analyst was disabled")
    expect(page.locator("#user-kz-analyst .badge")).to_have_text("disabled")
    page.locator("#user-kz-analyst button", has_text="Enable").click()
    expect(page.locator("#user-changed")).to_contain_text("User kz-analyst was enabled")
    expect(page.locator("#user-kz-analyst .badge")).to_have_text("active")


def test_campaign_graph_and_indicator_sightings(page, server) -> None:  # type: ignore[no-untyped-def]
    import io

    from concord.access import service as access
    from concord.db import session_factory
    from concord.events import correlation
    from concord.intake import service as intake
    from concord.orgs.model import Organization
    from tests.intake.test_service import scan_csv

    principals = []
    with session_factory()() as s:
        for username in ("kz-analyst", "uz-analyst"):
            user = access.get_user(s, None, username)
            principals.append(access.principal_for(user, s.get(Organization, user.org_id)))
    for principal in principals:
        data = scan_csv([("2026-11-30 10:00:00", "146.185.0.99", 3389)])
        intake.ingest(
            session_factory(),
            principal,
            intake.Source(io.BytesIO(data), "scan_rdp.csv"),
            tlp="green",
        )
    with session_factory()() as s:
        correlation.correlate(s)
        s.commit()
    sign_in(page, "centre-analyst")
    page.goto("/indicators?value=146.185.0.99")
    expect(page.locator(".indicator")).to_contain_text("cross-state")
    expect(page.locator(".indicator table tbody tr")).to_have_count(2)
    page.goto("/campaigns")
    page.locator("#campaign-table a").first.click()
    graph = page.locator("#campaign-graph")
    expect(graph.locator("circle.event")).to_have_count(2)
    assert graph.locator("rect.indicator").count() >= 1
    # a case is opened from the indicator, and from an event, with the form filled in
    page.goto("/indicators?value=146.185.0.99")
    page.locator(".indicator a.open-case").click()
    expect(page.locator('#case-form textarea[name="indicators"]')).to_have_value("146.185.0.99")
    page.goto("/events?value=146.185.0.99")
    page.locator("#event-table tbody tr a").first.click()
    event_id = page.url.rsplit("/", 1)[1]
    # the event says its value is cross-state, and which campaign it is part of
    expect(page.locator(".badge.cross")).to_be_visible()
    expect(page.locator("#event-campaign")).to_have_text("146.185.0.99")
    page.locator("#open-case").click()
    expect(page.locator('#case-form input[name="event_ids"]')).to_have_value(event_id)
    page.fill('#case-form input[name="title"]', "RDP scanner seen in two states")
    page.locator('#case-form button[type="submit"]').click()
    expect(page.locator("#event-table tr[data-event]")).to_have_count(1)
    # the case now belongs to the campaign of its event: in its graph and its list
    page.goto("/campaigns")
    page.locator("#campaign-table a").first.click()
    expect(page.locator("#campaign-graph polygon.case")).to_have_count(1)
    expect(page.locator("#campaign-cases tr[data-case]")).to_contain_text("RDP scanner")
    # on a phone the graph scrolls in its card, and a line says so; not on a wide screen
    expect(page.locator("#graph-scrolls")).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 800})
    expect(page.locator("#graph-scrolls")).to_be_visible()
    frame = page.locator(".graph").evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert frame[0] > frame[1], frame  # there is more to the right, in the card


def test_open_a_case_and_comment(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "kz-analyst")
    page.goto("/cases")
    page.fill('#case-form input[name="title"]', "Phishing wave against banks")
    page.locator('#case-form button[type="submit"]').click()
    expect(page.locator("h1")).to_contain_text("Phishing wave against banks")
    page.goto("/cases")
    expect(page.locator("#case-board")).to_contain_text("Phishing wave against banks")


def test_every_state_can_be_chosen_for_a_case_in_a_narrow_window(page) -> None:  # type: ignore[no-untyped-def]
    from concord.db import session_scope
    from concord.orgs import service as orgs

    with session_scope() as s:
        for cc in ("AM", "AZ", "KG", "TJ", "TM", "MN", "GE", "BY"):
            slug = f"{cc.lower()}-cert"
            orgs.create_org(
                s,
                None,
                orgs.OrgInput(
                    slug,
                    "national-body",
                    f"{cc} national computer incident response team of the republic",
                    country=cc,
                ),
            )
    page.set_viewport_size({"width": 800, "height": 900})
    sign_in(page, "centre-analyst")
    page.locator('button[data-lang="ru"]').click()
    page.goto("/cases")
    choices = page.locator("#participant-choices")
    assert choices.locator('input[type="checkbox"]').count() == 10
    # they scroll down in their box, never sideways out of sight
    assert choices.evaluate("f => f.scrollWidth <= f.clientWidth")


def test_a_long_unbroken_text_wraps_inside_the_page(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "kz-analyst")
    page.goto("/cases")
    page.fill('#case-form input[name="title"]', "Leak " + "x" * 280)
    page.fill('#case-form textarea[name="summary"]', "https://leak.example/" + "a" * 3000)
    page.locator('#case-form button[type="submit"]').click()
    expect(page.locator("h1")).to_contain_text("Leak ")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_build_a_report_with_charts(page) -> None:  # type: ignore[no-untyped-def]
    import io

    from concord.access import service as access
    from concord.db import session_factory
    from concord.intake import service as intake
    from concord.orgs.model import Organization
    from tests.intake.test_service import scan_csv

    with session_factory()() as s:
        user = access.get_user(s, None, "kz-analyst")
        principal = access.principal_for(user, s.get(Organization, user.org_id))
    rows = [(f"2026-11-{1 + i % 28:02d} 10:00:00", f"146.185.1.{i}", 3389) for i in range(40)]
    intake.ingest(
        session_factory(),
        principal,
        intake.Source(io.BytesIO(scan_csv(rows)), "scan_rdp.csv"),
        tlp="green",
    )
    sign_in(page, "centre-analyst")
    page.goto("/reports")
    page.fill('#build-report input[name="period"]', "2026-11")
    page.locator('#build-report button[type="submit"]').click()
    asked = page.locator("#report-requests tbody tr").first
    expect(asked).to_have_attribute("data-status", "queued")
    from concord.jobs.worker import run_ready

    assert run_ready() == 1  # a worker builds it; the page notices by itself
    ready = asked.get_by_role("link", name=re.compile("ready: open report"))
    expect(ready).to_be_visible(timeout=10_000)
    expect(page.locator("#reports tbody tr")).to_have_count(1)  # listed without a reload
    ready.click()
    expect(page.locator("body")).to_contain_text("TLP:")
    assert page.locator("svg").count() >= 1


def test_a_report_downloads_from_its_page_which_stays(page) -> None:  # type: ignore[no-untyped-def]
    from concord.db import session_factory
    from concord.reports import service as reports

    with session_factory()() as s:
        report_id = reports.store(s, reports.build_report(s, None, "2026-11", "network")).id
        s.commit()
    sign_in(page, "centre-analyst")
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto(f"/reports/{report_id}")
    for fmt in ("HTML", "CSV", "JSON"):
        with page.expect_download() as saved:
            page.get_by_role("link", name=f"Download {fmt}").click()
        name = saved.value.suggested_filename
        assert name == f"concord-report-network-2026-11.{fmt.lower()}", name
        # the app's page is still the one shown, not the file in its place
        expect(page).to_have_url(re.compile(rf"/reports/{report_id}$"))
        expect(page.get_by_role("link", name="← Reports")).to_be_visible()


def test_an_event_from_a_long_json_line_fits_the_page(page, server) -> None:  # type: ignore[no-untyped-def]
    import io

    from concord.access import service as access
    from concord.db import session_factory
    from concord.intake import service as intake
    from concord.orgs.model import Organization
    from tests.conftest import FIXTURES

    with session_factory()() as s:
        user = access.get_user(s, None, "kz-analyst")
        analyst = access.principal_for(user, s.get(Organization, user.org_id))
    line = (FIXTURES / "intelmq" / "events.jsonl").read_text().splitlines()[0]
    receipt = intake.ingest(
        session_factory(),
        analyst,
        intake.Source(io.BytesIO(line.encode() + b"\n"), "events.jsonl"),
        fmt="intelmq",
    )
    assert receipt.accepted == 1 and len(line) > 300
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, "kz-analyst")
    page.goto(f"/events?submission={receipt.id}")
    page.locator("#event-table tbody tr a").first.click()
    expect(page.locator("pre.raw")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_no_page_scrolls_sideways_on_a_phone(page, server) -> None:  # type: ignore[no-untyped-def]
    """At 390px, wide tables scroll inside their card and details wrap: the page itself is
    never wider than the screen. In Russian, whose labels are the longer ones."""
    import io

    from concord.access import service as access
    from concord.db import session_factory
    from concord.events import correlation
    from concord.intake import service as intake
    from concord.jobs.worker import run_ready
    from concord.orgs import service as orgs
    from concord.orgs.model import Organization
    from tests.intake.test_service import give_prefix, scan_csv

    with session_factory()() as s:
        give_prefix(s, "kz-bank", "146.185.0.0/24")
        orgs.add_contact(
            s, None, "kz-bank", orgs.ContactInput("Duty officer", "duty@steppe-bank.example")
        )
        s.commit()
        principals = []
        for username in ("kz-analyst", "uz-analyst"):
            user = access.get_user(s, None, username)
            principals.append(access.principal_for(user, s.get(Organization, user.org_id)))
    sha = "f87cb9e5b8a0ea7aee0e1fe35d6c0ae209e5a9129f04a6e3cef20ea4a23f2f31"
    for principal in principals:
        rows = [("2026-11-30 10:00:00", "146.185.0.7", 3389)]
        intake.ingest(
            session_factory(),
            principal,
            intake.Source(io.BytesIO(scan_csv(rows)), "scan_rdp.csv"),
            tlp="green",
        )
        record = {
            "time.source": "2026-11-30T10:00:00+00:00",
            "source.ip": "146.185.0.9",
            "malware.hash.sha256": sha,  # a 64-character campaign label, unbroken
            "classification.taxonomy": "malicious-code",
            "classification.type": "malware-distribution",
            "feed.name": "sensors",
        }
        intake.ingest(
            session_factory(),
            principal,
            intake.Source(io.BytesIO(json.dumps(record).encode() + b"\n"), "sensors.jsonl"),
            fmt="intelmq",
            tlp="green",
        )
    with session_factory()() as s:
        correlation.correlate(s)
        s.commit()
    sign_in(page, "centre-admin")
    page.goto("/reports")
    page.fill('#build-report input[name="period"]', "2026-11")
    page.locator('#build-report button[type="submit"]').click()
    expect(page.locator("#report-requests tbody tr").first).to_be_visible()
    assert run_ready() == 1
    page.goto("/reports")
    report = page.locator("#reports tbody a").first.get_attribute("href")
    page.goto(f"/events?value={sha}")
    event = page.locator("#event-table tbody a").first.get_attribute("href")
    page.goto("/campaigns")
    campaign = page.locator("#campaign-table tbody a").first.get_attribute("href")
    pages = [
        "/events",
        event,
        "/intake",
        "/indicators",
        f"/indicators?value={sha}",
        "/alerts",
        "/campaigns",
        campaign,
        "/reports",
        report,
        "/organizations",
        "/organizations/kz-cert",
        "/organizations/kz-bank",
        "/contacts",
        "/assets",
        "/whois?q=146.185.0.7",
        "/users",
        "/tokens",
        "/audit",
    ]
    page.set_viewport_size({"width": 390, "height": 800})
    page.locator('button[data-lang="ru"]').click()
    wider = []
    for path in pages:
        page.goto(path, wait_until="domcontentloaded")  # the stylesheet is in by then
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wider.append(f"{path}: {width}px")
    assert not wider
    # the campaign graph keeps a readable size, scrolling within its card rather than shrinking
    page.goto(campaign)
    assert page.locator("#campaign-graph").bounding_box()["width"] >= 560
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_on_a_phone_the_navigation_is_one_row_showing_the_current_page(page) -> None:  # type: ignore[no-untyped-def]
    """In Russian, the wrapped navigation took a third of a phone's screen; as one row that
    scrolls sideways it shows the current page's link, and every link is still reachable."""
    sign_in(page)
    expect(page.locator("h1")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 800})
    page.locator('button[data-lang="ru"]').click()
    page.goto("/reports")
    header = page.locator("header.top").bounding_box()
    assert header["height"] < 200, header
    current = page.locator('header.top nav a[aria-current="page"]')
    expect(current).to_be_in_viewport()
    page.locator('header.top nav a[href="/audit"]').click()
    expect(page).to_have_url(re.compile(r"/audit$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_user_form_offers_only_the_roles_of_the_chosen_organisation(page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page)
    page.goto("/users")
    form = page.locator("#user-form")
    form.locator('select[name="org"]').select_option("ccc")
    form.locator('select[name="role"]').select_option("admin")
    # an owner's users are its contacts or readers: the admin role it cannot have goes
    form.locator('select[name="org"]').select_option("kz-bank")
    expect(form.locator('select[name="role"]')).to_have_value("")
    for role, offered in (("admin", False), ("analyst", False), ("owner-contact", True)):
        option = form.locator(f'select[name="role"] option[value="{role}"]')
        assert option.evaluate("o => !o.disabled") is offered, role
    form.locator('select[name="org"]').select_option("kz-cert")
    assert form.locator('option[value="owner-contact"]').evaluate("o => o.disabled")
    assert form.locator('option[value="admin"]').evaluate("o => !o.disabled")


def test_a_typed_organisation_offers_the_roles_of_its_kind_too(page, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.access import views

    monkeypatch.setattr(views, "ORG_CHOICES", 3)  # more organisations than the form lists
    sign_in(page)
    page.goto("/users")
    form = page.locator("#user-form")
    org = form.locator('input[name="org"]')
    org.fill("kz-cert")
    form.locator('select[name="role"]').select_option("admin")
    org.fill("kz-bank")  # an owner, not suggested: its roles are not known here
    assert form.locator('option[value="admin"]').evaluate("o => !o.disabled")
    org.fill("uz-cert")
    assert form.locator('option[value="owner-contact"]').evaluate("o => o.disabled")
    org.fill("KZ-CERT ")  # as the server reads it
    assert form.locator('option[value="owner-contact"]').evaluate("o => o.disabled")


def test_a_mail_of_feeds_shows_each_on_its_receipt_in_a_narrow_window(page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gzip
    from email import policy
    from email.parser import BytesParser

    csv = FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv"
    rows = len(csv.read_text().splitlines()) - 1
    mail = BytesParser(policy=policy.default).parsebytes(
        (FIXTURES / "email" / "plain-bruteforce-html.eml").read_bytes()
    )
    mail.make_mixed()
    mail.add_attachment(csv.read_bytes(), maintype="text", subtype="csv", filename=csv.name)
    bomb = gzip.compress(b"\0" * (16 << 20), compresslevel=9)
    mail.add_attachment(
        bomb, maintype="application", subtype="gzip", filename="a-long-name-" * 8 + ".json.gz"
    )
    path = tmp_path / "forwarded.eml"
    path.write_bytes(mail.as_bytes())
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "kz-analyst")
    page.locator('button[data-lang="ru"]').click()
    page.goto("/intake")
    page.set_input_files('#intake-form input[name="file"]', str(path))
    page.locator('#intake-form button[type="submit"]').click()
    receipt = page.locator("#receipt")
    expect(receipt.locator('[data-count="accepted"]')).to_have_text(str(rows))
    expect(receipt).to_contain_text("отклонён как возможная архивная бомба")
    parts = receipt.locator("#receipt-parts tbody tr")
    expect(parts).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    parts.first.locator("a").click()  # the attachment's own receipt
    expect(page.locator("#receipt h3")).to_contain_text(csv.name)
    expect(page.locator('#receipt [data-count="accepted"]')).to_have_text(str(rows))


def test_the_api_docs_work_without_reaching_the_internet(page, server) -> None:  # type: ignore[no-untyped-def]
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith(server) else None)
    page.goto("/api/docs")
    # Swagger UI drew the API from its own copy (OpenAPI 3.1 needs Swagger UI 5)
    expect(page.locator(".opblock-tag-section").first).to_be_visible(timeout=15000)
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/events").first).to_be_visible()
    assert elsewhere == []
