"""What a report must not give away: small counts through its indicators and campaigns, a
victim's own address, the sector of an owner its audience may not see, and whether a state
holds content its requester may not see."""

from __future__ import annotations

import io
import itertools

import pytest

from concord.access.model import Share
from concord.db import session_factory, session_scope
from concord.errors import FaultLocation
from concord.events import correlation
from concord.intake import service as intake
from concord.orgs import readers, whois
from concord.orgs import service as orgs
from concord.reports import render, service
from concord.reports.model import Report, StoredReport
from tests.conftest import shared_file, sign_in
from tests.reports import _campaign, add_events, at, link, seed

API = "/api/v1/reports"
DATAPLANE = "feeds/dataplane_sshpwauth.txt"
# the host of the dataplane sample that scanned on 2016-12-01
SCANNER = "170.239.104.183"


def _tj(session) -> None:  # type: ignore[no-untyped-def]
    orgs.create_org(
        session,
        None,
        orgs.OrgInput("tj-cert", "national-body", "TJ national CERT", "CERT Таджикистана", "TJ"),
    )


def _give_prefix(session, owner: str, prefix: str) -> None:  # type: ignore[no-untyped-def]
    orgs.import_assets(
        session, None, owner, [readers.normalise("", prefix, "", "", FaultLocation())]
    )
    session.commit()
    whois.forget_indexes()  # a database emptied between tests can repeat a revision


def _dataplane_from_two_states(session, network) -> None:  # type: ignore[no-untyped-def]
    """The real dataplane sample, reported by KZ and by UZ, correlated."""
    data = shared_file(DATAPLANE).read_bytes()
    for user in ("kz-analyst", "uz-analyst"):
        receipt = intake.ingest(
            session_factory(),
            network[user],
            intake.Source(io.BytesIO(data), "dataplane_sshpwauth.txt"),
            tlp="green",
        )
        assert receipt.accepted > 0, receipt
    with session_scope() as s:
        correlation.correlate(s)


# --- 1. indicators and campaigns follow the suppression rule ---------------------------------


def test_a_small_period_lists_no_indicator_or_campaign(session, network) -> None:  # type: ignore[no-untyped-def]
    """The review's day: one event in each of two states sharing an indicator. The total
    reads "<3"; an indicator of "states 2, events 2" would say it is 2, one per state."""
    _dataplane_from_two_states(session, network)
    day = service.build_report(session, None, "2016-12-01", "network")
    assert day.totals.events == "<3" and day.by_state == []
    assert (day.indicators, day.indicators_withheld) == ([], True)
    assert day.campaigns.withheld and (day.campaigns.items, day.campaigns.total) == ([], 0)
    # The month: KZ 2 and UZ 2 of 4, the by-state column withheld whole; two campaigns of
    # "events 2, states KZ UZ" would pin both.
    month = service.build_report(session, None, "2016-12", "network")
    assert (month.totals.events, month.by_state) == (4, [])
    assert month.indicators == [] and month.campaigns.items == []
    html = render.to_html(month)
    assert html.count('data-section="withheld"') == 3  # states, indicators, campaigns
    text = render.to_csv(month)
    assert "indicators,,withheld,true" in text and "campaigns,,withheld,true" in text
    # an empty breakdown withheld whole says so in every format, not as "no data"
    assert "by_state" in month.withheld_breakdowns
    assert "by_state,,withheld,true" in text
    assert "by_state" in month.to_dict()["withheld_breakdowns"]
    assert "counts are too few to publish without giving each other away" in html
    assert Report.from_dict(month.to_dict()) == month
    # Without suppression they are listed, with their exact counts.
    full = service.build_report(session, None, "2016-12", "network", min_count_override=1)
    assert [(i.value, i.events, i.countries) for i in full.indicators] == [
        ("117.21.224.121", 2, ["KZ", "UZ"]),
        (SCANNER, 2, ["KZ", "UZ"]),
    ]
    assert [(c.events, c.states) for c in full.campaigns.items] == [(2, ["KZ", "UZ"])] * 2


def _two_small_states_and_a_large_one(session) -> tuple[list[int], list[int], list[int]]:  # type: ignore[no-untyped-def]
    _tj(session)
    kz = add_events(
        session, 2, when=at("2024-09-02T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    uz = add_events(
        session, 2, when=at("2024-09-03T10:00"), country="UZ", origin="uz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    tj = add_events(
        session, 20, when=at("2024-09-04T10:00"), country="TJ", origin="tj-cert", tlp="green",
        rsit_class="intrusion-attempts", rsit_type="brute-force",
    )  # fmt: skip
    return kz, uz, tj


def test_an_event_count_does_not_pin_the_states_it_names(session, network) -> None:  # type: ignore[no-untyped-def]
    """KZ 2 and UZ 2 read "<3" each; an indicator or a campaign of 4 events in KZ and UZ
    would pin both to 2. It reads "≥3", which leaves both 1 or 2."""
    kz, uz, tj = _two_small_states_and_a_large_one(session)
    link(session, "domain", "c2.example", [*kz, *uz], cross_state=True)
    link(session, "ipv4", "203.0.113.9", [*kz, *tj[:5]], cross_state=True)
    _campaign(session, [*kz, *uz])
    session.commit()
    r = service.build_report(session, None, "2024-09", "network")
    states = {row.key: row.events for row in r.by_state}
    assert (states["KZ"], states["UZ"]) == ("<3", "<3")
    assert [(i.value, i.events) for i in r.indicators] == [
        ("203.0.113.9", "≥3"),  # 7 events, but KZ's count is withheld
        ("c2.example", "≥3"),
    ]
    (c,) = r.campaigns.items
    assert (c.events, c.states) == ("≥3", ["KZ", "UZ"])
    # What "≥3" tells, with the published column, leaves every small count two values.
    possible = {
        (a, b)
        for a, b in itertools.product(range(1, 3), repeat=2)
        if a + b >= 3  # the campaign's events lie in KZ and UZ
    }
    assert {a for a, _ in possible} == {1, 2} and {b for _, b in possible} == {1, 2}
    # With every state it names published exactly, the count is exact.
    assert service._cross_state_cell(7, ["TJ"], {"TJ": 20}, 3) == 7
    assert service._cross_state_cell(2, ["TJ"], {"TJ": 20}, 3) == "<3"


def test_indicators_are_ordered_and_cut_by_published_counts(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two indicators of 3 and 4 events read "<5" each: their order, and which one makes
    a list of one, follow their values, not the counts withheld."""
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "5")
    kz = add_events(
        session, 10, when=at("2024-09-02T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    uz = add_events(
        session, 10, when=at("2024-09-03T10:00"), country="UZ", origin="uz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    link(session, "domain", "b.example", [*kz[:2], *uz[:2]], cross_state=True)  # 4
    link(session, "domain", "a.example", [*kz[2:4], uz[2]], cross_state=True)  # 3
    link(session, "domain", "z.example", [*kz[4:9], *uz[4:9]], cross_state=True)  # 10
    session.commit()
    r = service.build_report(session, None, "2024-09", "network")
    assert [(i.value, i.events) for i in r.indicators] == [
        ("z.example", 10),
        ("a.example", "<5"),
        ("b.example", "<5"),
    ]
    monkeypatch.setattr(service, "TOP_INDICATORS", 2)
    monkeypatch.setattr(service, "INDICATOR_PAGE", 1)  # reading stops when no row can enter
    r = service.build_report(session, None, "2024-09", "network")
    assert [i.value for i in r.indicators] == ["z.example", "a.example"]


# --- 2. a victim's own address is neither listed nor a campaign's name ------------------------


def test_an_owners_address_is_not_listed_nor_a_campaign_name(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The review's case on the real dataplane sample: the scanning host 170.239.104.183 is
    an infected host of kz-bank, reported by two states."""
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "1")  # counts aside: the value itself
    _give_prefix(session, "kz-bank", "170.239.104.0/24")
    _dataplane_from_two_states(session, network)
    r = service.build_report(session, None, "2016-12", "network")
    assert [i.value for i in r.indicators] == ["117.21.224.121"]
    names = sorted(c.name for c in r.campaigns.items)
    assert len(names) == 2 and SCANNER not in names
    neutral = [c for c in r.campaigns.items if c.name.startswith("campaign ")]
    assert [c.name for c in neutral] == [f"campaign {neutral[0].id}"]
    html = render.to_html(r, "ru")
    assert SCANNER not in html and f"кампания {neutral[0].id}" in html
    assert SCANNER not in render.to_csv(r)


def test_owned_resources_by_kind() -> None:
    index = whois.LookupIndex.build(
        [(1, "ipv4-prefix", "192.0.2.0/24"), (1, "domain", "bank.example"), (1, "asn", "AS64500")]
    )
    for value in (
        "192.0.2.7",
        "192.0.2.0/28",
        "http://192.0.2.7:8080/x",
        "https://user@www.bank.example/login",
        "mail.bank.example",
        "ceo@bank.example",
        "AS64500",
    ):
        assert service.owned_resource(index, value), value
    for value in ("198.51.100.7", "evil.example", "http://evil.example/bank.example", "d41d8cd9"):
        assert not service.owned_resource(index, value), value


# --- 3. no sector of an owner the audience may not see ----------------------------------------


def test_a_state_report_names_no_sector_of_an_owner_it_may_not_see(session, network) -> None:  # type: ignore[no-untyped-def]
    """KZ reports AMBER events about uz-telecom, an owner under UZ that KZ may not see: KZ's
    report counts them under no sector, the network report under telecom."""
    add_events(
        session, 4, when=at("2024-09-02T10:00"), country="KZ", origin="kz-cert", tlp="amber",
        rsit_class="intrusion-attempts", rsit_type="brute-force", owner="uz-telecom",
    )  # fmt: skip
    add_events(
        session, 5, when=at("2024-09-03T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system", owner="kz-bank",
    )  # fmt: skip
    session.commit()
    kz = service.build_report(session, None, "2024-09", "KZ")
    assert {r.key: r.events for r in kz.by_sector} == {"finance": 5, None: 4}
    net = service.build_report(session, None, "2024-09", "network")
    assert {r.key: r.events for r in net.by_sector} == {"finance": 5, "telecom": 4}
    # shared with KZ's national body, the owner is KZ's to see, and so is its sector
    orgs.share_org(session, network["centre-admin"], "uz-telecom", "kz-cert")
    session.commit()
    kz = service.build_report(session, None, "2024-09", "KZ")
    assert {r.key: r.events for r in kz.by_sector} == {"finance": 5, "telecom": 4}


# --- 4. a state's report for the centre depends on nothing the centre may not see -------------


@pytest.fixture
def data(session, network, auth):  # type: ignore[no-untyped-def]
    return seed(session)


def _strict(session, analyst, when: str) -> list[int]:  # type: ignore[no-untyped-def]
    ids = add_events(
        session, 2, when=at(when), country="KZ", origin="kz-cert", tlp="amber+strict",
        rsit_class="fraud", rsit_type="masquerade", owner="kz-bank", techniques="T1036",
        origin_user_id=analyst.user_id,
    )  # fmt: skip
    session.commit()
    return ids


def _content(report: Report) -> dict[str, object]:
    data = report.to_dict()
    data.pop("generated_at")
    return data


def test_asking_for_a_state_report_reveals_no_hidden_content(client, auth, session, network, data):  # type: ignore[no-untyped-def]
    """The review's case: the centre asked for KZ's report of two days; the day on which KZ
    holds AMBER+STRICT content was refused (403), telling that it does. Now both are built
    from what KZ and the centre may both see, and the hidden content changes nothing."""
    centre = network["centre-analyst"]
    now = lambda: at("2024-09-01T00:00")  # noqa: E731
    uz = add_events(
        session, 1, when=at("2024-07-25T09:00"), country="UZ", origin="uz-cert", tlp="green",
        rsit_class="fraud", rsit_type="phishing", owner="kz-bank",
    )  # fmt: skip
    session.commit()
    before = {
        period: service.build_report(session, centre, period, "KZ", now=now)
        for period in ("2024-07-24", "2024-07-25", "2024-07")
    }
    strict = _strict(session, network["kz-analyst"], "2024-07-25T08:00")
    # an indicator and a campaign joined only through KZ's hidden event: no trace of either
    link(session, "domain", "strict-only.example", [strict[0], *uz], cross_state=True)
    _campaign(session, [strict[0], *uz])
    session.commit()
    for period, report in before.items():
        after = service.build_report(session, centre, period, "KZ", now=now)
        assert _content(after) == _content(report), period
        assert after.seen_by == "centre" and after.tlp in service.CENTRE_READS_STATE_TLPS
    # KZ's own report holds it all, and stays with KZ
    own = service.build_report(session, network["kz-analyst"], "2024-07-25", "KZ", now=now)
    assert (own.totals.events, own.tlp, own.seen_by) == (5, "amber+strict", None)
    assert [i.value for i in own.indicators] == ["strict-only.example"]
    for day in ("2024-07-24", "2024-07-25"):
        body = {"period": day, "scope": "KZ", "wait": True}
        r = client.post(API, json=body, headers=auth["centre-analyst"])
        assert r.status_code == 201, r.text
        assert r.json()["seen_by"] == "centre" and r.json()["report"]["seen_by"] == "centre"


def test_a_state_report_for_the_centre_is_not_the_states_own(client, auth, session, data) -> None:  # type: ignore[no-untyped-def]
    made = client.post(
        API, json={"period": "2024-07", "scope": "KZ", "wait": True}, headers=auth["centre-admin"]
    ).json()
    own = client.post(
        API, json={"period": "2024-07", "scope": "KZ", "wait": True}, headers=auth["kz-analyst"]
    ).json()
    assert (made["scope"], made["seen_by"], own["seen_by"]) == ("KZ", "centre", None)
    stored = session.get(StoredReport, made["id"])
    assert stored is not None and stored.scope == "KZ@centre"
    # the state lists and reads its own report only, never the centre's narrower one
    listed = client.get(API, headers=auth["kz-reader"]).json()["items"]
    assert [(i["id"], i["seen_by"]) for i in listed] == [(own["id"], None)]
    assert client.get(f"{API}/{made['id']}", headers=auth["kz-analyst"]).status_code == 404
    # the centre reads its own only, marked, in the list and in every format: whether the
    # state's own were listed would tell of what the state's holds
    listed = client.get(f"{API}?scope=KZ", headers=auth["centre-reader"]).json()["items"]
    assert [(i["id"], i["scope"], i["seen_by"]) for i in listed] == [(made["id"], "KZ", "centre")]
    assert client.get(f"{API}/{own['id']}", headers=auth["centre-reader"]).status_code == 404
    html = client.get(f"{API}/{made['id']}?format=html", headers=auth["centre-reader"])
    assert 'id="seen-by-centre"' in html.text and "(as seen by the centre)" in html.text
    assert "KZ-centre-2024-07.html" in html.headers["content-disposition"]
    text = client.get(f"{API}/{made['id']}?format=csv", headers=auth["centre-reader"])
    assert "report,,seen_by,centre" in text.content.decode("utf-8-sig")
    own_html = client.get(f"{API}/{own['id']}?format=html", headers=auth["kz-reader"]).text
    assert 'id="seen-by-centre"' not in own_html


def test_the_reports_page_marks_the_centres_view(client, auth, data) -> None:  # type: ignore[no-untyped-def]
    body = {"period": "2024-07", "scope": "KZ", "wait": True}
    assert client.post(API, json=body, headers=auth["centre-analyst"]).status_code == 201
    sign_in(client, "centre-analyst")
    page = client.get("/reports").text
    assert 'data-seen-by="centre"' in page and "(as seen by the centre)" in page
    # a request left to the worker says which version it will be, as the list will
    queued = {"period": "2024-06", "scope": "KZ"}
    made = client.post(API, json=queued, headers=auth["centre-analyst"])
    assert made.status_code == 202, made.text
    page = client.get("/reports").text
    asked = page[page.index(f'id="request-{made.json()["id"]}"') :].split("</tr>", 1)[0]
    assert "KZ <span" in asked and "(as seen by the centre)" in asked


def test_sharing_keeps_a_state_event_in_the_centres_view(session, network, data) -> None:  # type: ignore[no-untyped-def]
    """What both may see: UZ's AMBER events about a KZ bank count in KZ's report once
    shared with KZ, in the centre's view of it as well."""
    for event_id in data.groups["D"]:
        session.add(Share(object_kind="event", object_id=event_id, org_id=data.orgs["kz-cert"]))
    session.commit()
    seen = service.build_report(session, network["centre-analyst"], "2024-07", "KZ")
    assert (seen.totals.events, seen.tlp, seen.seen_by) == (20, "amber", "centre")
