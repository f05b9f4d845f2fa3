"""Server-rendered UI pages: each renders for a signed-in user, forms work through the
services, CSRF is enforced, errors are shown next to the form, and every UI string has a
Russian translation."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.conftest import BACKEND, FIXTURES, PASSWORD, Network, sign_in

ASSETS = FIXTURES / "assets"
PACKAGE = Path(__file__).resolve().parents[2] / "src" / "concord"
TEMPLATE_DIRS = [
    PACKAGE / d / "templates"
    for d in ("web", "orgs", "access", "audit", "cases", "reports", "intake", "events")
]
PO_FILE = PACKAGE / "i18n" / "ru" / "LC_MESSAGES" / "messages.po"
POT_FILE = PACKAGE / "i18n" / "messages.pot"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')
# `_("...")` or `_('...')`, not `foo_(` nor `x._(`.
MSG_RE = re.compile(r"""(?<![\w.])_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
PAGES = [
    "/",
    "/organizations",
    "/organizations/new",
    "/organizations/kz-bank",
    "/contacts",
    "/assets",
    "/whois",
    "/users",
    "/tokens",
    "/audit",
]


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

    def post(self, url: str, data: dict[str, object] | None = None, csrf: bool = True, **kw):  # type: ignore[no-untyped-def]
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=body, follow_redirects=False, **kw)


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
        assert r.status_code == 200 and r.url.path == "/", r.text
        ui = UI(client)
        ui.get("/")
        assert ui.csrf
        return ui

    yield signed_in
    for client in clients:
        client.close()


@pytest.fixture
def admin(login: Callable[[str], UI]) -> UI:
    return login("centre-admin")


def text_of(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(re.sub(r"<[^>]+>", " ", response.text))


def upload(name: str, content_type: str = "text/csv") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, (ASSETS / name).read_bytes(), content_type)}


# --- every page ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_login(app, url: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        r = client.get(url, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")


def test_a_form_sent_after_the_session_ended_is_said_on_the_login_page(login) -> None:  # type: ignore[no-untyped-def]
    """Signed out in another tab, a comment sent from a page still open: the login page
    says the form was not taken, rather than showing itself as if nothing had happened."""
    analyst = login("centre-analyst")
    analyst.get("/cases")
    analyst.post("/logout")
    r = analyst.post("/cases/1/comments", {"body": "a long comment"}, csrf=False)
    assert r.status_code == 303 and r.headers["location"].endswith("&ended=1")
    page = analyst.get(r.headers["location"])
    assert 'id="session-ended"' in page.text and "it was not taken" in page.text
    # visiting a page, no form lost: nothing to say
    plain = analyst.client.get("/cases", follow_redirects=True)
    assert 'id="session-ended"' not in plain.text


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_a_signed_in_user(admin: UI, url: str) -> None:
    r = admin.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "centre-admin" in r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_an_owner_contact(login, url: str) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-bank-contact")
    r = ui.get(url)
    if url == "/organizations/new":  # a form it could not send: refused, in words
        assert r.status_code == 403 and "only admins and analysts create" in r.text
        return
    # An owner sees its own organisation; the rest of the directory is the policy's call.
    assert r.status_code == 200, r.text


def test_forms_are_only_for_those_who_may_send_them(login) -> None:  # type: ignore[no-untyped-def]
    reader = login("kz-reader")
    bank = reader.get("/organizations/kz-bank").text
    assert 'id="contact-form"' not in bank and 'id="import-form"' not in bank
    assert 'href="/organizations/new"' not in reader.get("/organizations").text
    assert reader.get("/organizations/new").status_code == 403
    contact = login("kz-bank-contact").get("/organizations/kz-bank").text
    assert 'id="contact-form"' in contact and 'id="import-form"' in contact
    analyst = login("kz-analyst")
    assert 'href="/organizations/new"' in analyst.get("/organizations").text
    assert 'id="contact-form"' in analyst.get("/organizations/kz-bank").text
    # a national body is offered what it may create: owners and partners under itself
    form = analyst.get("/organizations/new").text
    kinds = re.findall(
        r'<option value="([^"]*)"', form.split('name="kind"')[1].split("</select>")[0]
    )
    parents = re.findall(
        r'<option value="([^"]*)"', form.split('name="parent"')[1].split("</select>")[0]
    )
    assert kinds == ["owner", "partner"] and parents == ["kz-cert"]
    assert '<option value="kz-cert" selected>' in form
    created = analyst.post(
        "/organizations/new",
        {
            "slug": "kz-rail",
            "kind": "owner",
            "name_en": "Steppe Rail",
            "parent": "kz-cert",
            "country": "KZ",
        },
    )
    assert created.status_code == 303, created.text
    centre = login("centre-admin").get("/organizations/new").text
    assert '<option value="national-body"' in centre and '<option value="">' in centre


def test_pages_render_in_russian(admin: UI) -> None:
    r = admin.post("/language", {"language": "ru", "next": "/organizations"})
    assert r.status_code == 303
    page = text_of(admin.get("/organizations"))
    assert "Организации" in page and "Новая организация" in page
    assert "администратор" in page  # the role name in the header
    assert "Organisations" not in page
    assert "Координационный центр" in page  # the Russian name of the organisation


# --- organisations -------------------------------------------------------------------------


def test_organisation_list_shows_tlp_badges_and_filters(admin: UI) -> None:
    r = admin.get("/organizations")
    assert '<span class="tlp tlp-clear">' in r.text
    assert '<span class="tlp tlp-amber">' in r.text
    for slug in ("ccc", "kz-cert", "uz-cert", "kz-bank", "uz-telecom"):
        assert f'href="/organizations/{slug}"' in r.text

    by_kind = admin.get("/organizations?kind=national-body").text
    assert "kz-cert" in by_kind and "uz-cert" in by_kind and "kz-bank" not in by_kind
    by_country = admin.get("/organizations?country=uz").text
    assert "uz-cert" in by_country and "kz-cert" not in by_country
    by_text = admin.get("/organizations?q=steppe").text
    assert "kz-bank" in by_text and "uz-telecom" not in by_text
    assert "No organisations match." in admin.get("/organizations?q=nothing-like-this").text


def _alert(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'<div class="form-error" role="alert">(.*?)</div>', response.text, re.S)
    assert found is not None, response.text
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"country": "XX"},
            "country",
            "invalid country code 'XX': use ISO 3166-1 alpha-2, such as KZ",
        ),
        (
            {"country": "Kazakhstan", "q": "steppe"},
            "country",
            "invalid country code 'Kazakhstan': use ISO 3166-1 alpha-2, such as KZ",
        ),
        ({"kind": "bogus"}, "kind", "unknown organisation kind 'bogus'"),
    ],
)
def test_a_filter_the_organisation_list_cannot_read_is_told_beside_it(
    admin: UI, query: dict[str, str], field: str, message: str
) -> None:
    r = admin.get("/organizations", params=query)
    assert r.status_code == 422
    assert message in _alert(r)
    # the page whole, its filters as typed, the field at fault marked; no list, which
    # would read as what the filter found
    assert 'id="org-filters"' in r.text and "centre-admin" in r.text
    assert re.search(rf'name="{field}"[^>]* aria-invalid="true" class="invalid"', r.text)
    for name, value in query.items():
        if name != "kind":
            assert re.search(rf'name="{name}"[^>]* value="{value}"', r.text), name
    assert 'id="organizations"' not in r.text and "No organisations match." not in r.text


def test_every_filter_the_organisation_list_cannot_read_is_told_at_once(admin: UI) -> None:
    r = admin.get("/organizations", params={"kind": "bogus", "country": "XX"})
    assert r.status_code == 422
    told = _alert(r)
    assert "unknown organisation kind 'bogus'" in told and "invalid country code 'XX'" in told
    for field in ("kind", "country"):
        assert re.search(rf'name="{field}"[^>]* aria-invalid="true" class="invalid"', r.text)


def test_a_filter_fault_on_the_organisation_list_reads_in_russian(admin: UI) -> None:
    admin.post("/language", {"language": "ru", "next": "/organizations"})
    r = admin.get("/organizations", params={"kind": "bogus"})
    assert r.status_code == 422
    assert "неизвестный вид организации 'bogus'; используйте один из:" in _alert(r)


def test_an_organisation_out_of_scope_is_told_beside_the_contacts_and_assets_lists(  # type: ignore[no-untyped-def]
    login, client, auth
) -> None:
    ui = login("kz-admin")
    for path in ("/contacts", "/assets"):
        r = ui.get(path, params={"org": "uz-telecom"})
        assert r.status_code == 422, path
        assert "no organisation 'uz-telecom' within your scope" in _alert(r), path
        assert re.search(r'name="org"[^>]* aria-invalid="true" class="invalid"', r.text), path
    told = _alert(ui.get("/assets", params={"org": "nosuch", "kind": "bogus"}))
    assert "no organisation 'nosuch'" in told and "unknown asset kind 'bogus'" in told
    # an organisation in scope, typed as people type it
    assert ui.get("/contacts", params={"org": " KZ-Bank "}).status_code == 200
    for path in ("/api/v1/contacts", "/api/v1/assets"):
        r = client.get(path, params={"org": "uz-telecom"}, headers=auth["kz-admin"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "org", r.text


def test_beyond_the_owners_the_assets_page_lists_the_owner_is_typed(admin: UI, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.orgs import views

    listed = admin.get("/assets").text
    assert '<select name="org">' in listed and "<datalist" not in listed
    monkeypatch.setattr(views, "ORG_CHOICES", 2)
    page = admin.get("/assets").text
    assert '<input name="org" list="asset-owner-choices"' in page
    assert '<input name="org" list="import-owner-choices"' in page
    # the staff organisations are suggested first; an owner past them is typed, and taken
    suggested = re.findall(r'<option value="([^"]+)">', page.split('id="asset-owner-choices"')[1])
    assert suggested[:2] == ["ccc", "kz-cert"]
    r = admin.post("/assets/import", {"org": "kz-bank"}, files=upload("kz-bank.csv"))
    assert r.status_code in (200, 303), r.text
    found = admin.get("/assets", params={"org": "kz-bank"})
    assert found.status_code == 200 and 'id="asset-table"' in found.text
    assert 'value="kz-bank"' in found.text  # the typed owner is shown back


def test_a_filter_the_assets_page_cannot_read_is_told_beside_it(admin: UI) -> None:
    admin.post("/assets/import", {"org": "kz-bank"}, files=upload("kz-bank.csv"))
    r = admin.get("/assets", params={"kind": "bogus", "q": "64500"})
    assert r.status_code == 422
    assert "unknown asset kind 'bogus'; use one of" in _alert(r)
    assert 'id="asset-filters"' in r.text and 'id="import-form"' in r.text
    assert '<select name="kind" aria-invalid="true" class="invalid">' in r.text
    assert 'name="q" type="search" value="64500"' in r.text
    assert 'id="asset-table"' not in r.text and "No assets match." not in r.text
    admin.post("/language", {"language": "ru", "next": "/assets"})
    ru = admin.get("/assets", params={"kind": "bogus"})
    assert ru.status_code == 422 and "неизвестный вид актива 'bogus'" in _alert(ru)


def test_organisation_list_follows_the_access_policy(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    page = ui.get("/organizations").text
    assert 'href="/organizations/kz-bank"' in page
    # Another state's constituent is TLP:AMBER and not shared with KZ.
    assert "uz-telecom" not in page
    assert ui.get("/organizations/uz-telecom").status_code == 404


def test_create_organisation_through_the_form(admin: UI) -> None:
    form = admin.get("/organizations/new")
    assert 'name="csrf_token"' in form.text and 'name="slug"' in form.text
    r = admin.post(
        "/organizations/new",
        {
            "slug": "kz-energy",
            "kind": "owner",
            "name_en": "Steppe Energy",
            "name_ru": "Степная энергия",
            "sector": "energy",
            "language": "ru",
            "parent": "kz-cert",
            "tlp": "amber+strict",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/organizations/kz-energy"
    detail = admin.get("/organizations/kz-energy")
    assert detail.status_code == 200
    assert "Steppe Energy" in detail.text and "Степная энергия" in detail.text
    assert "tlp-amber+strict" in detail.text
    assert 'href="/organizations/kz-cert"' in detail.text
    listed = admin.get("/organizations").text
    assert 'href="/organizations/kz-energy"' in listed


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"slug": "Bad Slug!", "kind": "owner", "parent": "kz-cert"}, 422, "invalid slug"),
        ({"slug": "lonely", "kind": "owner"}, 422, "an owner needs its national body as parent"),
        ({"slug": "x-cert", "kind": "national-body", "country": "ZZ"}, 422, "invalid country"),
        ({"slug": "kz-bank", "kind": "owner", "parent": "kz-cert"}, 409, "exists already"),
        ({"slug": "nameless", "kind": "owner", "parent": "kz-cert", "name_en": " "}, 422, "name"),
    ],
)
def test_create_organisation_errors_are_shown_in_the_form(
    admin: UI, fields: dict[str, str], status: int, message: str
) -> None:
    admin.get("/organizations/new")
    data = {"name_en": "Some Organisation", **fields}
    r = admin.post("/organizations/new", data)
    assert r.status_code == status
    assert 'class="form-error"' in r.text and message in text_of(r)
    assert 'id="org-form"' in r.text  # the form is shown again ...
    assert f'value="{html.escape(fields["slug"])}"' in r.text  # ... with what was typed


def test_every_fault_of_the_organisation_form_is_shown_at_once(admin: UI) -> None:
    admin.get("/organizations/new")
    fields = {"slug": "Bad Slug", "kind": "owner", "name_en": " ", "parent": "no-such-cert"}
    r = admin.post("/organizations/new", fields)
    assert r.status_code == 422
    shown = text_of(r)
    assert "invalid slug" in shown and "English name is required" in shown
    assert "no parent organisation" in shown
    form = r.text.split('id="org-form"')[1]
    for name in ("slug", "name_en", "parent"):  # each field at fault is marked
        assert re.search(rf'name="{name}"[^>]*aria-invalid="true"', form), name


def test_create_organisation_refused_for_a_reader(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-reader")
    ui.get("/organizations/new")
    r = ui.post("/organizations/new", {"slug": "new-org", "kind": "partner", "name_en": "New"})
    assert r.status_code == 403
    assert 'class="form-error"' in r.text
    # a reader may change no organisation's assets: no import form at all
    assert 'id="import-form"' not in login("kz-reader").get("/assets").text
    assert ui.get("/organizations/new-org").status_code == 404


def test_create_organisation_without_csrf_token_is_rejected(admin: UI) -> None:
    data = {"slug": "sneaky", "kind": "partner", "name_en": "Sneaky", "parent": "kz-cert"}
    r = admin.post("/organizations/new", data, csrf=False)
    assert r.status_code == 403
    assert "reload the page" in r.text
    r = admin.post("/organizations/new", {**data, "csrf_token": "forged"})
    assert r.status_code == 403
    assert admin.get("/organizations/sneaky").status_code == 404


def test_unknown_organisation_is_a_404_page(admin: UI) -> None:
    r = admin.get("/organizations/no-such-org")
    assert r.status_code == 404
    assert "no organisation" in r.text


def test_a_page_whose_address_names_no_possible_row_is_a_404_in_its_language(login) -> None:  # type: ignore[no-untyped-def]
    """An id that is no number, or one no row can have, names no page: a 404 saying so in
    the user's language, not a field's name or a JSON pointer in English."""
    kz = login("kz-analyst")
    kz.get("/")
    kz.post("/language", {"language": "ru", "next": "/"})
    for url in ("/events/abc", "/events/99999999999999999999999", "/cases/abc"):
        r = kz.get(url)
        assert r.status_code == 404, (url, r.status_code)
        assert "такой страницы нет: проверьте адрес" in r.text, url
        assert "event_id" not in r.text and "/path/" not in r.text
    admin = login("kz-admin")
    admin.get("/")
    admin.post("/language", {"language": "ru", "next": "/"})
    r = admin.get("/audit", params={"before": "99999999999999999999"})
    # a query value out of range: said in words, without a pointer
    assert r.status_code == 422, r.status_code
    assert "значение в запросе выходит за пределы" in r.text and "/query/" not in r.text


# --- contacts ------------------------------------------------------------------------------


def test_add_contact_on_the_organisation_page(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    r = admin.post(
        "/organizations/kz-bank/contacts",
        {"name": "Aigerim S.", "email": "SOC@steppe-bank.example", "phone": "+7 727 000 00 00"},
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/organizations/kz-bank")
    page = admin.get("/organizations/kz-bank").text
    assert "Aigerim S." in page and "SOC@steppe-bank.example" in page
    listed = admin.get("/contacts").text
    assert "Aigerim S." in listed
    assert "Aigerim S." in admin.get("/contacts?org=kz-bank").text
    assert "Aigerim S." not in admin.get("/contacts?org=uz-telecom").text


def test_add_contact_errors_are_shown_next_to_the_form(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    r = admin.post("/organizations/kz-bank/contacts", {"name": "Bad", "email": "not-an-address"})
    assert r.status_code == 422
    assert "invalid e-mail address" in text_of(r)
    assert 'value="not-an-address"' in r.text
    ok = {"name": "A", "email": "a@steppe-bank.example"}
    assert admin.post("/organizations/kz-bank/contacts", ok).status_code == 303
    r = admin.post("/organizations/kz-bank/contacts", ok)
    assert r.status_code == 409 and "already" in text_of(r)
    r = admin.post("/organizations/kz-bank/contacts", {"name": "C", "email": "c@x.example"}, False)
    assert r.status_code == 403
    assert "c@x.example" not in admin.get("/contacts").text


def test_an_organisation_outside_the_readers_scope_says_who_sees_its_contacts(admin, login) -> None:  # type: ignore[no-untyped-def]
    ok = {"name": "Duty analyst", "email": "duty@kz-cert.example"}
    assert admin.post("/organizations/kz-cert/contacts", ok).status_code == 303
    # an owner under kz-cert sees its national body's page, not what it holds
    page = text_of(login("kz-bank-contact").get("/organizations/kz-cert"))
    assert "Duty analyst" not in page and "No contacts yet." not in page
    assert "shown to its own staff, its national body and the centre" in page
    assert "No contacts yet." in text_of(admin.get("/organizations/uz-telecom"))


def test_owner_contact_cannot_add_contacts_to_another_owner(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-bank-contact")
    r = ui.post("/organizations/uz-telecom/contacts", {"name": "X", "email": "x@silk.example"})
    # Refused by the policy; the page of an organisation it cannot see is not shown either.
    assert r.status_code in (403, 404)
    assert "x@silk.example" not in r.text


# --- assets --------------------------------------------------------------------------------


def test_import_assets_on_the_organisation_page(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    r = admin.post("/organizations/kz-bank/assets/import", files=upload("kz-bank.csv"))
    assert r.status_code == 200, r.text
    assert 'id="import-report"' in r.text
    assert '<dd data-count="added">7</dd>' in r.text
    assert '<dd data-count="refused">0</dd>' in r.text
    for value in ("203.0.113.0/24", "2001:db8:100::/48", "AS64500", "pkg:pypi/django"):
        assert value in r.text
    # The same file again changes nothing.
    again = admin.post("/organizations/kz-bank/assets/import", files=upload("kz-bank.csv"))
    assert '<dd data-count="added">0</dd>' in again.text
    assert '<dd data-count="unchanged">7</dd>' in again.text
    listed = admin.get("/assets?org=kz-bank")
    assert "steppe-bank.example" in listed.text


def test_import_with_refused_rows_imports_nothing_and_says_where(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    r = admin.post("/organizations/kz-bank/assets/import", files=upload("kz-bank-mixed.csv"))
    assert r.status_code == 422
    page = text_of(r)
    assert "Nothing was imported" in page
    for line, reason in [
        (3, "host bits are set"),
        (4, "invalid AS number"),
        (5, "invalid software"),
        (7, "duplicate of"),
    ]:
        assert re.search(rf"line {line}\s+[^\n]*{reason}", page), (line, reason)
    assert "198.51.100.0/25" not in admin.get("/assets").text


def test_import_valid_rows_only(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    r = admin.post(
        "/organizations/kz-bank/assets/import",
        {"valid_only": "true"},
        files=upload("kz-bank-mixed.csv"),
    )
    assert r.status_code == 200
    assert '<dd data-count="added">2</dd>' in r.text
    assert '<dd data-count="refused">4</dd>' in r.text
    assert "The file was imported." in r.text
    assets = admin.get("/assets?org=kz-bank").text
    assert "198.51.100.0/25" in assets and "branch.steppe-bank.example" in assets


def test_import_json_reports_pointers(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    r = admin.post(
        "/organizations/kz-bank/assets/import",
        {"valid_only": "true"},
        files=upload("kz-bank.json", "application/json"),
    )
    assert r.status_code == 200
    assert "<code>/assets/2</code>" in r.text
    assert '<dd data-count="added">2</dd>' in r.text


def test_import_errors_are_shown_next_to_the_form(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    empty = {"file": ("empty.csv", b"  \n", "text/csv")}
    r = admin.post("/organizations/kz-bank/assets/import", files=empty)
    assert r.status_code == 422 and "the upload is empty" in r.text
    assert 'id="import-form"' in r.text
    no_file = {"file": ("", b"", "application/octet-stream")}  # what a browser sends
    r = admin.post("/organizations/kz-bank/assets/import", files=no_file)
    assert r.status_code == 422 and "choose a CSV or JSON file" in r.text
    r = admin.post("/organizations/kz-bank/assets/import", files=upload("kz-bank.csv"), csrf=False)
    assert r.status_code == 403
    assert "203.0.113.0/24" not in admin.get("/assets").text


def test_assets_page_import_filters_and_owner_choice(admin: UI) -> None:
    page = admin.get("/assets")
    assert '<select name="org" required' in page.text
    r = admin.post("/assets/import", {"org": "kz-bank"}, files=upload("kz-bank.csv"))
    assert r.status_code == 200
    assert '<dd data-count="added">7</dd>' in r.text
    r = admin.post("/assets/import", {"org": ""}, files=upload("kz-bank.csv"))
    assert r.status_code == 422 and "choose the owner" in r.text
    r = admin.post("/assets/import", {"org": "no-such"}, files=upload("kz-bank.csv"))
    assert r.status_code == 404 and "no organisation" in r.text

    software = admin.get("/assets?kind=software").text
    assert "pkg:pypi/django" in software and "203.0.113.0/24" not in software
    assert "No assets match." in admin.get("/assets?org=uz-telecom").text
    assert "AS64500" in admin.get("/assets?q=64500").text


def test_owner_contact_imports_its_own_assets_only(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-bank-contact")
    form = ui.get("/assets").text.split('id="import-form"', 1)[1]
    # its own organisation is the only choice, and already chosen
    assert re.findall(r'<option value="([^"]+)"', form) == ["kz-bank"]
    assert '<option value="kz-bank" selected>' in form
    r = ui.post("/assets/import", {"org": "kz-bank"}, files=upload("kz-bank.csv"))
    assert r.status_code == 200
    r = ui.post("/assets/import", {"org": "uz-telecom"}, files=upload("kz-bank.csv"))
    assert r.status_code == 404  # an organisation it does not see, as an unknown one
    assert 'class="form-error"' in r.text


# --- lookup --------------------------------------------------------------------------------


def test_whois_shows_owner_national_body_and_contacts(admin: UI) -> None:
    admin.get("/organizations/kz-bank")
    admin.post("/organizations/kz-bank/assets/import", files=upload("kz-bank.csv"))
    admin.post("/organizations/kz-bank/contacts", {"name": "Duty", "email": "soc@steppe.example"})
    for query in ("203.0.113.77", "www.steppe-bank.example", "AS64500", "a@steppe-bank.example"):
        r = admin.get("/whois", params={"q": query})
        assert r.status_code == 200, query
        page = text_of(r)
        assert "Steppe Bank" in page and "KZ national CERT" in page
        assert "soc@steppe.example" in page
    r = admin.get("/whois?q=192.0.2.1")
    assert r.status_code == 404
    assert "No owner is known for 192.0.2.1." in text_of(r)
    # text that is no address, AS or domain is told so, not looked up
    for query, said in (
        ("999.1.1.1", "is not an IP address"),
        ("AS0", "invalid AS number"),
        ("a..b.com", "invalid domain"),
        ("2001:db8::zz", "is not an IP address"),
        ("0.0.0.0/0", "is a network: look up one address of it"),
        ("2001:db8::/32", "is a network: look up one address of it"),
    ):
        r = admin.get("/whois", params={"q": query})
        assert r.status_code == 422 and said in text_of(r), query


# --- users ---------------------------------------------------------------------------------


def test_users_list_and_create_user(admin: UI) -> None:
    page = admin.get("/users")
    assert 'id="user-form"' in page.text
    for username in ("centre-admin", "kz-analyst", "uz-telecom-contact"):
        assert username in page.text
    r = admin.post(
        "/users",
        {
            "username": "kz-analyst-2",
            "full_name": "Dana K.",
            "org": "kz-cert",
            "role": "analyst",
            "password": "another-long-password",
            "language": "ru",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/users?created=kz-analyst-2"
    after = admin.get(r.headers["location"]).text
    assert "Dana K." in after and 'id="user-created"' in after and "kz-analyst-2" in after
    # no role is preselected: the admin chooses one
    assert re.search(r'<select name="role"[^>]*>\s*<option value="">', page.text)
    # a user without a language of its own follows its organisation's, and the list says so
    assert "the organisation&#39;s</span>" in after
    assert 'id="user-created"' not in admin.get("/users?created=nobody").text


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"username": "kz-admin", "org": "kz-cert", "role": "admin"}, 409, "exists already"),
        ({"username": "x1", "org": "kz-bank", "role": "admin"}, 422, "may have the roles"),
        ({"username": "x2", "org": "kz-cert", "role": "reader", "password": "short"}, 422, "10"),
        ({"username": "bad name", "org": "kz-cert", "role": "reader"}, 422, "username"),
    ],
)
def test_create_user_errors_are_shown(
    admin: UI, fields: dict[str, str], status: int, message: str
) -> None:
    r = admin.post("/users", fields)
    assert r.status_code == status
    assert 'class="form-error"' in r.text and message in text_of(r)
    assert 'id="user-form"' in r.text


def test_the_user_form_offers_each_organisation_its_roles_and_keeps_what_was_typed(
    admin: UI,
) -> None:
    page = admin.get("/users").text
    roles = dict(re.findall(r'<option value="([^"]+)" data-roles="([^"]*)"', page))
    # what the server allows each kind; the page's script offers only those
    assert roles["kz-cert"] == "admin analyst reader" and roles["ccc"] == "admin analyst reader"
    assert roles["kz-bank"] == "owner-contact reader"
    assert "form.elements.org" in page and "option.disabled" in page
    fields = {
        "username": "kz-bank-admin",
        "full_name": "Aru B.",
        "email": "aru@bank.example",
        "org": "kz-bank",
        "role": "admin",
        "password": "a-long-enough-password",
        "language": "ru",
    }
    r = admin.post("/users", fields)  # the server still refuses what the script would not offer
    assert r.status_code == 422 and "may have the roles owner-contact, reader" in text_of(r)
    form = r.text.split('id="user-form"')[1]
    for value in ("kz-bank-admin", "Aru B.", "aru@bank.example"):
        assert f'value="{value}"' in form
    assert re.search(r'<option value="kz-bank"[^>]*selected', form)
    assert '<option value="ru" selected>' in form
    # the password is never sent back: the page says to type it again
    assert "a-long-enough-password" not in r.text and 'id="password-again"' in form


def test_national_admin_manages_its_own_users_only(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-admin")
    page = ui.get("/users").text
    assert "kz-bank-contact" in page and "uz-admin" not in page
    r = ui.post("/users", {"username": "uz-new", "org": "uz-cert", "role": "reader"})
    assert r.status_code == 403
    # the form offers only the organisations whose users it manages
    offered = re.findall(
        r'<option value="([^"]+)"',
        page.split('id="user-form"')[1].split('name="org"')[1].split("</select>")[0],
    )
    assert "kz-cert" in offered and "kz-bank" in offered
    assert "uz-cert" not in offered and "ccc" not in offered


def test_an_admin_disables_and_enables_a_user_from_the_page(login, session, auth) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from concord.access.model import User

    analyst = login("kz-analyst")
    ui = login("kz-admin")
    page = ui.get("/users").text
    row = page.split('id="user-kz-analyst"')[1].split("</tr>")[0]
    assert 'action="/users/kz-analyst/active"' in row and "data-confirm=" in row
    # no button for its own account, nor for a user of another state (not listed at all)
    own = page.split('id="user-kz-admin"')[1].split("</tr>")[0]
    assert "/active" not in own and "uz-admin" not in page
    r = ui.post("/users/kz-analyst/active", {"active": "false"})
    assert r.status_code == 303 and r.headers["location"] == "/users?changed=kz-analyst"
    told = ui.get(r.headers["location"]).text
    assert 'id="user-changed"' in told and "was disabled" in told
    assert session.scalar(select(User.active).where(User.username == "kz-analyst")) is False
    # at once: the disabled user's session and tokens no longer work
    assert analyst.client.get("/", follow_redirects=False).status_code == 303
    assert analyst.client.get("/api/v1/me", headers=auth["kz-analyst"]).status_code == 401
    row = told.split('id="user-kz-analyst"')[1].split("</tr>")[0]
    assert 'value="true"' in row and "disabled" in row
    r = ui.post("/users/kz-analyst/active", {"active": "true"})
    assert r.status_code == 303 and "was enabled" in ui.get(r.headers["location"]).text
    session.rollback()  # a new read, not the snapshot of the one before
    assert session.scalar(select(User.active).where(User.username == "kz-analyst")) is True


def _listed_users(response) -> list[str]:  # type: ignore[no-untyped-def]
    return re.findall(r'<tr id="user-([^"]+)">', response.text)


def test_the_user_list_is_filtered_and_paged(admin: UI, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.access import views

    assert _listed_users(admin.get("/users", params={"org": "kz-cert"})) == [
        "kz-admin",
        "kz-analyst",
        "kz-reader",
    ]
    assert _listed_users(admin.get("/users", params={"role": "owner-contact"})) == [
        "kz-bank-contact",
        "uz-telecom-contact",
    ]
    assert _listed_users(admin.get("/users", params={"q": "TELECOM"})) == ["uz-telecom-contact"]
    nothing = admin.get("/users", params={"q": "nobody-has-this"})
    assert nothing.status_code == 200 and 'id="no-users"' in nothing.text
    # a page at a time, the filters kept by the pager
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    first = admin.get("/users", params={"role": "analyst"})
    assert _listed_users(first) == ["centre-analyst", "kz-analyst"]
    pager = re.search(r'href="/users\?([^"]+)" rel="next"', first.text)
    assert pager and "role=analyst" in pager.group(1)
    second = admin.get("/users?" + html.unescape(pager.group(1)))
    assert _listed_users(second) == ["uz-analyst"]
    # one created on a later page is still named back
    monkeypatch.setattr(views, "PAGE_SIZE", 200)
    made = admin.post(
        "/users",
        {"username": "kz-late", "org": "kz-cert", "role": "reader", "password": "a-long-password"},
    )
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    assert 'id="user-created"' in admin.get(made.headers["location"]).text


def test_beyond_the_organisations_a_form_lists_the_slug_is_typed(admin: UI, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.access import views

    listed = admin.get("/users").text.split('id="user-form"')[1]
    assert '<select name="org" required>' in listed and "<datalist" not in listed
    monkeypatch.setattr(views, "ORG_CHOICES", 2)
    form = admin.get("/users").text.split('id="user-form"')[1].split("</form>")[0]
    assert '<input name="org" required list="user-org-choices"' in form
    # the staff organisations come first among the suggestions, with their roles
    suggested = re.findall(r'<option value="([^"]+)" data-roles="([^"]*)"', form)
    assert suggested == [("ccc", "admin analyst reader"), ("kz-cert", "admin analyst reader")]
    # one not suggested is typed, and taken
    r = admin.post(
        "/users",
        {
            "username": "bank-two",
            "org": "uz-telecom",
            "role": "owner-contact",
            "password": "a-long-password",
        },
    )
    assert r.status_code == 303, r.text
    refused = admin.post("/users", {"username": "x-two", "org": "nosuch", "role": "reader"})
    assert refused.status_code in (404, 422) and 'value="nosuch"' in refused.text


def test_a_user_filter_that_cannot_match_is_told_beside_the_list(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-admin")
    r = ui.get("/users", params={"org": "uz-cert", "role": "boss"})
    assert r.status_code == 422
    told = _alert(r)
    # another state's organisation reads as one that does not exist
    assert "no organisation 'uz-cert' within your scope" in told
    assert "unknown role 'boss'" in told
    for field in ("org", "role"):
        assert re.search(rf'name="{field}"[^>]* aria-invalid="true" class="invalid"', r.text)
    assert 'id="users"' not in r.text and 'id="no-users"' not in r.text
    assert 'id="user-form"' in r.text  # the rest of the page stays


def test_an_admin_unlocks_a_user_locked_out_by_failed_sign_ins(login, app) -> None:  # type: ignore[no-untyped-def]
    from concord.config import get_settings

    ui = login("kz-admin")
    with TestClient(app) as stranger:
        for _ in range(get_settings().login_max_failures):
            sign_in(stranger, "kz-reader", "wrong-password")
        assert "too many failed attempts" in sign_in(stranger, "kz-reader").text
    page = ui.get("/users").text
    row = page.split('id="user-kz-reader"')[1].split("</tr>")[0]
    assert "badge-warn" in row and 'action="/users/kz-reader/unlock"' in row
    r = ui.post("/users/kz-reader/unlock")
    assert r.status_code == 303 and r.headers["location"] == "/users?unlocked=kz-reader"
    told = ui.get(r.headers["location"]).text
    assert 'id="user-unlocked"' in told
    assert "/unlock" not in told.split('id="user-kz-reader"')[1].split("</tr>")[0]
    with TestClient(app) as again:
        assert sign_in(again, "kz-reader").url.path == "/"
    # a second time there is no lock to lift: said, not done twice
    r = ui.post("/users/kz-reader/unlock")
    assert r.status_code == 409 and "user 'kz-reader' is not locked" in _alert(r)


@pytest.mark.parametrize(
    ("who", "username", "active", "status", "said"),
    [
        ("kz-admin", "kz-admin", "false", 409, "you cannot deactivate your own account"),
        ("kz-admin", "uz-analyst", "false", 404, "no user 'uz-analyst'"),
        ("kz-admin", "kz-analyst", "maybe", 422, "active is true or false, not 'maybe'"),
        ("kz-analyst", "kz-reader", "false", 403, ""),
    ],
)
def test_a_refused_change_of_a_user_is_told_on_the_page_and_changes_nothing(  # type: ignore[no-untyped-def]
    login, session, who, username, active, status, said
) -> None:
    from sqlalchemy import select

    from concord.access.model import User

    ui = login(who)
    ui.get("/users")
    r = ui.post(f"/users/{username}/active", {"active": active})
    assert r.status_code == status, r.text
    if said:
        assert said in _alert(r) and 'id="users"' in r.text
    assert session.scalar(select(User.active).where(User.username == username)) is True
    r = ui.post(f"/users/{username}/active", {"active": "false"}, csrf=False)
    assert r.status_code == 403


def test_non_admins_see_no_user_form_and_cannot_post(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-analyst")
    assert 'id="user-form"' not in ui.get("/users").text
    r = ui.post("/users", {"username": "sneaky", "org": "ccc", "role": "admin"})
    assert r.status_code == 403


def test_create_user_without_csrf_token_is_rejected(admin: UI) -> None:
    r = admin.post("/users", {"username": "nocsrf", "org": "ccc", "role": "reader"}, csrf=False)
    assert r.status_code == 403
    assert "<code>nocsrf</code>" not in admin.get("/users").text


# --- API tokens ----------------------------------------------------------------------------


def secret_of(response) -> str | None:  # type: ignore[no-untyped-def]
    found = re.search(r'<div class="secret"[^>]*>([^<]+)</div>', response.text)
    return found.group(1).strip() if found else None


def test_create_token_shows_the_secret_once_and_it_works(admin: UI) -> None:
    admin.get("/tokens")
    r = admin.post("/tokens", {"name": "misp-sync", "scopes": ["read", "write"]})
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    secret = secret_of(r)
    assert secret and secret.startswith("cnc_")
    assert "misp-sync" in r.text
    # Only once: the list does not show it again.
    again = admin.get("/tokens")
    assert secret_of(again) is None and secret not in again.text
    me = admin.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert me.json()["scopes"] == ["read", "write"]


def test_revoke_token(admin: UI) -> None:
    admin.get("/tokens")
    secret = secret_of(admin.post("/tokens", {"name": "old", "scopes": ["read"]}))
    page = admin.get("/tokens").text
    token_id = re.search(r'action="/tokens/(\d+)/revoke"', page).group(1)  # type: ignore[union-attr]
    assert admin.post(f"/tokens/{token_id}/revoke", csrf=False).status_code == 403
    r = admin.post(f"/tokens/{token_id}/revoke")
    assert r.status_code == 303 and r.headers["location"] == "/tokens"
    page = admin.get("/tokens").text
    assert "revoked" in page and f"/tokens/{token_id}/revoke" not in page
    me = admin.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    assert admin.post("/tokens/999999/revoke").status_code == 404


def test_token_scopes_are_limited_by_role(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("centre-reader")
    page = ui.get("/tokens").text
    assert re.search(r'value="admin"[^>]*disabled', page)
    r = ui.post("/tokens", {"name": "too-much", "scopes": ["read", "write"]})
    assert r.status_code == 422
    assert "cannot hold the scope" in text_of(r) and secret_of(r) is None
    assert 'value="too-much"' in r.text


def test_a_token_with_no_scope_ticked_is_refused_beside_the_form(admin: UI) -> None:
    admin.get("/tokens")
    r = admin.post("/tokens", {"name": "no-scope"})  # every box unticked: none is sent
    assert r.status_code == 422 and secret_of(r) is None
    form = re.search(r'id="new-token-form">(.*?)</section>', r.text, re.S)
    assert form is not None and "choose at least one scope" in form.group(1)
    assert '<fieldset aria-invalid="true" class="invalid">' in form.group(1)
    assert 'value="no-scope"' in form.group(1)
    assert not re.search(r'name="scopes" value="\w+" checked', form.group(1))  # as sent
    assert "no-scope" not in admin.get("/tokens").text.replace('value="no-scope"', "")
    assert 'id="tokens"' not in admin.get("/tokens").text  # nothing was created
    admin.post("/language", {"language": "ru", "next": "/tokens"})
    ru = admin.post("/tokens", {"name": "no-scope"})
    assert ru.status_code == 422 and "выберите хотя бы одно право" in ru.text


def test_create_token_without_csrf_token_is_rejected(admin: UI) -> None:
    r = admin.post("/tokens", {"name": "nocsrf", "scopes": ["read"]}, csrf=False)
    assert r.status_code == 403 and secret_of(r) is None


def test_users_see_only_their_own_tokens_unless_admin(login) -> None:  # type: ignore[no-untyped-def]
    analyst = login("kz-analyst")
    analyst.get("/tokens")
    analyst.post("/tokens", {"name": "analyst-token", "scopes": ["read"]})
    reader = login("kz-reader")
    assert "analyst-token" not in reader.get("/tokens").text
    assert "analyst-token" in login("kz-admin").get("/tokens").text


# --- audit ---------------------------------------------------------------------------------


def test_audit_log_newest_first_with_older_link(admin: UI, session: Session) -> None:
    from concord.audit import service as audit

    for i in range(60):
        audit.record(session, None, "revoke", "token", i)
    session.commit()
    page = admin.get("/audit")
    assert page.status_code == 200
    seqs = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", page.text)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    older = re.search(r'href="/audit\?before=(\d+)"', page.text)
    assert older and int(older.group(1)) == seqs[-1]
    second = admin.get(f"/audit?before={older.group(1)}")
    more = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", second.text)]
    assert more and max(more) < seqs[-1] and min(more) == 1
    assert 'href="/audit"' in second.text  # back to the newest


def test_audit_log_filters_and_names_its_words_in_the_reader_s_language(  # type: ignore[no-untyped-def]
    admin: UI, login, session: Session
) -> None:
    from concord.audit import service as audit

    for i in range(60):
        audit.record(session, None, "revoke", "token", i)
    audit.record(session, None, "disable", "user", "kz-reader")
    session.commit()
    page = admin.get("/audit", params={"action": "disable"})
    assert page.status_code == 200
    rows = re.findall(r"<tr>\s*<td>\d+</td>(.*?)</tr>", page.text, re.S)
    assert len(rows) == 1 and "<code>kz-reader</code>" in rows[0]
    assert '<span title="disable">disabled</span>' in rows[0]
    assert '<span title="user">user</span>' in rows[0]
    assert '<option value="disable" selected>' in page.text
    # the pager keeps the filters
    paged = admin.get("/audit", params={"action": "revoke", "object_kind": "token"})
    older = re.search(r'href="/audit\?([^"]+)" rel="next"', paged.text)
    assert older and "action=revoke" in older.group(1) and "object_kind=token" in older.group(1)
    # an actor, a day
    assert "No audit records match these filters." in admin.get("/audit?actor=nobody").text
    assert "No audit records match these filters." in admin.get("/audit?since=2999-01-01").text
    # what no record can be is told beside the form, all at once, as typed
    r = admin.get("/audit", params={"action": "bogus", "object_kind": "thing", "since": "soon"})
    assert r.status_code == 422
    told = _alert(r)
    assert "unknown action 'bogus'" in told and "unknown kind of object 'thing'" in told
    assert "invalid date 'soon'" in told
    for field in ("action", "object_kind", "since"):
        assert re.search(rf'name="{field}"[^>]* aria-invalid="true" class="invalid"', r.text)
    assert 'value="soon"' in r.text and 'id="audit"' not in r.text
    # the same words in Russian
    admin.post("/language", {"language": "ru", "next": "/audit"})
    ru = admin.get("/audit", params={"action": "disable"}).text
    assert '<span title="disable">отключён</span>' in ru
    assert '<span title="user">пользователь</span>' in ru
    bogus = admin.get("/audit", params={"action": "bogus"})
    assert "неизвестное действие 'bogus'" in _alert(bogus)


def test_audit_api_refuses_a_filter_no_record_can_match(client, auth) -> None:  # type: ignore[no-untyped-def]
    h = auth["centre-admin"]
    r = client.get("/api/v1/audit", params={"action": "bogus", "object_kind": "thing"}, headers=h)
    assert r.status_code == 422, r.text
    assert [(e["field"], e["pointer"]) for e in r.json()["errors"]] == [
        ("action", "/query/action"),
        ("object_kind", "/query/object_kind"),
    ]
    r = client.get("/api/v1/audit", params={"action": "login"}, headers=h)
    assert r.status_code == 200 and {i["action"] for i in r.json()["items"]} <= {"login"}


def test_every_audit_word_has_a_russian_translation() -> None:
    from concord.audit.model import ACTIONS, OBJECT_KINDS
    from concord.i18n import translator

    ru = translator("ru")
    for words in [*ACTIONS.values(), *OBJECT_KINDS.values()]:
        assert ru(words) != words, words


def test_a_record_of_an_unlisted_action_is_refused(session: Session) -> None:
    from concord.audit import service as audit

    with pytest.raises(ValueError, match="unlisted audit action"):
        audit.record(session, None, "frobnicate", "organization")
    with pytest.raises(ValueError, match="unlisted audit action"):
        audit.record(session, None, "create", "thing")


def tamper(session: Session, sql: str) -> None:
    """Bypass the append-only triggers, as an intruder with database access could."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("alter table audit_log disable trigger audit_log_append_only"))
        session.execute(text(sql))
        session.execute(text("alter table audit_log enable trigger audit_log_append_only"))
    else:
        session.execute(text("drop trigger audit_log_no_update"))
        session.execute(text(sql))
    session.commit()


def test_verify_chain(admin: UI, session: Session) -> None:
    from concord.audit.model import AuditRecord

    page = admin.get("/audit")
    assert 'hx-get="/audit/verify"' in page.text
    r = admin.get("/audit/verify")
    assert r.status_code == 200 and "The chain is intact" in r.text
    # htmx asks for the same page and swaps #verify-result in.
    r = admin.get("/audit/verify", headers={"HX-Request": "true"})
    assert 'id="verify-result"' in r.text and "verify-ok" in r.text
    first = session.scalar(select(AuditRecord.seq).order_by(AuditRecord.seq).limit(1))
    tamper(session, f"update audit_log set actor = 'mallory' where seq = {first}")
    r = admin.get("/audit/verify")
    assert "The chain is broken" in r.text and "was altered" in r.text


def test_audit_is_for_admins_and_verify_for_the_centre(login) -> None:  # type: ignore[no-untyped-def]
    kz_admin = login("kz-admin")
    page = kz_admin.get("/audit")
    assert page.status_code == 200 and "Verify the chain" not in page.text
    assert "kz-admin" in page.text  # its own sign-in is in its scope
    assert kz_admin.get("/audit/verify").status_code == 403
    analyst = login("centre-analyst")
    # not an empty log: the page says who reads it
    page = analyst.get("/audit")
    assert 'id="audit-for-admins"' in page.text and "No audit records to show." not in page.text
    assert 'href="/audit"' not in analyst.get("/").text


# --- language and translations -------------------------------------------------------------


def test_language_switch_persists_for_the_user(app, admin: UI) -> None:  # type: ignore[no-untyped-def]
    admin.post("/language", {"language": "ru", "next": "/tokens"})
    assert "Новый API-токен" in admin.get("/tokens").text
    # A new session of the same user keeps the choice.
    with TestClient(app) as other:
        sign_in(other, "centre-admin")
        assert "Обзор" in other.get("/").text


def template_messages() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in TEMPLATE_DIRS:
        for path in sorted(folder.glob("*.html")):
            text = path.read_text(encoding="utf-8")
            for match in MSG_RE.finditer(text):
                message = match.group(1) if match.group(1) is not None else match.group(2)
                found.setdefault(message, []).append(path.name)
    return found


def load_catalogue(path: Path, locale: str | None = "ru"):  # type: ignore[no-untyped-def]
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def test_every_template_string_has_a_russian_translation() -> None:
    messages = template_messages()
    assert len(messages) > 50  # the regex does find the strings
    catalogue = load_catalogue(PO_FILE)
    assert catalogue.locale_identifier == "ru"
    assert catalogue.plural_forms.startswith("nplurals=3;")
    missing = []
    for message, files in sorted(messages.items()):
        entry = catalogue.get(message)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{message!r} ({', '.join(sorted(set(files)))})")
            continue
        # Placeholders must survive translation, or str.format fails at render time.
        assert set(re.findall(r"\{(\w+)\}", message)) == set(
            re.findall(r"\{(\w+)\}", entry.string)
        ), message
    assert not missing, "untranslated:\n" + "\n".join(missing)


def test_role_names_kinds_and_login_errors_are_translated() -> None:
    from concord.access.model import Role
    from concord.i18n import translator
    from concord.orgs.model import OrgKind

    ru = translator("ru")
    for value in [*(r.value for r in Role), *(k.value for k in OrgKind)]:
        assert ru(value) != value, value
    assert ru("wrong username or password") == "неверное имя пользователя или пароль"
    assert ru("not known") == "неизвестно"  # a sector nobody named, in one word
    from concord.demo import SOFTWARE

    for sector in SOFTWARE:  # the demo network's sectors
        assert ru(sector) != sector, sector


def test_template_catalogue_matches_the_russian_catalogue() -> None:
    template = load_catalogue(POT_FILE, None)
    russian = load_catalogue(PO_FILE)
    template_ids = {m.id for m in template if m.id}
    assert template_ids == {m.id for m in russian if m.id}
    assert all(not m.string for m in template if m.id)
    assert set(template_messages()) <= template_ids


def test_a_sign_in_posted_from_another_site_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    data = {"username": "centre-admin", "password": PASSWORD, "next": "/organizations"}
    with TestClient(app) as client:
        # another site's form: no login cookie (SameSite keeps it home), a token it made up
        forged = client.post("/login", data={**data, "login_token": "made-up"})
        assert forged.status_code == 403 and "concord_session" not in client.cookies
        assert "sign-in form has expired" in forged.text
        assert 'value="centre-admin"' in forged.text  # the username is kept for the retry
        # a token from another visitor's form does not match this visitor's cookie
        stranger = TestClient(app).get("/login").text
        other = re.search(r'name="login_token" value="([^"]+)"', stranger)
        assert other
        mismatch = client.post("/login", data={**data, "login_token": other.group(1)})
        assert mismatch.status_code == 403 and "concord_session" not in client.cookies
        # the page that refused it carries a fresh form that works
        token = re.search(r'name="login_token" value="([^"]+)"', mismatch.text)
        assert token
        ok = client.post("/login", data={**data, "login_token": token.group(1)})
        assert ok.status_code == 200 and ok.url.path == "/organizations"


def test_login_page_in_russian(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        client.cookies.set("concord_lang", "ru")
        r = sign_in(client, "centre-admin", "wrong")
    assert r.status_code == 401
    assert "неверное имя пользователя или пароль" in r.text
    assert "Вход" in r.text


def test_server_messages_are_translated_through_their_patterns() -> None:
    from concord.i18n import gettext

    assert gettext("ru", "no event 12") == "нет события 12"
    assert gettext("ru", "invalid IP address '1.2.3'") == "недопустимый IP-адрес '1.2.3'"
    assert gettext("ru", "no such message 12") == "no such message 12"
    assert gettext("en", "no event 12") == "no event 12"
    # every catalogued pattern keeps its placeholders, so filling it cannot fail
    catalogue = load_catalogue(PO_FILE)
    for entry in catalogue:
        if entry.id and "{" in entry.id and entry.string:
            names = set(re.findall(r"\{(\w+)\}", entry.id))
            assert names == set(re.findall(r"\{(\w+)\}", entry.string)), entry.id


def test_errors_and_rejections_read_in_russian(login) -> None:  # type: ignore[no-untyped-def]
    from tests.intake.test_service import scan_csv

    ui = login("kz-analyst")
    ui.post("/language", {"language": "ru", "next": "/intake"})
    missing = ui.get("/events/999999")
    assert missing.status_code == 404 and "нет события 999999" in missing.text
    ui.get("/intake")
    r = ui.client.post(
        "/intake",
        data={"csrf_token": ui.csrf, "tlp": "green"},
        files={"file": ("scan_rdp.csv", scan_csv([("2026-11-30 10:00:00", "1.2.3", 3389)]))},
    )
    assert "недопустимый IP-адрес &#39;1.2.3&#39;" in r.text


# --- dashboard -----------------------------------------------------------------------------


def _scan(ip: str, when: str) -> bytes:
    return (
        '"timestamp","ip","port","hostname","tag","asn","geo","region","city"\n'
        f'"{when}","{ip}",3389,,"rdp",64500,"KZ","ALMATY","ALMATY"\n'
    ).encode()


def test_dashboard_shows_recent_events_alerts_open_cases_and_submissions(
    login, network: Network, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import io
    from datetime import timedelta

    from concord.cases import service as cases
    from concord.db import session_factory, session_scope, utcnow
    from concord.events import correlation
    from concord.intake import service as intake

    when = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    old = (utcnow() - timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    for user, ip, at in (
        ("kz-analyst", "45.137.21.9", when),
        ("uz-analyst", "45.137.21.9", when),
        ("kz-analyst", "45.137.21.10", old),
    ):
        source = intake.Source(io.BytesIO(_scan(ip, at)), f"scan_rdp-{user}-{ip}.csv")
        intake.ingest(session_factory(), network[user], source, tlp="green")
    with session_scope() as s:
        correlation.correlate(s)
        case = cases.create_case(
            s, network["kz-analyst"], cases.CaseInput(title="Brute force from one host")
        )
        done = cases.create_case(s, network["kz-analyst"], cases.CaseInput(title="Old one"))
        s.flush()
        for status in ("triage", "in-progress", "resolved"):
            cases.set_status(s, network["kz-analyst"], done.id, status)
        case_id = case.id

    page = login("kz-analyst").get("/").text
    tile = re.search(r'id="tile-events"[^>]*><strong>(\d+\+?)</strong>', page)
    assert tile and tile.group(1) == "2"  # the month-old event is outside the window
    week = (utcnow() - timedelta(days=6)).date().isoformat()  # today and the 6 days before
    assert f'href="/events?since={week}"' in page
    assert re.search(r'id="tile-cases"[^>]*><strong>1</strong>', page)
    assert 'href="/indicators?value=45.137.21.9"' in page and "KZ, UZ" in page
    assert f'href="/cases/{case_id}"' in page and "Old one" not in page
    assert page.count('href="/intake/') == 2  # kz-cert's own submissions, not uz-cert's
    # the alerts box and its tile lead to the same page: the alerts
    box = page.split('id="dashboard-alerts"')[1].split("</section>")[0]
    assert '<a href="/alerts">All alerts</a>' in box and 'href="/indicators">' not in box
    assert 'id="tile-alerts" href="/alerts"' in page

    # an owner's contact gets no correlation alerts, and sees no other's cases
    contact = login("kz-bank-contact").get("/").text
    assert 'id="dashboard-alerts"' not in contact and 'id="tile-alerts"' not in contact
    assert 'href="/alerts"' not in contact  # nor an Alerts link in the navigation
    assert "Brute force from one host" not in contact
    # a reader may not submit: no submissions box
    assert 'id="dashboard-submissions"' not in login("kz-reader").get("/").text

    # beyond the cap the tile says "more than", without counting every event
    from concord.web import ui

    monkeypatch.setattr(ui, "RECENT_EVENTS_CAP", 1)
    assert re.search(
        r'id="tile-events"[^>]*><strong>1\+</strong>', login("uz-analyst").get("/").text
    )


def test_language_switch_and_sign_in_come_back_to_the_page_as_shown(login, app) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    listing = ui.get("/events?country=KZ&value=203.0.113.9").text
    assert 'name="next" value="/events?country=KZ&amp;value=203.0.113.9"' in listing
    back = ui.post("/language", {"language": "ru", "next": "/events?country=KZ"})
    assert back.status_code == 303 and back.headers["location"] == "/events?country=KZ"
    # a page shown in answer to a form comes back to the page the form was on
    refused = ui.client.post(
        "/cases",
        data={"csrf_token": ui.csrf, "title": ""},
        headers={"referer": "http://testserver/cases?status=new"},
    )
    assert 'name="next" value="/cases?status=new"' in refused.text
    # signing in again after the session ended, from a form: back to its page, not its POST
    with TestClient(app) as anonymous:
        r = anonymous.post(
            "/cases/1/comments",
            data={"text": "hello"},
            headers={"referer": "http://testserver/cases/1"},
            follow_redirects=False,
        )
        # and the login page says the form was not taken
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/cases/1&ended=1"


def test_error_pages_and_counts_read_in_russian(login) -> None:  # type: ignore[no-untyped-def]
    ui = login("kz-analyst")
    ui.post("/language", {"language": "ru", "next": "/"})
    for url, said in (
        ("/events?since=baddate", "недопустимая дата"),
        ("/events?country=KZX", "неверный код страны"),
        ("/indicators?after=abc", "недопустимое значение after"),
    ):
        page = ui.get(url)
        assert page.status_code == 422 and said in text_of(page), (url, text_of(page))
        assert "since:" not in text_of(page) and "Input should" not in text_of(page)
    assert '<link rel="icon" href="/static/favicon.svg"' in ui.get("/").text
    assert ui.client.get("/static/favicon.svg").status_code == 200


def test_dashboard_names_each_cross_state_indicator_once_for_the_centre(
    login, network: Network
) -> None:  # type: ignore[no-untyped-def]
    import io

    from concord.db import session_factory, session_scope, utcnow
    from concord.events import correlation
    from concord.intake import service as intake

    when = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    for user in ("kz-analyst", "uz-analyst"):
        source = intake.Source(io.BytesIO(_scan("45.137.21.9", when)), f"scan_rdp-{user}.csv")
        intake.ingest(session_factory(), network[user], source, tlp="green")
    with session_scope() as s:
        correlation.correlate(s)
    page = login("centre-analyst").get("/").text
    section = page.split('id="dashboard-alerts"')[1].split("</section>")[0]
    assert section.count('href="/indicators?value=45.137.21.9"') == 1
    # the tile counts what the alerts page lists: the alert to each state
    assert re.search(r'id="tile-alerts"[^>]*><strong>2</strong>', page)


def _reported_by_both_states(network: Network, prefix: str, count: int) -> None:
    """`count` addresses `prefix`.0, .1 ... scanned by KZ and by UZ, then correlated: one
    cross-state alert each."""
    import io

    from concord.db import session_factory, session_scope, utcnow
    from concord.events import correlation
    from concord.intake import service as intake

    when = utcnow().strftime("%Y-%m-%d %H:%M:%S")
    lines = [_scan(f"{prefix}.{n}", when).decode().splitlines(True) for n in range(count)]
    data = lines[0][0] + "".join(line[1] for line in lines)
    for user in ("kz-analyst", "uz-analyst"):
        source = intake.Source(io.BytesIO(data.encode()), f"scan_rdp-{user}.csv")
        intake.ingest(session_factory(), network[user], source, tlp="green")
    with session_scope() as s:
        correlation.correlate(s)


def test_the_alerts_tile_counts_every_indicator_not_the_five_listed(
    login, network: Network
) -> None:  # type: ignore[no-untyped-def]
    _reported_by_both_states(network, "45.137.21", 7)
    page = login("kz-analyst").get("/").text
    assert re.search(r'id="tile-alerts"[^>]*><strong>7</strong>', page)
    section = page.split('id="dashboard-alerts"')[1].split("</section>")[0]
    assert section.count('href="/indicators?value=45.137.21.') == 5


def test_every_alert_is_listed_a_page_at_a_time(
    login, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from concord.events import correlation_views

    _reported_by_both_states(network, "45.137.22", 3)
    monkeypatch.setattr(correlation_views, "ALERTS_PAGE", 2)
    ui = login("kz-analyst")
    assert 'href="/alerts"' in ui.get("/").text  # the dashboard's tile leads here
    first = ui.get("/alerts").text
    shown = re.findall(r'data-alert="(\d+)"', first)
    assert len(shown) == 2 and shown == sorted(shown, reverse=True)  # newest first
    older = re.search(r'href="(/alerts\?before=\d+)" rel="next"', first)
    assert older is not None
    rest = re.findall(r'data-alert="(\d+)"', ui.get(older.group(1)).text)
    assert len(rest) == 1 and int(rest[0]) < int(shown[-1])
    contact = login("kz-bank-contact").get("/alerts").text
    assert 'id="no-alerts-for-you"' in contact and "45.137.22." not in contact
    # the centre's rows are its own, one per state concerned: not a word that the state's
    # national body was alerted, which depends on what that body may see
    assert "Your state&#39;s reports" in first and "State&#39;s report" in first
    centre = login("centre-analyst").get("/alerts").text
    assert "The centre&#39;s alerts: one for each state" in centre
    assert "Alerted" not in centre


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's write lock")
def test_an_error_page_does_not_wait_for_the_write_lock(login, env) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from sqlalchemy.engine import make_url

    ui = login("kz-analyst")
    holder = sqlite3.connect(make_url(env.database_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a long intake commit, say
    try:
        r = ui.get("/no-such-page")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "kz-analyst" in r.text  # the page as its reader knows it, menu and all


def test_the_navigation_leads_to_the_alerts_of_those_who_receive_them(login) -> None:  # type: ignore[no-untyped-def]
    for username in ("centre-analyst", "kz-analyst"):
        nav = login(username).get("/events").text.split("<nav>")[1].split("</nav>")[0]
        assert '<a href="/alerts" >Alerts</a>' in nav, username
    alerts = login("kz-analyst").get("/alerts").text.split("<nav>")[1].split("</nav>")[0]
    assert '<a href="/alerts" aria-current="page">' in alerts


def test_a_contact_is_named_as_a_person_in_russian(admin: UI, session: Session) -> None:
    from concord.orgs import service as orgs

    orgs.add_contact(session, None, "kz-bank", orgs.ContactInput("Aru B.", "aru@bank.example"))
    session.commit()
    admin.post("/language", {"language": "ru", "next": "/contacts"})
    for url in ("/contacts", "/organizations/kz-bank"):
        head = admin.get(url).text.split("<th>Эл. почта</th>")[0].rsplit("<tr>", 1)[1]
        assert head.endswith("<th>Имя</th>") and "Название" not in head, url
    # an organisation still has a name of its kind
    assert "<th>Название</th>" in admin.get("/organizations").text
