"""Cross-state correlation, alerts and campaigns, fed through the real intake service.

Reports go through `concord.intake.service.ingest` (events, indicators, sightings and links
written by the intake's own bulk SQL); only the format is a tiny one of this test's, so the
tests do not depend on any feed profile: one event per line, its observables as kind=value.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concord.access import policy
from concord.access import service as access
from concord.access.model import Principal
from concord.db import session_factory, session_scope
from concord.errors import FaultLocation, NotFound
from concord.events import correlation
from concord.events.correlation_model import AlertMark, Campaign, CorrelationAlert
from concord.events.model import Event, Indicator
from concord.intake import registry
from concord.intake import service as intake
from concord.intake.readers import Reader
from concord.intake.records import EventRecord, Observable, ObservableKind, ReadError
from concord.orgs import service as orgs
from concord.orgs.model import Organization
from concord.web.deps import decode_cursor
from tests.conftest import PASSWORD, Network
from tests.intake.test_views import login

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
C2_IP = "45.137.21.9"
C2_DOMAIN = "update-check-kz.net"
Auth = dict[str, dict[str, str]]


class LinesReader(Reader):
    """`kind=value kind=value ...` per line: one event with those observables."""

    name = "test-lines"
    description = "test format"

    def sniff(self, head: bytes, filename: str) -> bool:
        return True

    def read(self, stream: BinaryIO, source: str) -> Iterator[EventRecord | ReadError]:
        for number, raw in enumerate(stream.read().decode().splitlines(), start=1):
            pairs = [p.split("=", 1) for p in raw.split()]
            yield EventRecord(
                time=T0 + timedelta(minutes=number),
                rsit_class="malicious-code",
                rsit_type="c2-server",
                observables=tuple(Observable(ObservableKind(k), v) for k, v in pairs),
                location=FaultLocation(source, number),
                raw=raw,
                feed="test",
            )


@pytest.fixture(autouse=True)
def test_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "choose", lambda head, filename, declared: LinesReader())


_files = iter(range(1_000_000))


def report(
    principal: Principal, *events: str, tlp: str = "green", as_org: str | None = None
) -> intake.Receipt:
    """Ingest one file with these events (each a line of kind=value pairs)."""
    data = "\n".join(events).encode()
    name = f"report-{next(_files)}.txt"
    return intake.ingest(
        session_factory(), principal, intake.Source(io.BytesIO(data), name), tlp=tlp, as_org=as_org
    )


def alert_rows(session: Session) -> list[tuple[str, str]]:
    """The stored alerts as (state, recipient organisation)."""
    session.rollback()
    return sorted(
        session.execute(
            select(CorrelationAlert.country, Organization.slug).join(
                Organization, Organization.id == CorrelationAlert.org_id
            )
        ).all()
    )


def correlate(since: datetime | None = None) -> correlation.CorrelationResult:
    with session_scope() as s:
        return correlation.correlate(s, since)


def indicator(session: Session, value: str) -> Indicator:
    session.rollback()
    found = session.scalar(select(Indicator).where(Indicator.value == value))
    assert found is not None
    return found


def event_id(session: Session, value: str, country: str) -> int:
    session.rollback()
    found = session.scalar(
        select(Event.id).where(Event.primary_value == value, Event.country == country)
    )
    assert found is not None
    return found


@pytest.fixture
def api(client: TestClient, auth: Auth) -> TestClient:
    """The test client with the correlation routes, whether or not the app includes them."""
    from concord.events.correlation_api import router
    from concord.web.app import route_table

    if ("GET", "/api/v1/campaigns") not in route_table(client.app):
        client.app.include_router(router, prefix="/api/v1")
    return client


# --- cross-state indicators ---------------------------------------------------------------------


def test_an_indicator_from_kz_and_uz_becomes_cross_state(
    session: Session, network: Network
) -> None:
    report(network["kz-analyst"], f"ipv4={C2_IP}", f"domain={C2_DOMAIN}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    # Two organisations of one state are still one state.
    report(network["kz-bank-contact"], f"domain={C2_DOMAIN}")

    result = correlate()

    assert (result.checked, result.cross_state, result.warning_listed) == (1, 1, 0)
    assert indicator(session, C2_IP).cross_state is True
    assert indicator(session, C2_DOMAIN).cross_state is False
    # each state's national body, and the centre for each state
    assert alert_rows(session) == [
        ("KZ", "ccc"),
        ("KZ", "kz-cert"),
        ("UZ", "ccc"),
        ("UZ", "uz-cert"),
    ]
    # A second pass finds nothing new and writes nothing twice; a full one judges the flag
    # again (for warning lists a release changed), a quick one does not even look.
    again = correlate()
    assert (again.checked, again.cross_state, again.warning_listed, again.alerts) == (1, 0, 0, 0)
    assert correlate(since=T0).checked == 0


def test_a_third_state_joining_later_is_alerted_too(session: Session, network: Network) -> None:
    from concord.access import service as access
    from concord.orgs import service as orgs
    from concord.orgs.model import Organization

    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    assert correlate().alerts == 4
    with session_scope() as s:
        orgs.create_org(s, None, orgs.OrgInput("kg-cert", "national-body", "KG CERT", country="KG"))
        user = access.create_user(s, None, access.UserInput("kg-analyst", "kg-cert", "analyst"))
        kg = access.principal_for(user, s.get(Organization, user.org_id))
    report(kg, f"ipv4={C2_IP}")
    result = correlate()
    assert (result.cross_state, result.alerts) == (0, 2)
    assert [row for row in alert_rows(session) if row[0] == "KG"] == [
        ("KG", "ccc"),
        ("KG", "kg-cert"),
    ]


def test_an_alert_never_names_a_state_whose_report_the_reader_cannot_see(
    session: Session, network: Network
) -> None:
    from concord.access import service as access
    from concord.orgs import service as orgs
    from concord.orgs.model import Organization

    with session_scope() as s:
        orgs.create_org(s, None, orgs.OrgInput("kg-cert", "national-body", "KG CERT", country="KG"))
        user = access.create_user(s, None, access.UserInput("kg-analyst", "kg-cert", "analyst"))
        kg = access.principal_for(user, s.get(Organization, user.org_id))
    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    report(kg, f"ipv4={C2_IP}", tlp="amber+strict")  # for KG's eyes only, the centre's not
    correlate()
    # none to the centre for KG: KG's report is not the centre's to see
    assert alert_rows(session) == [
        ("KG", "kg-cert"),
        ("KZ", "ccc"),
        ("KZ", "kz-cert"),
        ("UZ", "ccc"),
        ("UZ", "uz-cert"),
    ]
    centre = correlation.list_alerts(session, network["centre-analyst"])
    assert sorted(a.country for a in centre) == ["KZ", "UZ"]
    assert [a.country for a in correlation.list_alerts(session, kg)] == ["KG"]


def test_an_alert_comes_when_its_reader_can_see_two_states(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    kg, _ = national_body(session, "kg-cert", "KG")
    first, second = "45.77.12.35", "45.77.12.36"
    report(network["kz-analyst"], f"ipv4={first}")
    report(network["uz-analyst"], f"ipv4={first}", tlp="amber+strict")  # not for KZ's eyes
    correlate()
    report(network["kz-analyst"], f"ipv4={second}")
    report(kg, f"ipv4={second}")
    correlate()
    h = auth["kz-analyst"]
    feed = api.get("/api/v1/correlation-alerts", headers=h).json()
    assert [a["indicator"]["value"] for a in feed["items"]] == [second]
    cursor = feed["next_cursor"]  # after the last alert, though the page is not full
    assert decode_cursor(cursor) == feed["items"][-1]["id"]
    before = datetime.now(UTC)
    report(kg, f"ipv4={first}")  # now KZ sees the first in two states
    correlate()
    r = api.get("/api/v1/correlation-alerts", params={"cursor": cursor}, headers=h)
    (late,) = r.json()["items"]
    # after the cursor a client holds, and dated when KZ could first see it, not when UZ's
    # hidden report made it cross-state
    assert late["indicator"]["value"] == first and late["states"] == ["KG", "KZ"]
    assert datetime.fromisoformat(late["created_at"]) >= before


def test_a_public_resolver_never_becomes_cross_state(session: Session, network: Network) -> None:
    report(network["kz-analyst"], "ipv4=8.8.8.8", "domain=www.google.com")
    report(network["uz-analyst"], "ipv4=8.8.8.8", "domain=www.google.com")

    result = correlate()

    assert (result.cross_state, result.warning_listed, result.alerts) == (0, 2, 0)
    resolver = indicator(session, "8.8.8.8")
    assert resolver.cross_state is False and resolver.warning_list == "public-dns-v4"
    assert indicator(session, "www.google.com").warning_list == "google"
    # Remembered: a quick pass does not even look at them again, a full one changes nothing.
    assert correlate(since=T0).checked == 0
    assert (correlate().warning_listed, indicator(session, "8.8.8.8").cross_state) == (0, False)
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_value_a_warning_list_comes_to_list_is_no_longer_cross_state(
    session: Session, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concord.events import warninglists

    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    assert correlate().cross_state == 1
    alerted = correlation.list_alerts(session, network["kz-analyst"])
    assert [a.value for a in alerted] == [C2_IP]
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1
    # a release whose warning lists list it: the full pass takes the flag back, and with it
    # the alerts it raised and the campaign it joined
    real = warninglists.match
    monkeypatch.setattr(
        warninglists, "match", lambda kind, value: "cdn" if value == C2_IP else real(kind, value)
    )
    assert correlate(since=T0).warning_listed == 0  # a quick pass leaves flags be
    result = correlate()
    assert (result.warning_listed, result.cross_state) == (1, 0)
    found = indicator(session, C2_IP)
    assert (found.cross_state, found.warning_list) == (False, "cdn")
    assert correlation.list_alerts(session, network["kz-analyst"]) == []
    live = select(func.count()).select_from(Campaign).where(Campaign.size > 0)
    assert session.scalar(live) == 0  # dissolved
    # and a list that drops it again gives the flag back
    monkeypatch.setattr(warninglists, "match", real)
    assert correlate().cross_state == 1
    assert indicator(session, C2_IP).warning_list is None


def test_since_limits_the_pass_to_recent_sightings(session: Session, network: Network) -> None:
    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    assert correlate(since=T0 + timedelta(days=1)).checked == 0
    assert indicator(session, C2_IP).cross_state is False
    assert correlate(since=T0).cross_state == 1


# --- TLP -----------------------------------------------------------------------------------------


def test_amber_sighting_of_kz_is_not_shown_to_uz(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    report(network["kz-analyst"], f"ipv4={C2_IP}", tlp="amber")
    report(network["uz-analyst"], f"ipv4={C2_IP}", tlp="green")
    correlate()
    assert indicator(session, C2_IP).cross_state is True

    def look(user: str) -> dict[str, Any]:
        r = api.get("/api/v1/indicators", params={"value": C2_IP}, headers=auth[user])
        assert r.status_code == 200, r.text
        (item,) = r.json()["items"]
        return item

    uz = look("uz-analyst")
    assert [(s["country"], s["org"]) for s in uz["sightings"]] == [("UZ", "uz-cert")]
    assert uz["states"] == ["UZ"] and uz["cross_state"] is False
    assert "KZ" not in str(uz) and "kz-cert" not in str(uz)

    kz = look("kz-analyst")
    assert kz["states"] == ["KZ", "UZ"] and kz["cross_state"] is True
    assert {s["country"]: s["count"] for s in kz["sightings"]} == {"KZ": 1, "UZ": 1}
    assert look("centre-analyst")["cross_state"] is True

    # The cross-state list, the alerts and the campaign follow the same rule.
    listing = api.get("/api/v1/indicators", headers=auth["uz-analyst"]).json()
    assert listing["items"] == []
    assert [
        i["value"]
        for i in api.get("/api/v1/indicators", headers=auth["kz-analyst"]).json()["items"]
    ] == [C2_IP]
    assert api.get("/api/v1/correlation-alerts", headers=auth["uz-analyst"]).json()["items"] == []
    kz_alerts = api.get("/api/v1/correlation-alerts", headers=auth["kz-analyst"]).json()["items"]
    assert [(a["country"], a["indicator"]["value"], a["states"]) for a in kz_alerts] == [
        ("KZ", C2_IP, ["KZ", "UZ"])
    ]
    centre = api.get("/api/v1/correlation-alerts", headers=auth["centre-analyst"]).json()
    assert sorted(a["country"] for a in centre["items"]) == ["KZ", "UZ"]
    owner = api.get("/api/v1/correlation-alerts", headers=auth["kz-bank-contact"]).json()
    assert owner["items"] == [] and decode_cursor(owner["next_cursor"]) == 0


def test_an_unseen_indicator_is_simply_absent(
    api: TestClient, auth: Auth, network: Network
) -> None:
    report(network["kz-analyst"], f"ipv4={C2_IP}", tlp="amber")
    r = api.get("/api/v1/indicators", params={"value": C2_IP}, headers=auth["uz-analyst"])
    assert r.status_code == 200 and r.json()["items"] == []
    assert api.get("/api/v1/indicators", params={"value": C2_IP}).status_code == 401


def test_warning_list_is_shown(api: TestClient, auth: Auth, network: Network) -> None:
    report(network["kz-analyst"], "ipv4=8.8.8.8")
    report(network["uz-analyst"], "ipv4=8.8.8.8")
    correlate()
    r = api.get(
        "/api/v1/indicators",
        params={"value": "8.8.8.8", "kind": "ipv4"},
        headers=auth["uz-analyst"],
    )
    (item,) = r.json()["items"]
    assert item["warning_list"] == "public-dns-v4" and item["cross_state"] is False
    assert item["states"] == ["KZ", "UZ"]  # both GREEN: seen, but not a correlation


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"value": "  "}, "the value is blank"),
        ({"value": "not-an-ip", "kind": "ipv4"}, "'not-an-ip' is no ipv4 value: invalid IP"),
        ({"value": "abc", "kind": "sha256"}, "'abc' is no sha256 value: invalid SHA256 hash"),
        ({"value": "banana", "kind": "ipv4-net"}, "'banana' is no ipv4-net value: invalid network"),
        ({"value": "10.0.0.0/33", "kind": "ipv4-net"}, "is no ipv4-net value: invalid network"),
        ({"value": "2001:db8::/200", "kind": "ipv6-net"}, "is no ipv6-net value: invalid network"),
        ({"value": "10.1.2.3/16", "kind": "ipv4-net"}, "its address has host bits set"),
        ({"value": "10.1.2.3/32", "kind": "ipv4-net"}, "it is stored as an ipv4 indicator"),
        ({"value": "10.0.0.0/33"}, "the prefix length is at most 32 for IPv4"),
    ],
)
def test_a_value_that_cannot_be_asked_is_told_not_answered_empty(
    api: TestClient, auth: Auth, network: Network, params: dict[str, str], said: str
) -> None:
    r = api.get("/api/v1/indicators", params=params, headers=auth["kz-analyst"])
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "value" and said in r.json()["detail"]
    # a network, which kind=ipv4-net names, is still looked up
    ok = {"value": "198.51.100.0/24", "kind": "ipv4-net"}
    assert api.get("/api/v1/indicators", params=ok, headers=auth["kz-analyst"]).status_code == 200


def test_a_common_value_reads_the_same_whoever_else_reported_it(
    api: TestClient, auth: Auth, network: Network
) -> None:
    # 8.8.8.8 also in a report KZ may not see, 1.1.1.1 in KZ's alone: KZ is told both are
    # common values, so the list's badge does not give the hidden report away.
    report(network["kz-analyst"], "ipv4=8.8.8.8", "ipv4=1.1.1.1")
    report(network["uz-analyst"], "ipv4=8.8.8.8", tlp="amber+strict")
    correlate()
    seen = {}
    for value in ("8.8.8.8", "1.1.1.1"):
        r = api.get("/api/v1/indicators", params={"value": value}, headers=auth["kz-analyst"])
        (item,) = r.json()["items"]
        seen[value] = (item["warning_list"], item["states"], len(item["sightings"]))
    assert seen == {
        "8.8.8.8": ("public-dns-v4", ["KZ"], 1),
        "1.1.1.1": ("public-dns-v4", ["KZ"], 1),
    }


# --- campaigns ----------------------------------------------------------------------------------


def build_two_campaigns(network: Network) -> None:
    kz, uz = network["kz-analyst"], network["uz-analyst"]
    # A chain: KZ {ip1, dom1} - UZ {ip1} ; UZ {dom1, ip2} - KZ {ip2}  -> one campaign of four
    report(kz, f"ipv4={C2_IP} domain={C2_DOMAIN}", "ipv4=91.215.85.3", "ipv4=185.244.25.17")
    report(uz, f"ipv4={C2_IP}", f"domain={C2_DOMAIN} ipv4=5.188.206.14", "ipv4=185.244.25.17")
    report(kz, "ipv4=5.188.206.14")
    # 91.215.85.3 is KZ's alone: its event stays out of any campaign.


def test_campaigns_group_connected_events(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    build_two_campaigns(network)
    result = correlate()
    assert result.campaigns is not None
    assert (result.campaigns.campaigns, result.campaigns.created) == (2, 2)
    assert result.campaigns.events == 6

    chain = [
        event_id(session, C2_IP, "KZ"),
        event_id(session, C2_IP, "UZ"),
        event_id(session, C2_DOMAIN, "UZ"),
        event_id(session, "5.188.206.14", "KZ"),
    ]
    pair = [event_id(session, "185.244.25.17", "KZ"), event_id(session, "185.244.25.17", "UZ")]
    alone = event_id(session, "91.215.85.3", "KZ")
    membership = correlation.campaign_of_events(session, [*chain, *pair, alone])
    assert {membership[e] for e in chain} == {min(chain)}  # the id is the earliest event's
    assert {membership[e] for e in pair} == {min(pair)}
    assert alone not in membership

    stored = session.get(Campaign, min(chain))
    assert (stored.size, stored.indicator_count, stored.states) == (4, 3, "KZ,UZ")
    assert stored.first_seen is not None and stored.last_seen >= stored.first_seen

    listing = api.get("/api/v1/campaigns", headers=auth["uz-analyst"]).json()
    # listed by id: which campaign's earliest event came first depends on the write order
    assert [(c["id"], c["size"], c["states"]) for c in listing["items"]] == sorted(
        [(min(chain), 4, ["KZ", "UZ"]), (min(pair), 2, ["KZ", "UZ"])]
    )
    r = api.get(f"/api/v1/campaigns/{min(chain)}", headers=auth["uz-analyst"])
    assert r.status_code == 200, r.text
    detail = r.json()
    assert sorted(e["id"] for e in detail["events"]) == sorted(chain)
    nodes = {n["id"]: n for n in detail["graph"]["nodes"]}
    assert {n["kind"] for n in nodes.values()} == {"event", "indicator"}
    assert sorted(n["label"] for n in nodes.values() if n["kind"] == "indicator") == sorted(
        [C2_IP, C2_DOMAIN, "5.188.206.14"]
    )
    assert len(detail["graph"]["edges"]) == 6
    for edge in detail["graph"]["edges"]:
        assert edge["source"] in nodes and edge["target"] in nodes
    assert detail["truncated"] is False
    assert api.get("/api/v1/campaigns/999999", headers=auth["uz-analyst"]).status_code == 404


def test_campaigns_merge_and_keep_the_older_id(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    build_two_campaigns(network)
    correlate()
    # Each campaign is named by its earliest event; the older of the two survives.
    chain = min(
        event_id(session, value, state)
        for value, state in (
            (C2_IP, "KZ"),
            (C2_IP, "UZ"),
            (C2_DOMAIN, "UZ"),
            ("5.188.206.14", "KZ"),
        )
    )
    pair = min(event_id(session, "185.244.25.17", state) for state in ("KZ", "UZ"))
    older_id, younger_id = sorted((chain, pair))
    # One event holding indicators of both campaigns joins them.
    report(network["uz-analyst"], f"ipv4=185.244.25.17 domain={C2_DOMAIN}")
    result = correlate()
    assert result.campaigns is not None
    assert (result.campaigns.campaigns, result.campaigns.merged) == (1, 1)
    session.rollback()
    assert session.get(Campaign, younger_id).merged_into == older_id
    assert correlation.resolve_campaign(session, younger_id) == older_id
    assert set(correlation.campaign_of_events(session, [younger_id]).values()) == {older_id}
    r = api.get(f"/api/v1/campaigns/{younger_id}", headers=auth["kz-analyst"])
    assert r.status_code == 200 and r.json()["id"] == older_id and r.json()["size"] == 7
    # Nothing changes on a pass with nothing new.
    session.rollback()
    before = {c.id: c.updated_at for c in session.scalars(select(Campaign))}
    again = correlate()
    assert again.campaigns is not None
    assert (again.campaigns.created, again.campaigns.merged) == (0, 0)
    session.rollback()
    assert {c.id: c.updated_at for c in session.scalars(select(Campaign))} == before


def test_campaign_of_another_states_amber_events_is_hidden(
    api: TestClient, auth: Auth, network: Network
) -> None:
    report(network["kz-analyst"], f"ipv4={C2_IP}", tlp="amber")
    report(network["uz-analyst"], f"ipv4={C2_IP}", tlp="amber")
    correlate()
    with session_scope() as s:
        (campaign_id,) = s.scalars(select(Campaign.id)).all()
    for user in ("uz-analyst", "kz-analyst", "kz-bank-contact"):
        # Each sees only its own report: nothing shows that another state reported it.
        assert api.get("/api/v1/campaigns", headers=auth[user]).json()["items"] == []
        r = api.get(f"/api/v1/campaigns/{campaign_id}", headers=auth[user])
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
    r = api.get(f"/api/v1/campaigns/{campaign_id}", headers=auth["centre-analyst"])
    assert r.status_code == 200 and r.json()["states"] == ["KZ", "UZ"]


def test_visible_campaign_raises_not_found_for_unknown_ids(
    session: Session, network: Network
) -> None:
    with pytest.raises(NotFound):
        correlation.visible_campaign(session, network["centre-analyst"], 12345)


# --- jobs ----------------------------------------------------------------------------------------


@pytest.fixture
def queue() -> Iterator[None]:
    from concord.jobs.queue import reset_huey

    reset_huey()
    yield
    reset_huey()


def test_periodic_job_runs_correlation(queue: None, session: Session, network: Network) -> None:
    from concord.jobs.model import JobRun
    from concord.jobs.queue import get_huey, registered_jobs
    from concord.jobs.worker import ClaimingScheduler, run_ready

    assert registered_jobs()["correlate"].cron == {"minute": "2-59/5"}
    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    h = get_huey()
    scheduler = ClaimingScheduler(h, threading.Event(), 1, True)

    def queued() -> list[str]:
        return [t.name for t in h.pending()]

    scheduler.enqueue_periodic_tasks(datetime(2030, 1, 1, 5, 0))  # housekeeping, not ours
    assert "correlate" not in queued()
    scheduler.enqueue_periodic_tasks(datetime(2030, 1, 1, 5, 7))
    assert queued().count("correlate") == 1
    run_ready(h)

    assert indicator(session, C2_IP).cross_state is True
    (run,) = session.scalars(select(JobRun).where(JobRun.task == "correlate")).all()
    assert "cross-state +1" in run.outcome and "campaigns 1" in run.outcome


def test_on_demand_job(queue: None, session: Session, network: Network) -> None:
    from concord.jobs.model import JobRun
    from concord.jobs.queue import enqueue
    from concord.jobs.worker import run_ready

    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    enqueue("correlate_now", since=(T0 - timedelta(hours=1)).isoformat())
    assert run_ready() == 1
    assert indicator(session, C2_IP).cross_state is True
    (run,) = session.scalars(select(JobRun).where(JobRun.task == "correlate_now")).all()
    assert run.outcome.startswith("checked 1")


def test_an_intake_asks_for_a_pass_within_a_minute(
    queue: None, session: Session, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concord.events import tasks
    from concord.jobs.queue import get_huey
    from concord.jobs.worker import run_ready

    monkeypatch.setattr(tasks, "_soon_until", 0.0)  # no pass asked for by an earlier test
    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    h = get_huey()
    (task,) = h.pending()  # two submissions, one pass
    now = datetime.now(UTC).replace(tzinfo=None)
    assert task.name == "correlate_now" and 0 < (task.eta - now).total_seconds() <= 30
    assert run_ready(h) == 0  # not due yet: it waits for its time
    assert indicator(session, C2_IP).cross_state is False
    later = task.eta + timedelta(seconds=1)
    (due,) = h.read_schedule(later)
    h.execute(due, later)
    session.rollback()
    assert indicator(session, C2_IP).cross_state is True  # the states are alerted now


def test_an_indicator_in_very_many_events_does_not_join_campaigns(
    api: TestClient,
    auth: Auth,
    session: Session,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(correlation, "HUB_EVENTS", 3)
    kz, uz = network["kz-analyst"], network["uz-analyst"]
    # 45.137.21.9 is everywhere (four events); the two domains are two separate campaigns.
    report(kz, f"ipv4={C2_IP} domain=one-kz.net", f"ipv4={C2_IP} domain=two-kz.net")
    report(uz, f"ipv4={C2_IP} domain=one-kz.net", f"ipv4={C2_IP} domain=two-kz.net")
    result = correlate()
    assert result.cross_state == 3
    assert result.campaigns is not None and result.campaigns.campaigns == 2
    assert indicator(session, C2_IP).cross_state is True  # still cross-state and alerted
    # nor does it name, count or draw them as a reader sees them
    listed = api.get("/api/v1/campaigns", headers=auth["kz-analyst"]).json()["items"]
    assert sorted((c["label"], c["indicators"]) for c in listed) == [
        ("one-kz.net", 1),
        ("two-kz.net", 1),
    ]
    for campaign in listed:
        graph = api.get(f"/api/v1/campaigns/{campaign['id']}", headers=auth["kz-analyst"]).json()
        drawn = [n["label"] for n in graph["graph"]["nodes"] if n["kind"] == "indicator"]
        assert drawn == [campaign["label"]], graph


def test_a_campaign_whose_events_are_gone_is_dissolved(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    build_two_campaigns(network)
    correlate()
    pair = [event_id(session, "185.244.25.17", "KZ"), event_id(session, "185.244.25.17", "UZ")]
    with session_scope() as s:
        s.delete(s.get(Event, pair[1]))  # e.g. dropped with an old partition
    result = correlate()
    assert result.campaigns is not None and result.campaigns.campaigns == 1
    session.rollback()
    assert session.get(Campaign, min(pair)).size == 0
    assert correlation.campaign_of_events(session, pair) == {}
    ids = [
        c["id"] for c in api.get("/api/v1/campaigns", headers=auth["centre-admin"]).json()["items"]
    ]
    assert min(pair) not in ids
    r = api.get(f"/api/v1/campaigns/{min(pair)}", headers=auth["centre-admin"])
    assert r.status_code == 404


def test_a_campaign_shows_no_link_through_an_event_the_caller_cannot_see(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    kz, uz = network["kz-analyst"], network["uz-analyst"]
    x, y = "91.215.85.3", "5.188.206.14"
    report(kz, f"ipv4={x}")  # green: UZ sees it
    report(uz, f"ipv4={x}")
    report(uz, f"ipv4={y}")
    report(kz, f"ipv4={y}")
    report(kz, f"ipv4={x} ipv4={y}", tlp="amber")  # only KZ and the centre see this one
    correlate()
    with session_scope() as s:
        (campaign_id,) = s.scalars(select(Campaign.id)).all()
    full = api.get(f"/api/v1/campaigns/{campaign_id}", headers=auth["centre-analyst"]).json()
    assert full["size"] == 5
    listing = api.get("/api/v1/campaigns", headers=auth["uz-analyst"]).json()["items"]
    # y's pair is not shown joined to x's, nor left out: only the hidden event joins them, so
    # UZ sees two campaigns, each under the id of its smallest event
    y_first = event_id(session, y, "UZ")
    assert [(c["id"], c["size"], c["states"], c["label"]) for c in listing] == [
        (campaign_id, 2, ["KZ", "UZ"], x),
        (y_first, 2, ["KZ", "UZ"], y),
    ]
    seen = api.get(f"/api/v1/campaigns/{campaign_id}", headers=auth["uz-analyst"]).json()
    labels = [n["label"] for n in seen["graph"]["nodes"] if n["kind"] == "indicator"]
    assert labels == [x]
    assert len(seen["events"]) == 2 and seen["truncated"] is False
    # found by any of its events, as the centre's whole campaign is
    other = api.get(f"/api/v1/campaigns/{event_id(session, y, 'KZ')}", headers=auth["uz-analyst"])
    assert other.json()["id"] == y_first
    hidden = session.scalar(select(Event.id).where(Event.tlp == "amber"))
    r = api.get(f"/api/v1/campaigns/{hidden}", headers=auth["uz-analyst"])
    assert r.status_code == 404
    assert api.get(f"/api/v1/campaigns/{hidden}", headers=auth["kz-analyst"]).json()["size"] == 5


# --- what one caller is told of a campaign ------------------------------------------------------

A1 = "a1" * 32  # KZ (GREEN) and AM (AMBER): cross-state, but not for KG
B2 = "b2" * 32  # KZ and UZ, both GREEN: cross-state for everyone


def national_body(session: Session, slug: str, country: str) -> tuple[Principal, dict[str, str]]:
    """A further member state's national body, with an analyst and the analyst's token."""
    orgs.create_org(
        session, None, orgs.OrgInput(slug, "national-body", f"{country} CERT", "", country)
    )
    username = f"{slug}-analyst"
    user = access.create_user(session, None, access.UserInput(username, slug, "analyst", PASSWORD))
    principal = access.principal_for(user, session.get(Organization, user.org_id))
    secret, _ = access.create_token(
        session, None, username, "test", policy.scopes_for_role(principal.role)
    )
    session.commit()
    return principal, {"Authorization": f"Bearer {secret}"}


def test_an_indicator_whose_other_state_is_hidden_is_not_in_the_campaign(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    kg, kg_auth = national_body(session, "kg-cert", "KG")
    am, _ = national_body(session, "am-cert", "AM")
    report(network["kz-analyst"], f"sha256={A1} sha256={B2}")
    report(network["uz-analyst"], f"sha256={B2}")
    report(am, f"sha256={A1}", tlp="amber")
    correlate()
    with session_scope() as s:
        (campaign_id,) = s.scalars(select(Campaign.id)).all()

    # What KG is told of the indicators: only B2 is cross-state.
    assert [v.value for v in correlation.cross_state_indicators(session, kg)] == [B2]
    (a1,) = api.get("/api/v1/indicators", params={"value": A1}, headers=kg_auth).json()["items"]
    assert (a1["cross_state"], a1["states"]) == (False, ["KZ"])

    # The campaign agrees: one indicator, drawn between the KZ and the UZ event.
    (listed,) = api.get("/api/v1/campaigns", headers=kg_auth).json()["items"]
    assert (listed["id"], listed["indicators"], listed["size"]) == (campaign_id, 1, 2)
    assert listed["label"] == B2 and listed["states"] == ["KZ", "UZ"]
    detail = api.get(f"/api/v1/campaigns/{campaign_id}", headers=kg_auth).json()
    assert detail["indicators"] == 1
    labels = [n["label"] for n in detail["graph"]["nodes"] if n["kind"] == "indicator"]
    assert labels == [B2]
    assert len(detail["graph"]["edges"]) == 2

    # The same on the campaign pages.
    login(api, "kg-cert-analyst")
    listing = api.get("/campaigns").text
    assert f"<code>{B2}</code></a></td><td>2</td><td>1</td>" in listing
    page = api.get(f"/campaigns/{campaign_id}").text
    assert "Indicators: 1 " in page
    assert f'href="/indicators?value={B2}"' in page
    assert f'href="/indicators?value={A1}"' not in page

    # The centre sees AM's report: both indicators are cross-state for it.
    centre = api.get(f"/api/v1/campaigns/{campaign_id}", headers=auth["centre-analyst"]).json()
    assert centre["indicators"] == 2 and centre["states"] == ["AM", "KZ", "UZ"]
    labels = {n["label"] for n in centre["graph"]["nodes"] if n["kind"] == "indicator"}
    assert labels == {A1, B2}


def test_the_events_of_one_misp_event_make_one_campaign(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    from concord.intake.readers import misp
    from tests.conftest import FIXTURES, sign_in

    # The same MISP event (tagged tlp:white) sent by two states: its attributes and objects
    # are events of their own, each pair joined by its indicator; the MISP event joins them.
    data = (FIXTURES / "misp" / "existing_event.json").read_bytes()
    for analyst in ("kz-analyst", "uz-analyst"):
        source = intake.Source(io.BytesIO(data), "event.json")
        receipt = intake.ingest(session_factory(), network[analyst], source, reader=misp.READER)
        assert receipt.accepted > 10, receipt
    result = correlate()
    assert result.campaigns is not None
    assert result.campaigns.campaigns == 1
    per_state = receipt.accepted
    assert result.campaigns.events == 2 * per_state

    [listed] = api.get("/api/v1/campaigns", headers=auth["uz-analyst"]).json()["items"]
    assert listed["size"] == 2 * per_state
    detail = api.get(f"/api/v1/campaigns/{listed['id']}", headers=auth["uz-analyst"]).json()
    reports = [n for n in detail["graph"]["nodes"] if n["kind"] == "report"]
    assert len(reports) == 2  # one per state
    assert all(n["label"].startswith("MISP event ") for n in reports)
    # every event hangs on its state's MISP event: the drawing is one piece
    to_report = {e["source"] for e in detail["graph"]["edges"] if e["target"].startswith("report:")}
    assert to_report == {f"event:{e['id']}" for e in detail["events"]}
    # an indicator count counts indicators only
    assert listed["indicators"] == len(
        [n for n in detail["graph"]["nodes"] if n["kind"] == "indicator"]
    )

    sign_in(api, "uz-analyst")
    page = api.get(f"/campaigns/{listed['id']}")
    assert page.status_code == 200
    assert page.text.count('class="node report"') == 2
    assert "Triangles are the reports" in page.text


def test_a_page_of_campaigns_is_full_while_more_follow(session: Session, network: Network) -> None:
    kz, uz = network["kz-analyst"], network["uz-analyst"]
    # Joined through UZ's AMBER report, which the KZ owner cannot see: to it, the first
    # campaign shows a KZ and a UZ event that nothing visible links.
    report(kz, "ipv4=45.137.21.61")
    report(uz, "ipv4=45.137.21.61 ipv4=45.137.21.62", tlp="amber")
    report(uz, "ipv4=45.137.21.62")
    report(kz, "ipv4=45.137.21.63")
    report(uz, "ipv4=45.137.21.63")
    result = correlate()
    assert result.campaigns is not None and result.campaigns.campaigns == 2
    owner = network["kz-bank-contact"]
    items, last = correlation.campaign_page(session, owner, 0, 1)
    assert [c.label for c in items] == ["45.137.21.63"] and last == items[0].id
    assert correlation.campaign_page(session, owner, last, 1) == ([], None)
    every, _ = correlation.campaign_page(session, network["centre-analyst"], 0, 10)
    assert len(every) == 2


def test_a_large_campaign_draws_every_state_in_turn() -> None:
    t = datetime(2026, 11, 1, tzinfo=UTC)
    events = {i: ("KZ", t + timedelta(minutes=i), t) for i in range(1, 9)}
    events |= {100 + i: ("TJ", t + timedelta(hours=1, minutes=i), t) for i in range(3)}
    events[200] = ("KG", t + timedelta(days=1), t)  # the state that joined last
    shown = correlation._fair_share(events, 6)
    assert shown == [200, 1, 100, 2, 101, 3]
    assert sorted(correlation._fair_share(events, 100)) == sorted(events)  # room for all


def test_the_records_of_one_stix_report_make_one_campaign(
    session: Session, network: Network
) -> None:
    from concord.intake.readers import stix
    from tests.conftest import FIXTURES

    # MISP's STIX export: a grouping names an observed domain and an indicator. Here the
    # indicator names another domain and is not based on the observation, so only the
    # grouping joins the two.
    doc = json.loads((FIXTURES / "stix" / "misp-stix_test_event1_stix21.json").read_text())
    doc["objects"] = [o for o in doc["objects"] if o["type"] != "relationship"]
    data = json.dumps(doc).replace(
        "[domain-name:value = 'circl.lu']", "[domain-name:value = 'c2.example-kz.net']"
    )
    for analyst in ("kz-analyst", "uz-analyst"):
        source = intake.Source(io.BytesIO(data.encode()), "bundle.json")
        receipt = intake.ingest(session_factory(), network[analyst], source, reader=stix.READER)
        assert receipt.accepted == 3, receipt
    result = correlate()
    assert result.campaigns is not None
    # circl.lu's events and c2.example-kz.net's, one campaign through each state's grouping
    assert (result.campaigns.campaigns, result.campaigns.events) == (1, 4)


def test_an_indicator_page_leads_to_its_campaign(
    api: TestClient, session: Session, network: Network
) -> None:
    from tests.conftest import sign_in

    build_two_campaigns(network)
    correlate()
    chain = min(event_id(session, C2_IP, "KZ"), event_id(session, C2_IP, "UZ"))
    found = correlation.campaigns_of_indicators(
        session, network["uz-analyst"], [indicator(session, C2_IP).id]
    )
    assert [c.id for views in found.values() for c in views] == [chain]
    # 91.215.85.3 is KZ's alone: in no campaign
    alone = indicator(session, "91.215.85.3").id
    assert correlation.campaigns_of_indicators(session, network["uz-analyst"], [alone]) == {}
    sign_in(api, "uz-analyst")
    page = api.get("/indicators", params={"value": C2_IP}).text
    assert f'<a href="/campaigns/{chain}">' in page


def test_event_and_indicator_pages_name_the_cases_linking_them(
    api: TestClient, session: Session, network: Network
) -> None:
    from concord.cases import service as cases
    from tests.conftest import sign_in

    build_two_campaigns(network)
    kz_event = event_id(session, C2_IP, "KZ")
    case = cases.create_case(
        session,
        network["kz-analyst"],
        cases.CaseInput(
            title="C2 shared by two states",
            tlp="green",
            event_ids=[kz_event],
            indicators=[C2_DOMAIN],
        ),
    )
    session.commit()
    sign_in(api, "uz-analyst")
    link = f'<a href="/cases/{case.id}">#{case.id} C2 shared by two states</a>'
    assert link in api.get(f"/events/{kz_event}").text
    assert link in api.get("/indicators", params={"value": C2_DOMAIN}).text
    assert link not in api.get("/indicators", params={"value": C2_IP}).text  # not linked


def test_a_value_is_found_in_any_form_it_is_written(
    api: TestClient, auth: Auth, network: Network
) -> None:
    report(network["kz-analyst"], "ipv6=2a01:4f8::1234", "url=http://evil-example.net/Login.PHP")
    h = auth["kz-analyst"]
    for typed, stored in (
        ("2a01:4f8:0:0::1234", "2a01:4f8::1234"),
        ("2a01:04f8:0000:0000:0000:0000:0000:1234", "2a01:4f8::1234"),
        ("http://Evil-Example.NET/Login.PHP", "http://evil-example.net/Login.PHP"),
    ):
        r = api.get("/api/v1/indicators", params={"value": typed}, headers=h)
        assert [i["value"] for i in r.json()["items"]] == [stored], typed
        events = api.get("/api/v1/events", params={"value": typed}, headers=h).json()
        assert len(events["items"]) == 1, typed


def test_a_campaign_is_shown_under_an_event_the_caller_sees(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    kg, _ = national_body(session, "kg-cert", "KG")
    value = "45.77.30.1"
    report(network["uz-analyst"], f"ipv4={value}", tlp="amber+strict")  # the earliest, hidden
    report(network["kz-analyst"], f"ipv4={value}")
    report(kg, f"ipv4={value}")
    correlate()
    hidden = event_id(session, value, "UZ")
    (listed,) = api.get("/api/v1/campaigns", headers=auth["kz-analyst"]).json()["items"]
    assert listed["id"] == event_id(session, value, "KZ") != hidden
    assert listed["label"] == value and listed["states"] == ["KG", "KZ"]
    assert api.get(f"/api/v1/campaigns/{hidden}", headers=auth["kz-analyst"]).status_code == 404
    page = api.get(f"/api/v1/campaigns/{listed['id']}", headers=auth["kz-analyst"]).json()
    assert page["size"] == 2


def test_campaigns_are_listed_and_paged_by_the_ids_they_are_shown_under(
    api: TestClient, auth: Auth, session: Session, network: Network
) -> None:
    kg, _ = national_body(session, "kg-cert", "KG")
    early, late = "45.77.40.1", "45.77.40.2"
    report(network["uz-analyst"], f"ipv4={early}", tlp="amber+strict")  # the first event
    report(network["kz-analyst"], f"ipv4={late}")
    report(kg, f"ipv4={late}")
    report(network["kz-analyst"], f"ipv4={early}")
    report(kg, f"ipv4={early}")
    correlate()
    h = auth["kz-analyst"]
    # the stored campaign of `early` is numbered by UZ's hidden event, before `late`'s
    listing = api.get("/api/v1/campaigns", headers=h).json()
    assert [c["label"] for c in listing["items"]] == [late, early]
    ids = [c["id"] for c in listing["items"]]
    assert ids == sorted(ids) and event_id(session, early, "UZ") not in ids
    # one by one, the cursor never names the hidden event
    first = api.get("/api/v1/campaigns", params={"limit": 1}, headers=h).json()
    assert [c["label"] for c in first["items"]] == [late]
    second = api.get(
        "/api/v1/campaigns", params={"limit": 1, "cursor": first["next_cursor"]}, headers=h
    ).json()
    assert [c["label"] for c in second["items"]] == [early]
    last = api.get(
        "/api/v1/campaigns", params={"limit": 1, "cursor": second["next_cursor"]}, headers=h
    ).json()
    assert last == {"items": [], "next_cursor": None}
    assert decode_cursor(first["next_cursor"]) == ids[0]


def test_a_pass_looks_again_at_what_new_events_and_shares_touch(
    session: Session, network: Network
) -> None:
    from concord.events import service as events

    report(network["kz-analyst"], f"ipv4={C2_IP}", tlp="amber")  # not for UZ's eyes
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    correlate()
    assert alert_rows(session) == [("KZ", "ccc"), ("KZ", "kz-cert"), ("UZ", "ccc")]
    # once past the pass of overlap, a pass with nothing new looks at no indicator at all
    correlate()
    with session_scope() as s:
        looked = correlation._alerts_to_look_at(s, [])
        assert looked is not None and s.execute(looked).all() == []
    # KZ shares its report with UZ: UZ now sees two states, and is alerted
    with session_scope() as s:
        kz_event = event_id(s, C2_IP, "KZ")
        assert events.share_event(s, network["kz-analyst"], kz_event, "uz-cert")
    assert correlate().alerts == 1
    assert ("UZ", "uz-cert") in alert_rows(session)
    # and every day a pass looks at everything
    with session_scope() as s:
        s.get(AlertMark, 1).complete_at = T0
    with session_scope() as s:
        assert correlation._alerts_to_look_at(s, []) is None


def test_an_empty_page_of_the_alerts_feed_hands_back_a_cursor_to_poll_with(
    api: TestClient, auth: Auth, network: Network
) -> None:
    h = auth["kz-analyst"]
    # nothing yet: a cursor before the first alert, which finds it once it comes
    empty = api.get("/api/v1/correlation-alerts", headers=h).json()
    assert empty["items"] == [] and decode_cursor(empty["next_cursor"]) == 0
    report(network["kz-analyst"], f"ipv4={C2_IP}")
    report(network["uz-analyst"], f"ipv4={C2_IP}")
    correlate()
    first = api.get(
        "/api/v1/correlation-alerts", params={"cursor": empty["next_cursor"]}, headers=h
    ).json()
    assert [a["indicator"]["value"] for a in first["items"]] == [C2_IP]
    # past the last alert: the same cursor again, not null (a poller would start over)
    after = api.get(
        "/api/v1/correlation-alerts", params={"cursor": first["next_cursor"]}, headers=h
    ).json()
    assert after == {"items": [], "next_cursor": first["next_cursor"]}


def test_an_indicator_looked_up_by_value_refuses_paging_parameters(
    api: TestClient, auth: Auth
) -> None:
    h = auth["kz-analyst"]
    for params, name in (
        ({"value": C2_IP, "cursor": "!!!"}, "cursor"),
        ({"value": C2_IP, "limit": 5}, "limit"),
    ):
        r = api.get("/api/v1/indicators", params=params, headers=h)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["pointer"] == f"/query/{name}", r.text
    r = api.get("/api/v1/indicators", params={"value": C2_IP, "limit": 0}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/limit"
    assert api.get("/api/v1/indicators", params={"value": C2_IP}, headers=h).status_code == 200
    assert api.get("/api/v1/indicators", params={"limit": 5}, headers=h).status_code == 200


@pytest.mark.parametrize("catch_up", [1, 1000])  # figures made a candidate at a time, or many
def test_campaigns_read_a_page_at_a_time_are_every_campaign_once(
    session: Session, network: Network, monkeypatch: pytest.MonkeyPatch, catch_up: int
) -> None:
    monkeypatch.setattr(correlation, "CATCH_UP", catch_up)
    build_two_campaigns(network)
    report(network["kz-analyst"], "domain=third-kz.net")
    report(network["uz-analyst"], "domain=third-kz.net")
    correlate()
    for username in ("centre-analyst", "kz-analyst"):
        reader = network[username]
        every, last = correlation.campaign_page(session, reader, 0, 50)
        assert last is None and len(every) >= 2, username
        paged, after = [], 0
        while True:
            items, after = correlation.campaign_page(session, reader, after, 1)
            paged.extend(c.id for c in items)
            if after is None:
                break
        assert paged == [c.id for c in every], username
