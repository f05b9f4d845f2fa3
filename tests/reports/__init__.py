"""A small two-state, two-month dataset for report tests, written with bulk SQL.

July 2024 (the period under test) and June 2024 (the previous period):

    group  n   state  by       TLP    class                 owner (sector)       techniques
    A      10  KZ     kz-cert  green  malicious-code        kz-bank (finance)    T1566.001,T1059.001
    B      5   KZ     kz-cert  green  intrusion-attempts    -                    T1110
    C      4   UZ     uz-cert  amber  malicious-code        uz-telecom (telecom) T1071.001
    D      2   UZ     uz-cert  amber  intrusions            kz-bank (finance)    -
    E      1   UZ     uz-cert  green  fraud                 kz-bank (finance)    T1566
    H      2   KZ     kz-cert  green  vulnerable            kz-power (energy)    -
    F      8   KZ     kz-cert  green  malicious-code (June) kz-bank (finance)    -
    G      6   UZ     uz-cert  green  availability (June)   uz-telecom (telecom) -

Indicators: X (198.51.100.7) in A[0..2] and C[0]; Y (evil.example) in A[0] and E[0];
W (a warning-listed value) in A[0] and E[0]. Campaign: A[0] + E[0]. Cases: see `seed`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from concord.events.model import Event, EventObservable, Indicator
from concord.orgs import service as orgs
from concord.orgs.model import Organization


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def org_ids(session: Session) -> dict[str, int]:
    return {slug: i for slug, i in session.execute(select(Organization.slug, Organization.id))}


@dataclass
class Seed:
    groups: dict[str, list[int]] = field(default_factory=dict)  # group -> event ids
    orgs: dict[str, int] = field(default_factory=dict)


_serial = iter(range(1, 1_000_000))


def add_events(
    session: Session,
    n: int,
    *,
    when: datetime,
    country: str,
    origin: str,
    tlp: str,
    rsit_class: str,
    rsit_type: str,
    owner: str | None = None,
    techniques: str = "",
    origin_user_id: int | None = None,
) -> list[int]:
    ids = org_ids(session)
    owner_id = ids.get(owner) if owner else None
    parent_id = None
    if owner_id is not None:
        parent_id = session.scalar(
            select(Organization.parent_id).where(Organization.id == owner_id)
        )
    rows: list[dict[str, Any]] = []
    for i in range(n):
        key = f"k{next(_serial)}"
        t = when + timedelta(minutes=i)
        rows.append(
            {
                "time": t,
                "last_seen": t,
                "count": 2,
                "rsit_class": rsit_class,
                "rsit_type": rsit_type,
                "feed": "test",
                "attack_techniques": techniques,
                "primary_value": key,
                "country": country,
                "owner_org_id": owner_id,
                "owner_parent_id": parent_id,
                "dedup_key": zlib.crc32(key.encode()),
                "submission_id": 0,
                "raw_location": f"line {i + 1}",
                "tlp": tlp,
                "origin_org_id": ids[origin],
                "origin_user_id": origin_user_id,
            }
        )
    session.execute(insert(Event), rows)
    return list(
        session.scalars(
            select(Event.id)
            .where(Event.dedup_key.in_([r["dedup_key"] for r in rows]))
            .order_by(Event.id)
        )
    )


def link(session: Session, kind: str, value: str, event_ids: list[int], **extra: Any) -> int:
    now = at("2024-07-01T00:00:00")
    session.execute(
        insert(Indicator),
        [{"kind": kind, "value": value, "first_seen": now, "last_seen": now, **extra}],
    )
    indicator_id = session.scalar(select(Indicator.id).where(Indicator.value == value))
    assert indicator_id is not None
    session.execute(
        insert(EventObservable),
        [{"event_id": e, "indicator_id": indicator_id, "role": "source"} for e in event_ids],
    )
    return indicator_id


def seed(session: Session, *, cases: bool = True, campaigns: bool = True) -> Seed:
    """The dataset above, on top of the `network` fixture."""
    orgs.create_org(
        session,
        None,
        orgs.OrgInput(
            "kz-power",
            "owner",
            "Steppe Power",
            "Степная энергия",
            sector="energy",
            parent="kz-cert",
        ),
    )
    s = Seed()
    s.groups["A"] = add_events(
        session, 10, when=at("2024-07-03T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system", owner="kz-bank",
        techniques="T1566.001,T1059.001",
    )  # fmt: skip
    s.groups["B"] = add_events(
        session, 5, when=at("2024-07-05T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="intrusion-attempts", rsit_type="brute-force", techniques="T1110",
    )  # fmt: skip
    s.groups["C"] = add_events(
        session, 4, when=at("2024-07-07T10:00"), country="UZ", origin="uz-cert", tlp="amber",
        rsit_class="malicious-code", rsit_type="c2-server", owner="uz-telecom",
        techniques="t1071.001",
    )  # fmt: skip
    s.groups["D"] = add_events(
        session, 2, when=at("2024-07-09T10:00"), country="UZ", origin="uz-cert", tlp="amber",
        rsit_class="intrusions", rsit_type="system-compromise", owner="kz-bank",
    )  # fmt: skip
    s.groups["E"] = add_events(
        session, 1, when=at("2024-07-20T12:00"), country="UZ", origin="uz-cert", tlp="green",
        rsit_class="fraud", rsit_type="phishing", owner="kz-bank", techniques="T1566",
    )  # fmt: skip
    s.groups["H"] = add_events(
        session, 2, when=at("2024-07-25T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="vulnerable", rsit_type="vulnerable-system", owner="kz-power",
    )  # fmt: skip
    s.groups["F"] = add_events(
        session, 8, when=at("2024-06-10T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system", owner="kz-bank",
    )  # fmt: skip
    s.groups["G"] = add_events(
        session, 6, when=at("2024-06-15T10:00"), country="UZ", origin="uz-cert", tlp="green",
        rsit_class="availability", rsit_type="ddos", owner="uz-telecom",
    )  # fmt: skip
    a, c, e = s.groups["A"], s.groups["C"], s.groups["E"]
    link(session, "ipv4", "198.51.100.7", [*a[:3], c[0]], cross_state=True)
    link(session, "domain", "evil.example", [a[0], e[0]], cross_state=True)
    link(session, "domain", "common.example", [a[0], e[0]], warning_list="top-domains")
    s.orgs = org_ids(session)
    if campaigns:
        _campaign(session, [a[0], e[0]])
    if cases:
        _cases(session, s.orgs)
    session.commit()
    return s


def _campaign(session: Session, members: list[int]) -> None:
    from concord.events.correlation_model import Campaign, CampaignEvent

    cid = min(members)
    session.add(Campaign(id=cid, label="evil.example", size=len(members), states="KZ,UZ"))
    session.flush()
    session.execute(insert(CampaignEvent), [{"event_id": e, "campaign_id": cid} for e in members])


def _cases(session: Session, ids: dict[str, int]) -> None:
    """Closed in July: 48 h, 24 h and 144 h (median 48, mean 72); opened in July: 3;
    opened in June: 1. One technique (T1110) added to a case in July."""
    from concord.cases.model import Case, CaseParticipant, CaseTechnique

    specs = [
        ("one", "2024-07-02T00:00", "2024-07-04T00:00", "remediated"),
        ("two", "2024-07-10T00:00", "2024-07-11T00:00", "remediated"),
        ("three", "2024-06-25T00:00", "2024-07-01T00:00", None),
        ("four", "2024-07-20T00:00", None, None),
    ]
    made = []
    for title, opened, closed, resolution in specs:
        case = Case(
            title=title,
            status="closed" if closed else "in-progress",
            created_at=at(opened),
            updated_at=at(opened),
            closed_at=at(closed) if closed else None,
            resolved_at=at(closed) if closed else None,
            resolution=resolution,
            tlp="green",
            origin_org_id=ids["ccc"],
        )
        session.add(case)
        made.append(case)
    session.flush()
    for case in made:
        session.add(CaseParticipant(case_id=case.id, org_id=ids["kz-cert"]))
    session.add(CaseTechnique(case_id=made[0].id, technique_id="T1110", added_at=at("2024-07-03")))
    session.flush()
