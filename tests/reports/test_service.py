"""Building reports: totals, changes, suppression, visibility, TLP, ATT&CK, cases, campaigns."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from concord.access.model import Share
from concord.errors import Forbidden, InvalidInput, NotFound
from concord.jobs.model import JobRun
from concord.reports import period as periods
from concord.reports import render, service, tasks
from concord.reports.model import Report, StoredReport
from tests.reports import add_events, at, link, seed


def _rows(rows):  # type: ignore[no-untyped-def]
    return {r.key: (r.events, r.previous, r.change_pct) for r in rows}


# --- periods ------------------------------------------------------------------------------------


def test_periods_and_the_period_before() -> None:
    m = periods.parse("2024-03")
    assert (m.start, m.end, m.previous_start, m.previous_label) == (
        at("2024-03-01T00:00"),
        at("2024-04-01T00:00"),
        at("2024-02-01T00:00"),
        "2024-02",
    )
    assert periods.parse("2024-01").previous_label == "2023-12"
    assert periods.parse("2024-12").end == at("2025-01-01T00:00")
    w = periods.parse("2024-w01")
    assert (w.label, w.start, w.previous_label) == ("2024-W01", at("2024-01-01T00:00"), "2023-W52")
    d = periods.parse("2024-07-15")
    assert (d.kind, d.end, d.previous_label) == ("day", at("2024-07-16T00:00"), "2024-07-14")
    c = periods.parse("2024-07-01..2024-07-10")
    assert (c.start, c.end) == (at("2024-07-01T00:00"), at("2024-07-11T00:00"))
    assert (c.previous_start, c.previous_label) == (
        at("2024-06-21T00:00"),
        "2024-06-21..2024-06-30",
    )
    assert periods.previous_month(datetime(2024, 8, 1, 2, 0, tzinfo=UTC)).label == "2024-07"
    for bad in ("2024-13", "2024-W54", "2024-02-30", "July", "2024-07-10..2024-07-01", ""):
        with pytest.raises(InvalidInput) as exc:
            periods.parse(bad)
        assert exc.value.locations[0].field == "period"
    # a month at the ends of the calendar is told as a day or a week there is
    for edge in ("0001-01", "9999-12", "0001-W01", "0001-01-01", "9999-12-31"):
        with pytest.raises(InvalidInput, match="too close to the ends of the calendar"):
            periods.parse(edge)


# --- suppression --------------------------------------------------------------------------------


def test_suppression_primary_and_secondary() -> None:
    assert service.suppress_column({"a": 10, "b": 2, "c": 0}, 3) == {
        "a": "10–11",
        "b": "<3",
        "c": 0,
    }
    # Whenever a count is withheld the largest shown one is too, as the range the total
    # gives anyway; whether it is cannot then tell anything of the small counts.
    assert service.suppress_column({"a": 10, "b": 2, "c": 1}, 3) == {
        "a": "9–11",
        "b": "<3",
        "c": "<3",
    }
    assert service.suppress_column({"a": 50, "b": 4, "c": 1}, 3) == {
        "a": "49–50",
        "b": 4,
        "c": "<3",
    }
    # a total below the threshold withholds the column whole, each cell as the range it
    # may be: 0 included, as the other period's keys are listed in it too
    assert service.suppress_column({"a": 1}, 3) == {"a": "0–2"}
    assert service.suppress_column({"a": 1, "b": 2}, 1) == {"a": 1, "b": 2}


def test_several_small_counts_are_not_given_away_by_the_total() -> None:
    # The review's cases: two "<3" whose sum (total - shown) is 2 are 1 each.
    # 11 = 5 + 4 + "<3" + "<3": with finance withheld as 4–5 (it is at least energy's 4),
    # health + unknown is 2 or 3.
    sectors = service.suppress_column({"finance": 5, "energy": 4, "health": 1, None: 1}, 3)
    assert sectors == {"finance": "4–5", "energy": 4, "health": "<3", None: "<3"}
    # 8 = 3 + 3 + "<3" + "<3": every count is at its least value, so no range hides them;
    # the column is withheld whole.
    assert service.suppress_column({"KZ": 3, "UZ": 3, "TJ": 1, None: 1}, 3) == {
        "KZ": "0–8",
        "UZ": "0–8",
        "TJ": "0–8",
        None: "0–8",
    }


@pytest.mark.parametrize(("k", "keys", "top"), [(2, 4, 9), (3, 4, 12), (4, 4, 12), (3, 5, 8)])
def test_no_published_column_pins_a_small_count(k: int, keys: int, top: int) -> None:
    """Every column of `keys` counts below `top`: a reader who knows the rule, the total (or
    that it is below k) and the published cells must find two or more values possible for
    every count below k."""
    possible: dict[tuple[object, ...], list[set[int]]] = {}
    for values in itertools.product(range(top), repeat=keys):
        cells = service.suppress_column(dict(enumerate(values)), k)
        total = sum(values)
        seen = (tuple(cells.values()), total if total >= k else "small")
        for i, n in enumerate(values):
            possible.setdefault(seen, [set() for _ in values])[i].add(n)
    for (cells, total), sets in possible.items():
        if isinstance(total, int) and total >= top:
            continue  # columns with this total can hold counts beyond the enumerated ones
        for i, found in enumerate(sets):
            if any(0 < n < k for n in found):
                assert len(found) >= 2, (cells, total, i, found)


# --- the network report -------------------------------------------------------------------------


@pytest.fixture
def data(session, network):  # type: ignore[no-untyped-def]
    return seed(session)


def test_network_totals_change_and_breakdowns(session, data) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-07", "network")
    assert (r.totals.events, r.totals.previous, r.totals.change_pct) == (24, 14, 71.4)
    assert r.occurrences == 48  # every seeded event has count 2
    assert _rows(r.by_class) == {
        "malicious-code": (14, 8, 75.0),
        "intrusion-attempts": (5, 0, None),
        "intrusions": (2, 0, None),
        "vulnerable": (2, 0, None),
        "fraud": (1, 0, None),
        "availability": (0, 6, -100.0),
    }
    assert _rows(r.by_state) == {"KZ": (17, 8, 112.5), "UZ": (7, 6, 16.7)}
    # energy (2 events, one owner) is suppressed; finance, the largest, is then shown as a
    # range, or 24 - 13 - 5 - 4 would give energy back.
    assert _rows(r.by_sector) == {
        "finance": ("13–14", 8, None),
        None: (5, 0, None),
        "telecom": (4, 6, -33.3),
        "energy": ("<3", 0, None),
    }
    # by published figures (a range by its lower end), "<3" last: the true values of
    # withheld counts would tell them apart
    assert [row.key for row in r.by_sector] == ["finance", None, "telecom", "energy"]
    assert r.tlp == "amber"  # the UZ AMBER events are counted
    assert r.min_count == 3


def test_state_report_holds_only_what_its_national_body_may_see(session, data) -> None:  # type: ignore[no-untyped-def]
    kz = service.build_report(session, None, "2024-07", "KZ")
    # D (UZ's AMBER report about a KZ bank, not shared) and C (UZ's own) are left out.
    assert (kz.totals.events, kz.totals.previous, kz.totals.change_pct) == (18, 8, 125.0)
    assert kz.tlp == "green"
    assert _rows(kz.by_state) == {"KZ": ("16–17", 8, None), "UZ": ("<3", 0, None)}
    assert _rows(kz.by_sector) == {
        "finance": ("11–12", 8, None),
        None: (5, 0, None),
        "energy": ("<3", 0, None),
    }
    uz = service.build_report(session, None, "2024-07", "uz")
    assert (uz.scope, uz.totals.events, uz.totals.previous, uz.tlp) == ("UZ", 7, 6, "amber")


def test_sharing_with_a_state_brings_an_amber_event_into_its_report(session, data) -> None:  # type: ignore[no-untyped-def]
    for event_id in data.groups["D"]:
        session.add(Share(object_kind="event", object_id=event_id, org_id=data.orgs["kz-cert"]))
    session.commit()
    kz = service.build_report(session, None, "2024-07", "KZ")
    assert (kz.totals.events, kz.tlp) == (20, "amber")


def test_red_and_strict_events(session, network, data) -> None:  # type: ignore[no-untyped-def]
    analyst = network["kz-analyst"]
    add_events(
        session, 3, when=at("2024-07-12T10:00"), country="KZ", origin="kz-cert", tlp="red",
        rsit_class="intrusions", rsit_type="system-compromise", origin_user_id=analyst.user_id,
    )  # fmt: skip
    add_events(
        session, 1, when=at("2024-07-13T10:00"), country="KZ", origin="kz-cert",
        tlp="amber+strict", rsit_class="fraud", rsit_type="masquerade",
    )  # fmt: skip
    session.commit()
    # TLP:RED names users, never organisations: in no report. AMBER+STRICT stays with kz-cert.
    net = service.build_report(session, None, "2024-07", "network")
    assert (net.totals.events, net.tlp) == (24, "amber")
    kz = service.build_report(session, None, "2024-07", "KZ")
    assert (kz.totals.events, kz.tlp) == (19, "amber+strict")
    # KZ's own staff receive KZ's AMBER+STRICT report; the centre receives KZ's report as it
    # sees it, without that content (see test_a_state_report_for_the_centre_*).
    assert service.build_for(session, analyst, "2024-07", "KZ").tlp == "amber+strict"
    seen = service.build_for(session, network["centre-analyst"], "2024-07", "KZ")
    assert (seen.totals.events, seen.tlp, seen.seen_by) == (18, "green", "centre")
    row = service.store(session, kz)
    session.commit()
    assert [r.id for r in service.list_reports(session, network["kz-reader"])] == [row.id]
    assert service.list_reports(session, network["centre-analyst"]) == []
    with pytest.raises(NotFound):
        service.get_report(session, network["centre-admin"], row.id)


def test_who_may_ask(session, network, data) -> None:  # type: ignore[no-untyped-def]
    service.build_for(session, network["centre-reader"], "2024-07", "network")
    service.build_for(session, network["kz-reader"], "2024-07", "KZ")
    for user, scope in (
        ("kz-analyst", "network"),
        ("kz-analyst", "UZ"),
        ("uz-analyst", "KZ"),
        ("kz-bank-contact", "KZ"),
    ):
        with pytest.raises(Forbidden):
            service.build_for(session, network[user], "2024-07", scope)
    with pytest.raises(Forbidden):  # readers may look, not build and store
        service.create_report(session, network["kz-reader"], "2024-07", "KZ")
    with pytest.raises(InvalidInput, match="no national body of TJ") as exc:
        service.build_report(session, None, "2024-07", "TJ")
    assert exc.value.locations[0].field == "scope"
    with pytest.raises(InvalidInput):
        service.build_report(session, None, "2024-07", "Kazakhstan")


def test_small_periods_are_suppressed_whole(session, data) -> None:  # type: ignore[no-untyped-def]
    day = service.build_report(session, None, "2024-07-20", "UZ")  # one event: E
    assert (day.totals.events, day.totals.change_pct, day.occurrences) == ("<3", None, "<3")
    # Listing the class or the state would say which had the one event.
    assert (day.by_class, day.by_state, day.by_sector) == ([], [], [])
    assert [(t.id, t.events) for t in day.techniques] == [("T1566", "<3")]
    html = render.to_html(day)
    # the three breakdowns, and the indicators and campaigns that would name its state
    assert html.count('data-section="withheld"') == 5
    assert day.indicators_withheld and day.campaigns.withheld
    assert day.withheld_breakdowns == ["by_class", "by_state", "by_sector"]
    text = render.to_csv(day)
    for section in day.withheld_breakdowns:
        assert f"{section},,withheld,true" in text
    # a period with no event at all withholds nothing: its breakdowns are empty
    empty = service.build_report(session, None, "2020-07-20", "UZ")
    assert empty.withheld_breakdowns == [] and "withheld" not in render.to_csv(empty)


def test_threshold_is_configurable(session, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "1")
    r = service.build_report(session, None, "2024-07", "KZ")
    assert _rows(r.by_state) == {"KZ": (17, 8, 112.5), "UZ": (1, 0, None)}
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "6")
    r = service.build_report(session, None, "2024-07", "KZ")
    assert r.min_count == 6
    assert _rows(r.by_sector)["energy"][0] == "<6"


def test_empty_report_is_clear(session, network) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-07", "network")
    assert (r.tlp, r.totals.events, r.by_class, r.indicators, r.techniques) == (
        "clear",
        0,
        [],
        [],
        [],
    )


def test_a_period_not_begun_is_refused_and_a_running_one_is_reported(session, network) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    july = lambda: datetime(2024, 7, 15, tzinfo=UTC)  # noqa: E731
    with pytest.raises(InvalidInput, match="2024-08 has not begun") as exc:
        service.build_report(session, None, "2024-08", "network", now=july)
    assert exc.value.locations[0].field == "period"
    assert service.build_report(session, None, "2024-07", "network", now=july).totals.events == 0


# --- indicators, ATT&CK, campaigns, cases -------------------------------------------------------


def test_cross_state_indicators_count_only_visible_events(session, data) -> None:  # type: ignore[no-untyped-def]
    net = service.build_report(session, None, "2024-07", "network")
    assert [(i.value, i.states, i.events, i.countries) for i in net.indicators] == [
        ("198.51.100.7", 2, 4, ["KZ", "UZ"]),
        ("evil.example", 2, "<3", ["KZ", "UZ"]),  # two events: a small count like any
    ]  # the warning-listed value is left out
    kz = service.build_report(session, None, "2024-07", "KZ")
    # KZ cannot see UZ's AMBER sighting of 198.51.100.7, so for KZ it is not cross-state.
    assert [(i.value, i.states, i.events) for i in kz.indicators] == [("evil.example", 2, "<3")]


def test_attack_profile_and_mitigations_from_the_mitre_data(session, data) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-07", "network")
    assert [(t.id, t.events, t.cases) for t in r.techniques] == [
        ("T1059.001", 10, 0),
        ("T1566.001", 10, 0),
        ("T1110", 5, 1),  # five events and a case
        ("T1071.001", 4, 0),  # recorded lower-case, normalised
        ("T1566", "<3", 0),  # one event: withheld like any small count
    ]
    by_id = {t.id: t for t in r.techniques}
    assert by_id["T1566.001"].name == "Spearphishing Attachment"
    assert by_id["T1566.001"].tactics == ["initial-access"]
    # Antivirus/Antimalware counters PowerShell (10), Spearphishing Attachment (10) and
    # Phishing (1); User Account Management, Spearphishing Attachment and Brute Force (5
    # events and a case); Network Intrusion Prevention, Spearphishing, Web Protocols, Phishing.
    # A weight holding T1566's withheld count is the range the published counts allow.
    assert [(m.id, m.name, m.weight) for m in r.mitigations[:3]] == [
        ("M1049", "Antivirus/Antimalware", "21–22"),
        ("M1018", "User Account Management", 16),
        ("M1031", "Network Intrusion Prevention", "15–16"),
    ]
    assert r.mitigations[0].techniques == ["T1059.001", "T1566.001", "T1566"]
    assert r.attack_version == "18.1"
    assert "The MITRE Corporation" in r.attack_notice
    assert '<p class="note">MITRE ATT&amp;CK® v18.1.' in render.to_html(r)  # escaped


def test_cases_opened_closed_and_time_to_close(session, data) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-07", "network")
    c = r.cases
    assert c.available
    assert (c.opened, c.closed, c.previous_opened, c.previous_closed) == (3, 3, 1, 0)
    assert (c.median_hours_to_close, c.mean_hours_to_close) == (48.0, 72.0)
    assert c.closed_by_resolution == {"remediated": 2, "": 1}  # one closed without saying
    # kz-cert takes part in every case; uz-cert in none.
    assert service.build_report(session, None, "2024-07", "KZ").cases.closed == 3
    assert service.build_report(session, None, "2024-07", "UZ").cases.closed == 0


def test_new_campaigns(session, data) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-07", "network")
    assert r.campaigns.available and r.campaigns.total == 1
    (c,) = r.campaigns.items
    assert (c.name, c.events, c.states) == ("evil.example", "<3", ["KZ", "UZ"])
    assert c.first_seen.startswith("2024-07-03T10:00")
    assert service.build_report(session, None, "2024-08", "network").campaigns.items == []


def test_sections_of_missing_modules_say_not_available(session, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = service._optional
    missing = {"concord.cases.model", "concord.events.correlation_model"}
    monkeypatch.setattr(service, "_optional", lambda m: None if m in missing else real(m))
    r = service.build_report(session, None, "2024-07", "network")
    assert not r.cases.available and not r.campaigns.available
    assert [(t.id, t.cases) for t in r.techniques if t.id == "T1110"] == [("T1110", 0)]
    html = render.to_html(r)
    assert html.count('data-section="not-available"') == 2
    csv_text = render.to_csv(r)
    assert "cases,,available,false" in csv_text and "campaigns,,available,false" in csv_text


def test_optional_import_reports_a_missing_module_only() -> None:
    assert service._optional("concord.no_such_domain.model") is None
    assert service._optional("concord.reports.model") is not None


# --- serialisation, storage and the monthly run --------------------------------------------------


def test_report_round_trips_through_json(session, data) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-W27", "network")
    again = Report.from_dict(json.loads(service.to_json(r)))
    assert again == r


def test_monthly_run_builds_network_and_state_reports_once(session, network, data) -> None:  # type: ignore[no-untyped-def]
    # the network's, each state's for its national body, and each as seen by the centre
    assert tasks.build_period("2024-07") == "ok: 5 reports"
    assert tasks.build_period("2024-07") == "skipped"
    session.expire_all()
    rows = service.list_reports(session, network["centre-analyst"], period="2024-07")
    assert sorted((r.scope, r.tlp) for r in rows) == [
        ("KZ@centre", "green"),
        ("UZ@centre", "amber"),
        ("network", "amber"),
    ]
    runs = select(JobRun.key, JobRun.outcome).where(JobRun.task == "monthly_reports")
    assert sorted(session.execute(runs)) == [
        ("2024-07 KZ", "ok"),
        ("2024-07 KZ@centre", "ok"),
        ("2024-07 UZ", "ok"),
        ("2024-07 UZ@centre", "ok"),
        ("2024-07 network", "ok"),
    ]
    [own] = service.list_reports(session, network["kz-analyst"], period="2024-07")
    assert own.scope == "KZ" and service.load(own).totals.events == 18


def test_monthly_task_runs_hourly_to_catch_up() -> None:
    from concord.jobs.queue import registered_jobs

    spec = registered_jobs()["monthly_reports"]
    assert spec.cron == {"minute": "10"}
    assert "build_reports" in registered_jobs()


def test_monthly_task_builds_the_previous_month(session, data) -> None:  # type: ignore[no-untyped-def]
    label = tasks.due_period(datetime.now(UTC))
    assert tasks.monthly_reports() == "ok: 5 reports"
    assert tasks.build_reports(label) == "skipped"
    assert tasks.build_reports(label, force=True) == "ok: 5 reports"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(StoredReport)) == 10


def test_the_hourly_run_reports_the_month_before_once_it_has_settled() -> None:
    assert tasks.due_period(at("2024-08-01T01:59")) == "2024-06"  # late reports still due
    assert tasks.due_period(at("2024-08-01T02:00")) == "2024-07"
    assert tasks.due_period(at("2024-08-31T23:00")) == "2024-07"


def test_the_hourly_run_looks_back_over_months_the_centre_was_there() -> None:
    now = at("2024-08-15T10:00")
    assert tasks.due_periods(now, at("2020-01-01T00:00")) == ["2024-05", "2024-06", "2024-07"]
    assert tasks.due_periods(now, at("2024-06-30T23:00")) == ["2024-06", "2024-07"]
    # the previous month always: a centre recorded in August reports July's events
    assert tasks.due_periods(now, at("2024-08-02T00:00")) == ["2024-07"]
    assert tasks.due_periods(now, None) == ["2024-07"]


def test_a_worker_down_for_a_month_is_caught_up(session, network, data) -> None:  # type: ignore[no-untyped-def]
    from concord.orgs.model import Organization

    centre = session.get(Organization, network["centre-analyst"].org_id)
    centre.created_at = at("2020-01-01T00:00")
    session.commit()
    labels = tasks.due_periods(datetime.now(UTC), centre.created_at)
    assert len(labels) == tasks.CATCH_UP_MONTHS
    tasks.build_period(labels[-1])  # the last month was built; the ones before it were not
    done = tasks.monthly_reports()
    assert done == "; ".join(f"{label}: ok: 5 reports" for label in labels[:-1]) + (
        f"; {labels[-1]}: skipped"
    )
    assert tasks.monthly_reports() == f"{labels[-1]}: skipped"


def test_a_missed_or_failed_run_is_caught_up_once(session, network, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No worker at 02:00 on the 1st, or a run that failed for one state: the next hourly
    run builds what is missing, and only that; never two of a period and scope."""
    real = service.build_report

    def failing_for_uz(s, principal, p, scope, **kw):  # type: ignore[no-untyped-def]
        if scope == "UZ":
            raise RuntimeError("the database went away")
        return real(s, principal, p, scope, **kw)

    monkeypatch.setattr(service, "build_report", failing_for_uz)
    with pytest.raises(RuntimeError, match="3 stored, failed for UZ, UZ@centre"):
        tasks.build_period("2024-07")
    monkeypatch.setattr(service, "build_report", real)
    session.expire_all()
    failed = select(JobRun.key).where(JobRun.outcome.like("error%"))
    assert list(session.scalars(failed.order_by(JobRun.key))) == ["2024-07 UZ", "2024-07 UZ@centre"]
    session.rollback()  # a read begun before the runs' writes cannot write on SQLite
    assert tasks.build_period("2024-07") == "ok: 2 reports"  # UZ's only
    assert tasks.build_period("2024-07") == "skipped"
    # a state joining later has its report of the month built by the next run
    from concord.orgs import service as orgs

    orgs.create_org(
        session,
        None,
        orgs.OrgInput("tj-cert", "national-body", "TJ national CERT", "CERT Таджикистана", "TJ"),
    )
    session.commit()
    assert tasks.build_period("2024-07") == "ok: 2 reports"
    session.expire_all()
    stored = session.execute(
        select(StoredReport.scope, func.count())
        .where(StoredReport.period == "2024-07")
        .group_by(StoredReport.scope)
    )
    assert sorted(stored) == [
        *[(s, 1) for s in ("KZ", "KZ@centre", "TJ", "TJ@centre", "UZ", "UZ@centre")],
        ("network", 1),
    ]


def test_a_run_of_the_earlier_release_counts_as_done(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.jobs.tasks import record_run

    record_run(session, tasks.TASK, "2024-07", "ok: 3 reports")  # keyed by the period alone
    session.commit()
    # it built the network's and the states' own, not the centre's versions of them, which
    # the centre would otherwise miss for every month built before
    assert tasks.build_period("2024-07") == "ok: 2 reports"
    assert tasks.build_period("2024-07") == "skipped"
    session.expire_all()
    scopes = session.scalars(select(StoredReport.scope).where(StoredReport.period == "2024-07"))
    assert sorted(scopes) == ["KZ@centre", "UZ@centre"]


def test_no_centre_yet_is_no_failure(session) -> None:  # type: ignore[no-untyped-def]
    assert tasks.build_period("2024-07") == "skipped: no centre organisation yet"
    assert session.scalar(select(func.count()).select_from(JobRun)) == 0


def test_a_threshold_of_two_is_refused(session, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """ "<2" could only mean 1 (zeros read 0): a threshold of 2 would publish every count it
    claims to withhold."""
    from concord.errors import ConfigurationError

    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "2")
    with pytest.raises(ConfigurationError, match="CONCORD_REPORT_MIN_COUNT=2"):
        service.build_report(session, None, "2024-07", "network")
    with pytest.raises(ConfigurationError):
        service.build_report(session, None, "2024-07", "network", min_count_override=2)
    for k in ("1", "3", "4"):
        monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", k)
        assert service.build_report(session, None, "2024-07", "network").min_count == int(k)


def test_csv_starts_with_a_byte_order_mark(session, data) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io

    text = render.to_csv(service.build_report(session, None, "2024-07", "KZ"))
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbfsection,key,metric,value\n")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    cells = {(s, k, m): v for s, k, m, v in rows[1:]}
    assert cells[("by_sector", "finance", "events")] == "11–12"  # non-ASCII, read back whole
    assert "©" in cells[("notice", "attack", "v18.1")]


def test_class_chart_draws_a_class_whose_previous_count_is_withheld(session, data) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    r = service.build_report(session, None, "2024-07", "network")
    biggest = max(r.by_class, key=lambda row: row.events if isinstance(row.events, int) else 0)
    rows = [replace(row, previous="<3") if row is biggest else row for row in r.by_class]
    charts = render._charts(replace(r, by_class=rows), lambda text: text)
    label = render.CLASS_LABELS.get(str(biggest.key), str(biggest.key))
    assert label in charts["by_class"]
    assert "Previous period" not in charts["by_class"]  # no bar for a withheld count


def test_state_and_sector_charts_compare_with_the_previous_period_as_classes_do(
    session, data
) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    r = service.build_report(session, None, "2024-07", "network")
    published = [replace(row, previous=2) for row in r.by_state if isinstance(row.events, int)]
    charts = render._charts(replace(r, by_state=published), lambda text: text)
    assert "Previous period" in charts["by_state"]
    # one previous count withheld: no previous bars at all, the row still drawn
    withheld = [published[0], replace(published[-1], previous="<3")]
    charts = render._charts(replace(r, by_state=withheld), lambda text: text)
    assert "Previous period" not in charts["by_state"]
    assert str(published[-1].key) in charts["by_state"]


def test_a_report_of_a_period_not_over_says_so(session, data) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    this_month = datetime.now(UTC).strftime("%Y-%m")
    running = render.to_html(service.build_report(session, None, this_month, "network"))
    assert 'id="period-in-progress"' in running
    past = render.to_html(service.build_report(session, None, "2024-07", "network"))
    assert 'id="period-in-progress"' not in past


# --- campaigns as the audience sees them ----------------------------------------------------


def _tj(session) -> None:  # type: ignore[no-untyped-def]
    from concord.orgs import service as orgs

    orgs.create_org(
        session,
        None,
        orgs.OrgInput("tj-cert", "national-body", "TJ national CERT", "CERT Таджикистана", "TJ"),
    )


def _correlate(session) -> None:  # type: ignore[no-untyped-def]
    from concord.events import correlation

    correlation.update_campaigns(session)
    session.commit()


def test_a_campaign_joined_only_through_a_hidden_report_is_not_in_the_report(  # type: ignore[no-untyped-def]
    session, network, monkeypatch
) -> None:
    """The review's case: KZ's GREEN evil-a.example, UZ's AMBER report (not shared with KZ)
    holding it and 45.70.0.1, TJ's GREEN 45.70.0.1. The network-wide campaign joins all
    three; KZ sees KZ and TJ events but no link between them."""
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "1")  # a few events: counts as they are
    _tj(session)
    kz = add_events(
        session, 2, when=at("2026-08-03T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    uz = add_events(
        session, 1, when=at("2026-08-04T10:00"), country="UZ", origin="uz-cert", tlp="amber",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    tj = add_events(
        session, 1, when=at("2026-08-05T10:00"), country="TJ", origin="tj-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="c2-server",
    )  # fmt: skip
    link(session, "domain", "evil-a.example", [*kz, *uz], cross_state=True)
    link(session, "ipv4", "45.70.0.1", [*uz, *tj], cross_state=True)
    _correlate(session)
    now = lambda: at("2026-09-02T00:00")  # noqa: E731
    kz_report = service.build_report(session, None, "2026-08", "KZ", now=now)
    assert (kz_report.campaigns.total, kz_report.campaigns.items) == (0, [])
    assert kz_report.indicators == []
    # The campaigns page tells a KZ reader the same.
    from concord.events import correlation

    assert correlation.visible_campaigns(session, network["kz-analyst"]) == []
    # Nor does the centre's view of KZ's report: it holds what both see, and is joined of that
    # alone, not joined as the centre sees it and then narrowed.
    seen = service.build_report(session, network["centre-analyst"], "2026-08", "KZ", now=now)
    assert seen.seen_by == "centre"
    assert (seen.campaigns.total, seen.campaigns.items) == (0, [])
    # The centre sees the UZ report: the whole campaign, in the network report.
    net = service.build_report(session, None, "2026-08", "network", now=now)
    (c,) = net.campaigns.items
    assert (c.events, c.states, net.tlp) == (4, ["KZ", "TJ", "UZ"], "amber")


def test_a_campaign_is_new_when_it_reaches_a_second_state(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """KZ sees it first on 9 November, TJ on 16 November: new in the week of the 16th, in
    KZ's report (KZ takes part) and the network's; not in the week before."""
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "1")  # a few events: counts as they are
    _tj(session)
    kz = add_events(
        session, 2, when=at("2026-11-09T10:00"), country="KZ", origin="kz-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    tj = add_events(
        session, 1, when=at("2026-11-16T10:00"), country="TJ", origin="tj-cert", tlp="green",
        rsit_class="malicious-code", rsit_type="infected-system",
    )  # fmt: skip
    link(session, "domain", "evil-b.example", [*kz, *tj], cross_state=True)
    _correlate(session)
    now = lambda: at("2026-12-01T00:00")  # noqa: E731
    for scope in ("network", "KZ"):
        before = service.build_report(session, None, "2026-W46", scope, now=now)
        assert before.campaigns.total == 0
        week = service.build_report(session, None, "2026-W47", scope, now=now)
        (c,) = week.campaigns.items
        assert (c.name, c.events, c.states) == ("evil-b.example", 3, ["KZ", "TJ"])
        assert c.first_seen.startswith("2026-11-09T10:00")
        after = service.build_report(session, None, "2026-W48", scope, now=now)
        assert after.campaigns.total == 0
    assert service.build_report(session, None, "2026-W47", "UZ", now=now).campaigns.total == 0
    # a campaign seen whole is read in one query; rebuilt part by part, it is the same
    quick = {
        s: service.build_report(session, None, "2026-W47", s, now=now) for s in ("network", "KZ")
    }
    monkeypatch.setattr(service, "_seen_whole", lambda *args: {})
    for scope, report in quick.items():
        slow = service.build_report(session, None, "2026-W47", scope, now=now)
        assert slow.campaigns == report.campaigns and slow.tlp == report.tlp


# --- rendering details ----------------------------------------------------------------------


def test_a_change_from_nothing_reads_new_not_withheld(session, data) -> None:  # type: ignore[no-untyped-def]
    r = service.build_report(session, None, "2024-07", "network")
    html = render.to_html(r)
    row = next(row for row in r.by_class if row.key == "intrusion-attempts")
    assert (row.events, row.previous, row.change_pct) == (5, 0, None)
    # the JSON keeps a null change; previous 0 (a number, not "<3") tells it apart
    assert {"key": "intrusion-attempts", "events": 5, "previous": 0, "change_pct": None} in (
        json.loads(service.to_json(r))["by_class"]
    )
    cells = re.findall(r"<tr><td>[^<]*Intrusion attempts.*?</tr>", html)
    assert cells and ">new</td>" in cells[0], cells
    energy = re.findall(r"<tr><td>energy</td>.*?</tr>", html)
    assert energy and ">—</td>" in energy[0]  # "<3" against 0: not a published change


def test_suppression_note_only_when_something_can_be_withheld(session, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert 'id="suppression-note"' in render.to_html(
        service.build_report(session, None, "2024-07", "network")
    )
    monkeypatch.setenv("CONCORD_REPORT_MIN_COUNT", "1")
    html = render.to_html(service.build_report(session, None, "2024-07", "network"))
    assert 'id="suppression-note"' not in html and "below 1" not in html


def test_format_follows_the_output_file_unless_given() -> None:
    from pathlib import Path

    assert service.format_for(None, Path("x.csv")) == "csv"
    assert service.format_for(None, Path("X.JSON")) == "json"
    assert service.format_for(None, Path("x.htm")) == "html"
    assert service.format_for(None, Path("report")) == "html"
    assert service.format_for(None, None) == "html"
    with pytest.raises(InvalidInput, match=r"'r\.xlsx'"):
        service.format_for(None, Path("r.xlsx"))
    assert service.format_for("csv", Path("r.xlsx")) == "csv"  # given, it is taken as it is
    assert service.format_for("json", Path("x.JSON")) == "json"
    assert service.format_for("html", Path("x.htm")) == "html"
    with pytest.raises(InvalidInput, match=r"cannot write a JSON report as 'x\.csv'") as said:
        service.format_for("json", Path("x.csv"))  # one of the two is a slip
    assert said.value.locations[0].field == "out"
    with pytest.raises(InvalidInput):
        service.format_for("pdf", None)


def test_the_largest_new_campaigns_are_listed(session, data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.reports import _campaign

    a, c = data.groups["A"], data.groups["C"]
    _campaign(session, [a[1], a[2], c[0]])  # three events, the first campaign has two
    session.commit()
    monkeypatch.setattr(service, "TOP_CAMPAIGNS", 1)
    r = service.build_report(session, None, "2024-07", "network")
    assert r.campaigns.total == 2
    [shown] = r.campaigns.items
    assert shown.events == 3 and shown.states == ["KZ", "UZ"]
    assert "The largest 1 are listed." in render.to_html(r)


def test_a_scope_that_keeps_failing_is_left_to_an_operator(
    session, network, data, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    real_store = service.store

    def store_failing_for_kz(s, report):  # type: ignore[no-untyped-def]
        if report.scope == "KZ":
            raise RuntimeError("disk full")
        return real_store(s, report)

    monkeypatch.setattr(service, "store", store_failing_for_kz)
    # a report that cannot be stored is recorded as failed and costs the others nothing
    with pytest.raises(RuntimeError, match=r"3 stored, failed for KZ, KZ@centre$"):
        tasks.build_period("2024-07")
    for _ in range(tasks.MAX_ATTEMPTS - 1):
        with pytest.raises(RuntimeError, match=r"0 stored, failed for KZ, KZ@centre$"):
            tasks.build_period("2024-07")
    # given up: the hourly run no longer rebuilds it, an operator's forced run does
    assert tasks.build_period("2024-07") == "skipped"
    monkeypatch.setattr(service, "store", real_store)
    assert tasks.build_period("2024-07", force=True) == "ok: 5 reports"
    session.expire_all()
    scopes = session.scalars(select(StoredReport.scope).where(StoredReport.period == "2024-07"))
    assert sorted(scopes) == [
        *["KZ", "KZ@centre", "UZ", "UZ", "UZ@centre", "UZ@centre"],
        *["network", "network"],
    ]


def test_a_column_withheld_below_the_threshold_never_claims_events_a_key_has_not() -> None:
    # The previous day had one event, of another class than today's: its column is withheld
    # whole, and today's classes, listed in it too, may well have none there.
    rows = service._rows({"vulnerable": 5, "intrusion-attempts": 4}, {"malicious-code": 1}, 3, True)
    assert {r.key: r.previous for r in rows} == {"vulnerable": "0–2", "intrusion-attempts": "0–2"}
    assert all(r.change_pct is None for r in rows)  # no change from a withheld count
