"""The demo network: its shape, its reserved address space, its logins file and its logins."""

from __future__ import annotations

import ipaddress
import stat
from datetime import timedelta
from itertools import combinations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.access import service as access
from concord.access.model import User
from concord.audit import service as audit
from concord.demo import DemoLogins, load_demo
from concord.errors import Conflict
from concord.orgs.model import Asset, AssetKind, Contact, Organization, OrgKind
from concord.orgs.whois import load_index

DOC_V4 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
DOC_V6 = ipaddress.ip_network("2001:db8::/32")
RESERVED_TLDS = ("example", "test")


def _assets(session: Session, kind: AssetKind) -> list[Asset]:
    return list(session.scalars(select(Asset).where(Asset.kind == kind.value)))


@pytest.fixture
def demo(session: Session) -> DemoLogins:
    logins = load_demo(session)
    session.commit()
    return logins


def test_network_shape(session: Session, demo: DemoLogins) -> None:
    by_kind = dict(
        session.execute(select(Organization.kind, func.count()).group_by(Organization.kind)).all()
    )
    assert by_kind[OrgKind.CENTRE] == 1
    assert by_kind[OrgKind.NATIONAL_BODY] == 6
    assert 35 <= by_kind[OrgKind.OWNER] <= 45

    orgs = {o.id: o for o in session.scalars(select(Organization))}
    with_contacts = set(session.scalars(select(Contact.org_id)))
    v4_holders = set(session.scalars(select(Asset.org_id).where(Asset.kind == "ipv4-prefix")))
    for org in orgs.values():
        assert org.name_en and org.name_ru
        assert org.language in ("en", "ru")
        assert org.id in with_contacts, org.slug
        if org.kind == OrgKind.NATIONAL_BODY:
            assert orgs[org.parent_id].kind == OrgKind.CENTRE
            assert org.country
        if org.kind == OrgKind.OWNER:
            assert orgs[org.parent_id].kind == OrgKind.NATIONAL_BODY, org.slug
            assert org.country == orgs[org.parent_id].country
            assert org.sector
            assert org.id in v4_holders, org.slug
    assert session.scalar(select(func.count()).select_from(Contact)) >= 47
    assert audit.verify(session).ok


def test_assets_stay_in_reserved_space(session: Session, demo: DemoLogins) -> None:
    owners = set(session.scalars(select(Organization.id).where(Organization.kind == "owner")))
    v4 = [
        (a.org_id, ipaddress.ip_network(a.value)) for a in _assets(session, AssetKind.IPV4_PREFIX)
    ]
    assert all(any(net.subnet_of(doc) for doc in DOC_V4) for _, net in v4)
    for (org_a, a), (org_b, b) in combinations(v4, 2):
        assert not a.overlaps(b), (org_a, a, org_b, b)

    v6 = _assets(session, AssetKind.IPV6_PREFIX)
    assert {a.org_id for a in v6} == owners
    assert all(ipaddress.ip_network(a.value).subnet_of(DOC_V6) for a in v6)
    assert len({a.value for a in v6}) == len(v6)

    asns = _assets(session, AssetKind.ASN)
    assert {a.org_id for a in asns} == owners
    assert all(64496 <= a.asn <= 64511 or a.asn >= 4_200_000_000 for a in asns)
    assert len({a.asn for a in asns}) == len(asns)

    names = _assets(session, AssetKind.DOMAIN) + _assets(session, AssetKind.EMAIL_DOMAIN)
    assert all(a.value.rsplit(".", 1)[1] in RESERVED_TLDS for a in names)
    assert {a.org_id for a in _assets(session, AssetKind.EMAIL_DOMAIN)} == owners

    software = _assets(session, AssetKind.SOFTWARE)
    assert {a.org_id for a in software} == owners
    assert all(a.version and a.value.startswith(("pkg:", "cpe:2.3:")) for a in software)
    # The catalogue names known-vulnerable versions, so that matching has work to do.
    log4j = [a for a in software if a.value == "pkg:maven/org.apache.logging.log4j/log4j-core"]
    assert log4j and {a.version for a in log4j} == {"2.14.1"}


def test_logins_file(session: Session, demo: DemoLogins) -> None:
    path = demo.path
    assert path.name == "demo-logins.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    rows = {
        line.split()[0]: line.split()
        for line in path.read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert rows.pop("USERNAME") == ["USERNAME", "ORGANISATION", "ROLE", "PASSWORD"]
    users = list(session.scalars(select(User)))
    assert len(users) == len(rows) == demo.users
    for user in users:
        username, org, role, password = rows[user.username]
        assert role == user.role
        assert len(password) >= 10
    for username, password, role, org in demo.first:
        assert rows[username] == [username, org, role, password]


def test_roles_per_organisation(session: Session, demo: DemoLogins) -> None:
    pairs = session.execute(
        select(Organization.slug, Organization.kind, User.username, User.role).join(
            User, User.org_id == Organization.id
        )
    ).all()
    staff = {(slug, role) for slug, kind, _, role in pairs if kind != OrgKind.OWNER}
    for slug in ("ccc", "kz-cert", "uz-cert", "kg-cert", "tj-cert", "am-cert", "az-cert"):
        assert {r for s, r in staff if s == slug} == {"admin", "analyst", "reader"}
        assert any(u == f"{slug}-analyst" for s, _, u, _ in pairs if s == slug)
    owners = [(slug, u, role) for slug, kind, u, role in pairs if kind == OrgKind.OWNER]
    assert all(u == f"{slug}-contact" and role == "owner-contact" for slug, u, role in owners)


def test_first_logins_authenticate(session: Session, demo: DemoLogins) -> None:
    roles = [role for _, _, role, _ in demo.first]
    assert roles == ["admin", "analyst", "analyst", "owner-contact"]
    assert demo.first[0].org == "ccc"
    for username, password, role, org in demo.first:
        user = access.authenticate(session, username, password, None)
        assert user.username == username and user.role == role
        assert session.get(Organization, user.org_id).slug == org
    session.commit()


def test_second_load_is_refused(session: Session, demo: DemoLogins) -> None:
    before = demo.path.read_bytes()
    count = session.scalar(select(func.count()).select_from(Organization))
    with pytest.raises(Conflict, match="loaded already"):
        load_demo(session)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Organization)) == count
    assert demo.path.read_bytes() == before


def test_a_real_network_is_not_mixed_with_the_demo(session: Session) -> None:
    """A network set up by hand, whose centre may even bear the demo's slug, is told that
    it has its centre, not that the demo is loaded."""
    from concord.orgs import service as orgs

    orgs.create_org(session, None, orgs.OrgInput("ccc", "centre", "Our centre"))
    with pytest.raises(Conflict, match="the network has its centre already: ccc; the demo"):
        load_demo(session)


def test_whois_finds_owner_of_demo_addresses(session: Session, demo: DemoLogins) -> None:
    index = load_index(session)
    for asset in _assets(session, AssetKind.IPV4_PREFIX) + _assets(session, AssetKind.IPV6_PREFIX):
        net = ipaddress.ip_network(asset.value)
        match = index.lookup(str(net.network_address + 5))
        assert match is not None and match.org_ids == (asset.org_id,), asset.value
    org_id = session.scalar(select(Organization.id).where(Organization.slug == "kz-steppe-bank"))
    found = index.lookup("a.nurlanova@steppe-bank.example")
    assert found is not None and found.org_ids == (org_id,)
    assert index.lookup("203.0.113.250") is None  # the tail of the ranges stays unallocated


def test_demo_reports_fill_every_page(session: Session, demo: DemoLogins) -> None:
    from datetime import UTC, datetime

    from concord.db import session_factory
    from concord.demo import STATES, load_demo_reports
    from concord.events import correlation
    from concord.events import service as events
    from concord.events.model import Event

    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    reports = load_demo_reports(session_factory(), now)
    # each state sends a scan per service (rdp, ssh, smb) and its sensors' findings
    assert reports.submissions == 4 * len(STATES) and reports.cross_state >= 3
    session.rollback()
    services = set(session.execute(select(Event.port, Event.application, Event.protocol)))
    assert {(3389, "rdp", "tcp"), (22, "ssh", "tcp"), (445, "smb", "tcp")} <= services
    assert all(app in (None, "ssh") for port, app, _ in services if port == 22)
    by_state = dict(
        session.execute(select(Event.country, func.count()).group_by(Event.country)).all()
    )
    assert set(by_state) == {s.country for s in STATES}
    times = list(session.scalars(select(Event.time)))
    assert all(now - timedelta(days=15) <= t <= now for t in times)

    def principal(username: str):  # type: ignore[no-untyped-def]
        user = access.get_user(session, None, username)
        return access.principal_for(user, session.get(Organization, user.org_id))

    # the owner's contacts see the scan of their own hosts, shared with them
    contact = principal(demo.first[3].username)
    amber = [e for e in events.search(session, contact, events.EventQuery()) if e.tlp == "amber"]
    assert amber and {e.owner_org_id for e in amber} == {contact.org_id}
    # a state's analysts see the samples that other states' sensors saw too
    analyst = principal(demo.first[2].username)
    assert correlation.cross_state_indicators(session, analyst, 0, 100)
    assert correlation.visible_campaigns(session, principal(demo.first[1].username), 0, 10)
    # the centre opened a case about the widest sample, with the states that saw it
    from concord.cases import service as cases

    assert reports.cases == 1
    opened = cases.open_cases(session, analyst)
    assert len(opened) == 1 and opened[0].status == "new"
    detail = cases.case_detail(session, analyst, opened[0].id)
    assert len(detail.participants) >= 2 and detail.techniques
    assert analyst.org_id in {o.id for o in detail.participants}  # the printed login's state
    assert len(detail.events) == len(detail.participants)  # each state's report of the sample
    # the reports of the last seven days: the network's, and each state's for its national
    # body and as seen by the centre
    from concord.reports import service as report_service

    assert reports.reports == 1 + 2 * len(STATES)
    seen = report_service.list_reports(session, analyst)
    assert seen and all(r.period == "2026-11-29..2026-12-05" for r in seen)
    centre = principal("ccc-analyst")
    stored = report_service.list_reports(session, centre, scope="network")
    assert len(report_service.load(stored[0]).by_state) == len(STATES)
