"""The MISP reader: real PyMISP test events in, records and located errors out."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from concord.events.rsit import RSIT
from concord.intake.readers.misp import _TYPES, READER, MispReader
from concord.intake.readers.values import TLP_LEVELS
from concord.intake.records import (
    MAX_RAW,
    EventRecord,
    Observable,
    ObservableKind,
    ReadError,
    ReadItem,
    Skipped,
)
from tests.conftest import FIXTURES
from tests.intake.json_fuzz import (
    FUZZ,
    byte_mutants,
    json_values,
    structural_mutants,
    with_samples,
)

SAMPLES = {path.name: path.read_bytes() for path in sorted((FIXTURES / "misp").glob("*.json"))}
K = ObservableKind


def read(
    doc: Any, source: str = "event.json", reader: MispReader = READER
) -> tuple[list[EventRecord], list[ReadError]]:
    data = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    records: list[EventRecord] = []
    errors: list[ReadError] = []
    for item in reader.read(io.BytesIO(data), source):
        check(item, source, data)
        if isinstance(item, EventRecord):
            records.append(item)
        elif isinstance(item, ReadError):
            errors.append(item)
    return records, errors


def check(item: ReadItem, source: str, data: bytes) -> None:
    """What holds for anything a reader yields, whatever the input."""
    assert isinstance(item, EventRecord | ReadError | Skipped), item
    loc = item.location
    assert loc.source == source and (loc.line is not None or loc.pointer is not None), item
    if isinstance(item, ReadError):
        assert item.reason
        return
    if isinstance(item, Skipped):  # an attribute of a type that names no observable
        attribute = resolve(orjson.loads(data.removeprefix(b"\xef\xbb\xbf")), loc.pointer or "")
        assert isinstance(attribute, dict) and attribute["type"] not in _TYPES, item
        return
    assert item.feed == "misp" and item.nature in ("event", "indicator")
    assert item.rsit_type in RSIT[item.rsit_class]
    assert item.time is None or item.time.utcoffset() == UTC.utcoffset(None)
    assert item.tlp is None or item.tlp in TLP_LEVELS
    assert item.confidence is None or 0 <= item.confidence <= 100
    assert item.port is None or 0 <= item.port <= 65535
    assert len(item.raw.encode()) <= MAX_RAW
    assert all(o.value and "\x00" not in o.value for o in item.observables)
    attribute = resolve(orjson.loads(data.removeprefix(b"\xef\xbb\xbf")), loc.pointer or "")
    assert isinstance(attribute, dict) and "type" in attribute
    assert "/Attribute/" in (loc.pointer or "")


def resolve(doc: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def sample(name: str) -> tuple[list[EventRecord], list[ReadError]]:
    return read(SAMPLES[name], name)


def kinds(records: list[EventRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        for observable in record.observables:
            counts[observable.kind.value] = counts.get(observable.kind.value, 0) + 1
    return counts


# --- the real samples -------------------------------------------------------------------------


def test_osint_event_keeps_the_hashes_and_skips_context_attributes() -> None:
    records, errors = sample("57c4445b-c548-4654-af0b-4be3950d210f.json")
    assert errors == []
    # of 9 attributes: 2 links, a comment, a text, a file name and a registry key name no
    # observable; md5, sha1 and sha256 do
    assert [r.location.pointer for r in records] == [
        "/Event/Attribute/5",
        "/Event/Attribute/6",
        "/Event/Attribute/7",
    ]
    md5 = records[0]
    assert md5.observables == (Observable(K.MD5, "0749bae92ca336a02c83d126e04ec628"),)
    assert md5.time == datetime.fromtimestamp(1472480395, UTC)
    assert md5.nature == "indicator"
    assert md5.tlp == "clear"  # tlp:white
    assert md5.description == "Ransomware - Xorist"
    assert md5.extra["event_uuid"] == "57c4445b-c548-4654-af0b-4be3950d210f"
    for record in records:
        # circl:incident-classification="malware" names the class, "Payload delivery" the type
        assert (record.rsit_class, record.rsit_type) == ("malicious-code", "malware-distribution")


def test_attributes_naming_no_observable_are_skipped_where_they_stand() -> None:
    data = SAMPLES["57c4445b-c548-4654-af0b-4be3950d210f.json"]
    items = list(READER.read(io.BytesIO(data), "osint.json"))
    skipped = [i.location.pointer for i in items if isinstance(i, Skipped)]
    assert skipped == [f"/Event/Attribute/{i}" for i in (0, 1, 2, 3, 4, 8)]
    # every attribute is accounted for, in file order
    assert [i.location.pointer for i in items] == [f"/Event/Attribute/{i}" for i in range(9)]


def test_deleted_attributes_are_neither_records_nor_skips() -> None:
    doc = {"Event": {"info": "x", "Attribute": [{"type": "text", "value": "x", "deleted": True}]}}
    assert list(READER.read(io.BytesIO(orjson.dumps(doc)), "e.json")) == []


def test_existing_event_with_objects() -> None:
    records, errors = sample("existing_event.json")
    assert errors == []
    assert len(records) == 68
    assert kinds(records) == {"sha1": 37, "domain": 19, "ipv4": 12}
    assert all(r.nature == "indicator" and r.tlp == "clear" for r in records)
    top = [r for r in records if r.location.pointer.startswith("/Attribute/")]
    assert len(top) == 7 and top[0].observables == (Observable(K.DOMAIN, "movieultimate.com"),)
    domain_ip = [r for r in records if r.location.pointer.startswith("/Object/37/")]
    assert [(r.observables, r.extra["object_name"]) for r in domain_ip] == [
        ((Observable(K.IPV4, "87.236.211.182", "destination"),), "domain-ip"),
        ((Observable(K.DOMAIN, "servicecdp.com"),), "domain-ip"),
    ]
    assert {(r.rsit_class, r.rsit_type) for r in records} == {
        ("malicious-code", "malware-distribution"),  # sha1 in "Payload delivery"
        ("other", "undetermined"),  # domains and addresses in "Network activity"
    }
    # the event's galaxies name malware and tools, no attack-pattern
    assert all(r.attack_techniques == () for r in records)


def test_api_response_with_a_malware_sample_object() -> None:
    records, errors = sample("malware_exist.json")
    assert errors == []
    assert [r.location.pointer for r in records] == [
        "/response/0/Object/0/Attribute/0",
        "/response/0/Object/0/Attribute/2",
        "/response/0/Object/0/Attribute/3",
        "/response/0/Object/0/Attribute/4",
    ]
    sample_record = records[0]
    assert sample_record.extra["misp_type"] == "malware-sample"
    assert sample_record.extra["filename"] == "simple.json"
    assert sample_record.observables == (Observable(K.MD5, "7637beddacbeac59d44469b2b120b9e6"),)
    assert "data" not in orjson.loads(sample_record.raw)  # no malware in the raw text
    assert kinds(records) == {"md5": 2, "sha1": 1, "sha256": 1}


def test_bare_event_with_an_ecsirt_tag() -> None:
    [record], errors = sample("misp_event.json")
    assert errors == []
    assert record.location.pointer == "/Attribute/0"
    assert record.observables == (Observable(K.URL, "http://fake.website.com/malware/is/here"),)
    assert record.nature == "event"  # to_ids is false
    assert record.tlp is None
    # ecsirt:malicious-code="ransomware" names the class, "Payload delivery" the type
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "malware-distribution")
    assert record.time == datetime.fromtimestamp(1465681304, UTC)


def test_sightings_are_counted() -> None:
    records, errors = sample("sighting_event.json")
    assert errors == []
    counts = [(r.extra.get("sightings"), r.extra.get("false_positives")) for r in records]
    assert counts == [("1", None), (None, "1"), (None, "1"), (None, "1"), ("1", None)]
    assert kinds(records) == {"domain": 4, "url": 1}
    assert records[4].observables == (
        Observable(K.URL, "http://sistemait.it/softaculous/backup/client.rar"),
    )


def test_samples_are_sniffed_as_misp_and_stix_is_not() -> None:
    for name, data in SAMPLES.items():
        assert READER.sniff(data[:65536], "upload"), name
    for path in (FIXTURES / "stix").glob("*.json"):
        assert not READER.sniff(path.read_bytes(), path.name), path.name


# --- what the samples do not show ---------------------------------------------------------------

EVENT: dict[str, Any] = {
    "Event": {
        "info": "Phishing wave against banks",
        "date": "2024-03-01",
        "uuid": "0b8bd4e2-33b3-4cd6-a5a0-9c5f1e5d3f00",
        "Tag": [
            {"name": "tlp:amber"},
            {"name": 'misp-galaxy:mitre-attack-pattern="Spearphishing Link - T1566.002"'},
        ],
        "Galaxy": [
            {
                "type": "mitre-attack-pattern",
                "GalaxyCluster": [
                    {"value": "Phishing - T1566", "meta": {"external_id": ["T1566"]}}
                ],
            }
        ],
        "Attribute": [
            {
                "type": "ip-dst|port",
                "category": "Network activity",
                "value": "203.0.113.9|8080",
                "to_ids": True,
                "timestamp": "1709290800",
                "Tag": [{"name": "tlp:amber+strict"}, {"name": 'osint:certainty="75"'}],
            },
            {
                "type": "domain|ip",
                "category": "Network activity",
                "value": "Login.Example.NET|2001:db8::5",
            },
            {"type": "ip-src", "category": "Network activity", "value": "198.51.100.0/24"},
            {
                "type": "email-src",
                "category": "Payload delivery",
                "value": "phisher@Example.org",
                "first_seen": "2024-02-28T10:00:00.000000+00:00",
                "Tag": [{"name": 'rsit:fraud="phishing"'}],
            },
            {"type": "AS", "category": "Network activity", "value": "AS64496"},
            {
                "type": "filename|sha256",
                "category": "Payload delivery",
                "to_ids": "1",
                "value": "a|b.exe|b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68",
            },
            {"type": "ip-dst", "category": "Targeting data", "value": "::ffff:192.0.2.1"},
            {"type": "hostname", "value": "a_b.example.com", "deleted": True},
        ],
        "Object": [
            {
                "name": "file",
                "uuid": "5a4e4ffe-4cb8-48b1-bd5c-48fb950d2100",
                "Attribute": [
                    {
                        "type": "sha1",
                        "category": "Payload installation",
                        "object_relation": "sha1",
                        "value": "77B0C41B7D340B8A3D903F21347BBF06AA766B5B",
                        "Galaxy": [
                            {
                                "type": "mitre-attack-pattern",
                                "GalaxyCluster": [
                                    {
                                        "value": "Registry Run Keys - T1547.001",
                                        "meta": {"external_id": ["T1547.001"]},
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
}


def test_types_tlp_attack_and_rsit_of_a_written_event() -> None:
    records, errors = read(EVENT)
    assert errors == []
    by_pointer = {r.location.pointer: r for r in records}
    assert list(by_pointer) == [
        "/Event/Attribute/0",
        "/Event/Attribute/1",
        "/Event/Attribute/2",
        "/Event/Attribute/3",
        "/Event/Attribute/4",
        "/Event/Attribute/5",
        "/Event/Attribute/6",
        "/Event/Object/0/Attribute/0",
    ]
    ip_port = by_pointer["/Event/Attribute/0"]
    assert ip_port.observables == (Observable(K.IPV4, "203.0.113.9", "destination"),)
    assert (ip_port.port, ip_port.tlp, ip_port.confidence) == (8080, "amber+strict", 75)
    assert ip_port.time == datetime(2024, 3, 1, 11, tzinfo=UTC)
    assert ip_port.attack_techniques == ("T1566", "T1566.002")
    assert ip_port.description == "Phishing wave against banks"
    assert by_pointer["/Event/Attribute/1"].observables == (
        Observable(K.DOMAIN, "login.example.net"),
        Observable(K.IPV6, "2001:db8::5"),
    )
    assert by_pointer["/Event/Attribute/1"].time == datetime(2024, 3, 1, tzinfo=UTC)  # the date
    network = by_pointer["/Event/Attribute/2"]
    assert network.observables == () and network.extra["networks"] == "198.51.100.0/24"
    email = by_pointer["/Event/Attribute/3"]
    assert email.observables == (Observable(K.EMAIL, "phisher@example.org"),)
    assert email.time == datetime(2024, 2, 28, 10, tzinfo=UTC)  # first_seen wins
    assert (email.rsit_class, email.rsit_type, email.tlp) == ("fraud", "phishing", "amber")
    assert by_pointer["/Event/Attribute/4"].observables == (Observable(K.ASN, "64496"),)
    hashed = by_pointer["/Event/Attribute/5"]
    assert hashed.extra["filename"] == "a|b.exe" and hashed.nature == "indicator"
    assert by_pointer["/Event/Attribute/6"].observables == (
        Observable(K.IPV4, "192.0.2.1", "target"),
    )
    in_object = by_pointer["/Event/Object/0/Attribute/0"]
    assert in_object.observables == (
        Observable(K.SHA1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
    )
    assert in_object.attack_techniques == ("T1547.001", "T1566", "T1566.002")
    assert (in_object.rsit_class, in_object.rsit_type) == ("malicious-code", "infected-system")
    assert in_object.extra["object_uuid"] == "5a4e4ffe-4cb8-48b1-bd5c-48fb950d2100"


def test_lists_of_events_and_responses() -> None:
    one = {"Event": {"info": "one", "Attribute": [{"type": "domain", "value": "a.example"}]}}
    records, errors = read([one, one["Event"]])
    assert errors == []
    assert [r.location.pointer for r in records] == ["/0/Event/Attribute/0", "/1/Attribute/0"]
    records, errors = read({"response": [one]})
    assert [r.location.pointer for r in records] == ["/response/0/Event/Attribute/0"]


# --- bad input ----------------------------------------------------------------------------------


def test_bad_attributes_are_refused_with_pointers() -> None:
    attributes = [
        {"type": "ip-dst", "value": "not-an-ip"},
        {"type": "url", "value": "http://x y"},
        {"type": "md5", "value": "abc"},
        {"value": "192.0.2.1"},
        "junk",
        {"type": "ip-dst", "value": "192.0.2.1", "timestamp": "soon"},
        {"type": "ip-dst", "value": "192.0.2.1", "Tag": "tlp:red"},
        {"type": "hostname|port", "value": "a.example|99999"},
        {"type": "domain|ip", "value": "a.example"},
        {"type": "domain", "value": 5},
        {"type": "ip-dst", "value": "192.0.2.1", "first_seen": "yesterday"},
        {"type": ["ip-dst"], "value": "192.0.2.1"},
        {"type": "ip-dst", "value": ""},
    ]
    records, errors = read({"Event": {"info": "x", "Attribute": attributes}})
    assert records == []
    assert [(e.location.pointer, e.reason) for e in errors] == [
        ("/Event/Attribute/0/value", "invalid IP address 'not-an-ip'"),
        (
            "/Event/Attribute/1/value",
            "invalid URL 'http://x y': contains white space or control characters",
        ),
        ("/Event/Attribute/2/value", "invalid MD5 hash 'abc': expected 32 hexadecimal digits"),
        ("/Event/Attribute/3/type", "the attribute has no type"),
        ("/Event/Attribute/4", "an attribute must be a JSON object"),
        ("/Event/Attribute/5/timestamp", "invalid timestamp 'soon': expected seconds since 1970"),
        ("/Event/Attribute/6/Tag", "Tag must be an array of tags"),
        ("/Event/Attribute/7/value", "invalid port '99999': must be a number from 0 to 65535"),
        ("/Event/Attribute/8/value", "a domain|ip value has 2 parts separated by '|'"),
        ("/Event/Attribute/9/value", "the attribute value must be a text"),
        ("/Event/Attribute/10/first_seen", "invalid first_seen 'yesterday'"),
        ("/Event/Attribute/11/type", "the attribute type must be a text"),
        ("/Event/Attribute/12/value", "the attribute has no value"),
    ]


def test_an_event_whose_tags_cannot_be_read_is_refused() -> None:
    event = {
        "Event": {
            "Tag": [{"colour": "#fff"}],
            "Attribute": [{"type": "domain", "value": "a.example"}],
        }
    }
    [], [error] = read(event)
    assert error.location.pointer == "/Event/Tag/0"


@pytest.mark.parametrize(
    ("doc", "pointer", "reason"),
    [
        ({"foo": 1}, "", "not a MISP event"),
        ({"Event": 5}, "/Event", "Event must be an object"),
        ({"response": [7]}, "/response/0", "not a MISP event"),
        ({"Event": {"date": "2024-13-01", "Attribute": []}}, "/Event/date", "invalid event date"),
        ({"Event": {"Attribute": {}}}, "/Event/Attribute", "Attribute must be an array"),
        ({"Event": {"Object": [5]}}, "/Event/Object/0", "a MISP object must be a JSON object"),
    ],
)
def test_documents_that_are_no_events(doc: Any, pointer: str, reason: str) -> None:
    [], [error] = read(doc)
    assert error.location.pointer == pointer and reason in error.reason


def test_malformed_deep_and_large_input() -> None:
    [], [error] = read(b'{"Event": {"Attribute": [1,2,3}}')
    assert error.location.line == 1 and "column 31" in error.reason
    deep: Any = {}
    for _ in range(70):
        deep = {"Event": deep}
    [], [error] = read(deep)
    assert "nested deeper than 64" in error.reason and error.location.pointer.startswith("/Event")
    [], [error] = read(EVENT, reader=MispReader(max_bytes=1000))
    assert "larger than 1000 bytes" in error.reason


# --- fuzzing ------------------------------------------------------------------------------------

NASTY = [
    None,
    True,
    0,
    -1,
    10**30,
    1.5,
    "",
    "x",
    "\x00",
    "1|2|3",
    "10.0.0.0/8",
    "9999999999999999999",
    "tlp:red",
    'misp-galaxy:mitre-attack-pattern="X - T1059"',
    "ip-dst|port",
    "malware-sample",
    {},
    [],
    [{"name": 5}],
    {"Attribute": [{"type": "url", "value": "x"}]},
]
JSON = json_values(NASTY)
ALL_SAMPLES = {**SAMPLES, "written.json": orjson.dumps(EVENT)}


def fuzz_read(data: bytes) -> None:
    for item in READER.read(io.BytesIO(data), "fuzz.json"):
        check(item, "fuzz.json", data)


@FUZZ
@given(structural_mutants(ALL_SAMPLES, JSON))
def test_fuzz_structure(data: bytes) -> None:
    fuzz_read(data)


@with_samples(ALL_SAMPLES)
@FUZZ
@given(byte_mutants(ALL_SAMPLES) | st.binary(max_size=256))
@example(b"")
@example(b"[" * 5000)
@example(b'{"response": {"response": []}}')
def test_fuzz_bytes(data: bytes) -> None:
    fuzz_read(data)
