"""Spamhaus DROP lists: the public sample, read whole; networks as indicators; errors with
their lines; owners found by a network's first address; a network two states list
correlates."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from concord.db import session_factory
from concord.events import correlation
from concord.events.model import Event, Indicator
from concord.intake import registry
from concord.intake import service as intake
from concord.intake.readers.spamhaus import READER
from concord.intake.records import EventRecord, Observable, ObservableKind, ReadError
from tests.conftest import shared_file
from tests.intake.test_csvfeed import check, mutated
from tests.intake.test_service import give_prefix

SAMPLE = shared_file("feeds/spamhaus_drop.txt")


def read(data: bytes, name: str = "drop.txt") -> tuple[list[EventRecord], list[ReadError]]:
    items = list(READER.read(io.BytesIO(data), name))
    return (
        [i for i in items if isinstance(i, EventRecord)],
        [i for i in items if isinstance(i, ReadError)],
    )


def test_the_public_sample() -> None:
    data = SAMPLE.read_bytes()
    assert registry.choose(data[:65536], "drop.txt", None) is READER
    records, errors = read(data)
    assert errors == []
    assert [r.observables for r in records] == [
        (Observable(ObservableKind.IPV4_NET, "1.4.0.0/17"),),
        (Observable(ObservableKind.IPV6_NET, "2a06:e480::/29"),),
    ]
    listed = datetime(2015, 9, 14, 4, 39, 22, tzinfo=UTC)  # its Last-Modified comment
    assert {r.time for r in records} == {listed}
    assert [r.extra for r in records] == [{"blocklist": "SBL256893"}, {"blocklist": "SBL301771"}]
    assert {(r.rsit_class, r.rsit_type, r.nature) for r in records} == {
        ("abusive-content", "spam", "indicator")
    }
    assert [r.location.line for r in records] == [5, 6]
    assert records[0].raw == "1.4.0.0/17 ; SBL256893"


def test_bad_entries_are_errors_with_their_line_and_the_rest_is_read() -> None:
    data = b"; Spamhaus DROP List\n1.4.0.0/33 ; SBL1\nnot a network ; SBL2\n192.0.2.7/32\n"
    records, errors = read(data)
    assert [(e.location.line, e.reason.split(" ")[0:2]) for e in errors] == [
        (2, ["invalid", "network"]),
        (3, ["invalid", "network"]),
    ]
    # a /32 is an address, and an entry without reference is still an entry
    assert [r.observables for r in records] == [(Observable(ObservableKind.IPV4, "192.0.2.7"),)]
    assert records[0].time is None and records[0].extra == {}


def test_a_slip_in_a_network_is_refused_not_widened() -> None:
    data = (
        b"; Spamhaus DROP List\n1.2.3.4/16 ; SBL1\n5.0.0.0/1 ; SBL2\n2001:db8::1/32 ; SBL3\n"
        b"::/8 ; SBL4\n10.0.0.0/8 ; SBL5\n"
    )
    records, errors = read(data)
    assert [(e.location.line, e.reason) for e in errors] == [
        (
            2,
            "'1.2.3.4/16' is not a network: its address has host bits set "
            "(the network would be 1.2.0.0/16)",
        ),
        (3, "network '5.0.0.0/1' is wider than /8: no list names one so wide"),
        (
            4,
            "'2001:db8::1/32' is not a network: its address has host bits set "
            "(the network would be 2001:db8::/32)",
        ),
        (5, "network '::/8' is wider than /16: no list names one so wide"),
    ]
    assert [r.observables for r in records] == [
        (Observable(ObservableKind.IPV4_NET, "10.0.0.0/8"),)
    ]


def test_other_feeds_are_not_taken_for_drop() -> None:
    for name in ("abusech_urlhaus.csv", "dataplane_sshpwauth.txt", "cert_eu_example.csv"):
        head = shared_file(f"feeds/{name}").read_bytes()[:65536]
        assert not READER.sniff(head, name)


def test_ingest_finds_the_owner_and_two_states_correlate(session, network) -> None:  # type: ignore[no-untyped-def]
    give_prefix(session, "kz-bank", "1.4.0.0/24")
    for user in ("kz-analyst", "uz-analyst"):
        receipt = intake.ingest(
            session_factory(),
            network[user],
            intake.Source(io.BytesIO(SAMPLE.read_bytes()), "spamhaus_drop.txt"),
            tlp="green",
        )
        assert (receipt.format, receipt.accepted, receipt.rejected) == ("spamhaus-drop", 2, 0)
    session.rollback()
    owners = dict(
        session.execute(
            select(Event.primary_value, Event.owner_org_id).where(Event.country == "KZ")
        ).all()
    )
    assert owners["1.4.0.0/17"] is not None and owners["2a06:e480::/29"] is None
    correlation.correlate(session)
    session.commit()
    kinds = dict(
        session.execute(select(Indicator.value, Indicator.kind).where(Indicator.cross_state)).all()
    )
    assert kinds == {"1.4.0.0/17": "ipv4-net", "2a06:e480::/29": "ipv6-net"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_never_raises_and_every_error_has_a_line(case: tuple[str, bytes]) -> None:
    name, data = case
    READER.sniff(data[:65536], name)
    check(READER.read(io.BytesIO(data), name), name)
