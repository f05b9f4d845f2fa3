"""IntelMQ events, one JSON object per line. The fixture was written for these tests in
IntelMQ's file-output format (IntelMQ's own samples are AGPL and are not copied)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concord.events.rsit import RSIT
from concord.intake.readers.intelmq import READER
from concord.intake.records import MAX_RAW, EventRecord, ObservableKind, ReadError, Skipped
from tests.conftest import FIXTURES

EVENTS = FIXTURES / "intelmq" / "events.jsonl"


def read(data: bytes, name: str = "events.jsonl") -> tuple[list[EventRecord], list[ReadError]]:
    """Records and errors; a skip here fails the test (see `read_skips`)."""
    records, errors, skipped = read_skips(data, name)
    assert skipped == []
    return records, errors


def read_skips(
    data: bytes, name: str = "events.jsonl"
) -> tuple[list[EventRecord], list[ReadError], list[Skipped]]:
    items = list(READER.read(io.BytesIO(data), name))
    records = [i for i in items if isinstance(i, EventRecord)]
    errors = [i for i in items if isinstance(i, ReadError)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert len(records) + len(errors) + len(skipped) == len(items)
    return records, errors, skipped


def fixture_line(number: int, **changes: object) -> dict[str, object]:
    """Line `number` of the fixture as a dict, with `changes` set (None takes a key out)."""
    event = json.loads(EVENTS.read_text().splitlines()[number - 1])
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def jsonl(*events: dict[str, object]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


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
            line(**{"source.ip": "192.0.2.7", "source.port": 70000}),  # 7 taken in
            line(**{"__type": "Report", "raw": "eA=="}),  # 8
            b'{"source.ip": "192.0.2.9", "feed.name": "caf\xe9"}\n',  # 9 not UTF-8
            line(**{"source.ip": ["192.0.2.10"]}),  # 10
            line(**{"source.ip": "192.0.2.11", "tlp": "purple"}),  # 11
            good,  # 12
        ]
    )
    records, errors = read(data)
    assert [r.location.line for r in records] == [1, 7, 12]
    assert [e.location.line for e in errors] == [3, 4, 5, 6, 8, 9, 10, 11]
    by_line = {e.location.line: e for e in errors}
    # the place is a column of the file's line 3, not a line of the parser's own count
    assert by_line[3].reason == "not valid JSON at column 28: unexpected end of data"
    assert by_line[5].location.pointer == "/source.ip" and "192.0.2.300" in by_line[5].reason
    assert by_line[6].location.pointer == "/time.source"
    assert "Report" in by_line[8].reason
    assert "not UTF-8" in by_line[9].reason
    assert by_line[10].location.pointer == "/source.ip"
    assert by_line[10].reason == "expected a string or a number, found list"
    assert by_line[11].location.pointer == "/tlp"
    # an unreadable port is optional: set aside, the event kept
    assert records[1].port is None and records[1].extra == {"invalid.source.port": "70000"}
    assert {(r.rsit_class, r.rsit_type) for r in records[::2]} == {
        ("information-gathering", "scanner")
    }


def test_a_json_syntax_error_names_its_column_in_the_line() -> None:
    good = EVENTS.read_bytes().splitlines(keepends=True)[0]
    broken = [
        good,
        b'{"source.ip": x}\n',  # column 15
        b'  {"source.ip": "192.0.2.1",}\r\n',  # a trailing comma at column 28, CRLF
        b'{"x": ' + b"[" * 2000 + b"]" * 2000 + b"}\n",  # past the parser's depth
        b'{"source.ip": "192.0.2.1"',  # the last line, cut
    ]
    records, errors = read(b"".join(broken))
    assert [r.location.line for r in records] == [1]
    assert [(e.location.line, e.reason) for e in errors] == [
        (2, "not valid JSON at column 15: unexpected character, expected a JSON value"),
        (3, "not valid JSON at column 28: trailing comma is not allowed"),
        (4, "not valid JSON at column 1031: nested too deeply"),
        (5, "not valid JSON at column 26: unexpected end of data"),
    ]
    assert not any("line" in e.reason for e in errors)


def test_a_url_without_a_path_is_the_url_of_its_root() -> None:
    records, errors = read(
        line(**{"source.url": "http://Example.com", "destination.url": "https://example.com/"})
    )
    assert errors == []
    assert observables(records[0]) == {
        ("url", "http://example.com/", "source"),
        ("url", "https://example.com/", "destination"),
    }


def test_one_url_written_two_ways_is_one_value() -> None:
    """RFC 3986 makes "%7E" and "~" one character: two feeds' spellings of a URL are one
    indicator, and so correlate."""
    records, errors = read(
        line(**{"source.url": "http://Evil.example/%7Euser/%6Cogin.php?id=%3d1"})
        + line(**{"source.url": "http://evil.example/~user/login.php?id=%3D1"})
    )
    assert errors == []
    assert {v for r in records for _, v, _ in observables(r)} == {
        "http://evil.example/~user/login.php?id=%3D1"
    }


def test_errors_in_the_hierarchical_output_point_into_it() -> None:
    c2 = fixture_line(6)
    c2["time"] = {"source": "yesterday"}
    (error,) = read(jsonl(c2))[1]
    assert error.location.pointer == "/time/source"
    c2["source"] = {"ip": "198.51.100.999", "port": 443}  # no AS number: nothing readable
    (error,) = read(jsonl(c2))[1]
    assert error.location.pointer == "/source/ip" and "198.51.100.999" in error.reason


def test_an_unreadable_optional_value_is_set_aside_and_the_event_kept() -> None:
    scan = fixture_line(1, **{"source.port": 99999})
    (record,), errors = read(jsonl(scan))
    assert errors == []
    assert record.port is None and record.extra["invalid.source.port"] == "99999"
    # the rest of the event is as the fixture's
    original = read(EVENTS.read_bytes())[0][0]
    assert record.observables == original.observables
    assert (record.protocol, record.application, record.tlp) == ("tcp", "rdp", "amber")
    assert record.extra == {**original.extra, "invalid.source.port": "99999"}
    assert "source.port" not in record.extra


def test_every_optional_field_of_a_real_event_may_be_unreadable() -> None:
    bad: dict[str, object] = {
        "source.port": "rdp",
        "protocol.transport": "t c p",
        "protocol.application": ["rdp"],
        "feed.accuracy": 150,
        "feed.name": ["Accessible-RDP"],
        "classification.type": ["potentially-unwanted-accessible"],
        "classification.taxonomy": True,
        "event_description.text": [1, 2],
        "malware.name": [None],
        "raw": 12,
    }
    (record,), errors = read(jsonl(fixture_line(1, **bad)))
    assert errors == []
    assert (record.port, record.protocol, record.application) == (None, None, None)
    assert (record.confidence, record.feed, record.description) == (None, "intelmq", "")
    assert (record.rsit_class, record.rsit_type) == ("other", "undetermined")
    assert record.tlp == "amber"
    assert record.time == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    assert observables(record) == {("ipv4", "192.0.2.10", "source"), ("asn", "64500", "source")}
    assert {k: v for k, v in record.extra.items() if k.startswith("invalid.")} == {
        "invalid.source.port": "rdp",
        "invalid.protocol.transport": "t c p",
        "invalid.protocol.application": '["rdp"]',
        "invalid.feed.accuracy": "150",
        "invalid.feed.name": '["Accessible-RDP"]',
        "invalid.classification.type": '["potentially-unwanted-accessible"]',
        "invalid.classification.taxonomy": "true",
        "invalid.event_description.text": "[1,2]",
        "invalid.malware.name": "[null]",
        "invalid.raw": "12",
    }
    assert "malware" not in record.extra
    assert record.raw.startswith('{"__type": "Event"')  # no readable raw: the JSON line


def test_an_unreadable_destination_port_does_not_make_the_source_port_the_service() -> None:
    infected = fixture_line(2, **{"destination.port": 99999})
    (record,), errors = read(jsonl(infected))
    assert errors == []
    assert record.port is None
    assert record.extra["invalid.destination.port"] == "99999"
    assert record.extra["source.port"] == "50123"
    # and an unreadable source port beside a good destination port
    (record,), _ = read(jsonl(fixture_line(2, **{"source.port": -1})))
    assert record.port == 80 and record.extra["invalid.source.port"] == "-1"
    assert "source.port" not in record.extra


def test_an_unreadable_optional_value_in_the_hierarchical_output() -> None:
    c2 = fixture_line(6)
    c2["source"] = {"ip": "198.51.100.99", "port": 99999, "asn": 64502}
    c2["feed"] = {"name": "Example C2 Tracker", "accuracy": "high"}
    (record,), errors = read(jsonl(c2))
    assert errors == []
    assert (record.port, record.confidence) == (None, None)
    assert record.extra["invalid.source.port"] == "99999"
    assert record.extra["invalid.feed.accuracy"] == "high"
    assert observables(record) == {("ipv4", "198.51.100.99", "source"), ("asn", "64502", "source")}


def test_an_unreadable_observable_beside_a_readable_one_is_set_aside() -> None:
    infected = fixture_line(2, **{"destination.ip": "198.51.100.700"})
    (record,), errors = read(jsonl(infected))
    assert errors == []
    assert record.extra["invalid.destination.ip"] == "198.51.100.700"
    assert observables(record) == {
        ("ipv4", "203.0.113.45", "source"),
        ("asn", "64501", "source"),
        ("domain", "c2.example.net", "destination"),
    }
    assert record.port == 80


def test_an_event_whose_observables_are_all_unreadable_is_rejected() -> None:
    # the legacy open resolver names one address only
    resolver = fixture_line(4, **{"source.ip": "192.0.2.530"})
    records, errors = read(jsonl(resolver, fixture_line(1)))
    assert [r.location.line for r in records] == [2]
    (error,) = errors
    assert (error.location.line, error.location.pointer) == (1, "/source.ip")
    assert "192.0.2.530" in error.reason
    # the first unreadable one is named
    infected = fixture_line(
        2,
        **{"source.ip": "x", "source.asn": "AS-1", "destination.ip": [], "destination.fqdn": "-"},
    )
    (error,) = read(jsonl(infected))[1]
    assert error.location.pointer == "/source.ip"


def test_an_event_that_names_no_observable_is_skipped() -> None:
    lines = EVENTS.read_text().splitlines()
    phishing = fixture_line(3, **{"source.fqdn": None, "source.url": None})
    scan = fixture_line(1, **{"source.ip": None, "source.asn": 0})  # AS 0: "unknown"
    c2 = fixture_line(6)
    c2["source"] = {"port": 443}
    data = "\n".join([lines[0], json.dumps(phishing), lines[1], json.dumps(scan)])
    records, errors, skipped = read_skips(f"{data}\n{json.dumps(c2)}\n".encode())
    assert errors == []
    assert [r.location.line for r in records] == [1, 3]
    assert [(s.location.source, s.location.line) for s in skipped] == [
        ("events.jsonl", 2),
        ("events.jsonl", 4),
        ("events.jsonl", 5),
    ]


def test_an_event_with_no_observable_and_an_unreadable_time_is_skipped() -> None:
    # it names nothing to take in, whatever else is wrong with it
    nothing = fixture_line(3, **{"source.fqdn": None, "source.url": None, "time.source": "?"})
    assert len(read_skips(jsonl(nothing))[2]) == 1


def test_an_unreadable_time_or_tlp_still_rejects_a_real_event() -> None:
    for key, value in (("time.source", "2024-03-01 25:00"), ("tlp", "TLP:PURPLE")):
        (error,) = read(jsonl(fixture_line(1, **{key: value})))[1]
        assert error.location.pointer == f"/{key}"


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
        elif isinstance(item, ReadError):
            assert item.reason
        else:
            assert isinstance(item, Skipped)


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


def test_a_receipt_counts_the_skipped_line_and_the_event_keeps_its_unreadable_port(
    client, auth, network
) -> None:  # type: ignore[no-untyped-def]
    data = jsonl(
        fixture_line(1, **{"source.port": 99999}),
        fixture_line(3, **{"source.fqdn": None, "source.url": None}),
        fixture_line(4, **{"source.ip": "192.0.2.530"}),
    )
    r = client.post(
        "/api/v1/intake",
        params={"format": "intelmq", "tlp": "green"},
        headers=auth["kz-analyst"],
        files={"file": ("events.jsonl", data)},
    )
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert (receipt["accepted"], receipt["rejected"], receipt["skipped"]) == (1, 1, 1)
    assert [(e["line"], e["pointer"]) for e in receipt["errors"]] == [(3, "/source.ip")]
    listed = client.get(
        "/api/v1/events", params={"submission": receipt["id"]}, headers=auth["kz-analyst"]
    )
    assert listed.status_code == 200, listed.text
    (event,) = listed.json()["items"]
    assert event["extra"]["invalid.source.port"] == "99999"
    assert (event["port"], event["protocol"], event["application"]) == (None, "tcp", "rdp")


def test_a_network_names_the_event_only_when_nothing_narrower_does() -> None:
    # a blocklist entry (IntelMQ's Spamhaus DROP parser gives source.network alone)
    drop = fixture_line(1, **{"source.ip": None, "source.asn": None})
    drop["source.network"] = "1.4.0.0/17"
    # beside an address, the network is its announcing prefix: kept, not an observable
    scan = fixture_line(1, **{"source.network": "45.137.0.0/16"})
    wide = fixture_line(1, **{"source.ip": None, "source.asn": None, "source.network": "5.0.0.0/1"})
    records, errors = read(jsonl(drop, scan, wide))
    assert observables(records[0]) == {("ipv4-net", "1.4.0.0/17", "source")}
    assert "ipv4-net" not in {o.kind.value for o in records[1].observables}
    assert records[1].extra["source.network"] == "45.137.0.0/16"
    [error] = errors  # no list names a network so wide: a slip, refused where it is
    assert error.location.line == 3 and error.location.pointer == "/source.network"


@pytest.mark.parametrize(
    ("given", "rsit"),
    [
        ("c2server", ("malicious-code", "c2-server")),  # IntelMQ 2.2 and 2.3
        ("c&c", ("malicious-code", "c2-server")),  # before
        ("malware configuration", ("malicious-code", "malware-configuration")),
        ("botnet drone", ("malicious-code", "infected-system")),
    ],
)
def test_older_intelmq_types_are_classified(given: str, rsit: tuple[str, str]) -> None:
    line = {
        "classification.type": given,
        "source.ip": "198.51.100.9",
        "time.source": "2024-03-01T00:00:00+00:00",
    }
    (record,), errors = read(json.dumps(line).encode() + b"\n")
    assert errors == []
    assert (record.rsit_class, record.rsit_type) == rsit
    assert record.extra["classification.type"] == given  # IntelMQ's own word is kept
