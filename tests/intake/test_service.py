"""Intake end to end: receipts, enrichment, dedup, idempotence, resume after a crash."""

from __future__ import annotations

import codecs
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import delete, func, select

from concord.db import session_factory
from concord.errors import FaultLocation
from concord.events import service as events
from concord.events.model import Event, EventObservable, Indicator, Sighting, Submission
from concord.intake import service
from concord.orgs import readers
from concord.orgs import service as orgs

HEADER = '"timestamp","ip","port","hostname","tag","asn","geo","region","city"\n'


def scan_csv(rows: list[tuple[str, str, int]]) -> bytes:
    lines = [HEADER] + [
        f'"{t}","{ip}",{port},,"rdp",64500,"KZ","ALMATY","ALMATY"\n' for t, ip, port in rows
    ]
    return "".join(lines).encode()


def give_prefix(session, owner: str, prefix: str) -> None:  # type: ignore[no-untyped-def]
    orgs.import_assets(
        session, None, owner, [readers.normalise("", prefix, "", "", FaultLocation())]
    )
    session.commit()


def run(principal, data: bytes, name: str = "scan_rdp.csv", **kw):  # type: ignore[no-untyped-def]
    return service.ingest(
        session_factory(), principal, service.Source(io.BytesIO(data), name), **kw
    )


def totals(session) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    session.rollback()
    n, s = session.execute(
        select(func.count(), func.coalesce(func.sum(Event.count), 0)).select_from(Event)
    ).one()
    return int(n), int(s)


def test_receipt_enrichment_and_raw_reference(session, network) -> None:  # type: ignore[no-untyped-def]
    give_prefix(session, "kz-bank", "198.51.100.0/24")
    data = scan_csv(
        [
            ("2026-11-30 10:00:00", "198.51.100.7", 3389),
            ("2026-11-30 10:05:00", "203.0.113.9", 3389),
            ("not a time", "203.0.113.10", 3389),
        ]
    )
    receipt = run(network["kz-analyst"], data, tlp="green")
    assert (receipt.accepted, receipt.duplicates, receipt.rejected) == (2, 0, 1)
    assert receipt.format == "shadowserver"
    assert receipt.errors[0]["line"] == 4
    session.rollback()
    event = session.scalar(select(Event).where(Event.primary_value == "198.51.100.7"))
    assert event.country == "KZ" and event.tlp == "green" and event.port == 3389
    assert event.rsit_class and event.rsit_type
    kz_bank = orgs.get_org_for_write(session, "kz-bank")
    assert event.owner_org_id == kz_bank.id and event.owner_parent_id == kz_bank.parent_id
    assert "198.51.100.7" in events.raw_record(session, event)
    assert events.raw_record(session, event).startswith('"2026-11-30 10:00:00"')


def test_same_file_twice_changes_nothing(session, network) -> None:  # type: ignore[no-untyped-def]
    data = scan_csv([("2026-11-30 10:00:00", f"203.0.113.{i}", 3389) for i in range(20)])
    first = run(network["kz-analyst"], data)
    before = totals(session)
    sightings = session.scalar(select(func.sum(Sighting.count)))
    second = run(network["kz-analyst"], data)
    assert first.accepted == 20 and second.accepted == 0 and second.duplicates == 20
    assert "nothing changed" in second.note
    assert totals(session) == before
    assert session.scalar(select(func.sum(Sighting.count))) == sightings
    assert session.scalar(select(func.count()).select_from(Submission)) == 1


def test_a_file_sent_again_at_another_tlp_says_what_became_of_its_records(session, network) -> None:  # type: ignore[no-untyped-def]
    """The CERT-EU sample marks each row (AMBER, GREEN): declared CLEAR, the rows keep their
    own, stricter labels, so a second sending at another level folds into the first's events
    (a feed's rows have no identity to tell a repeat from a second observation). The receipt
    says so, rather than that the events are now held at two levels."""
    from tests.conftest import shared_file

    data = shared_file("feeds/cert_eu_example.csv").read_bytes()
    analyst = network["kz-analyst"]
    first = run(analyst, data, name="cert_eu_example.csv", tlp="clear")
    assert first.accepted == 2
    again = run(analyst, data, name="cert_eu_example.csv", tlp="green")
    assert (again.accepted, again.duplicates) == (0, 2)
    assert again.note == service.RESUBMITTED_AT_ANOTHER_TLP_FOLDED
    assert totals(session) == (2, 4)  # counted again, as the note says
    # a file whose records take the level declared: new events, held at both
    data = scan_csv([("2026-11-30 10:00:00", f"203.0.113.{i}", 3389) for i in range(3)])
    run(analyst, data, tlp="green")
    both = run(analyst, data, tlp="amber")
    assert both.accepted == 3 and both.note == service.RESUBMITTED_AT_ANOTHER_TLP


def test_the_same_file_with_its_tlp_declared_says_its_events_keep_their_markings(
    session, network
) -> None:  # type: ignore[no-untyped-def]
    data = scan_csv([("2026-11-30 10:00:00", f"203.0.113.{i}", 3389) for i in range(5)])
    first = run(network["kz-analyst"], data)  # left to the records' markings: AMBER unmarked
    before = totals(session)
    declared = run(network["kz-analyst"], data, tlp="amber")
    assert (declared.accepted, declared.duplicates) == (0, 5) and first.accepted == 5
    assert "with its records' own TLP markings; nothing changed" in declared.note
    assert totals(session) == before  # not counted twice
    again = run(network["kz-analyst"], data)
    assert "nothing changed" in again.note and "markings" not in again.note
    # and the other way round
    other = scan_csv([("2026-11-30 11:00:00", "203.0.113.99", 3389)])
    run(network["kz-analyst"], other, tlp="amber")
    assert "with its TLP declared; nothing changed" in run(network["kz-analyst"], other).note
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Submission)) == 2


def test_a_file_with_a_bad_row_submitted_again_says_its_errors_are_from_the_first_reading(
    session,
    network,  # type: ignore[no-untyped-def]
) -> None:
    data = scan_csv([("2026-11-30 10:00:00", "203.0.113.1", 3389), ("not a time", "x", 1)])
    first = run(network["kz-analyst"], data)
    second = run(network["kz-analyst"], data)
    assert (first.accepted, first.rejected) == (1, 1)
    assert (second.accepted, second.duplicates, second.rejected) == (0, 1, 1)
    assert second.errors == first.errors
    assert second.note == service.RESUBMITTED_WITH_ERRORS


def test_duplicates_inside_the_window_fold_into_a_count(session, network) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("2026-11-30 10:00:00", "203.0.113.1", 3389),
        ("2026-11-30 18:00:00", "203.0.113.1", 3389),  # same day: same observation
        ("2026-12-02 10:00:00", "203.0.113.1", 3389),
    ]  # another window
    receipt = run(network["kz-analyst"], scan_csv(rows))
    assert (receipt.accepted, receipt.duplicates) == (2, 1)
    session.rollback()
    counts = sorted(session.scalars(select(Event.count)))
    assert counts == [1, 2]
    folded = session.scalar(select(Event).where(Event.count == 2))
    assert folded.last_seen > folded.time


def test_a_repeat_in_a_later_file_widens_the_stored_event_either_way(session, network) -> None:  # type: ignore[no-untyped-def]
    def seen(*times: str) -> None:
        rows = [(t, "203.0.113.70", 3389) for t in times]
        run(network["kz-analyst"], scan_csv(rows), name=f"{times[0]}.csv")

    seen("2026-11-30 12:00:00")
    seen("2026-11-30 14:00:00")  # later in the window: last seen moves
    seen("2026-11-30 09:00:00", "2026-11-30 08:00:00")  # earlier: first seen moves
    seen("2026-11-30 10:00:00")  # inside the span: only the count grows
    session.rollback()
    event = session.scalars(select(Event)).one()
    assert (event.time.hour, event.last_seen.hour, event.count) == (8, 14, 5)


def test_the_same_value_from_two_states_is_two_sightings(session, network) -> None:  # type: ignore[no-untyped-def]
    data = scan_csv([("2026-11-30 10:00:00", "203.0.113.50", 3389)])
    run(network["kz-analyst"], data)
    run(network["uz-analyst"], data)
    session.rollback()
    indicator = session.scalar(select(Indicator).where(Indicator.value == "203.0.113.50"))
    states = set(
        session.scalars(select(Sighting.country).where(Sighting.indicator_id == indicator.id))
    )
    assert states == {"KZ", "UZ"}


def test_an_indicator_spans_every_sighting_and_links_every_event(session, network) -> None:  # type: ignore[no-untyped-def]
    def seen(when: str, port: int) -> None:
        run(network["kz-analyst"], scan_csv([(when, "203.0.113.60", port)]), name=f"{port}.csv")

    seen("2026-11-30 10:00:00", 3389)
    seen("2026-12-05 10:00:00", 3390)  # later: last seen moves
    seen("2026-11-20 10:00:00", 3391)  # earlier: first seen moves
    seen("2026-12-01 10:00:00", 3392)  # inside the span: the indicator stays as it was
    session.rollback()
    indicator = session.scalar(select(Indicator).where(Indicator.value == "203.0.113.60"))
    assert (indicator.first_seen.day, indicator.last_seen.day) == (20, 5)
    sighting = session.scalar(select(Sighting).where(Sighting.indicator_id == indicator.id))
    assert sighting.count == 4
    linked = session.scalars(
        select(EventObservable.event_id).where(EventObservable.indicator_id == indicator.id)
    ).all()
    assert len(linked) == 4 == session.scalar(select(func.count()).select_from(Event))


def test_deleting_events_takes_their_links_and_only_theirs(session, network) -> None:  # type: ignore[no-untyped-def]
    rows = [("2026-11-30 10:00:00", f"203.0.113.{i}", 3389) for i in range(1, 6)]
    run(network["kz-analyst"], scan_csv(rows))
    session.rollback()

    def links() -> set[str]:
        return set(
            session.scalars(
                select(Indicator.value).join(
                    EventObservable, EventObservable.indicator_id == Indicator.id
                )
            )
        )

    assert links() == {f"203.0.113.{i}" for i in range(1, 6)}
    one = select(Event.id).where(Event.primary_value == "203.0.113.1").scalar_subquery()
    session.execute(delete(Event).where(Event.id == one))  # one row
    session.execute(delete(Event).where(Event.primary_value.in_(["203.0.113.2", "203.0.113.3"])))
    session.commit()
    assert links() == {"203.0.113.4", "203.0.113.5"}


def power_cut_at(monkeypatch, n: int) -> None:  # type: ignore[no-untyped-def]
    """Make the n-th batch write fail, as if the process died there."""
    calls = {"n": 0}
    original = service.write_batch

    def write_until_the_cut(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("power cut")
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "write_batch", write_until_the_cut)


@pytest.mark.parametrize("parallel_from", [None, 0], ids=["one-process", "child"])
def test_interrupted_run_resumes_without_loss_or_duplicates(  # type: ignore[no-untyped-def]
    session, network, monkeypatch, parallel_from
) -> None:
    rows = [("2026-11-30 10:00:00", f"192.0.2.{i % 200}", 3389 + i // 200) for i in range(1000)]
    data = scan_csv(rows)
    monkeypatch.setattr(service, "COMMIT_ROWS", 0)  # a commit after every batch
    with monkeypatch.context() as cut:
        power_cut_at(cut, 3)
        with pytest.raises(RuntimeError):
            run(network["kz-analyst"], data, batch_size=100, parallel_from=parallel_from)
    assert totals(session)[0] == 200  # two batches committed
    receipt = run(network["kz-analyst"], data, batch_size=100, parallel_from=parallel_from)
    assert "resumed" in receipt.note
    assert receipt.accepted + receipt.duplicates == 1000
    assert totals(session) == (1000, 1000)


def test_sqlite_commits_every_few_batches_and_resumes_from_the_last_commit(
    session, network, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL commits every batch")
    rows = [("2026-11-30 10:00:00", f"192.0.2.{i % 250}", 3389 + i // 250) for i in range(1000)]
    data = scan_csv(rows)
    monkeypatch.setattr(service, "COMMIT_ROWS", 300)
    with monkeypatch.context() as cut:
        power_cut_at(cut, 5)
        with pytest.raises(RuntimeError):
            run(network["kz-analyst"], data, batch_size=100)
    assert totals(session)[0] == 300  # batches 1-3 in one commit; the fourth was lost
    receipt = run(network["kz-analyst"], data, batch_size=100)
    assert "resumed" in receipt.note
    assert totals(session) == (1000, 1000)


def test_reader_cannot_submit(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.errors import Forbidden

    with pytest.raises(Forbidden):
        run(network["kz-reader"], scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 22)]))


def test_a_file_with_nothing_to_take_in_says_so(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    actors = FIXTURES / "stix" / "threat-actor-leveraging-attack-patterns-and-malware.json"
    receipt = run(network["kz-analyst"], actors.read_bytes(), actors.name)
    assert (receipt.accepted, receipt.duplicates, receipt.rejected) == (0, 0, 0)
    assert receipt.status == "done" and receipt.note.startswith("nothing to take in")
    found = run(network["kz-analyst"], scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 22)]))
    assert found.accepted == 1 and found.note == ""


def test_unknown_format_lists_the_supported_ones(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.intake.registry import UnsupportedFormat

    with pytest.raises(UnsupportedFormat) as info:
        run(network["kz-analyst"], b"\x00\x01\x02 binary junk", "blob.bin")
    assert info.value.status == 415 and "stix" in str(info.value) and "misp" in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("parallel_from", "stop"),
    [("0", signal.SIGKILL), (str(1 << 40), signal.SIGKILL), ("0", signal.SIGINT)],
    ids=["child", "one-process", "ctrl-c"],
)
def test_killed_process_resumes_without_loss_or_duplicates(  # type: ignore[no-untyped-def]
    env, session, network, tmp_path, monkeypatch, parallel_from, stop
) -> None:
    """A real `concord ingest` process is killed (or interrupted) mid-file, then run again."""
    monkeypatch.setenv("CONCORD_INTAKE_PARALLEL_BYTES", parallel_from)
    n = 60_000
    rows = [
        ("2026-11-30 10:00:00", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 3389)
        for i in range(n)
    ]
    path = tmp_path / "scan_rdp.csv"
    path.write_bytes(scan_csv(rows))
    cmd = [sys.executable, "-m", "concord", "ingest", str(path), "--as", "kz-cert", "--json"]
    proc = subprocess.Popen(
        cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            session.rollback()
            done = session.scalar(select(Submission.rows_done)) or 0
            if done > 0 or proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(stop)
    finally:
        proc.wait(timeout=30)
    if stop == signal.SIGINT:  # Ctrl-C: said so, in a line, with what to do
        assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""
        said = proc.stderr.read().decode() if proc.stderr else ""
        assert said.startswith("interrupted: ") and "run the same command again" in said
    session.rollback()
    partial = totals(session)
    assert partial[0] < n, "the process finished before it could be killed"
    sub_id = session.scalar(select(Submission.id))
    # no run holds it any more: it reads as interrupted, not as still running
    assert service.get_receipt(session, network["kz-analyst"], sub_id).status in (
        "interrupted",
        "failed",
    )
    again = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert totals(session) == (n, n)


def test_an_interrupt_stays_an_interrupt_when_the_rollback_fails(  # type: ignore[no-untyped-def]
    network, monkeypatch
) -> None:
    """On Ctrl-C the driver cancels the running statement; the cancel may hit the rollback
    that follows. The interrupt must still reach the command (exit 130), not a failed file."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def interrupted(*args, **kw):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    def cancelled(self) -> None:  # type: ignore[no-untyped-def]
        raise OperationalError("ROLLBACK", {}, Exception("canceling statement due to user request"))

    data = scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 3389)])
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(service, "write_batch", interrupted)
        patch.setattr(Session, "rollback", cancelled)
        run(network["kz-analyst"], data)


def test_raw_record_found_in_any_stored_part(session, network, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.events.model import SubmissionFile

    monkeypatch.setattr(service, "PART_BYTES", 300)  # many small parts
    rows = [("2026-11-30 10:00:00", f"192.0.2.{i}", 3389) for i in range(60)]
    data = scan_csv(rows)
    run(network["kz-analyst"], data)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(SubmissionFile)) > 5
    lines = data.decode().splitlines()
    for event in session.scalars(select(Event)):
        number = int(event.raw_location.rsplit("line ", 1)[1])
        assert events.raw_record(session, event) == lines[number - 1]


@pytest.mark.parametrize("parallel_from", [None, 0], ids=["one-process", "child"])
def test_a_submission_lists_the_events_it_added_by_their_span_of_ids(  # type: ignore[no-untyped-def]
    session, network, parallel_from
) -> None:
    analyst = network["kz-analyst"]
    first = run(analyst, scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 3389)]))
    rows = [("2026-11-30 10:00:00", f"192.0.2.{i}", 3389) for i in range(1, 6)]
    second = run(analyst, scan_csv(rows), batch_size=2, parallel_from=parallel_from)
    assert (second.accepted, second.duplicates) == (4, 1)  # 192.0.2.1 folds into the first
    session.rollback()
    spans = {
        sub.id: (sub.first_event_id, sub.last_event_id)
        for sub in session.scalars(select(Submission))
    }
    listed = {
        sub_id: sorted(
            e.id for e in events.search(session, analyst, events.EventQuery(submission_id=sub_id))
        )
        for sub_id in (first.id, second.id)
    }
    assert listed[first.id] == [spans[first.id][0]] == [spans[first.id][1]]
    assert len(listed[second.id]) == 4
    assert (listed[second.id][0], listed[second.id][-1]) == spans[second.id]
    assert events.search(session, analyst, events.EventQuery(submission_id=999)) == []


def test_a_report_never_folds_into_an_event_of_another_tlp(session, network) -> None:  # type: ignore[no-untyped-def]
    # A RED report counted into a GREEN event would tell GREEN readers it was made, and when.
    green = scan_csv([("2026-11-30 00:10:00", "203.0.113.80", 3389)])
    red = scan_csv([("2026-11-30 01:20:00", "203.0.113.80", 3389)])
    assert run(network["kz-analyst"], green, tlp="green").accepted == 1
    again = run(network["kz-analyst"], red, tlp="red")
    assert (again.accepted, again.duplicates) == (1, 0)
    session.rollback()
    stored = {e.tlp: (e.count, e.last_seen) for e in session.scalars(select(Event))}
    assert set(stored) == {"green", "red"} and stored["green"][0] == 1
    # the same TLP still folds; AMBER, the default, keeps the keys stored before
    amber = scan_csv([("2026-11-30 02:00:00", "203.0.113.80", 3389)])
    amber_later = scan_csv([("2026-11-30 03:00:00", "203.0.113.80", 3389)])
    assert run(network["kz-analyst"], amber).accepted == 1
    assert run(network["kz-analyst"], amber_later).duplicates == 1


def test_stix_indicators_naming_no_value_are_skipped_as_misp_attributes_are(
    session, network
) -> None:  # type: ignore[no-untyped-def]
    # One pattern on an e-mail's subject, one on its attachment's name: nothing to correlate
    # on or find an owner by, as a MISP subject or file-name attribute; counted, not events.
    from tests.conftest import FIXTURES

    data = (FIXTURES / "stix" / "malicious-email-indicator-with-attachment.json").read_bytes()
    first = run(network["kz-analyst"], data, name="email-indicators.json")
    assert (first.accepted, first.duplicates, first.rejected, first.skipped) == (0, 0, 0, 2)
    assert totals(session) == (0, 0)


def test_without_a_declared_tlp_each_record_keeps_its_own_marking(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    # The MISP event is tagged tlp:white (TLP 1.0 for CLEAR).
    data = (FIXTURES / "misp" / "57c4445b-c548-4654-af0b-4be3950d210f.json").read_bytes()
    marked = run(network["kz-analyst"], data, name="event.json")
    assert marked.accepted and marked.tlp == "amber"
    session.rollback()
    assert set(session.scalars(select(Event.tlp))) == {"clear"}
    declared = run(network["uz-analyst"], data, name="event.json", tlp="amber")
    assert declared.accepted
    session.rollback()
    uz_levels = session.scalars(select(Event.tlp).where(Event.country == "UZ"))
    assert set(uz_levels) == {"amber"}  # a declared TLP is never loosened by a record


def test_a_record_marked_red_without_a_user_is_refused_where_it_is(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    # The indicator's description is marked TLP:RED, its name TLP:GREEN: the strictest holds.
    # Its pattern, a MATCHES on the sender, names no value: one that does stands in for it.
    doc = json.loads((FIXTURES / "stix" / "using-granular-markings.json").read_bytes())
    doc["objects"][1]["pattern"] = "[email-message:from_ref.value = 'banking@g0thamnatl.com']"
    data = json.dumps(doc).encode()
    receipt = run(None, data, name="bundle.json", as_org="kz-cert")
    assert (receipt.accepted, receipt.duplicates, receipt.rejected) == (0, 0, 1), receipt
    [error] = receipt.errors
    assert error["pointer"].startswith("/objects/") and "TLP:RED" in error["reason"]
    assert totals(session) == (0, 0)
    # Sent again by a user, undeclared, the file is the organisation's submission already:
    # the receipt says how to take the refused record in
    again = run(network["kz-analyst"], data, name="bundle.json")
    assert (again.id, again.accepted) == (receipt.id, 0)
    assert again.note == service.RESUBMITTED_RED_REFUSED
    # declared RED by a user, the record is theirs to read
    sent = run(network["kz-analyst"], data, name="bundle.json", tlp="red")
    assert (sent.accepted, sent.rejected) == (1, 0), sent
    session.rollback()
    assert session.scalar(select(Event.tlp)) == "red"
    assert events.get_event(session, network["kz-analyst"], session.scalar(select(Event.id)))


def test_a_built_in_csv_profile_can_be_declared_by_name(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    data = (FIXTURES / "feeds" / "dataplane_sshclient.txt").read_bytes()
    receipt = run(network["kz-analyst"], data, name="export.txt", fmt="dataplane")
    assert receipt.accepted > 0, receipt
    parallel = run(network["uz-analyst"], data, name="export.txt", fmt="dataplane", parallel_from=0)
    assert parallel.accepted == receipt.accepted
    # detection picks the same profile: named or not, the file is one submission
    again = run(network["kz-analyst"], data, name="export.txt")
    assert (again.id, again.accepted, again.duplicates) == (receipt.id, 0, receipt.accepted)
    assert totals(session)[1] == 2 * receipt.accepted  # each state's, counted once


def test_a_declared_profile_detection_would_not_pick_is_read_as_declared(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    # URLhaus's recent-URLs file (9 columns) declared as its TLD variant (8): refused line
    # by line, as declared, rather than read as detection would.
    data = (FIXTURES / "feeds" / "urlhaus_recent.csv").read_bytes()
    declared = run(network["kz-analyst"], data, name="feed.csv", fmt="abusech-urlhaus-tld")
    assert declared.format == "abusech-urlhaus-tld" and declared.accepted == 0, declared


def test_records_naming_no_observable_are_counted_as_skipped(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    # 9 attributes: 3 hashes; 2 links, a comment, a text, a file name and a registry key
    data = (FIXTURES / "misp" / "57c4445b-c548-4654-af0b-4be3950d210f.json").read_bytes()
    receipt = run(network["kz-analyst"], data, name="event.json")
    assert (receipt.accepted, receipt.rejected, receipt.skipped) == (3, 0, 6)
    assert receipt.as_dict()["skipped"] == 6
    again = run(network["kz-analyst"], data, name="event.json")
    # nothing changes: the records are duplicates, and the skipped ones are skipped again
    assert (again.accepted, again.duplicates, again.skipped) == (0, 3, 6)
    parallel = run(network["uz-analyst"], data, name="event.json", parallel_from=0)
    assert (parallel.accepted, parallel.skipped) == (3, 6)


def test_utf16_files_are_read_as_their_utf8_twins(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    scan = (FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv").read_text()
    stix = (FIXTURES / "stix" / "indicator-for-c2-ip-address.json").read_text()
    plain = run(network["kz-analyst"], scan.encode(), name="scan_rdp.csv", tlp="green")
    # Excel's "Unicode text" and some Windows tools write UTF-16 with a byte order mark
    wide = run(network["uz-analyst"], scan.encode("utf-16"), name="scan_rdp.csv", tlp="green")
    assert (wide.format, wide.accepted, wide.rejected) == ("shadowserver", plain.accepted, 0)
    big_endian = codecs.BOM_UTF16_BE + stix.encode("utf-16-be")
    bundle = run(network["kz-analyst"], big_endian, name="c2.json")
    assert (bundle.format, bundle.rejected) == ("stix", 0) and bundle.accepted >= 1
    session.rollback()
    from concord.events.service import raw_record

    event = session.scalars(select(Event).where(Event.country == "UZ")).first()
    assert raw_record(session, event) in scan.splitlines()  # its row, readable as sent


def test_lines_refused_in_a_row_for_one_reason_are_one_entry(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    header, first, *rest = (
        (FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv").read_text().splitlines(True)
    )
    # a stray block of text pasted into the report: every line of it out of step
    pasted = [f"notes from the analyst - part {i}\n" for i in range(50)]
    data = "".join([header, first, *pasted, *rest, "one more stray line\n"]).encode()
    receipt = run(network["kz-analyst"], data, name="scan_rdp.csv")
    assert receipt.rejected == 51 and receipt.accepted == 1 + len(rest)
    width = len(header.split(","))
    assert [(e["line"], e["reason"]) for e in receipt.errors] == [
        (
            3,
            f"expected {width} fields, the line has 1 "
            "(the same on each of the 49 lines that follow)",
        ),
        (53 + len(rest), f"expected {width} fields, the line has 1"),
    ]


def test_a_misp_file_object_is_one_event_and_one_campaign(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.db import session_scope
    from concord.events import correlation
    from tests.conftest import FIXTURES

    # One file object: a malware sample, its md5, sha1 and sha256. Read per attribute it made
    # an event per hash, and two states reporting it three campaigns of two events each.
    data = (FIXTURES / "misp" / "malware_exist.json").read_bytes()
    for analyst in ("kz-analyst", "uz-analyst"):
        receipt = run(network[analyst], data, name="malware.json")
        assert (receipt.accepted, receipt.rejected, receipt.skipped) == (1, 0, 0), receipt
    with session_scope() as s:
        result = correlation.correlate(s)
    assert result.cross_state == 3  # the three hashes
    assert result.campaigns is not None
    assert (result.campaigns.campaigns, result.campaigns.events) == (1, 2)
    session.rollback()
    kz_event = session.scalar(select(Event).where(Event.country == "KZ"))
    assert kz_event.raw_location == "malware.json:/response/0/Object/0"
    hashes = session.scalars(
        select(Indicator.kind)
        .join(EventObservable, EventObservable.indicator_id == Indicator.id)
        .where(EventObservable.event_id == kz_event.id)
    )
    assert sorted(hashes) == ["md5", "sha1", "sha256"]


def test_a_submission_is_written_by_one_run_at_a_time(session, network) -> None:  # type: ignore[no-untyped-def]
    from concord.errors import Conflict
    from concord.intake import lease

    factory = session_factory()
    with lease.writing(factory, 7):
        with pytest.raises(Conflict, match="receipt 7"), lease.writing(factory, 7):
            pass
        with lease.writing(factory, 8):  # another submission is another lease
            pass
    with lease.writing(factory, 7):  # let go when the block ends
        pass


def test_the_same_file_sent_again_while_it_is_taken_in_is_refused_not_counted_twice(
    session, network, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import threading

    from concord.errors import Conflict

    monkeypatch.setattr(service, "COMMIT_ROWS", 1)  # the first run commits, then waits
    n = 3000
    data = scan_csv([("2026-11-30 10:00:00", f"10.9.{i >> 8}.{i & 255}", 3389) for i in range(n)])
    first_batch, go_on = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def progress(_done: int) -> None:
        first_batch.set()
        go_on.wait(30)

    def first() -> None:
        outcome["first"] = run(
            network["kz-analyst"], data, batch_size=1000, parallel_from=1 << 40, progress=progress
        )

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_batch.wait(30)
        with pytest.raises(Conflict, match="being taken in right now"):
            run(network["kz-analyst"], data, batch_size=1000, parallel_from=1 << 40)
        session.rollback()
        sub_id = session.scalar(select(Submission.id))
        assert service.get_receipt(session, network["kz-analyst"], sub_id).status == "running"
    finally:
        go_on.set()
        thread.join(60)
    receipt = outcome["first"]
    assert (receipt.accepted, receipt.duplicates) == (n, 0)  # type: ignore[attr-defined]
    assert totals(session) == (n, n)
    again = run(network["kz-analyst"], data)
    assert (again.accepted, again.duplicates) == (0, n)
    assert totals(session) == (n, n)


def _resent(data: bytes, edit=None) -> bytes:  # type: ignore[no-untyped-def]
    """The same document written again, as a MISP re-pull or a sync push writes it."""
    import json

    doc = json.loads(data)
    if edit:
        edit(doc)
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def test_a_misp_event_pulled_again_after_an_edit_counts_only_what_changed(  # type: ignore[no-untyped-def]
    session, network
) -> None:
    from tests.conftest import FIXTURES

    data = (FIXTURES / "misp" / "existing_event.json").read_bytes()
    first = run(network["kz-analyst"], data, name="event.json")
    assert first.accepted > 2
    before = totals(session)
    sightings = session.scalar(select(func.sum(Sighting.count)))

    def edit(doc) -> None:  # type: ignore[no-untyped-def]
        event = doc.get("Event", doc)
        event["info"] = event.get("info", "") + " "  # an edit that changes no record
        attribute = next(a for a in event["Attribute"] if a["type"] == "domain")
        attribute["value"] = "edited.example"

    again = run(network["kz-analyst"], _resent(data, edit), name="event.json")
    assert (again.accepted, again.rejected) == (1, 0), again
    assert again.duplicates == first.accepted - 1 + first.duplicates
    # one new event for the edited attribute; nothing else counted twice
    assert totals(session) == (before[0] + 1, before[1] + 1)
    assert session.scalar(select(func.sum(Sighting.count))) == sightings + 1


def test_a_stix_bundle_written_again_counts_nothing_twice(session, network) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    data = (FIXTURES / "stix" / "misp-stix_test_event1_stix21.json").read_bytes()
    first = run(network["kz-analyst"], data, name="bundle.json")
    assert first.accepted > 0
    before = totals(session)
    again = run(network["kz-analyst"], _resent(data), name="bundle.json")
    assert again.accepted == 0 and again.duplicates == first.accepted + first.duplicates
    assert totals(session) == before
    # another sender's copy is that sender's sighting: counted for it
    other = run(network["uz-analyst"], _resent(data), name="bundle.json")
    assert other.accepted == first.accepted


def test_two_versions_of_a_stix_object_in_one_bundle_count_once(session, network) -> None:  # type: ignore[no-untyped-def]
    import json

    from tests.conftest import FIXTURES

    doc = json.loads((FIXTURES / "stix" / "indicator-for-c2-ip-address.json").read_bytes())
    indicator = next(o for o in doc["objects"] if o["type"] == "indicator")
    doc["objects"].append({**indicator, "modified": "2030-01-01T00:00:00.000Z"})
    receipt = run(network["kz-analyst"], json.dumps(doc).encode(), name="bundle.json")
    assert (receipt.accepted, receipt.duplicates) == (1, 1), receipt
    assert totals(session) == (1, 1)


def test_a_stix_sighting_counts_the_times_it_says_and_only_once(session, network) -> None:  # type: ignore[no-untyped-def]
    import json

    from tests.conftest import FIXTURES

    doc = json.loads((FIXTURES / "stix" / "sighting-of-an-indicator.json").read_bytes())
    sighting = next(o for o in doc["objects"] if o["type"] == "sighting")
    sighting["count"] = 25  # the sample's says 1
    data = json.dumps(doc).encode()
    receipt = run(network["kz-analyst"], data, name="bundle.json")
    assert (receipt.accepted, receipt.duplicates) == (2, 0), receipt
    # the indicator once, its sighting 25 times; the URL is sighted 26 times in all
    assert sorted(session.scalars(select(Event.count))) == [1, 25]
    assert session.scalar(select(func.sum(Sighting.count))) == 26
    # written again, the sighting is the same record: counted neither once nor 25 times more
    again = run(network["kz-analyst"], _resent(data), name="bundle.json")
    assert (again.accepted, again.duplicates) == (0, 2), again
    assert totals(session) == (2, 26)
    assert session.scalar(select(func.sum(Sighting.count))) == 26
