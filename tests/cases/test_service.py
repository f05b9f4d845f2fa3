"""Coordination cases through the service: workflow, who may write, and TLP visibility."""

from __future__ import annotations

import dataclasses
import json
import zlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.access.model import Share, TokenScope
from concord.audit import service as audit
from concord.audit.model import AuditRecord
from concord.cases import service
from concord.cases.model import Case, TimelineEntry
from concord.errors import Conflict, Forbidden, InvalidInput, NotFound
from concord.events.model import Event, EventObservable, Indicator
from concord.orgs.model import Organization
from tests.conftest import Network

WRITERS = ("centre-admin", "centre-analyst", "kz-admin", "kz-analyst", "uz-admin", "uz-analyst")


def add_event(
    session: Session,
    org_slug: str,
    tlp: str,
    value: str,
    *,
    country: str | None = None,
    kind: str = "ipv4",
    user_id: int | None = None,
) -> Event:
    """One reported event with one observable, written directly (intake is tested elsewhere)."""
    org = session.scalar(select(Organization).where(Organization.slug == org_slug))
    assert org is not None
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    event = Event(
        time=now,
        last_seen=now,
        count=1,
        rsit_class="intrusion-attempts",
        rsit_type="brute-force",
        nature="event",
        feed="test",
        description="",
        attack_techniques="",
        primary_value=value,
        country=country or org.country,
        dedup_key=zlib.crc32(f"{org_slug}-{value}-{tlp}".encode()),
        submission_id=0,
        raw_location="line 1",
        extra="{}",
        tlp=tlp,
        origin_org_id=org.id,
        origin_user_id=user_id,
        share_constituents=False,
    )
    session.add(event)
    indicator = session.scalar(select(Indicator).where(Indicator.value == value))
    if indicator is None:
        indicator = Indicator(kind=kind, value=value, first_seen=now, last_seen=now)
        session.add(indicator)
    session.flush()
    session.add(EventObservable(event_id=event.id, indicator_id=indicator.id))
    session.flush()
    return event


def visible_ids(session: Session, network: Network, username: str) -> set[int]:
    return {c.id for c in service.list_cases(session, network[username])}


def kz_case(session: Session, network: Network, tlp: str = "amber", **kw: object) -> Case:
    data = service.CaseInput(title="Phishing wave against banks", tlp=tlp, **kw)  # type: ignore[arg-type]
    case = service.create_case(session, network["kz-analyst"], data)
    session.commit()
    return case


def kinds(session: Session, case_id: int) -> list[str]:
    return list(
        session.scalars(
            select(TimelineEntry.kind)
            .where(TimelineEntry.case_id == case_id)
            .order_by(TimelineEntry.id)
        )
    )


# --- workflow ------------------------------------------------------------------------------


def test_workflow_forward_then_reopen(session: Session, network: Network) -> None:
    analyst = network["centre-analyst"]
    case = service.create_case(session, analyst, service.CaseInput(title="DDoS on operators"))
    assert case.status == "new" and case.tlp == "amber" and case.severity == "medium"
    for status in ("triage", "in-progress", "resolved"):
        service.set_status(session, analyst, case.id, status)
    assert case.resolved_at is not None and case.closed_at is None
    service.set_status(session, analyst, case.id, "closed")
    assert case.closed_at is not None and case.closed_at >= case.resolved_at
    service.set_status(session, analyst, case.id, "in-progress")
    assert case.status == "in-progress"
    assert case.resolved_at is None and case.closed_at is None
    session.commit()
    assert kinds(session, case.id) == ["create", *["status"] * 5]
    details = [
        json.loads(t.detail)
        for t in session.scalars(
            select(TimelineEntry).where(TimelineEntry.kind == "status").order_by(TimelineEntry.id)
        )
    ]
    assert [(d["from"], d["to"]) for d in details][-1] == ("closed", "in-progress")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ((), "resolved"),  # resolved only once worked on
        (("triage",), "resolved"),
        (("triage", "in-progress", "resolved", "closed"), "triage"),  # reopen to in-progress only
        (("closed",), "resolved"),
        ((), "done"),
    ],
)
def test_transitions_outside_the_workflow_are_refused(
    session: Session, network: Network, path: tuple[str, ...], target: str
) -> None:
    analyst = network["centre-analyst"]
    case = service.create_case(session, analyst, service.CaseInput(title="Case"))
    for status in path:
        service.set_status(session, analyst, case.id, status)
    with pytest.raises((Conflict, InvalidInput)):
        service.set_status(session, analyst, case.id, target)


def test_a_duplicate_is_closed_from_triage_and_work_goes_back_to_triage(
    session: Session, network: Network
) -> None:
    analyst = network["centre-analyst"]
    duplicate = service.create_case(session, analyst, service.CaseInput(title="Seen before"))
    service.set_status(session, analyst, duplicate.id, "triage")
    service.set_status(session, analyst, duplicate.id, "closed")
    assert duplicate.closed_at is not None and duplicate.resolved_at is None
    other = service.create_case(session, analyst, service.CaseInput(title="Not ours yet"))
    service.set_status(session, analyst, other.id, "in-progress")  # obvious at once
    service.set_status(session, analyst, other.id, "triage")  # back, for more facts
    assert other.status == "triage"


def test_resolved_case_can_be_reopened(session: Session, network: Network) -> None:
    analyst = network["centre-analyst"]
    case = service.create_case(session, analyst, service.CaseInput(title="Case"))
    for status in ("triage", "in-progress", "resolved", "in-progress"):
        service.set_status(session, analyst, case.id, status)
    assert case.status == "in-progress" and case.resolved_at is None


def test_closed_case_takes_only_comments_and_reopening(session: Session, network: Network) -> None:
    analyst = network["centre-analyst"]
    case = service.create_case(session, analyst, service.CaseInput(title="Case"))
    for status in ("triage", "in-progress", "resolved", "closed"):
        service.set_status(session, analyst, case.id, status)
    with pytest.raises(Conflict):
        service.set_severity(session, analyst, case.id, "high")
    with pytest.raises(Conflict):
        service.add_technique(session, analyst, case.id, "T1566")
    with pytest.raises(Conflict):
        service.add_participant(session, analyst, case.id, "uz-cert")
    service.add_comment(session, analyst, case.id, "Post-mortem published.")
    # One request may reopen and change.
    service.update_case(session, analyst, case.id, {"status": "in-progress", "severity": "high"})
    assert case.status == "in-progress" and case.severity == "high"


def test_fields_are_validated(session: Session, network: Network) -> None:
    analyst = network["centre-analyst"]
    with pytest.raises(InvalidInput) as exc:
        service.create_case(session, analyst, service.CaseInput(title="   "))
    assert exc.value.locations[0].field == "title"
    with pytest.raises(InvalidInput) as exc:
        service.create_case(session, analyst, service.CaseInput(title="x", severity="urgent"))
    assert exc.value.locations[0].field == "severity"
    with pytest.raises(InvalidInput) as exc:
        service.create_case(session, analyst, service.CaseInput(title="x", tlp="purple"))
    assert exc.value.locations[0].field == "tlp"
    with pytest.raises(InvalidInput) as exc:
        service.create_case(
            session, analyst, service.CaseInput(title="x", participants=["kz-bank"])
        )
    assert exc.value.locations[0].field == "participants"


def test_attack_techniques(session: Session, network: Network) -> None:
    analyst = network["centre-analyst"]
    case = service.create_case(session, analyst, service.CaseInput(title="Case"))
    service.add_technique(session, analyst, case.id, "T1566.001", "Spearphishing Attachment")
    service.add_technique(session, analyst, case.id, " t1078 ")
    service.add_technique(session, analyst, case.id, "T1566.001")  # again: no change
    # the last two have the shape of an id but are not techniques of the shipped ATT&CK
    for bad in ("T15", "T1566.1", "1566", "T1566.001.002", "TA0001", "", "T9999", "T1566.999"):
        with pytest.raises(InvalidInput) as exc:
            service.add_technique(session, analyst, case.id, bad)
        assert exc.value.locations[0].field == "technique_id"
    detail = service.case_detail(session, analyst, case.id)
    assert [(t.technique_id, t.name) for t in detail.techniques] == [
        ("T1078", "Valid Accounts"),  # named from the ATT&CK catalogue
        ("T1566.001", "Spearphishing Attachment"),
    ]
    assert kinds(session, case.id).count("technique") == 2


def test_timeline_is_append_only(session: Session, network: Network) -> None:
    case = kz_case(session, network)
    entry = service.add_comment(session, network["kz-analyst"], case.id, "first")
    session.commit()
    entry.text = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()
    session.rollback()
    session.delete(session.get(TimelineEntry, entry.id))
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()
    session.rollback()


def test_every_write_is_on_the_timeline_and_in_the_audit_log(
    session: Session, network: Network
) -> None:
    kz = network["kz-analyst"]
    event = add_event(session, "kz-cert", "amber", "198.51.100.7")
    case = kz_case(session, network)
    before = session.scalar(select(func.count()).select_from(AuditRecord))
    service.set_status(session, kz, case.id, "triage")
    service.set_severity(session, kz, case.id, "critical")
    service.assign(session, kz, case.id, "kz-admin")
    service.add_comment(session, kz, case.id, "Confirmed by the bank's SOC.")
    service.add_participant(session, kz, case.id, "uz-cert")
    service.add_technique(session, kz, case.id, "T1566")
    service.link(session, kz, case.id, [event.id])
    service.remove_participant(session, kz, case.id, "uz-cert")
    session.commit()
    timeline = kinds(session, case.id)
    assert timeline[-8:] == [
        "status",
        "update",
        "assign",
        "comment",
        "participant",
        "technique",
        "link",
        "participant",
    ]
    records = list(
        session.scalars(
            select(AuditRecord).where(AuditRecord.seq > before).order_by(AuditRecord.seq)
        )
    )
    assert [r.action for r in records] == [
        "status",
        "update",
        "assign",
        "comment",
        "participant-add",
        "technique-add",
        "link",
        "participant-remove",
    ]
    assert {(r.object_kind, r.object_id) for r in records} == {("case", str(case.id))}
    # The audit log keeps ids, not the words of the case.
    assert all("SOC" not in r.detail for r in records)
    assert audit.verify(session).ok


# --- who may write -------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["centre-reader", "kz-reader", "kz-bank-contact"])
def test_readers_and_owner_contacts_never_write(
    session: Session, network: Network, username: str
) -> None:
    case = service.create_case(
        session, network["centre-analyst"], service.CaseInput(title="Open", tlp="green")
    )
    p = network[username]
    with pytest.raises(Forbidden):
        service.create_case(session, p, service.CaseInput(title="Mine"))
    with pytest.raises(Forbidden):
        service.add_comment(session, p, case.id, "hello")
    with pytest.raises(Forbidden):
        service.set_status(session, p, case.id, "triage")


def test_a_read_only_token_cannot_write(session: Session, network: Network) -> None:
    p = dataclasses.replace(network["centre-admin"], scopes=frozenset({TokenScope.READ}))
    with pytest.raises(Forbidden, match="write"):
        service.create_case(session, p, service.CaseInput(title="x"))


def test_national_bodies_write_only_where_they_take_part(
    session: Session, network: Network
) -> None:
    case = kz_case(session, network, tlp="green")
    uz = network["uz-analyst"]
    # GREEN: UZ sees the case but does not take part in it.
    assert case.id in visible_ids(session, network, "uz-analyst")
    with pytest.raises(Forbidden):
        service.add_comment(session, uz, case.id, "we see it too")
    # The centre works on every case it can see.
    service.add_comment(session, network["centre-analyst"], case.id, "centre here")
    service.add_participant(session, network["centre-analyst"], case.id, "uz-cert")
    session.commit()
    service.add_comment(session, uz, case.id, "we see it too")
    service.set_status(session, uz, case.id, "triage")
    # A participant works on the case but does not decide who receives it.
    with pytest.raises(Forbidden):
        service.update_case(session, uz, case.id, {"tlp": "amber"})
    with pytest.raises(Forbidden):
        service.remove_participant(session, uz, case.id, "kz-cert")
    # The originating national body does.
    service.update_case(session, network["kz-admin"], case.id, {"tlp": "amber"})
    with pytest.raises(Conflict):
        service.remove_participant(session, network["kz-admin"], case.id, "kz-cert")


def test_assignee_is_staff_of_the_centre_or_a_participant(
    session: Session, network: Network
) -> None:
    case = kz_case(session, network)
    kz = network["kz-analyst"]
    service.assign(session, kz, case.id, "centre-analyst")
    service.assign(session, kz, case.id, "kz-admin")
    for username in ("uz-analyst", "kz-reader", "kz-bank-contact"):
        with pytest.raises(InvalidInput) as exc:
            service.assign(session, kz, case.id, username)
        assert exc.value.locations[0].field == "assignee"
    with pytest.raises(InvalidInput):
        service.assign(session, kz, case.id, "nobody-at-all")
    service.add_participant(session, kz, case.id, "uz-cert")
    service.assign(session, kz, case.id, "uz-analyst")
    with pytest.raises(Conflict):  # reassign before withdrawing the assignee's organisation
        service.remove_participant(session, kz, case.id, "uz-cert")
    service.assign(session, kz, case.id, None)
    assert case.assignee_user_id is None


# --- visibility ----------------------------------------------------------------------------


def test_amber_case_of_kz_is_invisible_to_uz_until_uz_takes_part(
    session: Session, network: Network
) -> None:
    case = kz_case(session, network, tlp="amber")
    for username in ("kz-analyst", "kz-reader", "centre-reader"):
        assert case.id in visible_ids(session, network, username), username
    for username in ("uz-analyst", "uz-admin", "kz-bank-contact", "uz-telecom-contact"):
        assert case.id not in visible_ids(session, network, username), username
    with pytest.raises(NotFound):
        service.get_case(session, network["uz-analyst"], case.id)
    # Invisible means unwritable too, with the same answer as for a case that does not exist.
    with pytest.raises(NotFound):
        service.add_comment(session, network["uz-analyst"], case.id, "hello")

    service.add_participant(session, network["kz-analyst"], case.id, "uz-cert")
    session.commit()
    share = session.scalar(
        select(Share)
        .where(Share.object_kind == "case", Share.object_id == case.id)
        .where(Share.org_id == network["uz-analyst"].org_id)
    )
    assert share is not None
    assert case.id in visible_ids(session, network, "uz-analyst")
    assert case.id in visible_ids(session, network, "uz-admin")
    assert case.id not in visible_ids(session, network, "uz-telecom-contact")
    assert service.get_case(session, network["uz-analyst"], case.id).title == case.title

    service.remove_participant(session, network["kz-analyst"], case.id, "uz-cert")
    session.commit()
    assert case.id not in visible_ids(session, network, "uz-analyst")


def test_amber_strict_case_needs_a_share_even_for_the_centre(
    session: Session, network: Network
) -> None:
    case = kz_case(session, network, tlp="amber+strict")
    assert case.id not in visible_ids(session, network, "centre-admin")
    service.add_participant(session, network["kz-analyst"], case.id, "ccc")
    session.commit()
    assert case.id in visible_ids(session, network, "centre-admin")


def test_an_amber_strict_case_offers_the_centre_as_a_participant_not_its_users_as_assignees(
    session: Session, network: Network
) -> None:
    """The centre sees an AMBER+STRICT case only once it takes part: the page offers it as a
    participant, and its users as assignees only then (assigning them was refused)."""
    kz = network["kz-analyst"]
    case = kz_case(session, network, tlp="amber+strict")

    def offered() -> tuple[set[str], set[str]]:
        parties = service.parties_of(session, case)
        choices = {o.slug for o in service.participant_choices(session, kz, parties, case)}
        users = {u.username for u, _slug in service.assignable_users(session, case, parties)}
        return choices, users

    choices, users = offered()
    assert "ccc" in choices and "uz-cert" in choices and "kz-cert" not in choices
    assert not {"centre-admin", "centre-analyst"} & users and "kz-analyst" in users
    service.add_participant(session, kz, case.id, "ccc")
    session.commit()
    choices, users = offered()
    assert "ccc" not in choices and {"centre-admin", "centre-analyst"} <= users
    service.assign(session, kz, case.id, "centre-analyst")  # offered, and taken
    # an AMBER case: the centre sees it, and is no participant to add
    amber = kz_case(session, network)
    parties = service.parties_of(session, amber)
    assert "ccc" not in {o.slug for o in service.participant_choices(session, kz, parties, amber)}
    assert "centre-analyst" in {
        u.username for u, _ in service.assignable_users(session, amber, parties)
    }
    # a case not opened yet may be AMBER+STRICT: the centre is among the choices
    assert "ccc" in {o.slug for o in service.participant_choices(session, kz, service.Parties())}


def test_red_case_is_for_named_users_only(session: Session, network: Network) -> None:
    case = kz_case(session, network, tlp="red", participants=["uz-cert"])
    assert visible_ids(session, network, "kz-analyst") == {case.id}  # its creator
    for username in ("kz-admin", "centre-admin", "uz-analyst", "uz-admin"):
        assert case.id not in visible_ids(session, network, username), username
    kz = network["kz-analyst"]
    service.add_named_user(session, kz, case.id, "uz-analyst")
    with pytest.raises(InvalidInput):  # named users come from participating organisations
        service.add_named_user(session, kz, case.id, "kz-bank-contact")
    # Assigning a TLP:RED case names the assignee.
    service.assign(session, kz, case.id, "centre-analyst")
    session.commit()
    assert case.id in visible_ids(session, network, "uz-analyst")
    assert case.id in visible_ids(session, network, "centre-analyst")
    for username in ("kz-admin", "centre-admin", "uz-admin"):
        assert case.id not in visible_ids(session, network, username), username
    detail = service.case_detail(session, network["uz-analyst"], case.id)
    assert detail.named_users == ["centre-analyst", "uz-analyst"]
    service.remove_named_user(session, kz, case.id, "uz-analyst")
    session.commit()
    assert case.id not in visible_ids(session, network, "uz-analyst")


def test_case_from_events_and_indicators(session: Session, network: Network) -> None:
    kz = network["kz-analyst"]
    own = add_event(session, "kz-cert", "amber", "198.51.100.7")
    red = add_event(session, "kz-cert", "red", "evil.example", kind="domain", user_id=kz.user_id)
    theirs = add_event(session, "uz-cert", "amber", "203.0.113.9")
    session.commit()
    # An event the creator cannot see is refused like one that does not exist.
    with pytest.raises(InvalidInput) as hidden:
        service.create_case(session, kz, service.CaseInput(title="x", event_ids=[theirs.id]))
    with pytest.raises(InvalidInput) as missing:
        service.create_case(session, kz, service.CaseInput(title="x", event_ids=[999_999]))
    assert hidden.value.locations == missing.value.locations
    assert str(theirs.id) in hidden.value.message
    with pytest.raises(InvalidInput) as exc:
        service.create_case(session, kz, service.CaseInput(title="x", indicators=["203.0.113.9"]))
    assert exc.value.locations[0].field == "indicators"

    case = service.create_case(
        session,
        kz,
        service.CaseInput(
            title="Brute force and a C2 domain",
            event_ids=[own.id, red.id],
            indicators=["Evil.Example"],
            participants=["uz-cert"],
        ),
    )
    session.commit()
    # The narrowest label of its events: opening a case does not widen them.
    assert case.tlp == "red"
    detail = service.case_detail(session, kz, case.id)
    assert [e.id for e in detail.events] == sorted([own.id, red.id])
    assert [i.value for i in detail.indicators] == ["evil.example"]
    assert [o.slug for o in detail.participants] == ["kz-cert", "uz-cert"]

    # Another viewer of the case sees only the linked events their own TLP view allows.
    service.update_case(session, kz, case.id, {"tlp": "amber"})
    session.commit()
    seen = service.case_detail(session, network["uz-analyst"], case.id)
    assert seen.events == [] and seen.indicators == []
    centre = service.case_detail(session, network["centre-analyst"], case.id)
    assert [e.id for e in centre.events] == [own.id]


def test_list_filters_and_pagination(session: Session, network: Network) -> None:
    kz = network["kz-analyst"]
    centre = network["centre-analyst"]
    first = service.create_case(
        session, kz, service.CaseInput(title="Ransomware at a hospital", severity="critical")
    )
    second = service.create_case(
        session,
        centre,
        service.CaseInput(title="Botnet C2", summary="Mirai variant", participants=["uz-cert"]),
    )
    third = service.create_case(session, centre, service.CaseInput(title="Defacement"))
    service.set_status(session, centre, third.id, "triage")
    service.assign(session, centre, second.id, "centre-admin")
    session.commit()

    def ids(**filters: str) -> list[int]:
        return [c.id for c in service.list_cases(session, centre, service.CaseFilters(**filters))]

    assert ids() == [first.id, second.id, third.id]
    assert ids(status="triage") == [third.id]
    assert ids(severity="critical") == [first.id]
    assert ids(country="uz") == [second.id]
    # the centre has its seat in KZ, but its cases are no state's
    assert ids(country="KZ") == [first.id]
    assert ids(assignee="centre-admin") == [second.id]
    assert ids(q="mirai") == [second.id]
    assert ids(q="HOSPITAL") == [first.id]
    with pytest.raises(InvalidInput):
        ids(status="open")
    page = service.list_cases(session, centre, limit=2)
    rest = service.list_cases(session, centre, after_id=page[-1].id, limit=2)
    assert [c.id for c in page + rest] == [first.id, second.id, third.id]

    board = service.board(session, centre, service.CaseFilters())
    assert board.counts == {"new": 2, "triage": 1, "in-progress": 0, "resolved": 0, "closed": 0}
    assert [c.id for c in board.columns["new"]] == [second.id, first.id]  # latest change first
    assert set(service.counts(session, centre)) == {"new", "triage"}


def test_cases_linking_a_campaign_are_those_the_reader_sees(
    session: Session, network: Network
) -> None:
    green = add_event(session, "kz-cert", "green", "198.51.100.44")
    centre = network["centre-analyst"]
    shared = service.create_case(
        session, centre, service.CaseInput(title="Seen", event_ids=[green.id], tlp="green")
    )
    own = service.create_case(
        session, centre, service.CaseInput(title="Centre only", indicators=["198.51.100.44"])
    )
    indicator_id = session.scalar(select(Indicator.id).where(Indicator.value == "198.51.100.44"))
    seen = service.cases_linking(session, centre, [green.id], [indicator_id])
    assert {c.id: ids for c, ids in seen.items()} == {
        shared.id: ([green.id], []),
        own.id: ([], [indicator_id]),
    }
    uz = service.cases_linking(session, network["uz-analyst"], [green.id], [indicator_id])
    assert [c.id for c in uz] == [shared.id]  # the AMBER case stays with the centre


def test_a_technique_or_a_link_added_by_mistake_is_taken_off(
    session: Session, network: Network
) -> None:
    analyst = network["kz-analyst"]
    event = add_event(session, "kz-cert", "green", "198.51.100.45")
    other = add_event(session, "kz-cert", "green", "198.51.100.46")
    case = service.create_case(
        session,
        analyst,
        service.CaseInput(
            title="Mixed up",
            event_ids=[event.id, other.id],
            indicators=["198.51.100.46"],
            techniques=["T1566.001", "T1190"],
        ),
    )
    service.remove_technique(session, analyst, case.id, "t1190")
    service.unlink(session, analyst, case.id, [other.id], ["198.51.100.46"])
    detail = service.case_detail(session, analyst, case.id)
    assert [t.technique_id for t in detail.techniques] == ["T1566.001"]
    assert [e.id for e in detail.events] == [event.id] and detail.indicators == []
    kinds = [(t.entry.kind, t.detail) for t in detail.timeline]
    assert ("technique", {"technique": "T1190", "removed": True}) in kinds
    # the history keeps what was linked, and what was taken off, as the reader may see it
    links = [d for k, d in kinds if k == "link"]
    assert links[0]["events"] == sorted([event.id, other.id])
    assert links[-1]["removed"] is True and links[-1]["events"] == [other.id]
    with pytest.raises(NotFound):
        service.unlink(session, analyst, case.id, [other.id])  # not linked any more
    with pytest.raises(NotFound):
        service.remove_technique(session, analyst, case.id, "T1190")
    with pytest.raises(Forbidden):
        service.remove_technique(session, network["kz-reader"], case.id, "T1566.001")


def test_a_link_to_reports_the_reader_cannot_see_leaves_no_empty_line(
    session: Session, network: Network
) -> None:
    centre = network["centre-analyst"]
    seen = add_event(session, "kz-cert", "green", "198.51.100.47")
    hidden = add_event(session, "uz-cert", "amber", "198.51.100.48")
    case = service.create_case(
        session,
        centre,
        service.CaseInput(title="Two states", tlp="green", participants=["kz-cert"]),
    )
    service.link(session, centre, case.id, event_ids=[seen.id])
    service.link(session, centre, case.id, event_ids=[hidden.id])

    def links(principal) -> list[dict]:  # type: ignore[no-untyped-def]
        detail = service.case_detail(session, principal, case.id)
        return [t.detail for t in detail.timeline if t.entry.kind == "link"]

    assert [d["events"] for d in links(centre)] == [[seen.id], [hidden.id]]
    assert [d["events"] for d in links(network["kz-analyst"])] == [[seen.id]]


def test_widening_a_case_does_not_widen_what_was_said_under_its_narrower_label(
    session: Session, network: Network
) -> None:
    kz, uz = network["kz-analyst"], network["uz-analyst"]
    case = kz_case(session, network, tlp="red", participants=["uz-cert"])
    service.add_named_user(session, kz, case.id, "uz-analyst")
    service.add_comment(session, uz, case.id, "Our source is A. Karimov. Do not share.")
    session.commit()
    service.update_case(session, kz, case.id, {"tlp": "green", "title": "Credential leak"})
    service.add_comment(session, kz, case.id, "Owners: please check your VPN logs.")
    session.commit()

    def said(username: str) -> list[str]:
        detail = service.case_detail(session, network[username], case.id)
        return [t.entry.text for t in detail.timeline if t.entry.kind == "comment"]

    # the named recipients read both; the rest of the network only what was said under GREEN
    assert said("uz-analyst") == [
        "Our source is A. Karimov. Do not share.",
        "Owners: please check your VPN logs.",
    ]
    for username in ("kz-bank-contact", "centre-analyst", "kz-admin"):
        assert said(username) == ["Owners: please check your VPN logs."], username
    # nor does the first title, kept on the entry that opened the case
    opened = service.case_detail(session, network["kz-bank-contact"], case.id).timeline
    assert all(t.entry.kind != "create" for t in opened)


def test_narrowing_a_case_keeps_its_assignee_on_it(session: Session, network: Network) -> None:
    kz = network["kz-analyst"]
    case = kz_case(session, network, participants=["uz-cert"])
    service.assign(session, kz, case.id, "uz-analyst")
    session.commit()
    # AMBER+STRICT still reaches uz-cert, a participant: nothing to say
    service.update_case(session, kz, case.id, {"tlp": "amber+strict"})
    # RED is for named people: the assignee is named, and the timeline says so
    service.update_case(session, kz, case.id, {"tlp": "red"})
    session.commit()
    assert case.id in visible_ids(session, network, "uz-analyst")
    detail = service.case_detail(session, network["uz-analyst"], case.id)
    assert detail.named_users == ["uz-analyst"] and detail.assignee == "uz-analyst"
    assert ("participant", {"user": "uz-analyst"}) in [
        (t.entry.kind, t.detail) for t in detail.timeline
    ]
    # a centre analyst assigned to a KZ case would lose an AMBER+STRICT one: refused
    other = kz_case(session, network)
    service.assign(session, kz, other.id, "centre-analyst")
    with pytest.raises(InvalidInput, match="the assignee, could not see"):
        service.update_case(session, kz, other.id, {"tlp": "amber+strict"})


def test_one_named_on_a_narrowed_case_reads_what_was_said_before(
    session: Session, network: Network
) -> None:
    kz = network["kz-analyst"]
    case = kz_case(session, network, tlp="amber+strict")
    service.add_comment(session, kz, case.id, "The lure came from a supplier's mailbox.")
    service.update_case(session, kz, case.id, {"tlp": "red"})
    service.assign(session, kz, case.id, "centre-analyst")  # named, as RED asks
    session.commit()
    detail = service.case_detail(session, network["centre-analyst"], case.id)
    said = [t.entry.text for t in detail.timeline if t.entry.kind == "comment"]
    assert said == ["The lure came from a supplier's mailbox."]
