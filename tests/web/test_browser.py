"""The UI in a real browser: Debian's headless chromium driven by Playwright against a real
uvicorn server on loopback. Never `playwright install`: the system chromium is used."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, PASSWORD, Network

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
TIMEOUT_MS = 5000

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(network: Network) -> Iterator[str]:
    """A real uvicorn server in a thread, over this test's fresh database."""
    import uvicorn

    from concord.web.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=server, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
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
