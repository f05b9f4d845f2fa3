"""The MISP reader: real PyMISP test events in, records and located errors out."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from concord.access.model import TLP
from concord.errors import FaultLocation
from concord.events.rsit import RSIT
from concord.intake.prepare import MAX_EXTRA_JSON, DedupPolicy, Plan, Preparer
from concord.intake.readers.misp import _TYPES, READER, MispReader, _true
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
from concord.orgs.whois import LookupIndex
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
    held = resolve(orjson.loads(data.removeprefix(b"\xef\xbb\xbf")), loc.pointer or "")
    assert isinstance(held, dict), item
    in_object = OBJECT.search(loc.pointer or "") is not None
    if isinstance(item, Skipped):  # an attribute, or an object, that names no observable
        if in_object:
            assert not any(names_observable(a) for a in held.get("Attribute", [])), item
        else:
            assert held["type"] not in _TYPES, item
        return
    assert item.feed == "misp" and item.nature in ("event", "indicator")
    assert item.rsit_type in RSIT[item.rsit_class]
    assert item.time is None or item.time.utcoffset() == UTC.utcoffset(None)
    assert item.tlp is None or item.tlp in TLP_LEVELS
    assert item.confidence is None or 0 <= item.confidence <= 100
    assert item.port is None or 0 <= item.port <= 65535
    assert len(item.raw.encode()) <= MAX_RAW
    assert all(o.value and "\x00" not in o.value for o in item.observables)
    if in_object:  # one record for all the attributes of an object that name an observable
        assert any(names_observable(a) for a in held["Attribute"]), item
    else:
        assert "type" in held and "/Attribute/" in (loc.pointer or "")


OBJECT = re.compile(r"/Object/\d+$")


def names_observable(attribute: Any) -> bool:
    return (
        isinstance(attribute, dict)
        and not _true(attribute.get("deleted"))
        and isinstance(attribute.get("type"), str)
        and attribute["type"] in _TYPES
    )


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
    # the event's date: the attribute's timestamp (1472480395) is its last edit
    assert md5.time == datetime(2016, 8, 29, tzinfo=UTC)
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
    # 7 top-level attributes and 49 objects (37 files, 12 domain-ip pairs), one record each:
    # it was 68 when each attribute of a domain-ip object made an event of its own
    assert len(records) == 7 + 49
    assert kinds(records) == {"sha1": 37, "domain": 19, "ipv4": 12}
    assert all(r.nature == "indicator" and r.tlp == "clear" for r in records)
    top = [r for r in records if r.location.pointer.startswith("/Attribute/")]
    assert len(top) == 7 and top[0].observables == (Observable(K.DOMAIN, "movieultimate.com"),)
    by_pointer = {r.location.pointer: r for r in records}
    domain_ip = by_pointer["/Object/37"]
    assert domain_ip.observables == (
        Observable(K.IPV4, "87.236.211.182", "destination"),
        Observable(K.DOMAIN, "servicecdp.com"),
    )
    assert domain_ip.extra["object_name"] == "domain-ip"
    assert domain_ip.extra["misp_type"] == "ip-dst domain"
    # a file object: its sha1, with the file name and the other attributes as context
    event = orjson.loads(SAMPLES["existing_event.json"])
    assert by_pointer["/Object/0"] == EventRecord(
        time=datetime(2017, 12, 21, tzinfo=UTC),  # the event's date, not the last edits
        rsit_class="malicious-code",
        rsit_type="malware-distribution",
        observables=(Observable(K.SHA1, "68064fc152e23d56e541714af52651cb4ba81aaf"),),
        location=FaultLocation(source="existing_event.json", pointer="/Object/0"),
        raw=orjson.dumps(event["Object"][0]).decode(),
        feed="misp",
        nature="indicator",
        tlp="clear",
        description="OSINT - Sednit update: How Fancy Bear Spent the Year",
        extra={
            "event_uuid": "5a3c2fcd-8328-42bb-a95e-4f4402de0b81",
            "object_name": "file",
            "object_uuid": "5a3cd5b6-9568-4342-b2ab-4c62950d210f",
            "object_meta_category": "file",
            "misp_type": "sha1",
            "category": "Payload delivery",
            "object_relation": "sha1",
            "comment": "Win32/Sednit.AX",
            "filename": "Bulletin.doc",
            "context": "state: Malicious",
        },
        identity="misp:5a3cd5b6-9568-4342-b2ab-4c62950d210f",  # the object's uuid
    )
    assert {(r.rsit_class, r.rsit_type) for r in records} == {
        ("malicious-code", "malware-distribution"),  # sha1 in "Payload delivery"
        ("other", "undetermined"),  # domains and addresses in "Network activity"
    }
    # the event's galaxies name malware and tools, no attack-pattern
    assert all(r.attack_techniques == () for r in records)


def test_api_response_with_a_malware_sample_object() -> None:
    # One file object: its malware sample, file name, md5, sha1, sha256 and size are one
    # record (it was four, the md5 twice: the sample's and the md5 attribute's).
    [record], errors = sample("malware_exist.json")
    assert errors == []
    obj = orjson.loads(SAMPLES["malware_exist.json"])["response"][0]["Object"][0]
    assert "data" in obj["Attribute"][0]  # the base64 of the sample: no malware in the raw text
    without_data = [{k: v for k, v in a.items() if k != "data"} for a in obj["Attribute"]]
    assert record == EventRecord(
        # the event's date: the object's and the attributes' timestamps are their last edits
        time=datetime(2018, 1, 4, tzinfo=UTC),
        rsit_class="malicious-code",
        rsit_type="malware-distribution",
        observables=(
            Observable(K.MD5, "7637beddacbeac59d44469b2b120b9e6"),
            Observable(K.SHA1, "023853a4331db8d67e44553004cf338ec1b7440e"),
            Observable(
                K.SHA256, "6ae8b0f1c7d6f3238d1fc14038018c3b4704c8cc23dac1c2bfd2c81b5a278eef"
            ),
        ),
        location=FaultLocation(source="malware_exist.json", pointer="/response/0/Object/0"),
        raw=orjson.dumps({**obj, "Attribute": without_data}).decode(),
        feed="misp",
        nature="indicator",
        description="Test existing malware PyMISP",
        extra={
            "event_uuid": "5a4e4fdd-1eb4-4ff3-9e87-43fa950d210f",
            "object_name": "file",
            "object_uuid": "5a4e4ffe-4cb8-48b1-bd5c-48fb950d210f",
            "object_meta_category": "file",
            "misp_type": "malware-sample md5 sha1 sha256",
            "category": "Payload delivery",
            "object_relation": "malware-sample md5 sha1 sha256",
            "filename": "simple.json",
            "context": "size-in-bytes: 21",
        },
        identity="misp:5a4e4ffe-4cb8-48b1-bd5c-48fb950d210f",
    )


def test_bare_event_with_an_ecsirt_tag() -> None:
    [record], errors = sample("misp_event.json")
    assert errors == []
    assert record.location.pointer == "/Attribute/0"
    assert record.observables == (Observable(K.URL, "http://fake.website.com/malware/is/here"),)
    assert record.nature == "event"  # to_ids is false
    assert record.tlp is None
    # ecsirt:malicious-code="ransomware" names the class, "Payload delivery" the type
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "malware-distribution")
    assert record.time == datetime(2016, 6, 9, tzinfo=UTC)  # the date, not the last edit


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
        "/Event/Object/0",
    ]
    ip_port = by_pointer["/Event/Attribute/0"]
    assert ip_port.observables == (Observable(K.IPV4, "203.0.113.9", "destination"),)
    assert (ip_port.port, ip_port.tlp, ip_port.confidence) == (8080, "amber+strict", 75)
    assert ip_port.time == datetime(2024, 3, 1, tzinfo=UTC)  # the date, not the timestamp
    assert ip_port.attack_techniques == ("T1566", "T1566.002")
    assert ip_port.description == "Phishing wave against banks"
    assert by_pointer["/Event/Attribute/1"].observables == (
        Observable(K.DOMAIN, "login.example.net"),
        Observable(K.IPV6, "2001:db8::5"),
    )
    assert by_pointer["/Event/Attribute/1"].time == datetime(2024, 3, 1, tzinfo=UTC)  # the date
    network = by_pointer["/Event/Attribute/2"]
    assert network.observables == (Observable(K.IPV4_NET, "198.51.100.0/24"),)
    assert "networks" not in network.extra
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
    in_object = by_pointer["/Event/Object/0"]
    assert in_object.observables == (
        Observable(K.SHA1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
    )
    assert in_object.attack_techniques == ("T1547.001", "T1566", "T1566.002")
    assert (in_object.rsit_class, in_object.rsit_type) == ("malicious-code", "infected-system")
    assert in_object.extra["object_uuid"] == "5a4e4ffe-4cb8-48b1-bd5c-48fb950d2100"


def all_items(doc: Any) -> list[ReadItem]:
    data = orjson.dumps(doc)
    found = list(READER.read(io.BytesIO(data), "event.json"))
    for item in found:
        check(item, "event.json", data)
    return found


def in_event(*objects: dict[str, Any], **event: Any) -> dict[str, Any]:
    return {"Event": {"info": "Loader", "date": "2024-03-01", **event, "Object": list(objects)}}


SHA1 = "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"
MD5 = "0749bae92ca336a02c83d126e04ec628"


IP_PORT: dict[str, Any] = {
    "name": "ip-port",
    "meta-category": "network",
    "uuid": "9f0e8a52-0d1c-4a8e-9d6c-3f4b2a1c0d00",
    "comment": "C2 of the loader",
    "timestamp": "1709300000",  # its last edit: later than its attributes
    "Galaxy": [
        {
            "type": "mitre-attack-pattern",
            "GalaxyCluster": [{"value": "Application Layer Protocol - T1071"}],
        }
    ],
    "Attribute": [
        {
            "type": "domain",
            "category": "Network activity",
            "object_relation": "domain",
            "value": "C2.example.net",
            "timestamp": "1709290800",
            "Tag": [{"name": 'osint:certainty="80"'}],
        },
        {
            "type": "ip-dst|port",
            "category": "Network activity",
            "object_relation": "ip",
            "value": "203.0.113.9|8443",
            "to_ids": True,
            "first_seen": "2024-02-27T08:00:00+00:00",
            "comment": "answers on 8443",
            "Tag": [{"name": 'rsit:malicious-code="c2-server"'}],
        },
        {
            "type": "text",
            "object_relation": "state",
            "value": "Malicious",
            "Tag": [{"name": "tlp:red"}, {"name": 'osint:certainty="50"'}],
        },
        {"type": "hostname", "value": "gone.example", "deleted": True},
    ],
}


def test_an_object_merges_its_attributes_into_one_record() -> None:
    [record] = all_items(in_event(IP_PORT, Tag=[{"name": "tlp:green"}]))
    assert isinstance(record, EventRecord)
    assert record.location.pointer == "/Event/Object/0"
    assert record.observables == (
        Observable(K.DOMAIN, "c2.example.net"),
        Observable(K.IPV4, "203.0.113.9", "destination"),
    )
    assert record.time == datetime(2024, 2, 27, 8, tzinfo=UTC)  # the earliest attribute's
    assert record.nature == "indicator"  # one attribute is for IDS
    assert record.port == 8443
    assert record.tlp == "red"  # the state's tag: the raw text shows it
    assert record.confidence == 50  # the least sure part
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "c2-server")  # tagged
    assert record.attack_techniques == ("T1071",)
    assert record.extra == {
        "object_name": "ip-port",
        "object_uuid": "9f0e8a52-0d1c-4a8e-9d6c-3f4b2a1c0d00",
        "object_meta_category": "network",
        "misp_type": "domain ip-dst|port",
        "category": "Network activity",
        "object_relation": "domain ip",
        "comment": "C2 of the loader; answers on 8443",
        "context": "state: Malicious",
    }
    assert [a["type"] for a in orjson.loads(record.raw)["Attribute"]] == [
        "domain",
        "ip-dst|port",
        "text",
    ]  # the deleted attribute is left out


@pytest.mark.parametrize(
    ("ports", "port"),
    [
        ([("src-port", "50123"), ("dst-port", "4444")], 4444),  # the service's, not the client's
        ([("port", "8080")], 8080),  # domain-ip names its one port so
        ([("src-port", "50123")], None),
        ([("dst-port", "80000")], None),  # out of range: kept only as context
    ],
)
def test_an_object_port_attribute_gives_its_port(
    ports: list[tuple[str, str]], port: int | None
) -> None:
    obj = {
        "name": "ip-port",
        "Attribute": [
            {"type": "ip-dst", "object_relation": "ip", "value": "198.51.100.1"},
            *({"type": "port", "object_relation": r, "value": v} for r, v in ports),
        ],
    }
    [record] = all_items(in_event(obj))
    assert isinstance(record, EventRecord)
    assert record.port == port
    assert record.extra["context"] == "; ".join(f"{r}: {v}" for r, v in ports)


@pytest.mark.parametrize(
    ("extra_fields", "attribute_times", "expected"),
    [
        # the object's first_seen says when the thing was seen, whatever its attributes say
        (
            {"first_seen": "2024-03-05T00:00:00Z"},
            ["1709290800", None],
            datetime(2024, 3, 5, tzinfo=UTC),
        ),
        # else the earliest first_seen of its attributes
        (
            {"timestamp": "1709000000"},
            ["2024-02-20T10:00:00Z", "2024-02-25T10:00:00Z"],
            datetime(2024, 2, 20, 10, tzinfo=UTC),
        ),
        # else the event's date, whatever the timestamps (last edits) say
        (
            {"timestamp": "1709000000"},
            ["1709290800", "1709200000"],
            datetime(2024, 3, 1, tzinfo=UTC),
        ),
        ({}, [None, None], datetime(2024, 3, 1, tzinfo=UTC)),
        # with no date: its own timestamp, else the earliest of its attributes'
        (
            {"timestamp": "1709000000", "date": None},
            ["1709290800", "1709200000"],
            datetime.fromtimestamp(1709000000, UTC),
        ),
        ({"date": None}, ["1709290800", "1709200000"], datetime.fromtimestamp(1709200000, UTC)),
    ],
)
def test_the_time_of_an_object(
    extra_fields: dict[str, str | None], attribute_times: list[str | None], expected: datetime
) -> None:
    hashes = [{"type": "md5", "value": MD5}, {"type": "sha1", "value": SHA1}]
    for attribute, when in zip(hashes, attribute_times, strict=True):
        if when is not None:
            attribute["first_seen" if "T" in when else "timestamp"] = when
    fields = {k: v for k, v in extra_fields.items() if k != "date"}
    dated = {"date": extra_fields["date"]} if "date" in extra_fields else {}
    [record] = all_items(in_event({"name": "file", **fields, "Attribute": hashes}, **dated))
    assert isinstance(record, EventRecord) and record.time == expected


def test_the_classification_of_an_object_is_its_most_specific() -> None:
    def rsit(*attributes: dict[str, Any], **event: Any) -> tuple[str, str]:
        [record] = all_items(in_event({"name": "x", "Attribute": list(attributes)}, **event))
        assert isinstance(record, EventRecord)
        return record.rsit_class, record.rsit_type

    network = {"type": "ip-dst", "category": "Network activity", "value": "192.0.2.7"}
    delivery = {"type": "md5", "category": "Payload delivery", "value": MD5}
    installed = {"type": "sha1", "category": "Payload installation", "value": SHA1}
    tagged = {**network, "Tag": [{"name": 'rsit:malicious-code="c2-server"'}]}
    # other/undetermined says nothing: the category of the md5 does
    assert rsit(network, delivery) == ("malicious-code", "malware-distribution")
    # of two defaults, the first
    assert rsit(installed, delivery) == ("malicious-code", "infected-system")
    # a tag on an attribute beats every default, wherever it stands
    assert rsit(delivery, tagged) == ("malicious-code", "c2-server")
    # an event tag naming the class takes the type of each attribute's category, as alone
    event_tag = {"Tag": [{"name": 'circl:incident-classification="malware"'}]}
    assert rsit(installed, **event_tag) == ("malicious-code", "infected-system")
    assert rsit(network) == ("other", "undetermined")


def test_a_bad_attribute_in_an_object_is_refused_and_the_rest_is_taken_in() -> None:
    obj = {
        "name": "file",
        "Attribute": [
            {"type": "md5", "value": MD5},
            {"type": "sha1", "value": "not-a-hash"},
            {"type": "filename", "value": "loader.exe", "Tag": "tlp:red"},
            "junk",
            {
                "type": "sha256",
                "value": "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68",
            },
        ],
    }
    record, *errors = all_items(in_event(obj))
    assert isinstance(record, EventRecord) and record.location.pointer == "/Event/Object/0"
    assert [o.kind for o in record.observables] == [K.MD5, K.SHA256]
    assert [(e.location.pointer, type(e)) for e in errors] == [
        ("/Event/Object/0/Attribute/1/value", ReadError),
        ("/Event/Object/0/Attribute/2/Tag", ReadError),
        ("/Event/Object/0/Attribute/3", ReadError),
    ]
    # what was refused is not in the raw text either (its TLP is unknown)
    assert [a["type"] for a in orjson.loads(record.raw)["Attribute"]] == ["md5", "sha256"]
    assert "filename" not in record.extra


def test_objects_naming_no_observable_are_skipped_once() -> None:
    context = {"type": "text", "object_relation": "state", "value": "Malicious"}
    items = all_items(
        in_event(
            {"name": "file", "Attribute": [context, {"type": "filename", "value": "a.doc"}]},
            {"name": "empty"},
            {"name": "file", "Attribute": [{"type": "md5", "value": "abc"}, context]},
            {"name": "file", "deleted": True, "Attribute": [{"type": "md5", "value": MD5}]},
        )
    )
    assert [(type(i).__name__, i.location.pointer) for i in items] == [
        ("Skipped", "/Event/Object/0"),
        ("Skipped", "/Event/Object/1"),
        # its only hash is refused: the error accounts for the object, no skip besides
        ("ReadError", "/Event/Object/2/Attribute/0/value"),
    ]


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"Tag": [{"colour": "#fff"}]}, "/Event/Object/0/Tag/0"),
        ({"Tag": "tlp:red"}, "/Event/Object/0/Tag"),
        ({"first_seen": "yesterday"}, "/Event/Object/0/first_seen"),
        ({"Attribute": {"type": "md5"}}, "/Event/Object/0/Attribute"),
    ],
)
def test_an_object_that_cannot_be_read_is_refused(fields: dict[str, Any], pointer: str) -> None:
    obj = {"name": "file", "Attribute": [{"type": "md5", "value": MD5}], **fields}
    [error] = all_items(in_event(obj))
    assert isinstance(error, ReadError) and error.location.pointer == pointer


def test_an_objects_timestamp_is_read_only_when_it_dates_the_record() -> None:
    dated = {"type": "md5", "value": MD5, "first_seen": "2024-02-20T10:00:00Z"}
    [record] = all_items(in_event({"timestamp": "soon", "Attribute": [dated]}, date=None))
    assert isinstance(record, EventRecord)
    undated = {"type": "md5", "value": MD5}
    [record] = all_items(in_event({"timestamp": "soon", "Attribute": [undated]}))
    assert isinstance(record, EventRecord)  # the event's date dates it
    [error] = all_items(in_event({"timestamp": "soon", "Attribute": [undated]}, date=None))
    assert isinstance(error, ReadError)
    assert error.location.pointer == "/Event/Object/0/timestamp"


def test_a_large_object_stays_small_in_storage() -> None:
    attributes: list[dict[str, Any]] = [
        {
            "type": "ip-dst",
            "category": "Network activity",
            "object_relation": f"relation-{i}-" + "r" * 50,
            "comment": f"comment {i} " + "c" * 200,
            "value": f"10.{i // 250}.{i % 250}.1/24",  # host bits set: kept in extra
        }
        for i in range(300)
    ]
    attributes += [{"type": "text", "object_relation": "note", "value": "t" * 5000}] * 50
    attributes.append({"type": "filename|md5", "value": "f" * 5000 + "|" + MD5})
    [record] = all_items(in_event({"name": "x" * 5000, "Attribute": attributes}))
    assert isinstance(record, EventRecord)
    assert len(orjson.dumps(record.extra)) <= MAX_EXTRA_JSON  # nothing left out when stored
    assert record.extra["networks"].endswith("…") and record.extra["comment"].endswith("…")
    assert len(record.raw.encode()) <= MAX_RAW


def owner(record: EventRecord, *assets: tuple[int, str, str]) -> int | None:
    """The owner intake gives the record, with (org, asset kind, value) registered."""
    plan = Plan(1, datetime(2024, 3, 1, tzinfo=UTC), 1, None, None, TLP.AMBER, DedupPolicy(), "")
    return Preparer(plan, LookupIndex.build(assets)).owner(record)


HOSTER = (7, "ipv4-prefix", "89.33.246.0/24")


def test_a_c2_destination_names_its_hoster_as_owner() -> None:
    # MISP's ip-dst is the malicious host: with nothing at the other end, its hoster is told
    event = {
        "Event": {
            "info": "C2 servers",
            "date": "2024-03-01",
            "Attribute": [
                {"type": "ip-dst", "category": "Network activity", "value": "89.33.246.117"},
                {"type": "ip-dst|port", "category": "Network activity", "value": "89.33.246.9|443"},
                {"type": "ip-dst", "category": "Network activity", "value": "89.33.246.0/25"},
            ],
        }
    }
    records, errors = read(event)
    assert errors == [] and [o.role for r in records for o in r.observables] == ["destination"] * 3
    assert [owner(r, HOSTER) for r in records] == [7, 7, 7]
    # the domain-ip objects of a real event: the domain's owner first, else the address's
    records, _ = sample("existing_event.json")
    domain_ip = next(r for r in records if r.location.pointer == "/Object/40")
    assert [(o.value, o.role) for o in domain_ip.observables] == [
        ("89.33.246.117", "destination"),
        ("mvtband.net", "source"),
    ]
    assert owner(domain_ip, HOSTER) == 7
    assert owner(domain_ip, HOSTER, (9, "domain", "mvtband.net")) == 9
    # a source address is whose event it is, even when it has no owner: the destination of a
    # sinkhole or a honeypot is the sensor, not the party to tell
    [pair] = read(
        {
            "Event": {
                "info": "x",
                "Object": [
                    {
                        "name": "ip-port",
                        "Attribute": [
                            {"type": "ip-src", "value": "192.0.2.1"},
                            {"type": "ip-dst", "value": "89.33.246.117"},
                        ],
                    }
                ],
            }
        }
    )[0]
    assert owner(pair, HOSTER) is None


def test_an_edited_attribute_keeps_the_date_of_its_event() -> None:
    # a comment edited on 2025-01-01 changes the attribute's timestamp, not what was seen
    edited = {"type": "domain", "value": "evil.example", "timestamp": "1735689600"}
    seen = {**edited, "first_seen": "2024-02-01T10:00:00+00:00"}
    [by_date, by_first_seen], _ = read(
        {"Event": {"info": "x", "date": "2024-03-01", "Attribute": [edited, seen]}}
    )
    assert by_date.time == datetime(2024, 3, 1, tzinfo=UTC)
    assert by_first_seen.time == datetime(2024, 2, 1, 10, tzinfo=UTC)
    # the timestamp only when nothing else dates it
    [undated], _ = read({"Event": {"info": "x", "Attribute": [edited]}})
    assert undated.time == datetime(2025, 1, 1, tzinfo=UTC)
    # and an unreadable one refuses the attribute only then
    broken = {**edited, "timestamp": "soon"}
    [record], [] = read({"Event": {"info": "x", "date": "2024-03-01", "Attribute": [broken]}})
    assert record.time == datetime(2024, 3, 1, tzinfo=UTC)
    [], [error] = read({"Event": {"info": "x", "Attribute": [broken]}})
    assert error.location.pointer == "/Event/Attribute/0/timestamp"


@pytest.mark.parametrize(
    ("value", "observables", "networks"),
    [
        ("198.51.100.0/24", [(K.IPV4_NET, "198.51.100.0/24")], None),
        ("2001:DB8::/48", [(K.IPV6_NET, "2001:db8::/48")], None),
        ("198.51.100.7/32", [(K.IPV4, "198.51.100.7")], None),
        ("198.51.100.7", [(K.IPV4, "198.51.100.7")], None),
        ("198.51.100.7/24", [], "198.51.100.0/24"),  # host bits set: which was meant?
    ],
)
def test_a_network_is_an_observable_of_its_own(
    value: str, observables: list[tuple[ObservableKind, str]], networks: str | None
) -> None:
    attribute = {"type": "ip-dst", "category": "Network activity", "value": value}
    [record], errors = read({"Event": {"info": "x", "Attribute": [attribute]}})
    assert errors == []
    assert [(o.kind, o.value) for o in record.observables] == observables
    assert record.extra.get("networks") == networks


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
ALL_SAMPLES = {
    **SAMPLES,
    "written.json": orjson.dumps(EVENT),
    "object.json": orjson.dumps(in_event(IP_PORT, Tag=[{"name": "tlp:green"}])),
}


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
