"""The audit log shows a reader only what TLP lets that reader see: a record about a
submission, an event, a case or a report the reader may not see is left out, and ids of
hidden objects are left out of the lists a record carries; the stored chain still verifies."""

from __future__ import annotations

import io

from sqlalchemy import select

from concord.audit import service as audit
from concord.audit.model import AuditRecord
from concord.cases import service as cases
from concord.db import session_factory
from concord.events.model import Event
from concord.intake import service as intake
from tests.intake.test_service import scan_csv

UZ_STRICT_FILE = "scan_rdp_victim-hospital-uz.csv"
KZ_RED_FILE = "scan_rdp_victim-ministry-kz.csv"
KZ_AMBER_FILE = "scan_rdp_victim-bank-kz.csv"


def _ingest(network, user: str, name: str, tlp: str, ips: list[str]) -> int:  # type: ignore[no-untyped-def]
    data = scan_csv([("2026-11-30 10:00:00", ip, 3389) for ip in ips])
    receipt = intake.ingest(
        session_factory(),
        network[user],
        intake.Source(io.BytesIO(data), name),
        fmt="shadowserver",
        tlp=tlp,
    )
    assert receipt.accepted == len(ips), receipt
    assert receipt.id is not None
    return receipt.id


def _submissions(network) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {
        "uz-strict": _ingest(
            network, "uz-analyst", UZ_STRICT_FILE, "amber+strict", ["203.0.113.1", "203.0.113.2"]
        ),
        "uz-amber": _ingest(network, "uz-analyst", "scan_rdp.csv", "amber", ["203.0.113.3"]),
        "kz-red": _ingest(network, "kz-analyst", KZ_RED_FILE, "red", ["198.51.100.1"]),
        "kz-amber": _ingest(network, "kz-analyst", KZ_AMBER_FILE, "amber", ["198.51.100.2"]),
    }


def _log(client, auth, user: str, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/audit", params={"limit": 500, **params}, headers=auth[user])
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _events(session, tlp: str) -> list[int]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(Event.id).where(Event.tlp == tlp).order_by(Event.id)))


def test_submissions_show_as_their_receipts_do(client, auth, network, session) -> None:  # type: ignore[no-untyped-def]
    subs = _submissions(network)
    seen = {
        user: {r["object_id"] for r in _log(client, auth, user, action="submit")}
        for user in ("centre-admin", "kz-admin", "uz-admin")
    }
    # the centre reads AMBER, not a state's AMBER+STRICT nor anyone's RED
    assert seen["centre-admin"] == {str(subs["uz-amber"]), str(subs["kz-amber"])}
    # a colleague's RED submission stays with its sender
    assert seen["kz-admin"] == {str(subs["kz-amber"])}
    assert seen["uz-admin"] == {str(subs["uz-strict"]), str(subs["uz-amber"])}
    for user in ("centre-admin", "kz-admin", "uz-admin"):
        body = client.get("/api/v1/audit", params={"limit": 500}, headers=auth[user]).text
        for name in (UZ_STRICT_FILE, KZ_RED_FILE, KZ_AMBER_FILE):
            assert name not in body, (user, name)
    page = client.get("/audit", headers=auth["centre-admin"]).text
    assert UZ_STRICT_FILE not in page and KZ_RED_FILE not in page
    assert audit.verify(session).ok


def test_reads_name_only_what_the_reader_sees(client, auth, network, session) -> None:  # type: ignore[no-untyped-def]
    subs = _submissions(network)
    strict, amber, red = (_events(session, t) for t in ("amber+strict", "amber", "red"))
    uz_amber = [i for i in amber if i in _events_of(session, "uz-cert")]
    # one read of the state's AMBER+STRICT events only, one of AMBER and AMBER+STRICT
    for params in ({"submission": subs["uz-strict"]}, {}):
        r = client.get("/api/v1/events", params=params, headers=auth["uz-analyst"])
        assert r.status_code == 200, r.text
    assert client.get("/api/v1/events", headers=auth["kz-analyst"]).status_code == 200
    session.rollback()

    centre = [r for r in _log(client, auth, "centre-admin", action="read") if _about_events(r)]
    assert [r["detail"]["ids"] for r in centre if r["actor"] == "uz-analyst"] == [uz_amber]
    narrowed = next(r for r in centre if r["actor"] == "uz-analyst")
    assert narrowed["hash"] is None  # it would test guesses at the ids left out
    assert all(set(r["detail"]["ids"]).isdisjoint(strict + red) for r in centre)

    uz = [r for r in _log(client, auth, "uz-admin", action="read") if _about_events(r)]
    assert sorted(map(sorted, (r["detail"]["ids"] for r in uz))) == [
        sorted(strict),
        sorted(strict + uz_amber),
    ]
    assert all(r["hash"] for r in uz)

    kz = [r for r in _log(client, auth, "kz-admin", action="read") if _about_events(r)]
    assert kz and all(set(r["detail"]["ids"]).isdisjoint(red + strict) for r in kz)
    assert audit.verify(session).ok


def _events_of(session, slug: str) -> set[int]:  # type: ignore[no-untyped-def]
    from concord.orgs.model import Organization

    org = session.scalar(select(Organization.id).where(Organization.slug == slug))
    return set(session.scalars(select(Event.id).where(Event.origin_org_id == org)))


def _about_events(record: dict) -> bool:  # type: ignore[type-arg]
    return record["object_kind"] == "event"


def test_case_links_of_hidden_events_are_left_out(client, auth, network, session) -> None:  # type: ignore[no-untyped-def]
    _submissions(network)
    strict = _events(session, "amber+strict")
    uz = network["uz-analyst"]
    case = cases.create_case(session, uz, cases.CaseInput(title="Hospital", tlp="amber"))
    cases.link(session, uz, case.id, event_ids=strict)
    session.commit()
    links = [
        r for r in _log(client, auth, "centre-admin", object_kind="case") if r["action"] == "link"
    ]
    # the centre sees the AMBER case, and no line about what it may not see linked to it
    assert links == []
    assert any(r["action"] == "create" for r in _log(client, auth, "centre-admin"))
    mine = [r for r in _log(client, auth, "uz-admin", object_kind="case") if r["action"] == "link"]
    assert [r["detail"]["events"] for r in mine] == [strict]
    body = client.get("/api/v1/audit", params={"limit": 500}, headers=auth["centre-admin"]).text
    assert "Hospital" not in body


def test_what_was_done_under_red_stays_out_of_the_log_when_the_case_widens(
    client, auth, network, session
) -> None:  # type: ignore[no-untyped-def]
    kz, uz = network["kz-analyst"], network["uz-analyst"]
    case = cases.create_case(
        session, kz, cases.CaseInput(title="Leak", tlp="amber", participants=["uz-cert"])
    )
    cases.update_case(session, kz, case.id, {"tlp": "red"})
    cases.add_named_user(session, kz, case.id, "uz-analyst")
    cases.add_comment(session, uz, case.id, "Our source is A. Karimov.")
    session.commit()
    # reading it while RED: only someone named could, so the record names them
    assert client.get(f"/api/v1/cases/{case.id}", headers=auth["uz-analyst"]).status_code == 200
    cases.update_case(session, kz, case.id, {"tlp": "amber"})
    session.commit()

    def logged(user: str) -> list[tuple[str, dict]]:
        rows = _log(client, auth, user, object_kind="case")
        return [
            (r["action"], r["detail"]) for r in reversed(rows) if r["object_id"] == str(case.id)
        ]

    # the centre's admin reads the AMBER case: the log says what its timeline says, and
    # nothing of what was done while it was RED (the narrowing included, done under RED)
    for user in ("centre-admin", "kz-admin"):
        seen = logged(user)
        assert [a for a, _ in seen] == ["create", "participant-add", "participant-add", "update"]
        actors = {r["actor"] for r in _log(client, auth, user, action="read")}
        assert "uz-analyst" not in actors, actors
        assert {"user": "uz-analyst"} not in [d for _, d in seen]  # who was named for RED
        assert seen[-1][1]["tlp"] == {"from": "red", "to": "amber"}
        assert all("label" not in d for _, d in seen)
    timeline = cases.case_detail(session, network["centre-admin"], case.id).timeline
    assert [t.entry.kind for t in timeline] == ["create", "participant", "participant", "update"]


def test_a_page_left_short_by_hidden_records_is_filled_from_older_ones(
    client, auth, network, session
) -> None:  # type: ignore[no-untyped-def]
    subs = _submissions(network)
    # the newest records: reads of hidden events only, left out for the centre after reading
    for _ in range(3):
        params = {"submission": subs["uz-strict"]}
        client.get("/api/v1/events", params=params, headers=auth["uz-analyst"])
    session.rollback()
    newest = session.scalar(select(AuditRecord.seq).order_by(AuditRecord.seq.desc()).limit(1))
    everything = [r["seq"] for r in _log(client, auth, "centre-admin")]
    assert newest not in everything
    paged: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = client.get("/api/v1/audit", params=params, headers=auth["centre-admin"]).json()
        assert len(r["items"]) == 2 or r["next_cursor"] is None
        paged += [i["seq"] for i in r["items"]]
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert paged == everything
