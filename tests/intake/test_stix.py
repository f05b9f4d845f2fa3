"""The STIX reader: real OASIS and misp-stix samples in, records and located errors out."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from concord.access.model import TLP
from concord.events.rsit import RSIT
from concord.i18n import gettext
from concord.intake.prepare import DedupPolicy, Plan, Preparer
from concord.intake.readers.stix import READER, StixReader
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

SAMPLES = {path.name: path.read_bytes() for path in sorted((FIXTURES / "stix").glob("*.json"))}
K = ObservableKind


def read_items(
    doc: Any, source: str = "bundle.json", reader: StixReader = READER
) -> list[ReadItem]:
    data = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    items = list(reader.read(io.BytesIO(data), source))
    for item in items:
        check(item, source, data)
    return items


def read(
    doc: Any, source: str = "bundle.json", reader: StixReader = READER
) -> tuple[list[EventRecord], list[ReadError]]:
    items = read_items(doc, source, reader)
    records = [i for i in items if isinstance(i, EventRecord)]
    errors = [i for i in items if isinstance(i, ReadError)]
    return records, errors


def skipped(doc: Any, source: str = "bundle.json") -> list[str | None]:
    """The pointers of the objects read and skipped as naming no value."""
    return [i.location.pointer for i in read_items(doc, source) if isinstance(i, Skipped)]


def check(item: ReadItem, source: str, data: bytes) -> None:
    """What holds for anything a reader yields, whatever the input."""
    assert isinstance(item, EventRecord | ReadError | Skipped), item
    loc = item.location
    assert loc.source == source and (loc.line is not None or loc.pointer is not None), item
    if isinstance(item, ReadError):
        assert item.reason
        return
    if isinstance(item, Skipped):  # an object of the document, read whole
        assert resolve(orjson.loads(data.removeprefix(b"\xef\xbb\xbf")), loc.pointer or "")["id"]
        return
    # an event names a value (an incident, the report itself, excepted)
    incident = item.extra["stix_id"].startswith("incident--")
    assert item.observables or "networks" in item.extra or incident
    assert item.feed == "stix" and item.nature in ("event", "indicator")
    assert item.rsit_type in RSIT[item.rsit_class]
    assert item.time is None or item.time.utcoffset() == UTC.utcoffset(None)
    assert item.tlp is None or item.tlp in TLP_LEVELS
    assert item.confidence is None or 0 <= item.confidence <= 100
    assert len(item.raw.encode()) <= MAX_RAW
    assert all(o.value and "\x00" not in o.value for o in item.observables)
    assert resolve(orjson.loads(data.removeprefix(b"\xef\xbb\xbf")), loc.pointer or "")["id"]


def resolve(doc: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def sample(name: str) -> tuple[list[EventRecord], list[ReadError]]:
    return read(SAMPLES[name], name)


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "bundle",
        "id": "bundle--44af6c39-c09b-49c5-9de2-394224b04982",
        "objects": objects,
    }


def indicator(pattern: str, n: int = 0, **props: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--33fe3b22-0201-47cf-85d0-97c02164528{n}",
        "created": "2024-05-08T09:00:00.000Z",
        "modified": "2024-05-08T09:00:00.000Z",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2024-05-08T09:00:00Z",
        **props,
    }


def sdo(kind: str, n: int, **props: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": f"{kind}--7e33a43e-e34b-40ec-89da-36c9bb2cacd{n}",
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
        **props,
    }


def observed_data(n: int, *scos: dict[str, Any], **props: Any) -> dict[str, Any]:
    """An observed-data of the SCOs `scos`, seen once on 2024-02-01 from 10:00 to 11:00."""
    return sdo(
        "observed-data",
        n,
        **{
            "first_observed": "2024-02-01T10:00:00Z",
            "last_observed": "2024-02-01T11:00:00Z",
            "number_observed": 1,
            "object_refs": [sco["id"] for sco in scos],
            **props,
        },
    )


def relationship(n: int, kind: str, source: dict[str, Any], target: dict[str, Any]) -> dict:
    return sdo(
        "relationship", n, relationship_type=kind, source_ref=source["id"], target_ref=target["id"]
    )


# --- the real samples -------------------------------------------------------------------------


def test_c2_ip_indicator_yields_the_exact_address() -> None:
    records, errors = sample("indicator-for-c2-ip-address.json")
    assert errors == []
    [record] = records
    assert record.observables == (Observable(K.IPV4, "10.0.0.0", "c2"),)
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "c2-server")
    assert record.nature == "indicator"
    assert record.time == datetime(2014, 5, 8, 9, 0, tzinfo=UTC)
    assert record.description == "Test description C2 channel."
    assert record.extra["name"] == "IP Address for known C2 channel"
    assert record.extra["pattern"] == "[ipv4-addr:value = '10.0.0.0']"
    assert record.location.pointer == "/objects/0"
    assert orjson.loads(record.raw)["id"] == "indicator--33fe3b22-0201-47cf-85d0-97c02164528d"


def test_sighting_is_an_event_with_the_indicators_url_and_count() -> None:
    records, errors = sample("sighting-of-an-indicator.json")
    assert errors == []
    indicator_record, sighting = records
    url = Observable(K.URL, "http://paypa1.banking.com/", "source")  # an empty path is "/"
    assert indicator_record.nature == "indicator" and indicator_record.observables == (url,)
    assert sighting.nature == "event" and sighting.observables == (url,)
    assert sighting.location.pointer == "/objects/3"
    assert sighting.time == datetime(2017, 2, 27, 21, 37, 11, 213000, tzinfo=UTC)
    assert sighting.times == 1 and "count" not in sighting.extra  # the sample's count: 1
    assert sighting.extra["sighting_of_ref"] == "indicator--9299f726-ce06-492e-8472-2b52ccb53191"
    for record in records:
        assert (record.rsit_class, record.rsit_type) == ("malicious-code", "malware-distribution")


def test_email_indicators_that_name_only_regular_expressions_are_skipped() -> None:
    # MATCHES names a regular expression, not a value to correlate on: the two indicators
    # are read and skipped, as a MISP attribute naming no observable is, not made events
    name = "malicious-email-indicator-with-attachment.json"
    assert read(SAMPLES[name], name) == ([], [])
    assert skipped(SAMPLES[name], name) == ["/objects/2", "/objects/3"]
    # with a value beside its expression, one is an event, phishing by what it indicates
    doc = orjson.loads(SAMPLES[name])
    pattern = doc["objects"][2]["pattern"].removesuffix("]")
    doc["objects"][2]["pattern"] = (
        f"{pattern} AND email-message:from_ref.value = 'hr@phish.example']"
    )
    [record], errors = read(doc, name)
    assert errors == [] and skipped(doc, name) == ["/objects/3"]
    assert record.location.pointer == "/objects/2"
    assert record.observables == (Observable(K.EMAIL, "hr@phish.example"),)
    assert "MATCHES" in record.extra["pattern"]
    # indicates the attack-pattern "Phishing", whose only reference is CAPEC, not ATT&CK
    assert (record.rsit_class, record.rsit_type) == ("fraud", "phishing")
    assert record.attack_techniques == ()


def test_the_granular_markings_sample_names_no_observable_and_is_skipped() -> None:
    # Its one indicator's pattern is a MATCHES on the sender: it was "Accepted 1", an event
    # with no observables; it is a skipped record now, with no error.
    name = "using-granular-markings.json"
    assert sample(name) == ([], [])
    assert skipped(SAMPLES[name], name) == ["/objects/1"]


def test_granular_markings_give_the_strictest_tlp() -> None:
    doc = orjson.loads(SAMPLES["using-granular-markings.json"])
    doc["objects"][1]["pattern"] = "[email-message:from_ref.value = 'banking@g0thamnatl.com']"
    [record], errors = read(doc, "using-granular-markings.json")
    assert errors == []
    assert record.observables == (Observable(K.EMAIL, "banking@g0thamnatl.com"),)
    assert record.tlp == "red"  # the description is marked TLP:RED, the name TLP:GREEN
    assert record.extra["indicator_types"] == "malicious-activity,attribution"


def test_misp_stix_export_observed_data_and_indicator() -> None:
    records, errors = sample("misp-stix_test_event1_stix21.json")
    assert errors == []
    summary = [(r.location.pointer, r.nature, r.observables) for r in records]
    # the observed-data at /objects/5 is what the indicator is based on (one MISP
    # attribute): one record tells it, so circl.lu is neither counted twice nor an "event"
    assert summary == [
        ("/objects/2", "event", (Observable(K.ASN, "174"),)),
        ("/objects/7", "indicator", (Observable(K.DOMAIN, "circl.lu"),)),
    ]
    assert records[0].time == datetime(2020, 10, 25, 16, 22, tzinfo=UTC)
    assert records[1].description == "Domain test attribute"
    # each names the grouping (MISP's event) it came in: campaigns join a report's records
    assert [r.extra.get("stix_report") for r in records] == [
        "grouping--e2e6a6ea-f69b-4d93-8564-f51d67cafe51",
        "grouping--d402185f-c129-4f65-8678-43edb2cee1cf",
    ]


def test_an_indicator_takes_the_values_and_markings_of_its_evidence() -> None:
    doc = orjson.loads(SAMPLES["misp-stix_test_event1_stix21.json"])
    observed = next(o for o in doc["objects"] if o["id"].startswith("observed-data--4bb235a7"))
    address = {"type": "ipv4-addr", "spec_version": "2.1", "value": "198.51.100.5"}
    address["id"] = "ipv4-addr--1f3b9d0e-9c1c-5e7a-9a47-0d4b0a7a2f10"
    observed["object_refs"].append(address["id"])
    observed["object_marking_refs"] = ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]
    doc["objects"].append(address)
    records, errors = read(doc)
    assert errors == []
    (indicator_record,) = [r for r in records if r.nature == "indicator"]
    assert [r.location.pointer for r in records] == ["/objects/2", "/objects/7"]
    assert indicator_record.observables == (
        Observable(K.DOMAIN, "circl.lu"),
        Observable(K.IPV4, "198.51.100.5"),
    )
    assert indicator_record.tlp == "amber"  # the evidence's marking, stricter than none

    address["value"] = "198.51.100.500"  # evidence that does not read is a record of its own
    records, errors = read(doc)
    assert [r.location.pointer for r in records] == ["/objects/2", "/objects/7"]
    assert records[1].observables == (Observable(K.DOMAIN, "circl.lu"),)
    assert [e.location.pointer for e in errors] == [f"/objects/{len(doc['objects']) - 1}"]


def test_context_only_bundles_give_no_records_and_no_errors() -> None:
    assert sample("threat-actor-leveraging-attack-patterns-and-malware.json") == ([], [])


def test_infrastructure_that_names_its_addresses_is_an_indicator_of_them() -> None:
    # The specification's example: a Poison Ivy C2 that consists of an IPv4 address, and a
    # host of target lists that consists of a domain.
    (c2, hosting), errors = sample("infrastructure.json")
    assert errors == []
    assert (c2.rsit_class, c2.rsit_type, c2.nature) == ("malicious-code", "c2-server", "indicator")
    assert c2.observables == (Observable(K.IPV4, "198.51.100.3", "c2"),)
    assert c2.description == "Poison Ivy C2" and str(c2.location).endswith("/objects/0")
    assert (hosting.rsit_class, hosting.rsit_type) == ("other", "undetermined")
    assert hosting.observables == (Observable(K.DOMAIN, "example.com", "source"),)
    # without the addresses it consists of, it stays context
    alone = sdo("infrastructure", 1, name="Panel", infrastructure_types=["command-and-control"])
    assert read(bundle(alone)) == ([], [])


def test_samples_are_sniffed_as_stix() -> None:
    for name, data in SAMPLES.items():
        assert READER.sniff(data[:65536], "upload"), name
    assert READER.sniff(b"", "feed.stix.json")
    misp = (FIXTURES / "misp" / "misp_event.json").read_bytes()
    assert not READER.sniff(misp, "event.json")
    assert not READER.sniff(b"ip,port\n", "feed.csv")


# --- what the samples do not show ---------------------------------------------------------------


def test_pattern_comparisons_become_canonical_observables() -> None:
    pattern = (
        "[ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value ISSUBSET '198.51.100.0/24'"
        " OR ipv6-addr:value = '2001:DB8::1/128']"
        " AND [domain-name:value = 'Evil.Example.COM.']"
        " AND [url:value IN ('HTTP://A.Example/x', 'https://b.example/Y')]"
        " AND [email-message:from_ref.value = 'Bad@Example.com'"
        " AND email-message:to_refs[*].value = 'victim@example.org']"
        " AND [file:hashes.'SHA-256' ="
        " 'B3C4AE251F8094FA15B510051835C657EAEF2A6CEA46075D3AEC964B14A99F68'"
        " AND file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']"
        " AND [autonomous-system:number = 174]"
        " AND [network-traffic:dst_ref.value = '203.0.113.5' AND network-traffic:dst_port = 443"
        " AND network-traffic:protocols[*] = 'tcp']"
        " AND [ipv4-addr:value != '192.0.2.1' AND domain-name:value LIKE '%.evil']"
    )
    records, errors = read(bundle(indicator(pattern)))
    assert errors == []
    [record] = records
    assert set(record.observables) == {
        Observable(K.IPV4, "198.51.100.7"),
        Observable(K.IPV4_NET, "198.51.100.0/24"),  # ISSUBSET: any address of the network
        Observable(K.IPV6, "2001:db8::1"),
        Observable(K.DOMAIN, "evil.example.com"),
        Observable(K.URL, "http://a.example/x"),
        Observable(K.URL, "https://b.example/Y"),
        Observable(K.EMAIL, "Bad@example.com"),
        Observable(K.EMAIL, "victim@example.org", "target"),
        Observable(K.SHA256, "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"),
        Observable(K.MD5, "0749bae92ca336a02c83d126e04ec628"),
        Observable(K.ASN, "174"),
        Observable(K.IPV4, "203.0.113.5", "destination"),
    }
    assert "networks" not in record.extra
    assert (record.port, record.protocol) == (443, "tcp")
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "malware-distribution")


def test_tlp_from_well_known_ids_and_bundle_markings() -> None:
    amber_strict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    green_1 = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
    white_1 = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
    named = sdo("marking-definition", 1, name="TLP:AMBER+STRICT", definition_type="statement")
    named.pop("modified")
    named["definition"] = {"statement": "see name"}
    ext = {
        "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
            "extension_type": "property-extension",
            "tlp_2_0": "red",
        }
    }
    tlp2 = sdo("marking-definition", 2, name="whatever", extensions=ext)
    tlp2.pop("modified")
    objects = [
        indicator("[ipv4-addr:value = '192.0.2.1']", 1, object_marking_refs=[green_1]),
        indicator("[ipv4-addr:value = '192.0.2.2']", 2, object_marking_refs=[white_1]),
        indicator(
            "[ipv4-addr:value = '192.0.2.3']", 3, object_marking_refs=[green_1, amber_strict]
        ),
        indicator("[ipv4-addr:value = '192.0.2.4']", 4, object_marking_refs=[named["id"]]),
        indicator("[ipv4-addr:value = '192.0.2.5']", 5, object_marking_refs=[tlp2["id"]]),
        indicator("[ipv4-addr:value = '192.0.2.6']", 6, labels=["tlp:amber"]),
        indicator("[ipv4-addr:value = '192.0.2.7']", 7, labels=["red"]),  # a colour, no TLP
        named,
        tlp2,
    ]
    records, errors = read(bundle(*objects))
    assert errors == []
    assert [r.tlp for r in records] == [
        "green",
        "clear",
        "amber+strict",
        "amber+strict",
        "red",
        "amber",
        None,
    ]


def test_attack_ids_from_related_attack_patterns() -> None:
    direct = sdo(
        "attack-pattern",
        1,
        name="Spearphishing Link",
        external_references=[{"source_name": "mitre-attack", "external_id": "T1566.002"}],
    )
    used = sdo(
        "attack-pattern",
        2,
        name="Web Protocols",
        external_references=[
            {"source_name": "capec", "external_id": "CAPEC-1"},
            {"source_name": "mitre-attack", "external_id": "T1071.001"},
        ],
    )
    malware = sdo("malware", 3, name="Agent", is_family=True)
    ind = indicator(
        "[domain-name:value = 'c2.example.net']",
        kill_chain_phases=[
            {"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}
        ],
    )
    objects = [
        ind,
        direct,
        used,
        malware,
        relationship(4, "indicates", ind, direct),
        relationship(5, "indicates", ind, malware),
        relationship(6, "uses", malware, used),
    ]
    [record], errors = read(bundle(*objects))
    assert errors == []
    assert record.attack_techniques == ("T1071.001", "T1566.002")
    assert record.extra["attack_tactics"] == "command-and-control"
    assert (record.rsit_class, record.rsit_type) == ("fraud", "phishing")  # "Spearphishing ..."


def test_c2_infrastructure_makes_c2_servers() -> None:
    ind = indicator("[domain-name:value = 'update.example.net']")
    infra = sdo("infrastructure", 1, name="Panel", infrastructure_types=["command-and-control"])
    [record], _ = read(bundle(ind, infra, relationship(2, "indicates", ind, infra)))
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "c2-server")
    assert record.observables == (Observable(K.DOMAIN, "update.example.net", "c2"),)


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"indicator_types": ["compromised"]}, ("intrusions", "system-compromise")),
        ({"indicator_types": ["anomalous-activity"]}, ("other", "undetermined")),
        ({"indicator_types": ["benign"]}, ("other", "other")),
        (
            {"labels": ['rsit:intrusion-attempts="brute-force"']},
            ("intrusion-attempts", "brute-force"),
        ),
        ({"labels": ['ecsirt:malicious-code="c&c"']}, ("malicious-code", "c2-server")),
        ({"labels": ["phishing-kit"]}, ("fraud", "phishing")),
    ],
)
def test_indicator_rsit(props: dict[str, Any], expected: tuple[str, str]) -> None:
    [record], errors = read(bundle(indicator("[ipv4-addr:value = '192.0.2.9']", **props)))
    assert errors == []
    assert (record.rsit_class, record.rsit_type) == expected


def test_observed_data_with_network_traffic_and_marked_scos() -> None:
    src = sdo("ipv4-addr", 1, value="192.0.2.10")
    dst = sdo("ipv4-addr", 2, value="198.51.100.20")
    dst["object_marking_refs"] = ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]
    for sco in (src, dst):
        del sco["created"], sco["modified"]
    traffic = {
        "type": "network-traffic",
        "spec_version": "2.1",
        "id": "network-traffic--7e33a43e-e34b-40ec-89da-36c9bb2cacd3",
        "src_ref": src["id"],
        "dst_ref": dst["id"],
        "dst_port": 3389,
        "protocols": ["ipv4", "tcp", "rdp"],
    }
    observed = observed_data(
        4, traffic, src, dst, number_observed=12, labels=['rsit:intrusion-attempts="brute-force"']
    )
    [record], errors = read(bundle(observed, traffic, src, dst))
    assert errors == []
    assert record.observables == (
        Observable(K.IPV4, "192.0.2.10", "source"),
        Observable(K.IPV4, "198.51.100.20", "destination"),
    )
    assert (record.port, record.protocol, record.application) == (3389, "tcp", "rdp")
    assert record.tlp == "red"  # from the destination address
    assert record.time == datetime(2024, 2, 1, 10, tzinfo=UTC)
    assert record.times == 12 and "number_observed" not in record.extra  # its event counts 12
    assert (record.rsit_class, record.rsit_type) == ("intrusion-attempts", "brute-force")


def test_a_sighting_without_its_own_times_is_dated_by_what_it_sighted() -> None:
    address = sdo("ipv4-addr", 1, value="192.0.2.10")
    del address["created"], address["modified"]
    observed = observed_data(2, address)
    sighting = sdo(  # written down a month later
        "sighting",
        3,
        created="2024-03-01T00:00:00Z",
        modified="2024-03-01T00:00:00Z",
        sighting_of_ref=indicator("[ipv4-addr:value = '192.0.2.10']")["id"],
        observed_data_refs=[observed["id"]],
    )
    records, errors = read(bundle(sighting, observed, address))
    assert errors == []
    assert records[0].time == datetime(2024, 2, 1, 10, tzinfo=UTC)
    sighting["first_seen"] = "2024-01-31T00:00:00Z"  # its own time comes first
    records, _ = read(bundle(sighting, observed, address))
    assert records[0].time == datetime(2024, 1, 31, tzinfo=UTC)


def owner(record: EventRecord, *assets: tuple[int, str, str]) -> int | None:
    """The owner intake gives the record, with (org, asset kind, value) registered."""
    plan = Plan(1, datetime(2024, 3, 1, tzinfo=UTC), 1, None, None, TLP.AMBER, DedupPolicy(), "")
    return Preparer(plan, LookupIndex.build(assets)).owner(record)


def test_a_destination_names_the_owner_only_when_no_source_is_given() -> None:
    hoster = (7, "ipv4-prefix", "198.51.100.0/24")
    pattern = (
        "[network-traffic:dst_ref.type = 'ipv4-addr'"
        " AND network-traffic:dst_ref.value = '198.51.100.20' AND network-traffic:dst_port = 443]"
    )
    [record], _ = read(bundle(indicator(pattern)))
    assert record.observables == (Observable(K.IPV4, "198.51.100.20", "destination"),)
    assert owner(record, hoster) == 7  # the malicious host: its hoster is told
    with_domain = pattern.replace("]", " AND network-traffic:src_ref.value = 'evil.example']")
    [record], _ = read(bundle(indicator(with_domain)))
    assert owner(record, hoster) == 7
    # traffic from an address to one: the source's event, the destination saw it
    src = sdo("ipv4-addr", 1, value="192.0.2.10")
    dst = sdo("ipv4-addr", 2, value="198.51.100.20")
    traffic = {
        "type": "network-traffic",
        "id": "network-traffic--7e33a43e-e34b-40ec-89da-36c9bb2cacd3",
        "src_ref": src["id"],
        "dst_ref": dst["id"],
    }
    observed = observed_data(4, traffic)
    [record], _ = read(bundle(observed, traffic, src, dst))
    assert owner(record, hoster) is None
    assert owner(record, hoster, (3, "ipv4-prefix", "192.0.2.0/24")) == 3


def test_stix_20_observed_data_with_embedded_objects_as_a_list() -> None:
    observed = {
        "type": "observed-data",
        "id": "observed-data--7e33a43e-e34b-40ec-89da-36c9bb2cacd5",
        "created": "2017-01-01T00:00:00Z",
        "modified": "2017-01-01T00:00:00Z",
        "first_observed": "2017-01-01T00:00:00Z",
        "last_observed": "2017-01-01T00:00:00Z",
        "number_observed": 1,
        "objects": {
            "0": {"type": "email-addr", "value": "Sender@Example.org"},
            "1": {"type": "email-message", "is_multipart": False, "from_ref": "0"},
            "2": {"type": "file", "hashes": {"SHA-1": "77B0C41B7D340B8A3D903F21347BBF06AA766B5B"}},
        },
    }
    [record], errors = read([observed])
    assert errors == []
    assert record.location.pointer == "/0"
    assert record.observables == (
        Observable(K.EMAIL, "Sender@example.org"),
        Observable(K.SHA1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
    )


def test_incident_with_the_core_extension() -> None:
    incident = sdo(
        "incident",
        1,
        name="Encrypted file servers",
        description="Ransom note on three servers",
        extensions={
            "extension-definition--ef765651-680c-498d-9894-99799f2fa126": {
                "extension_type": "property-extension",
                "determination": "successful-attempt",
                "investigation_status": "open",
                "incident_types": ["ransomware"],
            }
        },
    )
    [record], errors = read(incident)  # a single object, not in a bundle
    assert errors == []
    assert record.location.pointer == ""
    assert (record.nature, record.rsit_class, record.rsit_type) == (
        "event",
        "malicious-code",
        "infected-system",
    )
    assert record.description == "Ransom note on three servers"
    assert record.extra["determination"] == "successful-attempt"


def test_taxii_envelope_revoked_and_custom_objects() -> None:
    envelope = {
        "more": False,
        "objects": [
            indicator("[ipv4-addr:value = '192.0.2.1']", 1, revoked=True),
            {"type": "x-acme-widget", "id": "x-acme-widget--1", "colour": "blue"},
            indicator("[ipv4-addr:value = '192.0.2.2']", 2, x_acme_score=7),
        ],
    }
    [record], errors = read(envelope)
    assert errors == []
    assert record.observables == (Observable(K.IPV4, "192.0.2.2"),)


def test_versions_of_one_indicator_are_read_each() -> None:
    first = indicator("[ipv4-addr:value = '192.0.2.1']")
    second = indicator("[ipv4-addr:value = '192.0.2.2']", modified="2024-06-01T00:00:00Z")
    records, errors = read(bundle(first, second))
    assert errors == []
    assert [r.observables[0].value for r in records] == ["192.0.2.1", "192.0.2.2"]


def test_non_stix_patterns_name_no_value_and_are_skipped() -> None:
    yara = indicator("rule x { condition: true }", pattern_type="yara")
    assert read(bundle(yara)) == ([], [])
    assert skipped(bundle(yara)) == ["/objects/0"]
    # evidence it is based on names a value: then it is an indicator of that value
    address = {"type": "ipv4-addr", "id": f"ipv4-addr--{UUID}", "value": "192.0.2.10"}
    observed = observed_data(2, address)
    doc = bundle(yara, observed, address, relationship(3, "based-on", yara, observed))
    [record], errors = read(doc)
    assert errors == [] and skipped(doc) == []
    assert record.observables == (Observable(K.IPV4, "192.0.2.10"),)
    assert record.extra["pattern_type"] == "yara"


def test_only_records_that_name_no_value_are_skipped() -> None:
    regex = indicator("[domain-name:value MATCHES '^evil']", 1)
    valued = indicator("[domain-name:value = 'evil.example']", 2)
    # a network kept as text (host bits set) is a value, as in a MISP attribute
    network = indicator("[ipv4-addr:value = '198.51.100.7/24']", 3)
    address = {"type": "ipv4-addr", "id": f"ipv4-addr--{UUID}", "value": "192.0.2.10"}
    process = {"type": "process", "id": "process--7e33a43e-e34b-40ec-89da-36c9bb2cacd8", "pid": 4}
    observed = observed_data(4, address)
    nothing_observed = observed_data(5, process)
    seen_valued = sdo("sighting", 6, sighting_of_ref=valued["id"])
    seen_regex = sdo("sighting", 7, sighting_of_ref=regex["id"])
    seen_observed = sdo(
        "sighting", 8, sighting_of_ref=regex["id"], observed_data_refs=[observed["id"]]
    )
    incident = sdo("incident", 9, name="Outage")
    objects = [
        regex,
        valued,
        network,
        observed,
        nothing_observed,
        seen_valued,
        seen_regex,
        seen_observed,
        incident,
        address,
        process,
    ]
    records, errors = read(bundle(*objects))
    assert errors == []
    assert skipped(bundle(*objects)) == ["/objects/0", "/objects/4", "/objects/6"]
    assert [(r.location.pointer, r.nature, r.observables) for r in records] == [
        ("/objects/1", "indicator", (Observable(K.DOMAIN, "evil.example"),)),
        ("/objects/2", "indicator", ()),
        ("/objects/3", "event", (Observable(K.IPV4, "192.0.2.10"),)),
        ("/objects/5", "event", (Observable(K.DOMAIN, "evil.example"),)),
        ("/objects/7", "event", (Observable(K.IPV4, "192.0.2.10"),)),
        ("/objects/8", "event", ()),  # an incident is the report itself
    ]
    assert records[1].extra["networks"] == "198.51.100.0/24"


# --- bad input ----------------------------------------------------------------------------------


def test_malformed_json_has_line_and_column() -> None:
    [], [error] = read(b'{\n  "type": "bundle",\n  "objects": [1,,]\n}')
    assert error.location.line == 3
    assert "column 17" in error.reason


def test_bytes_that_are_not_utf8_are_found_where_they_are() -> None:
    data = (FIXTURES / "stix" / "indicator-for-c2-ip-address.json").read_bytes()
    lines = data.split(b"\n")
    lines[5] = lines[5].replace(b'"', b'"\xe9', 1)  # a Latin-1 letter, as an editor saved it
    [], [error] = read(b"\n".join(lines))
    column = lines[5].index(b"\xe9") + 1
    assert error.location.line == 6
    assert error.reason == (
        f"bytes that are not UTF-8 at line 6, column {column} (0xe9): save the file as UTF-8"
    )


@pytest.mark.parametrize("doc", [5, "bundle", {"hello": "world"}, None])
def test_not_stix(doc: Any) -> None:
    [], [error] = read(doc)
    assert error.location.pointer == "" and "not STIX" in error.reason


def test_objects_without_type_or_id() -> None:
    objects = [
        {"id": "indicator--1"},
        {"type": "indicator"},
        {"type": "indicator", "id": "malware--7e33a43e-e34b-40ec-89da-36c9bb2cacd5"},
        "text",
    ]
    [], errors = read(bundle(*objects))
    assert [(e.location.pointer, e.reason) for e in errors] == [
        ("/objects/0", "object has no 'type'"),
        ("/objects/1", "indicator object has no 'id'"),
        (
            "/objects/2",
            "id 'malware--7e33a43e-e34b-40ec-89da-36c9bb2cacd5' does not name an object of type"
            " 'indicator'",
        ),
        ("/objects/3", "a STIX object must be a JSON object"),
    ]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("[ipv4-addr:value = '192.0.2.1'", "invalid STIX pattern: 1:30: mismatched input"),
        ("ipv4-addr:value = '192.0.2.1'", "invalid STIX pattern: it must start with '['"),
        ("[file:hashes.MD5 = 'zz']", "'zz' is not a valid MD5 hash"),
        ("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS WITHIN 6 SECONDS", "Duplicate qualifier"),
        ("[ipv4-addr:value = '999.1.1.1']", "invalid IP address '999.1.1.1'"),
        ("[ipv4-addr:value = '2001:db8::1']", "is an IPV6 address"),
        ("[domain-name:value = 'not a domain']", "invalid domain"),
        ("(" * 80 + "[ipv4-addr:value = '1.2.3.4']" + ")" * 80, "nested deeper than 64"),
    ],
)
def test_invalid_patterns_are_located(pattern: str, message: str) -> None:
    [], [error] = read(bundle(indicator(pattern)))
    assert error.location.pointer == "/objects/0/pattern"
    assert message in error.reason


def test_a_property_the_library_refuses_is_located() -> None:
    # STIX times are UTC, written with "Z"
    late = indicator("[ipv4-addr:value = '198.51.100.1']", valid_from="2024-05-08T11:00:00+02:00")
    [], [error] = read(bundle(late))
    assert error.location.pointer == "/objects/0/valid_from"
    assert error.reason.startswith("invalid indicator:")
    observed = sdo("observed-data", 1, first_observed="yesterday", number_observed=1)
    [], [error] = read(bundle({**observed, "last_observed": "2024-01-01T00:00:00Z"}))
    assert error.location.pointer == "/objects/0/first_observed"


UUID = "7e33a43e-e34b-40ec-89da-36c9bb2cacd9"


@pytest.mark.parametrize("pattern", ["", "   ", "\n"])
def test_an_empty_pattern_is_an_error_and_the_other_objects_are_kept(pattern: str) -> None:
    # stix2patterns crashed on "" (UnboundLocalError) and the whole file was lost
    good = indicator("[ipv4-addr:value = '198.51.100.1']", 1)
    [record], [error] = read(bundle(indicator(pattern), good))
    assert (error.location.pointer, error.reason) == ("/objects/0/pattern", "the pattern is empty")
    assert gettext("ru", error.reason) == "шаблон пуст"
    assert record.location.pointer == "/objects/1"
    assert record.observables == (Observable(K.IPV4, "198.51.100.1"),)


def test_a_crash_of_the_pattern_library_costs_only_its_indicator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(pattern: str) -> None:
        raise UnboundLocalError("cannot access local variable 'c'")

    monkeypatch.setattr("concord.intake.readers.stix.brackets_check", crash)
    monkeypatch.setattr("concord.intake.readers.stix.Pattern21", crash)
    address = {"type": "ipv4-addr", "id": f"ipv4-addr--{UUID}", "value": "192.0.2.10"}
    observed = observed_data(2, address, last_observed="2024-02-01T10:00:00Z")
    [record], [error] = read(bundle(indicator("[ipv4-addr:value = '1.2.3.4']"), observed, address))
    assert error.location.pointer == "/objects/0/pattern"
    assert error.reason == "invalid STIX pattern: cannot access local variable 'c'"
    assert record.location.pointer == "/objects/1"


def test_an_ipv4_mapped_ipv6_address_is_the_ipv4_address() -> None:
    [record], errors = read(bundle(indicator("[ipv6-addr:value = '::ffff:1.2.3.4']")))
    assert errors == [] and record.observables == (Observable(K.IPV4, "1.2.3.4"),)
    # so does an ipv6-addr SCO of an observed-data
    address = {"type": "ipv6-addr", "id": f"ipv6-addr--{UUID}", "value": "::FFFF:192.0.2.9"}
    observed = observed_data(2, address, last_observed="2024-02-01T10:00:00Z")
    [record], errors = read(bundle(observed, address))
    assert errors == [] and record.observables == (Observable(K.IPV4, "192.0.2.9"),)
    # a real IPv6 address is still no IPv4 one
    [], [error] = read(bundle(indicator("[ipv4-addr:value = '2001:db8::1']")))
    assert error.reason == "ipv4-addr value '2001:db8::1' is an IPV6 address"


@pytest.mark.parametrize(
    ("pattern", "observables", "networks"),
    [
        ("[ipv4-addr:value = '198.51.100.0/24']", [(K.IPV4_NET, "198.51.100.0/24")], None),
        ("[ipv6-addr:value = '2001:DB8::/32']", [(K.IPV6_NET, "2001:db8::/32")], None),
        ("[ipv4-addr:value = '198.51.100.7/32']", [(K.IPV4, "198.51.100.7")], None),
        ("[ipv6-addr:value = '2001:db8::7/128']", [(K.IPV6, "2001:db8::7")], None),
        # host bits set (address or network?) and wider than any blocklist: kept as text
        ("[ipv4-addr:value = '198.51.100.7/24']", [], "198.51.100.0/24"),
        ("[ipv4-addr:value = '5.0.0.0/1']", [], "0.0.0.0/1"),
        (
            "[network-traffic:src_ref.value = '203.0.113.0/24']",
            [(K.IPV4_NET, "203.0.113.0/24")],
            None,
        ),
    ],
)
def test_a_network_is_an_observable_of_its_own(
    pattern: str, observables: list[tuple[ObservableKind, str]], networks: str | None
) -> None:
    [record], errors = read(bundle(indicator(pattern, indicator_types=["anomalous-activity"])))
    assert errors == []
    assert [(o.kind, o.value) for o in record.observables] == observables
    assert record.extra.get("networks") == networks


def test_a_c2_network_takes_the_c2_role() -> None:
    [record], _ = read(bundle(indicator("[ipv4-addr:value = '198.51.100.0/24']", name="C2 range")))
    assert record.observables == (Observable(K.IPV4_NET, "198.51.100.0/24", "c2"),)
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "c2-server")


def test_objects_the_stix2_library_rejects() -> None:
    no_valid_from = indicator("[ipv4-addr:value = '192.0.2.1']")
    del no_valid_from["valid_from"]
    bad_confidence = indicator("[ipv4-addr:value = '192.0.2.1']", 1, confidence=500)
    sighting = sdo("sighting", 2, sighting_of_ref=no_valid_from["id"])
    [], errors = read(bundle(no_valid_from, bad_confidence, sighting))
    assert [e.location.pointer for e in errors] == [
        "/objects/0/valid_from",
        "/objects/1/confidence",
        "/objects/2/sighting_of_ref",
    ]
    assert "valid_from" in errors[0].reason
    assert "the sighted indicator is invalid" in errors[2].reason


def test_deep_nesting_is_refused_with_a_pointer() -> None:
    deep: Any = "x"
    for _ in range(70):
        deep = [deep]
    [], [error] = read(bundle(indicator("[ipv4-addr:value = '192.0.2.1']", x_deep=deep)))
    assert "nested deeper than 64" in error.reason
    assert error.location.pointer.startswith("/objects/0/x_deep/0/0")


def test_nesting_past_the_parser_is_placed_where_the_readers_stop() -> None:
    # The parser gives up a thousand levels down; the readers read 64: the place named is
    # the bracket that opens the 65th level, with brackets inside strings not counted.
    text = b'{"type": "bundle", "note": "[[{{",\n "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    [], [error] = read(text)
    assert (error.location.line, error.reason) == (
        2,
        "malformed JSON at line 2, column 70: JSON nested deeper than 64 levels",
    )


def test_input_over_the_limit_is_refused() -> None:
    data = orjson.dumps(bundle(indicator("[ipv4-addr:value = '192.0.2.1']")))
    [], [error] = read(data, reader=StixReader(max_bytes=100))
    assert "larger than 100 bytes" in error.reason
    records, errors = read(data, reader=StixReader(max_bytes=len(data)))
    assert len(records) == 1 and errors == []


def test_bad_sco_value_points_at_the_sco() -> None:
    ip = {"type": "ipv4-addr", "spec_version": "2.1", "value": "10.0.0.300"}
    ip["id"] = "ipv4-addr--7e33a43e-e34b-40ec-89da-36c9bb2cacd9"
    observed = observed_data(1, ip)
    [], [error] = read(bundle(observed, ip))
    assert error.location.pointer == "/objects/1"
    assert "10.0.0.300" in error.reason


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
    "10.0.0.0/8",
    "[ipv4-addr:value = '1.2.3.4'",
    "[url:value = 'http://[::1']",
    "tlp:red",
    "indicator--33fe3b22-0201-47cf-85d0-97c02164528d",
    "2024-13-45T99:00:00Z",
    {},
    [],
    {"type": "indicator"},
    [{"a": [{"b": []}]}],
]
JSON = json_values(NASTY)


def fuzz_read(data: bytes) -> None:
    for item in READER.read(io.BytesIO(data), "fuzz.json"):
        check(item, "fuzz.json", data)


@FUZZ
@given(structural_mutants(SAMPLES, JSON))
def test_fuzz_structure(data: bytes) -> None:
    fuzz_read(data)


@with_samples(SAMPLES)
@FUZZ
@given(byte_mutants(SAMPLES) | st.binary(max_size=256))
@example(b"")
@example(b"\xef\xbb\xbf{}")
@example(b"[" * 5000)
@example(b'{"type": "bundle", "objects": {"0": 1}}')
def test_fuzz_bytes(data: bytes) -> None:
    fuzz_read(data)
