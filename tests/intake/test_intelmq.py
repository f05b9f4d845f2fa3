"""IntelMQ events, one JSON object per line. The fixture was written for these tests in
IntelMQ's file-output format (IntelMQ's own samples are AGPL and are not copied)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concord.events.rsit import RSIT
from concord.intake.readers.intelmq import READER
from concord.intake.records import MAX_RAW, EventRecord, ObservableKind, ReadError
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "intelmq" / "events.jsonl"


def read(data: bytes, name: str = "events.jsonl") -> tuple[list[EventRecord], list[ReadError]]:
    items = list(READER.read(io.BytesIO(data), name))
    records = [i for i in items if isinstance(i, EventRecord)]
    errors = [i for i in items if isinstance(i, ReadError)]
    assert len(records) + len(errors) == len(items)
    return records, errors


def observables(record: EventRecord) -> set[tuple[str, str, str]]:
    return {(o.kind.value, o.value, o.role) for o in record.observables}


def line(**fields: object) -> bytes:
    return json.dumps({"__type": "Event", **fields}).encode() + b"\n"


def test_the_fixture_is_read_whole() -> None:
    records, errors = read(EVENTS.read_bytes())
    assert errors == []
    assert [r.location.line for r in records] == [1, 2, 3, 4, 5, 6]
    assert {r.location.source for r in records} == {"events.jsonl"}


def test_a_scan_event() -> None:
    scan = read(EVENTS.read_bytes())[0][0]
    assert scan.feed == "intelmq:Accessible-RDP"
    assert (scan.rsit_class, scan.rsit_type) == ("vulnerable", "potentially-unwanted-accessible")
    assert observables(scan) == {("ipv4", "192.0.2.10", "source"), ("asn", "64500", "source")}
    assert (scan.port, scan.protocol, scan.application) == (3389, "tcp", "rdp")
    assert scan.time == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    assert scan.tlp == "amber" and scan.confidence == 100
    # raw is the feed's own line, decoded from base64
    assert scan.raw == '"2024-03-01 10:15:00","192.0.2.10",3389,,"rdp"'
    assert scan.extra["tag"] == "rdp" and scan.extra["naics"] == "517311"
    assert scan.extra["classification.identifier"] == "accessible-rdp"
    assert scan.extra["source.geolocation.cc"] == "KZ"


def test_an_infection_event_takes_the_destination_port() -> None:
    infected = read(EVENTS.read_bytes())[0][1]
    assert (infected.rsit_class, infected.rsit_type) == ("malicious-code", "infected-system")
    assert observables(infected) == {
        ("ipv4", "203.0.113.45", "source"),
        ("asn", "64501", "source"),
        ("ipv4", "198.51.100.7", "destination"),
        ("domain", "c2.example.net", "destination"),
    }
    assert infected.port == 80 and infected.extra["source.port"] == "50123"
    assert infected.extra["malware"] == "andromeda"
    assert infected.raw.startswith('{"__type": "Event"')  # no raw field: the JSON line


def test_phishing_legacy_types_ipv6_hashes_and_the_hierarchical_output() -> None:
    records, _ = read(EVENTS.read_bytes())
    phishing, legacy, mining, c2 = records[2:]
    assert (phishing.rsit_class, phishing.rsit_type) == ("fraud", "phishing")
    assert phishing.description == "Credential phishing page imitating a bank login"
    assert phishing.time == datetime(2024, 3, 3, 1, 2, 3, tzinfo=UTC)
    assert ("url", "http://login-bank.example.com/secure/index.php", "source") in observables(
        phishing
    )
    # "vulnerable service" was IntelMQ's word before RSIT's "vulnerable-system"
    assert (legacy.rsit_class, legacy.rsit_type) == ("vulnerable", "vulnerable-system")
    assert legacy.extra["classification.type"] == "vulnerable service"
    assert (mining.rsit_class, mining.rsit_type) == ("fraud", "unauthorised-use-of-resources")
    assert ("ipv6", "2001:db8::1", "source") in observables(mining)
    assert (
        "sha256",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "malware",
    ) in (observables(mining))
    assert mining.tlp == "clear"  # TLP 1.0 WHITE
    assert c2.feed == "intelmq:Example C2 Tracker"
    assert (c2.rsit_class, c2.rsit_type) == ("malicious-code", "c2-server")
    assert (c2.port, c2.application, c2.confidence) == (443, "https", 90)
    assert c2.extra["first_seen"] == "2024-02-28"
    assert c2.extra["classification.identifier"] == "cobaltstrike"


def test_bad_lines_are_errors_with_their_line_and_reading_goes_on() -> None:
    good = line(**{"source.ip": "192.0.2.1", "classification.type": "scanner"})
    data = b"".join(
        [
            good,  # 1
            b"\n",  # 2 blank
            b'{"source.ip": "192.0.2.2", \n',  # 3 not JSON
            b"[1, 2]\n",  # 4 not an object
            line(**{"source.ip": "192.0.2.300"}),  # 5
            line(**{"source.ip": "192.0.2.6", "time.source": "yesterday"}),  # 6
            line(**{"source.ip": "192.0.2.7", "source.port": 70000}),  # 7
            line(**{"__type": "Report", "raw": "eA=="}),  # 8
            b'{"source.ip": "192.0.2.9", "feed.name": "caf\xe9"}\n',  # 9 not UTF-8
            line(**{"source.ip": ["192.0.2.10"]}),  # 10
            line(**{"source.ip": "192.0.2.11", "tlp": "purple"}),  # 11
            good,  # 12
        ]
    )
    records, errors = read(data)
    assert [r.location.line for r in records] == [1, 12]
    assert [e.location.line for e in errors] == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    by_line = {e.location.line: e for e in errors}
    assert "not valid JSON" in by_line[3].reason
    assert by_line[5].location.pointer == "/source.ip" and "192.0.2.300" in by_line[5].reason
    assert by_line[6].location.pointer == "/time.source"
    assert by_line[7].location.pointer == "/source.port"
    assert "Report" in by_line[8].reason
    assert "not UTF-8" in by_line[9].reason
    assert by_line[10].location.pointer == "/source.ip"
    assert by_line[11].location.pointer == "/tlp"
    assert {(r.rsit_class, r.rsit_type) for r in records} == {("information-gathering", "scanner")}


def test_errors_in_the_hierarchical_output_point_into_it() -> None:
    data = json.dumps({"source": {"ip": "192.0.2.1", "port": "http"}}).encode()
    (error,) = read(data)[1]
    assert error.location.pointer == "/source/port"


def test_raw_is_decoded_bounded_and_bad_base64_is_set_aside() -> None:
    long_raw = base64.b64encode(("ж" * 10_000).encode()).decode()
    records, errors = read(
        line(**{"source.ip": "192.0.2.1", "raw": long_raw})
        + line(**{"source.ip": "192.0.2.2", "raw": "not base64!"})
    )
    assert errors == []
    assert len(records[0].raw.encode()) <= MAX_RAW and records[0].raw.startswith("жжж")
    assert records[1].raw.startswith('{"__type"') and records[1].extra["invalid.raw"]


def test_unknown_classification_and_missing_fields() -> None:
    (record,), errors = read(line(**{"source.fqdn": "Example.COM."}))
    assert errors == []
    assert (record.rsit_class, record.rsit_type) == ("other", "undetermined")
    assert record.feed == "intelmq" and record.time is None
    assert observables(record) == {("domain", "example.com", "source")}
    (other,), _ = read(
        line(
            **{
                "source.ip": "192.0.2.1",
                "classification.taxonomy": "other",
                "classification.type": "blacklist",
            }
        )
    )
    # an unknown type keeps IntelMQ's words beside the taxonomy's fallback
    assert (other.rsit_class, other.rsit_type) == ("other", "undetermined")
    assert other.extra["classification.type"] == "blacklist"


def test_sniff() -> None:
    assert READER.sniff(EVENTS.read_bytes(), "events.jsonl")
    assert READER.sniff(EVENTS.read_bytes()[:300], "cut.jsonl")  # a first line cut short
    assert not READER.sniff(b'{"type": "bundle", "objects": []}\n', "bundle.json")
    assert not READER.sniff(b'{"Event": {"info": "misp"}}\n', "misp.json")
    assert not READER.sniff(b'"timestamp","ip"\n', "scan_rdp.csv")
    assert not READER.sniff(b"[1, 2]\n", "list.json")


def test_the_callers_stream_stays_open() -> None:
    stream = io.BytesIO(EVENTS.read_bytes())
    assert len(list(READER.read(stream, "events.jsonl"))) == 6
    assert not stream.closed


SEEDS = [EVENTS.read_bytes()]
SPECIAL = [
    b'"',
    b"{",
    b"}",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff",
    b"\\u0000",
    b"\\ud800",
    b":",
    b"[",
    b"",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        if operation == "insert":
            piece = draw(st.one_of(st.sampled_from(SPECIAL), st.binary(max_size=12)))
            data = data[:at] + piece + data[at:]
        elif operation == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 30)) :]
        elif operation == "replace" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        else:
            data = data[:at]
    return data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
KEYS = [
    "source.ip",
    "source.port",
    "source.fqdn",
    "source.url",
    "source.asn",
    "destination.ip",
    "destination.port",
    "time.source",
    "classification.type",
    "classification.taxonomy",
    "feed.name",
    "feed.accuracy",
    "tlp",
    "raw",
    "malware.hash.md5",
    "protocol.transport",
    "extra.x",
    "__type",
]


def check(data: bytes) -> None:
    reader_items = list(READER.read(io.BytesIO(data), "fuzz.jsonl"))
    for item in reader_items:
        assert item.location.source == "fuzz.jsonl"
        assert isinstance(item.location.line, int) and item.location.line >= 1
        if isinstance(item, EventRecord):
            assert len(item.raw.encode("utf-8", "surrogateescape")) <= MAX_RAW
            assert item.rsit_class in RSIT
            assert item.time is None or item.time.utcoffset() is not None
            assert all(isinstance(o.kind, ObservableKind) for o in item.observables)
        else:
            assert item.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_lines(data: bytes) -> None:
    READER.sniff(data[:65536], "fuzz.jsonl")
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
def test_fuzz_odd_values_in_known_keys(event: dict[str, object]) -> None:
    check(json.dumps(event).encode() + b"\n")


def test_the_intake_registry_recognises_intelmq_lines() -> None:
    from concord.intake import registry

    assert registry.choose(EVENTS.read_bytes()[:65536], "events.jsonl", None).name == "intelmq"


def test_many_long_extra_fields_are_stored_as_json_that_reads(client, auth, network) -> None:  # type: ignore[no-untyped-def]
    line = json.loads((FIXTURES / "intelmq" / "events.jsonl").read_text().splitlines()[0])
    line.update({f"extra.k{i}": "x" * 990 for i in range(10)})
    r = client.post(
        "/api/v1/intake",
        params={"format": "intelmq", "tlp": "green"},
        headers=auth["kz-analyst"],
        files={"file": ("events.jsonl", json.dumps(line).encode() + b"\n")},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    listed = client.get(
        "/api/v1/events", params={"submission": r.json()["id"]}, headers=auth["kz-analyst"]
    )
    assert listed.status_code == 200, listed.text
    extra = listed.json()["items"][0]["extra"]
    assert extra["truncated"] is True and 1 <= sum(k.startswith("k") for k in extra) < 10
    assert len(json.dumps(extra)) <= 4100
