"""Every route of the app, walked as every role of every organisation.

Routes are taken from the app's own route table, so a route added later is walked too: a GET
route is requested with every example of its path parameters, and a write route must be
listed in WRITES below with who may call it (the test fails for an unlisted API write).
Marked records of every TLP label must appear exactly where the rules of TLP 2.0 and the
organisation scope say, and nowhere else.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from concord.access.model import Share, User
from concord.orgs import readers
from concord.orgs import service as orgs
from concord.orgs.model import Organization
from concord.web.app import route_table
from tests.conftest import NETWORK_USERS, sign_in

LABELS = {
    "clear": "m-clear-x",
    "green": "m-green-x",
    "amber": "m-amber-x",
    "amber+strict": "m-strict-x",
    "red": "m-red-x",
}
# Marks that never appear in a request path, so an echo of the request cannot look like a leak.
NAMES = {
    "m-clear-x": "Marked-C1",
    "m-green-x": "Marked-G2",
    "m-amber-x": "Marked-A3",
    "m-strict-x": "Marked-S4",
    "m-red-x": "Marked-R5",
}
CONTACT_MARK = "mark-contact@kz-bank.example"
ASSET_DESC_MARK = "asset-description-mark"
KZ_BANK_NAME = "Steppe Bank"
KZ_EVENT_PORT, UZ_EVENT_PORT = 44441, 55552
ASSET_MARK = "mark-asset.kz-bank.example"
TOKEN_MARK = "mark-token-of-kz-analyst"
USERS = [u for u, _, _ in NETWORK_USERS]
CENTRE = {"centre-admin", "centre-analyst", "centre-reader"}
KZ_STAFF = {"kz-admin", "kz-analyst", "kz-reader"}


def expected_orgs(user: str | None) -> set[str]:
    """Written out from the rules, independently of the policy module."""
    if user is None:
        return {"m-clear-x"}
    if user in CENTRE | KZ_STAFF:  # the centre and kz-cert have the marked owners in scope
        return set(LABELS.values())
    seen = {"m-clear-x", "m-green-x"}
    if user in {"uz-admin", "uz-analyst"}:
        seen.add("m-strict-x")  # uz-cert is a named recipient of the AMBER+STRICT record
    if user == "uz-analyst":
        seen.add("m-red-x")  # the one named user of the RED record
    return seen


def expected_scoped(user: str | None) -> bool:
    """kz-bank's contacts and assets: the centre, kz-cert and kz-bank itself."""
    return user in CENTRE | KZ_STAFF | {"kz-bank-contact"}


def expected_token(user: str | None) -> bool:
    return user in {"kz-analyst", "kz-admin", "centre-admin"}


STAFF_WRITERS = {
    "centre-admin",
    "centre-analyst",
    "kz-admin",
    "kz-analyst",
    "uz-admin",
    "uz-analyst",
}

# Who may call each write route successfully (2xx); everyone else gets 401/403/404.
WRITES: dict[tuple[str, str], tuple[set[str], dict | None]] = {
    ("POST", "/api/v1/organizations"): (
        CENTRE - {"centre-reader"} | {"kz-admin", "kz-analyst"},
        {"slug": "new-owner", "kind": "owner", "name_en": "New owner", "parent": "kz-cert"},
    ),
    ("PATCH", "/api/v1/organizations/{slug}"): (STAFF_WRITERS, {"sector": "energy"}),
    ("POST", "/api/v1/organizations/{slug}/shares"): (STAFF_WRITERS, {"org": "uz-cert"}),
    ("POST", "/api/v1/contacts"): (
        CENTRE - {"centre-reader"} | {"kz-admin", "kz-analyst", "kz-bank-contact"},
        {"org": "kz-bank", "name": "New contact", "email": "new@kz-bank.example"},
    ),
    ("DELETE", "/api/v1/contacts/{contact_id}"): (
        CENTRE - {"centre-reader"} | {"kz-admin", "kz-analyst", "kz-bank-contact"},
        None,
    ),
    ("POST", "/api/v1/assets/import"): (
        CENTRE - {"centre-reader"} | {"kz-admin", "kz-analyst", "kz-bank-contact"},
        None,
    ),
    ("DELETE", "/api/v1/assets/{asset_id}"): (
        CENTRE - {"centre-reader"} | {"kz-admin", "kz-analyst", "kz-bank-contact"},
        None,
    ),
    ("POST", "/api/v1/users"): (
        {"centre-admin", "kz-admin"},
        {
            "username": "new-reader",
            "org": "kz-bank",
            "role": "reader",
            "password": "a-long-password",
        },
    ),
    ("PATCH", "/api/v1/users/{username}"): (
        {"centre-admin", "kz-admin", "uz-admin"},
        {"active": True},
    ),
    # with a token, only one that may write mints another (readers do it signed in)
    ("POST", "/api/v1/tokens"): (
        set(USERS) - {"centre-reader", "kz-reader"},
        {"name": "mine", "scopes": ["read"]},
    ),
    ("POST", "/api/v1/intake"): (STAFF_WRITERS | {"kz-bank-contact", "uz-telecom-contact"}, None),
    ("DELETE", "/api/v1/tokens/{token_id}"): ({"kz-analyst", "kz-admin", "centre-admin"}, None),
    # Reports: the centre's analysts and admins build any scope, a national body's its own.
    ("POST", "/api/v1/reports"): (
        {"centre-admin", "centre-analyst", "kz-admin", "kz-analyst"},
        {"period": "2024-07", "scope": "KZ", "format": "json"},
    ),
    # Cases: each staff writer opens case 1 first (POST /cases is walked before the rest), so
    # the writes on {case_id} below find a case of their own to change.
    ("POST", "/api/v1/cases"): (STAFF_WRITERS, {"title": "Matrix case", "severity": "high"}),
    ("PATCH", "/api/v1/cases/{case_id}"): (STAFF_WRITERS, {"status": "triage"}),
    ("POST", "/api/v1/cases/{case_id}/comments"): (STAFF_WRITERS, {"text": "matrix comment"}),
    ("POST", "/api/v1/cases/{case_id}/participants"): (STAFF_WRITERS, {"org": "uz-cert"}),
    ("DELETE", "/api/v1/cases/{case_id}/participants"): (STAFF_WRITERS, None),
    ("POST", "/api/v1/cases/{case_id}/techniques"): (STAFF_WRITERS, {"technique_id": "T1566.001"}),
    ("POST", "/api/v1/cases/{case_id}/events"): (STAFF_WRITERS, {"event_ids": [1]}),
    ("DELETE", "/api/v1/cases/{case_id}/techniques/{technique_id}"): (STAFF_WRITERS, None),
    ("DELETE", "/api/v1/cases/{case_id}/events"): (STAFF_WRITERS, None),
    # Events: the reporting state's staff, and the centre's for AMBER (both marked events are).
    ("POST", "/api/v1/events/{event_id}/shares"): (STAFF_WRITERS, {"org": "kz-cert"}),
}
# The marked events by id: 1 is KZ's, 2 is UZ's.
EVENT_STATE = {"1": "kz", "2": "uz"}
SCOPE = {  # organisations each user's staff may manage
    "kz": {"kz-cert", "kz-bank", *LABELS.values()},
    "uz": {"uz-cert", "uz-telecom"},
}
USER_ORG = {"kz-bank-contact": "kz-bank", "uz-analyst": "uz-cert"}


def _manages(user: str, org_slug: str) -> bool:
    if user in CENTRE:
        return True
    prefix = user.split("-")[0]
    return org_slug in SCOPE.get(prefix, set())


def _narrow(allowed: set[str], path: str, concrete: str) -> set[str]:
    """Route-level permission narrowed to the object named in the path."""
    parts = concrete.strip("/").split("/")
    if "{slug}" in path:
        return {u for u in allowed if _manages(u, parts[3])}
    if "{username}" in path:
        return {u for u in allowed if _manages(u, USER_ORG[parts[3]])}
    if "{event_id}" in path:
        state = EVENT_STATE[parts[3]]
        return {u for u in allowed if u in CENTRE or u.startswith(f"{state}-")}
    return allowed


PUBLIC_API = {"/api/v1/health", "/api/v1/openapi.json", "/api/docs", "/docs/oauth2-redirect"}
PUBLIC_UI = {"/login", "/language", "/logout"}


@pytest.fixture
def marked(session, network, auth):  # type: ignore[no-untyped-def]
    """Marked records: five owners of kz-cert under each TLP label, a contact, an asset and
    a token of kz-bank / kz-analyst; each marked owner also owns a domain named after it."""
    from concord.access import service as access
    from concord.access.model import TokenScope
    from concord.errors import FaultLocation

    kz = network["kz-analyst"]
    ids = {}
    for label, slug in LABELS.items():
        org = orgs.create_org(
            session, kz, orgs.OrgInput(slug, "owner", NAMES[slug], parent="kz-cert", tlp=label)
        )
        ids[slug] = org.id
        row = readers.normalise("domain", f"{slug}.example", "", "", FaultLocation())
        orgs.import_assets(session, None, slug, [row])
    uz = session.scalar(select(Organization).where(Organization.slug == "uz-cert"))
    uz_analyst = session.scalar(select(User).where(User.username == "uz-analyst"))
    session.add(Share(object_kind="organization", object_id=ids["m-strict-x"], org_id=uz.id))
    session.add(Share(object_kind="organization", object_id=ids["m-red-x"], user_id=uz_analyst.id))
    contact = orgs.add_contact(
        session, None, "kz-bank", orgs.ContactInput("Marked Contact", CONTACT_MARK)
    )
    row = readers.normalise("", ASSET_MARK, "", ASSET_DESC_MARK, FaultLocation())
    orgs.import_assets(session, None, "kz-bank", [row])
    _, token = access.create_token(
        session, None, "kz-analyst", TOKEN_MARK, frozenset({TokenScope.READ})
    )
    from concord.orgs.model import Asset

    asset_id = session.scalar(select(Asset.id).where(Asset.value == ASSET_MARK))
    session.commit()
    # Two AMBER reports of one address, by KZ and by UZ: a cross-state indicator and a
    # campaign, each state's event marked by its port.
    import io

    from concord.db import session_factory
    from concord.events import correlation
    from concord.intake import service as intake
    from tests.intake.test_service import scan_csv

    for user, port in (("kz-analyst", KZ_EVENT_PORT), ("uz-analyst", UZ_EVENT_PORT)):
        data = scan_csv([("2026-11-30 10:00:00", "146.185.0.99", port)])
        intake.ingest(
            session_factory(),
            network[user],
            intake.Source(io.BytesIO(data), "scan_rdp.csv"),
            tlp="amber",
        )
    result = correlation.correlate(session)
    session.commit()
    assert result.cross_state >= 1 and result.campaigns and result.campaigns.campaigns, result
    return {"contact_id": contact.id, "asset_id": asset_id, "token_id": token.id}


def _examples(param: str, marked: dict) -> list[str]:
    examples = {
        "slug": [*LABELS.values(), "kz-bank", "uz-telecom", "kz-cert"],
        "query": [f"{s}.example" for s in LABELS.values()] + [ASSET_MARK],
        "username": ["kz-bank-contact", "uz-analyst"],
        "contact_id": [str(marked["contact_id"])],
        "asset_id": [str(marked["asset_id"])],
        "token_id": [str(marked["token_id"])],
        "submission_id": ["1"],
        "event_id": ["1", "2"],
        "campaign_id": ["1"],
        "case_id": ["1", "2"],
        "technique_id": ["T1566.001"],
        "report_id": ["1"],
        "request_id": ["1"],
    }
    if param not in examples:
        pytest.fail(f"path parameter {{{param}}} has no examples in the authorization matrix")
    return examples[param]


def _expand(path: str, marked: dict) -> list[str]:
    params = re.findall(r"{(\w+)(?::\w+)?}", path)
    paths = [path]
    for param in params:
        paths = [
            re.sub(r"{" + param + r"(?::\w+)?}", value, p)
            for p in paths
            for value in _examples(param, marked)
        ]
    return paths


def _leaks(user: str | None, body: str, path: str) -> list[str]:
    problems = []
    allowed = expected_orgs(user)
    for slug, name in NAMES.items():
        if name in body and slug not in allowed:
            problems.append(f"{path} shows {name} to {user}")
    if not expected_scoped(user):
        for mark in (CONTACT_MARK, ASSET_DESC_MARK, KZ_BANK_NAME):
            if mark in body:
                problems.append(f"{path} shows {mark} to {user}")
    # whole numbers only: a random hex id (a token's key, a session's) may hold the digits
    if user not in CENTRE | KZ_STAFF and re.search(rf"\b{KZ_EVENT_PORT}\b", body):
        problems.append(f"{path} shows the KZ event to {user}")
    if user not in CENTRE | {"uz-admin", "uz-analyst"} and re.search(rf"\b{UZ_EVENT_PORT}\b", body):
        problems.append(f"{path} shows the UZ event to {user}")
    if not expected_token(user) and TOKEN_MARK in body:
        problems.append(f"{path} shows {TOKEN_MARK} to {user}")
    return problems


def _routes(app):  # type: ignore[no-untyped-def]
    return route_table(app)


@pytest.mark.parametrize("user", [None, *USERS])
def test_every_route_as_every_principal(client, auth, marked, user) -> None:  # type: ignore[no-untyped-def]
    headers: dict[str, str] = {}
    ui_login = False
    if user is not None:
        headers = auth[user]
    problems: list[str] = []
    reads_checked = 0
    for method, path in _routes(client.app):
        api = path.startswith("/api/")
        if not api and user is not None and not ui_login:
            r = sign_in(client, user, follow_redirects=False)
            assert r.status_code == 303, r.text
            ui_login = True
        for concrete in _expand(path, marked):
            h = headers if api else {}
            if method == "GET":
                r = client.get(concrete, headers=h, follow_redirects=False)
                assert r.status_code < 500, f"{concrete} as {user}: {r.status_code}"
                if (
                    user is None
                    and path not in PUBLIC_API | PUBLIC_UI
                    and not path.startswith("/static")
                ):
                    # a scraper is told to authenticate, not sent to a login page
                    expected = 401 if api or path == "/metrics" else 303
                    if r.status_code != expected:
                        problems.append(f"{concrete} answers {r.status_code} to anonymous")
                problems += _leaks(user, r.text, concrete)
                reads_checked += 1
                continue
            if not api:
                # UI writes without the CSRF token must never succeed.
                r = client.request(method, concrete, data={}, follow_redirects=False)
                assert r.status_code < 500, f"{method} {concrete} as {user}: {r.status_code}"
                if path not in PUBLIC_UI and r.status_code in (200, 201, 204):
                    problems.append(f"{method} {concrete} accepted a form without CSRF token")
                if path not in PUBLIC_UI and r.status_code == 303 and user is not None:
                    problems.append(f"{method} {concrete} redirected without CSRF token")
                continue
            spec = WRITES.get((method, path))
            if spec is None:
                pytest.fail(f"{method} {path} is not classified in WRITES")
            allowed, body = spec
            allowed = _narrow(allowed, path, concrete)
            kwargs = {"json": body} if body is not None else {}
            if path == "/api/v1/assets/import":
                kwargs = {
                    "params": {"org": "kz-bank"},
                    "content": "kind,value\n,198.51.100.0/28\n",
                    "headers": {**h, "content-type": "text/csv"},
                }
            else:
                kwargs["headers"] = h
            r = client.request(method, concrete, **kwargs)
            assert r.status_code < 500, f"{method} {concrete} as {user}: {r.text}"
            ok = r.status_code < 300
            if user is None and r.status_code != 401:
                problems.append(f"{method} {concrete} answers {r.status_code} to anonymous")
            if ok and user not in allowed:
                problems.append(f"{method} {concrete} allowed for {user}")
            if not ok and user in allowed and r.status_code not in (404, 409, 422):
                problems.append(f"{method} {concrete} refused for {user}: {r.text}")
            problems += _leaks(user, r.text, concrete)
    assert reads_checked > 10
    assert not problems, "\n".join(problems)


def test_unclassified_write_routes_fail(client) -> None:  # type: ignore[no-untyped-def]
    api_writes = {(m, p) for m, p in _routes(client.app) if p.startswith("/api/") and m != "GET"}
    assert api_writes == set(WRITES), "classify new API write routes in WRITES"


STRICT_FILE_MARK = "scan_rdp_mark-strict-victim.csv"
# Where each kind of object the audit log names by id is read, to ask whether its reader may.
AUDITED = {
    "organization": "/api/v1/organizations/{}",
    "event": "/api/v1/events/{}",
    "submission": "/api/v1/intake/{}",
    "case": "/api/v1/cases/{}",
    "report": "/api/v1/reports/{}",
}


def test_audit_log_names_only_what_its_reader_sees(client, auth, marked, session) -> None:  # type: ignore[no-untyped-def]
    from concord.audit import service as audit
    from tests.intake.test_service import scan_csv

    # Reads of the marked owners (each a record naming the owner by id), and a state's
    # AMBER+STRICT report, which the centre does not read, under a file name naming a victim.
    for user in USERS:
        for slug in LABELS.values():
            client.get(f"/api/v1/organizations/{slug}", headers=auth[user])
    data = scan_csv([("2026-11-30 11:00:00", "146.185.0.98", 3389)])
    r = client.post(
        "/api/v1/intake",
        params={"tlp": "amber+strict"},
        files={"file": (STRICT_FILE_MARK, data)},
        headers=auth["uz-analyst"],
    )
    assert r.status_code == 200, r.text
    client.get("/api/v1/events", params={"submission": r.json()["id"]}, headers=auth["uz-analyst"])
    slugs = dict(session.execute(select(Organization.id, Organization.slug)).all())
    problems = []
    for admin in ("centre-admin", "kz-admin", "uz-admin"):
        body = client.get("/api/v1/audit", params={"limit": 1000}, headers=auth[admin])
        assert body.status_code == 200, body.text
        if STRICT_FILE_MARK in body.text:
            problems.append(f"the audit log names {STRICT_FILE_MARK} to {admin}")
        named: set[tuple[str, str]] = set()
        for item in body.json()["items"]:
            kind = item["object_kind"]
            if kind not in AUDITED or item["action"] == "request":
                continue
            if item["object_id"] is not None:
                named.add((kind, item["object_id"]))
            named.update((kind, str(i)) for i in item["detail"].get("ids", []))
        for kind, object_id in sorted(named):
            if kind == "organization" and object_id.isdigit():
                object_id = slugs[int(object_id)]
            seen = client.get(AUDITED[kind].format(object_id), headers=auth[admin]).status_code
            if seen != 200:
                problems.append(f"the audit log names {kind} {object_id} to {admin} ({seen})")
    assert not problems, "\n".join(problems)
    session.rollback()
    assert audit.verify(session).ok


def test_metrics_are_for_the_centres_operators(client, auth, network, session) -> None:  # type: ignore[no-untyped-def]
    """Intake counters span AMBER+STRICT and RED intake: the centre's admins, with the admin
    scope, read them; its analysts and readers do not."""
    from concord.access import service as access
    from concord.access.model import TokenScope

    for user in USERS:
        r = client.get("/metrics", headers=auth[user])
        expected = 200 if user == "centre-admin" else 403
        assert r.status_code == expected, (user, r.status_code)
        assert ("concord_intake_records_total" in r.text) == (expected == 200)
    assert client.get("/metrics").status_code == 401
    # a scraper's token: the admin scope alone does; a centre admin's read token does not
    scraper, _ = access.create_token(
        session, None, "centre-admin", "scraper", frozenset({TokenScope.ADMIN})
    )
    reader, _ = access.create_token(
        session, None, "centre-admin", "read only", frozenset({TokenScope.READ})
    )
    session.commit()
    assert client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {reader}"}).status_code == 403


def test_head_answers_as_get_without_a_body(client, auth) -> None:  # type: ignore[no-untyped-def]
    """Uptime checks and `curl -I` send HEAD: the same status and headers as GET, no body,
    and no more access than GET gives."""
    for path, headers in (
        ("/api/v1/health", {}),
        ("/metrics", auth["centre-admin"]),
        ("/metrics", auth["kz-analyst"]),
        ("/metrics", {}),
        ("/api/v1/events", auth["kz-analyst"]),
        ("/api/v1/audit", auth["kz-analyst"]),
        ("/events", {}),
    ):
        got = client.get(path, headers=headers, follow_redirects=False)
        head = client.head(path, headers=headers, follow_redirects=False)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b"", path
        for name in ("content-type", "content-length", "location"):
            if name == "content-length" and path == "/metrics" and got.status_code == 200:
                # its figures (request timings) move between the two requests
                assert int(head.headers[name]) > 0
                continue
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert client.head("/api/v1/intake", headers=auth["kz-analyst"]).status_code == 405
