"""CSV feed profiles: Shadowserver reports, abuse.ch URLhaus, dataplane, CERT-EU and profiles
users write in YAML. Real samples are read in place from the shared folder (AGPL, not
copied); the fixtures under tests/fixtures/feeds/ were written for these tests in the same
formats, so the core runs without the shared folder."""

from __future__ import annotations

import csv
import io
import itertools
import re
import sys
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concord.access.model import TLP
from concord.events.rsit import RSIT
from concord.intake.prepare import DedupPolicy, Plan, Preparer
from concord.intake.readers import Reader, ReaderError, csvfeed
from concord.intake.readers.csvfeed import CsvFeedReader, ProfileError, load_profile
from concord.intake.readers.csvprofiles import CSV_READER, PROFILES, READER, SHADOWSERVER_SCAN
from concord.intake.records import MAX_RAW, EventRecord, Observable, ObservableKind, ReadError
from concord.orgs.whois import LookupIndex
from tests.conftest import FIXTURES, SHARED_DATA, shared_file

FEEDS = FIXTURES / "feeds"
V4, V6, ASN, DOMAIN, URL = (
    ObservableKind.IPV4,
    ObservableKind.IPV6,
    ObservableKind.ASN,
    ObservableKind.DOMAIN,
    ObservableKind.URL,
)


def read(
    reader: Reader, data: bytes | Path, name: str | None = None
) -> tuple[list[EventRecord], list[ReadError]]:
    if isinstance(data, Path):
        name = name or data.name
        data = data.read_bytes()
    assert name is not None
    items = list(reader.read(io.BytesIO(data), name))
    records = [i for i in items if isinstance(i, EventRecord)]
    errors = [i for i in items if isinstance(i, ReadError)]
    assert len(records) + len(errors) == len(items)
    return records, errors


def values(record: EventRecord, kind: ObservableKind, role: str | None = None) -> list[str]:
    return [o.value for o in record.observables if o.kind is kind and role in (None, o.role)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the real Shadowserver samples ------------------------------------------------------------


def test_shadowserver_scan_rdp_sample() -> None:
    records, errors = read(READER, shared_file("feeds/shadowserver/scan_rdp.csv"))
    assert errors == []
    assert len(records) == 2
    first = records[0]
    assert values(first, V4, "source") == ["198.123.245.178"]
    assert values(first, ASN) == ["5678"]
    assert first.port == 5678
    assert (first.rsit_class, first.rsit_type) == ("vulnerable", "potentially-unwanted-accessible")
    assert first.application == "rdp"
    assert first.feed == "shadowserver:scan_rdp"
    assert first.time == utc("2019-09-04 15:45:51")
    assert first.location.source == "scan_rdp.csv" and first.location.line == 2
    assert first.raw.startswith('"2019-09-04 15:45:51","198.123.245.178",5678,')
    assert first.extra["geo"] == "AA" and first.extra["tag"] == "rdp"
    assert values(records[1], V4) == ["198.123.245.233"]
    assert records[1].extra["sector"] == "Information Technology"


def test_shadowserver_scan_ssh_sample_with_long_rows() -> None:
    records, errors = read(READER, shared_file("feeds/shadowserver/scan_ssh.csv"))
    assert errors == []
    assert [values(r, V4)[0] for r in records] == ["18.179.0.0", "170.10.0.0", "72.17.0.0"]
    assert {(r.port, r.protocol, r.application) for r in records} == {(22, "tcp", "ssh")}
    assert records[0].extra["hostname"] == "ec2-18-179-0-0.ap-northeast-1.compute.amazonaws.com"
    assert records[1].extra["device_vendor"] == "Arris"
    for record in records:
        assert len(record.raw.encode()) <= MAX_RAW
    assert records[2].raw.startswith('"2022-01-10 02:20:37","72.17.0.0","tcp",22,')


def test_shadowserver_scan_http_vulnerable_sample() -> None:
    records, errors = read(READER, shared_file("feeds/shadowserver/scan_http_vulnerable.csv"))
    assert errors == []
    assert [r.port for r in records] == [8080, 80, 443]
    assert {(r.rsit_class, r.rsit_type) for r in records} == {("vulnerable", "vulnerable-system")}
    assert records[0].extra["tag"] == "basic-auth,http"  # a quoted comma stays in its field
    assert values(records[2], V4) == ["192.168.0.3"]


def test_shadowserver_sinkhole_sample() -> None:
    records, errors = read(READER, shared_file("feeds/shadowserver/event4_sinkhole_http.csv"))
    assert errors == []
    assert len(records) == 5
    first = records[0]
    assert (first.rsit_class, first.rsit_type) == ("malicious-code", "infected-system")
    assert first.feed == "shadowserver:event4_sinkhole_http"
    assert values(first, V4, "victim") == ["103.196.1.2"]
    assert values(first, V4, "destination") == ["184.105.1.2"]
    assert values(first, DOMAIN, "c2") == ["differentia.ru"]
    assert values(first, ASN, "victim") == ["134707"]
    assert (first.port, first.protocol) == (80, "tcp")
    assert first.extra["malware"] == "andromeda"
    assert first.extra["src_port"] == "60902"
    assert values(records[2], DOMAIN) == ["disorderstatus.ru"]


def test_shadowserver_compromised_website_sample() -> None:
    records, errors = read(READER, shared_file("feeds/shadowserver/compromised_website.csv"))
    assert errors == []
    assert len(records) == 3
    assert {(r.rsit_class, r.rsit_type) for r in records} == {("intrusions", "system-compromise")}
    assert values(records[0], URL) == ["http://example.com/header.php"]
    assert values(records[0], DOMAIN) == ["example.com"]
    assert records[0].description == "spam"
    assert records[1].description == "phishing"
    assert values(records[2], V4) == ["66.249.0.0"] and values(records[2], DOMAIN) == []
    # the skimmer's collection point, where the site's visitors' card data goes
    assert [o for o in records[2].observables if o.role == "c2"] == [
        Observable(URL, "https://lolfree.pw/ads.txt", "c2")
    ]


def test_shadowserver_profile_is_found_by_header_without_a_report_name() -> None:
    data = shared_file("feeds/shadowserver/scan_rdp.csv").read_bytes()
    records, errors = read(READER, data, "upload.csv")
    assert errors == [] and len(records) == 2
    assert records[0].feed == "shadowserver:scan"
    # the tag column says "rdp": an exposed service
    assert records[0].rsit_type == "potentially-unwanted-accessible"


@pytest.mark.parametrize(
    "name",
    [
        "scan_rdp.csv",
        "scan_ssh.csv",
        "scan_http_vulnerable.csv",
        "event4_sinkhole_http.csv",
        "compromised_website.csv",
    ],
)
def test_shadowserver_samples_are_sniffed(name: str) -> None:
    path = shared_file(f"feeds/shadowserver/{name}")
    head = path.read_bytes()[:65536]
    assert READER.sniff(head, name)
    assert READER.sniff(head, "attachment.csv")  # by the header alone
    assert CSV_READER.sniff(head, name)


# --- the other real feed samples ----------------------------------------------------------------


def test_urlhaus_sample_with_comment_lines() -> None:
    records, errors = read(CSV_READER, shared_file("feeds/abusech_urlhaus.csv"))
    assert errors == []
    assert [r.location.line for r in records] == [12, 13]
    first = records[0]
    assert first.feed == "abusech:urlhaus" and first.nature == "indicator"
    assert values(first, URL) == ["http://marconuenlist.ch/verif.accounts.docs.net/"]
    assert values(first, DOMAIN) == ["marconuenlist.ch"]
    assert values(first, V4) == ["62.241.37.242"] and values(first, ASN) == ["29083"]
    assert first.time == utc("2019-02-13 00:34:42")
    assert (first.rsit_class, first.rsit_type) == ("malicious-code", "malware-distribution")
    assert first.extra["url_status"] == "offline"


def test_dataplane_sample_with_a_pipe_in_an_as_name() -> None:
    records, errors = read(CSV_READER, shared_file("feeds/dataplane_sshpwauth.txt"))
    assert errors == []
    assert [values(r, V4)[0] for r in records] == ["170.239.104.183", "117.21.224.121", "1.2.3.4"]
    assert values(records[0], ASN) == []  # "NA"
    assert records[2].extra["asname"] == "TEST-AS company | With | pipe"
    assert {(r.rsit_class, r.rsit_type) for r in records} == {("intrusion-attempts", "brute-force")}
    assert records[1].time == utc("2016-12-06 02:35:38")


def test_cert_eu_sample() -> None:
    records, errors = read(CSV_READER, shared_file("feeds/cert_eu_example.csv"))
    assert errors == []
    assert [(r.rsit_class, r.rsit_type) for r in records] == [
        ("malicious-code", "malware-distribution"),
        ("fraud", "phishing"),
    ]
    assert [r.tlp for r in records] == ["amber", "green"]
    assert [r.confidence for r in records] == [51, 50]
    assert records[0].time == utc("2019-04-01 03:13:20")
    assert values(records[1], DOMAIN) == ["example.com"]
    # "http://example.com/" and "http://example.com" are one URL (RFC 3986 6.2.3)
    assert values(records[0], URL) == values(records[1], URL) == ["http://example.com/"]


def test_cert_eu_tlp_spellings_are_read_and_an_unreadable_one_refuses_its_row() -> None:
    sample = shared_file("feeds/cert_eu_example.csv").read_bytes()
    spelt = sample.replace(b",amber,", b",TLP-RED,", 1).replace(b",green,", b",AMBER STRICT,", 1)
    records, errors = read(CSV_READER, spelt, "cert_eu_example.csv")
    assert errors == [] and [r.tlp for r in records] == ["red", "amber+strict"]
    assert not any("invalid.tlp" in r.extra for r in records)
    for cell, level in (("TLP:RED", "red"), ("tlp_amber", "amber"), ("WHITE", "clear")):
        records, _ = read(CSV_READER, sample.replace(b",amber,", f",{cell},".encode(), 1), "c.csv")
        assert records[0].tlp == level, cell

    # A marking that still cannot be read must not fall back to the submission's TLP (which
    # may be CLEAR): the row is refused where the IntelMQ reader refuses the same value.
    unreadable = sample.replace(b",amber,", b",TLP-REDD,", 1)
    records, errors = read(CSV_READER, unreadable, "cert_eu_example.csv")
    assert [r.tlp for r in records] == ["green"]
    assert [(e.location.line, e.location.field) for e in errors] == [(2, "tlp")]
    assert errors[0].reason.startswith("invalid TLP 'TLP-REDD'")


def test_a_null_value_in_a_tlp_column_is_no_marking() -> None:
    profile = load_profile(
        "name: marked\nnull_values: [NA]\nobservables:\n  - {column: ip, kind: ip}\n"
        "  - {column: tlp, kind: tlp}\nclassification: {class: other, type: undetermined}\n"
    )
    data = b"ip,tlp\n192.0.2.1,NA\n192.0.2.2,Tlp:Amber+Strict\n"
    records, errors = read(CsvFeedReader(profile), data, "marked.csv")
    assert errors == [] and [r.tlp for r in records] == [None, "amber+strict"]


def test_spamhaus_drop_has_no_profile_and_the_error_lists_the_known_ones() -> None:
    records, errors = read(CSV_READER, shared_file("feeds/spamhaus_drop.txt"))
    assert records == []
    assert len(errors) == 1 and errors[0].location.line == 1
    for name in PROFILES:
        assert name in errors[0].reason


def test_other_samples_are_not_taken_for_shadowserver() -> None:
    for name in ("abusech_urlhaus.csv", "dataplane_sshpwauth.txt", "spamhaus_drop.txt"):
        head = shared_file(f"feeds/{name}").read_bytes()
        assert not READER.sniff(head, name)
    assert not CSV_READER.sniff(shared_file("feeds/spamhaus_drop.txt").read_bytes(), "drop.txt")


# --- fixtures written for these tests -----------------------------------------------------------


def test_fixture_scan_rdp() -> None:
    records, errors = read(READER, FEEDS / "2024-03-01-scan_rdp-example-asn.csv")
    assert errors == []
    assert [values(r, V4) or values(r, V6) for r in records] == [
        ["192.0.2.10"],
        ["192.0.2.11"],
        ["2001:db8::1"],  # canonical IPv6
    ]
    assert [r.port for r in records] == [3389, 3390, 3389]
    assert {r.feed for r in records} == {"shadowserver:scan_rdp"}
    assert {r.application for r in records} == {"rdp"}
    assert records[0].extra["hostname"] == "host10.example.kz"
    assert [r.location.line for r in records] == [2, 3, 4]


@pytest.mark.parametrize(
    "name",
    [
        "2024-03-01-scan_rdp-example-asn.csv",  # Shadowserver's own naming
        "scan_rdp_part2.csv",  # a copy renamed: still the scan_rdp report
        "reports.zip!2024-03-01-scan_rdp-example-asn.csv",  # unpacked from an archive
        "mail/reports.zip!scan_rdp.csv",
    ],
)
def test_a_report_is_one_feed_whatever_its_file_is_called(name: str) -> None:
    # the feed is part of the deduplication key: a feed per file name would count the same
    # observation again for each copy
    records, errors = read(
        READER, (FEEDS / "2024-03-01-scan_rdp-example-asn.csv").read_bytes(), name
    )
    assert errors == [] and len(records) == 3
    assert {(r.feed, r.application) for r in records} == {("shadowserver:scan_rdp", "rdp")}


def test_a_report_name_with_a_word_added_is_not_taken_for_a_known_one() -> None:
    data = (FEEDS / "2024-03-01-scan_rdp-example-asn.csv").read_bytes()
    records, _errors = read(READER, data, "2024-03-01-scan_rdp_eol-example-asn.csv")
    assert {r.feed for r in records} == {"shadowserver:scan_rdp_eol"}


def test_fixture_scan_ntp_is_an_amplifier() -> None:
    records, errors = read(READER, FEEDS / "2024-03-01-scan_ntp-example-asn.csv")
    assert errors == []
    assert [(r.rsit_class, r.rsit_type) for r in records] == [("vulnerable", "ddos-amplifier")] * 2
    assert {(r.port, r.protocol, r.application) for r in records} == {(123, "udp", "ntp")}


def test_fixture_sinkhole() -> None:
    records, errors = read(READER, FEEDS / "2024-03-02-event4_sinkhole_http-example-asn.csv")
    assert errors == []
    assert [r.extra["malware"] for r in records] == ["andromeda", "necurs"]
    assert values(records[1], DOMAIN, "c2") == ["c2-two.example.org"]  # lower case
    assert values(records[1], V4, "victim") == ["203.0.113.6"]
    assert records[0].application == "http"


def test_the_sinkhole_or_honeypot_that_saw_an_event_is_never_its_owner() -> None:
    """A destination names the owner only when nothing at the other end is given (a MISP
    ip-dst); these rows give the source, so its owner or none."""
    plan = Plan(1, datetime(2024, 3, 1, tzinfo=UTC), 1, None, None, TLP.AMBER, DedupPolicy(), "")
    sinkholed, _ = read(READER, FEEDS / "2024-03-02-event4_sinkhole_http-example-asn.csv")
    honeypot = load_profile(
        "name: honeypot\nobservables:\n  - {column: src_ip, kind: ip, role: source}\n"
        "  - {column: dst_ip, kind: ip, role: destination}\n"
        "classification: {class: intrusion-attempts, type: brute-force}\n"
    )
    attacked, _ = read(CsvFeedReader(honeypot), b"src_ip,dst_ip\n141.98.1.2,162.250.1.2\n", "h.csv")
    for records in (sinkholed, attacked):
        sensors = {address for r in records for address in values(r, V4, "destination")}
        assert sensors
        preparer = Preparer(plan, LookupIndex.build((9, "ipv4-prefix", a) for a in sensors))
        assert [preparer.owner(r) for r in records] == [None] * len(records)


def test_fixture_compromised_website_joins_host_and_path() -> None:
    records, errors = read(READER, FEEDS / "2024-03-03-compromised_website-example-asn.csv")
    assert errors == []
    assert values(records[0], URL) == ["http://www.example.kz/wp-content/x.php"]
    assert records[0].description == "malware"
    # no site URL; the skimmer's is named as its C2
    assert values(records[1], URL) == ["https://skimmer.example.net/a.js"]
    assert records[1].observables[-1].role == "c2" and records[1].extra["malware"] == "magecart"
    assert records[1].port is None


def test_bad_rows_are_errors_at_their_line_and_reading_goes_on() -> None:
    records, errors = read(READER, FEEDS / "2024-03-04-scan_ssh-broken.csv")
    assert [r.location.line for r in records] == [2, 9, 10]
    found = {e.location.line: e for e in errors}
    assert sorted(found) == [3, 4, 5, 6, 7, 8]
    for error in errors:
        assert error.location.source == "2024-03-04-scan_ssh-broken.csv"
    assert "expected 10 fields, the line has 8" in found[3].reason
    assert found[4].location.field == "ip" and "192.0.2.300" in found[4].reason
    assert found[5].location.field == "timestamp" and "25:00:03" in found[5].reason
    assert "not UTF-8" in found[6].reason and "0xfc" in found[6].reason
    assert found[7].location.field == "ip"
    assert "the line has 11" in found[8].reason
    # a bad port is set aside, the record kept
    assert records[1].port is None and records[1].extra["invalid.port"] == "99999"
    assert records[2].extra["city"] == "Душанбе"


def test_fixture_urlhaus_recent() -> None:
    records, errors = read(CSV_READER, FEEDS / "urlhaus_recent.csv")
    assert errors == []
    assert [r.location.line for r in records] == [6, 7]
    assert values(records[1], URL) == ["https://download.example.com/Invoice.zip"]
    assert records[0].extra["tags"] == "elf,mirai"
    assert {r.feed for r in records} == {"abusech:urlhaus"}


def test_fixture_dataplane() -> None:
    records, errors = read(CSV_READER, FEEDS / "dataplane_sshclient.txt")
    assert errors == []
    assert [r.location.line for r in records] == [6, 7, 9]
    assert records[0].extra["asname"] == "EXAMPLE-NET | Bishkek"
    assert "asname" not in records[1].extra  # "NA" means nothing
    assert values(records[2], V6) == ["2001:db8::71"]
    assert {(r.rsit_class, r.rsit_type) for r in records} == {("information-gathering", "scanner")}


def test_profiles_are_chosen_by_file_name_header_or_comments() -> None:
    for path, profile in (
        (FEEDS / "2024-03-01-scan_rdp-example-asn.csv", "shadowserver-scan"),
        (FEEDS / "2024-03-02-event4_sinkhole_http-example-asn.csv", "shadowserver-sinkhole"),
        (
            FEEDS / "2024-03-03-compromised_website-example-asn.csv",
            "shadowserver-compromised-website",
        ),
        (FEEDS / "urlhaus_recent.csv", "abusech-urlhaus"),
        (FEEDS / "dataplane_sshclient.txt", "dataplane"),
    ):
        head = csvfeed._head_of_bytes(path.read_bytes())
        assert csvfeed.choose(PROFILES.values(), head, path.name).name == profile  # type: ignore[union-attr]
        # without the file name: by header or by the marker in the comments
        assert csvfeed.choose(PROFILES.values(), head, "x.csv").name == profile  # type: ignore[union-attr]


def test_legacy_drone_reports() -> None:
    drone = (
        b'"timestamp","ip","port","asn","geo","region","city","hostname","type","infection",'
        b'"url","agent","cc","cc_port","cc_asn","cc_geo","cc_dns","count","family","tag"\n'
        b'"2020-05-01 10:00:00","192.0.2.44",49200,64500,"KZ","ALMATY","ALMATY","","tcp",'
        b'"Conficker","","","198.51.100.4",80,64511,"US","c2.example.net",3,"",""\n'
    )
    (record,), errors = read(READER, drone, "2020-05-01-botnet_drone-kz-geo.csv")
    assert errors == []
    assert record.feed == "shadowserver:botnet_drone"
    assert values(record, V4, "victim") == ["192.0.2.44"]
    assert values(record, V4, "destination") == ["198.51.100.4"]
    assert values(record, DOMAIN, "c2") == ["c2.example.net"]
    assert (record.port, record.protocol, record.extra["malware"]) == (80, "tcp", "conficker")
    http_drone = (
        b'"timestamp","ip","asn","geo","url","type","http_agent","tor","src_port","p0f_genre",'
        b'"p0f_detail","hostname","dst_port","http_host","http_referer","http_referer_asn",'
        b'"http_referer_geo","http_referer_ip","dst_ip","dst_asn","dst_geo"\n'
        b'"2014-04-12 00:00:06","192.0.2.45",64500,"KZ","GET / HTTP/1.0","downadup",'
        b'"Mozilla/4.0",,1789,,,,80,"sinkholed.example.biz",,,,,"198.51.100.5",64511,"US"\n'
    )
    (record,), errors = read(READER, http_drone, "upload.csv")  # by its header
    assert errors == []
    assert record.feed == "shadowserver:sinkhole_http_drone"
    assert (record.rsit_class, record.rsit_type) == ("malicious-code", "infected-system")
    assert record.extra["malware"] == "downadup" and record.extra["src_port"] == "1789"
    assert values(record, DOMAIN, "c2") == ["sinkholed.example.biz"]


def test_a_scan_header_with_protocol_and_no_tag() -> None:
    data = (
        b'"timestamp","ip","protocol","port","hostname"\n'
        b'"2024-01-01 00:00:00","192.0.2.1","udp",161,""\n'
    )
    (record,), errors = read(READER, data, "upload.csv")
    assert errors == [] and record.feed == "shadowserver:scan" and record.port == 161


# --- the engine on small inputs -----------------------------------------------------------------

SCAN_HEADER = '"timestamp","ip","protocol","port","hostname","tag","asn","geo"\n'


def scan(*rows: str, header: str = SCAN_HEADER) -> bytes:
    return (header + "".join(rows)).encode()


def test_crlf_bom_blank_lines_and_a_quoted_line_break() -> None:
    data = (
        "\ufeff"
        + SCAN_HEADER.replace("\n", "\r\n")
        + '"2024-01-01 00:00:00","192.0.2.1","tcp",23,"a","telnet",64500,"KZ"\r\n'
        + "\r\n"
        + '"2024-01-01 00:00:01","192.0.2.2","tcp",23,"two\r\nlines","telnet",64500,"KZ"\r\n'
        + '"2024-01-01 00:00:02","192.0.2.3","tcp",23,"c","telnet",64500,"KZ"'  # no line end
    ).encode()
    records, errors = read(READER, data, "2024-01-01-scan_telnet-x-y.csv")
    assert errors == []
    assert [r.location.line for r in records] == [2, 4, 6]
    assert records[1].raw.endswith('"two\r\nlines","telnet",64500,"KZ"')
    assert records[1].extra["hostname"] == "two\r\nlines"
    assert records[0].raw == '"2024-01-01 00:00:00","192.0.2.1","tcp",23,"a","telnet",64500,"KZ"'
    assert records[2].application == "telnet"


def test_empty_input_and_a_header_alone_give_nothing() -> None:
    assert read(READER, b"", "scan_rdp.csv") == ([], [])
    assert read(READER, scan(), "scan_rdp.csv") == ([], [])
    assert read(CSV_READER, b"\n\n", "scan_rdp.csv") == ([], [])


def test_a_header_without_a_required_column_is_one_error() -> None:
    data = b'"timestamp","address","port","tag"\n"2024-01-01 00:00:00","192.0.2.1",22,"ssh"\n'
    records, errors = read(CsvFeedReader(SHADOWSERVER_SCAN), data, "scan_ssh.csv")
    assert records == []
    assert len(errors) == 1 and errors[0].location.line == 1
    assert "ip" in errors[0].reason


def test_unknown_file_for_the_csv_reader() -> None:
    records, errors = read(CSV_READER, b"a,b,c\n1,2,3\n", "numbers.csv")
    assert records == [] and len(errors) == 1
    assert "known profiles" in errors[0].reason and "shadowserver-scan" in errors[0].reason


def test_ragged_rows_lack_only_unread_trailing_columns() -> None:
    header = SCAN_HEADER.replace('"geo"', '"geo","jarm"')
    good = '"2024-01-01 00:00:00","192.0.2.1","tcp",22,"a","ssh",64500,"KZ"\n'  # no jarm
    short = '"2024-01-01 00:00:00","192.0.2.2","tcp",22,"a","ssh"\n'  # no asn, geo: read
    cut = '"2024-01-01 00:00:00","192.0.2.3","tcp",22,"a","ssh",64500,"KZ"'  # file cut here
    records, errors = read(READER, scan(good, short, cut, header=header), "scan_ssh.csv")
    assert [r.location.line for r in records] == [2]
    assert [e.location.line for e in errors] == [3, 4]


def test_an_over_long_line_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfeed, "MAX_LINE", 200)
    long_row = '"2024-01-01 00:00:00","192.0.2.9","tcp",22,"' + "x" * 500 + '","ssh",1,"KZ"\n'
    good = '"2024-01-01 00:00:00","192.0.2.1","tcp",22,"a","ssh",64500,"KZ"\n'
    records, errors = read(READER, scan(good, long_row, good), "scan_ssh.csv")
    assert [r.location.line for r in records] == [2, 4]
    assert [e.location.line for e in errors] == [3]
    assert "longer than 200" in errors[0].reason


def test_a_field_over_the_csv_limit_is_an_error_and_reading_goes_on() -> None:
    huge = '"2024-01-01 00:00:00","192.0.2.9","tcp",22,"' + "x" * 200_000 + '","ssh",1,"KZ"\n'
    good = '"2024-01-01 00:00:00","192.0.2.1","tcp",22,"a","ssh",64500,"KZ"\n'
    records, errors = read(READER, scan(huge, good), "scan_ssh.csv")
    assert [e.location.line for e in errors] == [2]
    assert [r.location.line for r in records] == [3]


def test_raw_is_bounded_in_bytes() -> None:
    row = '"2024-01-01 00:00:00","192.0.2.1","tcp",22,"' + "ж" * 5000 + '","ssh",1,"KZ"\n'
    (record,), errors = read(READER, scan(row), "scan_ssh.csv")
    assert errors == []
    assert len(record.raw.encode()) <= MAX_RAW
    assert record.raw.startswith('"2024-01-01 00:00:00","192.0.2.1"')


def test_non_utf8_header_is_reported() -> None:
    data = (
        b'"timestamp","ip","port","tag","g\xe9o"\n"2024-01-01 00:00:00","192.0.2.1",22,"ssh","x"\n'
    )
    records, errors = read(READER, data, "scan_ssh.csv")
    assert records == [] and [e.location.line for e in errors] == [1]


def test_the_callers_stream_stays_open() -> None:
    stream = io.BytesIO((FEEDS / "2024-03-01-scan_ntp-example-asn.csv").read_bytes())
    assert len(list(READER.read(stream, "2024-03-01-scan_ntp-x.csv"))) == 2
    assert not stream.closed
    partial = READER.read(stream, "scan_ntp.csv")
    stream.seek(0)
    next(partial)
    partial.close()  # abandoned half way
    assert not stream.closed


def test_fast_records_equal_those_of_the_constructors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert csvfeed._FAST, "EventRecord, FaultLocation or Observable changed: see _RECORD_FIELDS"
    paths = sorted(FEEDS.iterdir())
    fast = [read(CSV_READER, p) for p in paths]
    monkeypatch.setattr(csvfeed, "_FAST", False)
    slow = [read(CSV_READER, p) for p in paths]
    assert fast == slow
    record = fast[0][0][0]
    assert type(record) is EventRecord and isinstance(record.observables[0], Observable)
    assert hash(record.location) == hash(csvfeed.FaultLocation(record.location.source, 2))
    with pytest.raises(AttributeError):
        record.port = 1  # type: ignore[misc]


def test_scan_classification_table() -> None:
    reports = SHADOWSERVER_SCAN.reports
    assert reports["scan_ntp"].rsit_type == "ddos-amplifier"
    assert reports["scan_memcached"].rsit_type == "ddos-amplifier"
    assert reports["dns_openresolver"].rsit_type == "ddos-amplifier"
    assert reports["scan_telnet"].rsit_type == "potentially-unwanted-accessible"
    assert reports["scan_elasticsearch"].application == "elasticsearch"
    assert reports["scan_http_vulnerable"] == ("vulnerable", "vulnerable-system", "http")
    assert reports["scan_ssl_poodle"].rsit_type == "weak-crypto"
    for report in reports.values():
        assert report.rsit_type in RSIT[report.rsit_class]
    # IPv6 reports read like their IPv4 twins
    ipv6 = SHADOWSERVER_SCAN.for_file("2024-01-01-scan6_rdp-org-geo.csv")
    assert (ipv6.feed, ipv6.rsit_type, ipv6.application) == (
        "shadowserver:scan6_rdp",
        "potentially-unwanted-accessible",
        "rdp",
    )
    unknown = SHADOWSERVER_SCAN.for_file("2024-01-01-scan_newthing-org.csv")
    assert unknown.feed == "shadowserver:scan_newthing" and unknown.classify_column == "tag"


# --- profiles written by users ------------------------------------------------------------------

BLOCKLIST = """
name: blocklist-de
delimiter: ","
header: true
time: {column: first_seen, format: iso}
observables:
  - {column: ip, kind: ip, role: source}
classification: {class: intrusion-attempts, type: brute-force}
extra: [reason]
"""


def test_a_user_profile_in_a_few_lines_of_yaml() -> None:
    profile = load_profile(BLOCKLIST)
    data = (
        b"ip,first_seen,reason,ignored\n"
        b"192.0.2.1,2024-03-01T10:00:00Z,ssh login attempts,x\n"
        b" 192.0.2.2 ,2024-03-01T12:00:00+02:00,,y\n"
        b"192.0.2.300,2024-03-01T10:00:00Z,bad,z\n"
        b"192.0.2.4,yesterday,bad,z\n"
    )
    records, errors = read(CsvFeedReader(profile), data, "blocklist.csv")
    assert [values(r, V4) for r in records] == [["192.0.2.1"], ["192.0.2.2"]]
    assert records[0].feed == "blocklist-de"
    assert (records[0].rsit_class, records[0].rsit_type) == ("intrusion-attempts", "brute-force")
    assert records[0].time == utc("2024-03-01 10:00:00")
    assert records[1].time == utc("2024-03-01 10:00:00")  # +02:00 made UTC
    assert records[0].extra == {"reason": "ssh login attempts"} and records[1].extra == {}
    assert [(e.location.line, e.location.field) for e in errors] == [(4, "ip"), (5, "first_seen")]


def test_a_headerless_user_profile_with_a_classification_column() -> None:
    profile = load_profile(
        """
name: honeypot
delimiter: ";"
header: false
comment: "%"
columns: [seen, address, service, what, sha256]
time: {column: seen, format: epoch}
observables:
  - {column: address, kind: ip}
  - {column: sha256, kind: sha256, role: malware}
  - {column: service, kind: port}
classification:
  class: information-gathering
  type: scanner
  column: what
  map: {login: intrusion-attempts/brute-force, exploit: exploit}
recognise: {marker: my honeypot}
"""
    )
    sha = "ab" * 32
    data = (
        f"% my honeypot export\n1709287200;192.0.2.5;22;login;{sha}\n"
        "1709287201;192.0.2.6;80;probe;\n1709287202;192.0.2.7;445;EXPLOIT;\n"
    ).encode()
    records, errors = read(CsvFeedReader(profile), data, "export.txt")
    assert errors == []
    assert [r.rsit_type for r in records] == ["brute-force", "scanner", "exploit"]
    assert records[0].time == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert values(records[0], ObservableKind.SHA256, "malware") == [sha]
    assert [r.port for r in records] == [22, 80, 445]
    assert CsvFeedReader(profile).sniff(data, "export.txt")
    assert not CsvFeedReader(profile).sniff(b"1;2;3;4;5\n", "export.txt")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("- a list", "/"),
        (BLOCKLIST.replace("name: blocklist-de", "name: Block List"), "name"),
        (BLOCKLIST + "colour: red\n", "colour"),
        (BLOCKLIST.replace("kind: ip", "kind: ipaddr"), "observables[0].kind"),
        (BLOCKLIST.replace("role: source", "role: 'Source Host!'"), "observables[0].role"),
        (BLOCKLIST.replace("column: ip,", "kind: ip, column: ip, size: 3,"), "observables[0].size"),
        (BLOCKLIST.replace("type: brute-force", "type: phishing"), "classification"),
        (BLOCKLIST.replace("class: intrusion-attempts", "class: bad-things"), "classification"),
        (BLOCKLIST.replace(", type: brute-force", ""), "classification.type"),
        (BLOCKLIST.replace("format: iso", "format: yesterday"), "time.format"),
        (BLOCKLIST.replace('delimiter: ","', 'delimiter: ",;"'), "delimiter"),
        (BLOCKLIST.replace("header: true", "header: false"), "columns"),
        (BLOCKLIST.replace("header: true", "header: maybe"), "header"),
        (BLOCKLIST + "split: '[unclosed'\n", "split"),
        (BLOCKLIST + "split: 'x*'\n", "split"),
        (BLOCKLIST + "tlp: purple\n", "tlp"),
        (BLOCKLIST + "nature: rumour\n", "nature"),
        (BLOCKLIST.replace("extra: [reason]", "extra: reason"), "extra"),
        (
            BLOCKLIST.replace("header: true", "header: false\ncolumns: [a, b]"),
            "observables[0].column",
        ),
        (
            BLOCKLIST.replace("observables:\n  - {column: ip, kind: ip, role: source}", "")
            + "observables: [{column: p, kind: port}]\n",
            "observables",
        ),
        (BLOCKLIST + "recognise: {columns: [ip], size: 2}\n", "recognise.size"),
        (
            BLOCKLIST.replace(
                "classification: {class: intrusion-attempts, type: brute-force}",
                "classification: {map: {a: scanner}}",
            ),
            "classification.column",
        ),
    ],
)
def test_bad_profiles_name_the_field_at_fault(text: str, field: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(text)
    assert caught.value.field == field
    assert isinstance(caught.value, ReaderError)
    assert field in str(caught.value)


def test_a_profile_that_is_not_yaml_names_its_line_and_column() -> None:
    with pytest.raises(ReaderError) as caught:
        load_profile("name: blocklist\nheader: [unclosed")
    assert str(caught.value) == (
        "line 2, column 18: not valid YAML: expected ',' or ']', but got '<stream end>'"
    )


def test_time_formats() -> None:
    parse = csvfeed.time_parser
    assert parse("%Y-%m-%d %H:%M:%S")("2024-03-01 10:00:00") == utc("2024-03-01 10:00:00")
    assert parse("iso")("2024-03-01T12:00:00+02:00") == utc("2024-03-01 10:00:00")
    assert parse("iso")("2024-03-01T10:00:00") == utc("2024-03-01 10:00:00")
    assert parse("epoch")("1709287200") == utc("2024-03-01 10:00:00")
    assert parse("epoch_ms")("1709287200000") == utc("2024-03-01 10:00:00")
    assert parse("%d/%m/%Y %H:%M")("01/03/2024 10:00") == utc("2024-03-01 10:00:00")
    # a Shadowserver time with its zone or fractions, as another tool may write it
    plain = parse("%Y-%m-%d %H:%M:%S")
    for text in ("2024-03-01 10:00:00Z", "2024-03-01T12:00:00+02:00", "2024-03-01 10:00:00.000"):
        assert plain(text) == utc("2024-03-01 10:00:00"), text
    for fmt, bad in (
        ("%Y-%m-%d %H:%M:%S", "2024-03-01T10:00"),
        ("%Y-%m-%d %H:%M:%S", "20240301T100000Z+0000"),
        ("epoch", "1e400"),
        ("epoch", "nan"),
        ("iso", "yesterday"),
    ):
        with pytest.raises(ValueError):
            parse(fmt)(bad)


# --- a stray quote costs its own line -----------------------------------------------------------


def accounted(records: list[EventRecord], errors: list[ReadError]) -> list[int]:
    """The numbers of the lines the records (each line a record spans) and errors stand for."""
    numbers = [e.location.line for e in errors]
    for record in records:
        first = record.location.line
        numbers += range(first, first + record.raw.count("\n") + 1)
    return sorted(numbers)


def unique_rows(rows: list[str], count: int) -> list[str]:
    """`count` rows taken in turn from `rows`, each with a source address of its own."""
    return [
        _IPV4.sub(f"10.{i >> 8 & 255}.{i & 255}.1", rows[i % len(rows)], count=1)
        for i in range(count)
    ]


_IPV4 = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


def with_quote(row: str, at: int) -> str:
    return row[:at] + '"' + row[at:]


def cert_eu(count: int, unquoted: bool = False) -> tuple[str, list[str]]:
    """The CERT-EU sample's header and `count` rows made of its two; `unquoted` writes the
    two quoted cells of each row without quotes (and without their commas)."""
    header, *rows = shared_file("feeds/cert_eu_example.csv").read_text().splitlines()
    if unquoted:
        rows = [re.sub(r'"([^"]*)"', lambda m: m.group(1).replace(",", " "), r) for r in rows]
    return header, unique_rows(rows, count)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("This type", "expected 42 fields, the line has 29"),  # closed by a later quote
        ("Vienna", "expected 42 fields, the line has 38"),
        # after the row's last quoted cell: the quote runs over the line end
        (
            "u2edk81fc1e8",
            "unclosed quote at column 245: the field it opens does not end on this line",
        ),
        ("Other", "unclosed quote at column 273: the field it opens does not end on this line"),
        ("http://", "unclosed quote at column 279: the field it opens does not end on this line"),
    ],
)
def test_a_stray_quote_in_a_cert_eu_feed_costs_that_line_alone(cell: str, reason: str) -> None:
    header, rows = cert_eu(1000)
    rows[1] = with_quote(rows[1], rows[1].index(cell))  # line 3
    data = "\n".join([header, *rows, ""]).encode()
    records, errors = read(CSV_READER, data, "cert_eu_example.csv")
    assert [(e.location.line, e.reason) for e in errors] == [(3, reason)]
    assert [r.location.line for r in records] == [2, *range(4, 1002)]
    assert accounted(records, errors) == list(range(2, 1002))
    assert values(records[1], V4) == ["10.0.2.1"]  # the row after it is whole


def test_a_closing_quote_missing_in_the_cert_eu_sample_costs_its_line_alone() -> None:
    # The quote closing "48.306389,14.28611" is gone: the next quote, opening "EXAMPLE, AT",
    # closes the field and ", AT"" splits another, so the row still had its 42 fields and
    # was read shifted ("source as name" ' AT"'). Strict CSV refuses it: text follows that
    # closing quote.
    sample = shared_file("feeds/cert_eu_example.csv").read_text()
    broken = sample.replace('"48.306389,14.28611"', '"48.306389,14.28611', 1)
    records, errors = read(CSV_READER, broken.encode(), "cert_eu_example.csv")
    column = broken.splitlines()[1].index('"48.306389') + 1
    assert [(e.location.source, e.location.line, e.reason) for e in errors] == [
        (
            "cert_eu_example.csv",
            2,
            f"unclosed quote at column {column}: the field it opens does not end on this line",
        )
    ]
    assert column == 241
    [record] = records  # the row after it is read whole
    assert record.location.line == 3
    assert record.extra["source as name"] == "EXAMPLE, AT"
    assert values(record, V4) == ["144.76.221.34"]


@pytest.mark.parametrize("index", range(4))  # each of the four quotes of a row
def test_a_quote_missing_from_a_middle_cert_eu_row_costs_that_line_alone(index: int) -> None:
    header, rows = cert_eu(1000)
    at = [i for i, c in enumerate(rows[500]) if c == '"'][index]
    rows[500] = rows[500][:at] + rows[500][at + 1 :]  # line 502
    records, errors = read(CSV_READER, "\n".join([header, *rows, ""]).encode(), "cert-eu.csv")
    assert [e.location.line for e in errors] == [502]
    assert accounted(records, errors) == list(range(2, 1002))
    after = next(r for r in records if r.location.line == 503)
    assert after.extra["source as name"] == "EXAMPLE, AT"


@pytest.mark.parametrize(
    ("rows", "padding", "why"),
    [
        (1000, 0, f"runs on over {csvfeed.MAX_SPAN} lines"),  # a bound of the reader
        (100, 0, "does not end on this line"),  # to the end of the file
        (1000, 2000, "does not end on this line"),  # over csv's field size limit first
    ],
)
def test_a_quote_that_never_closes_costs_its_line_alone(rows: int, padding: int, why: str) -> None:
    header, body = cert_eu(rows, unquoted=True)
    body = [r.replace("A URL is", "A URL is" + "x" * padding) for r in body]
    at = body[4].index("Austria")
    body[4] = with_quote(body[4], at)  # line 6, in a feed with no other quote
    records, errors = read(CSV_READER, "\n".join([header, *body]).encode(), "cert-eu.csv")
    assert [e.location.line for e in errors] == [6]
    assert errors[0].reason.startswith(f"unclosed quote at column {at + 1}: the field it opens ")
    assert why in errors[0].reason
    assert accounted(records, errors) == list(range(2, rows + 2))
    assert len(records) == rows - 1


def test_a_line_read_again_after_a_stray_quote_may_be_refused_in_turn() -> None:
    header, body = cert_eu(12, unquoted=True)
    body[4] = with_quote(body[4], body[4].index("Austria"))  # line 6 opens a field
    # line 7 keeps a field open, read after line 6 or on its own: a quote inside a cell is
    # text, one at the start of a cell opens a field
    body[5] = body[5].replace("Austria", 'Aus"tria').replace("Vienna", '"Vienna')
    body[7] = body[7].replace("Austria", 'Aus"tria')  # line 9 closes it, badly
    records, errors = read(CSV_READER, "\n".join([header, *body, ""]).encode(), "cert-eu.csv")
    assert [e.location.line for e in errors] == [6, 7]
    assert errors[1].reason.startswith(f"unclosed quote at column {body[5].index('Vienna')}:")
    assert [r.location.line for r in records] == [2, 3, 4, 5, *range(8, 14)]


def shadowserver_rows(name: str, count: int) -> tuple[str, list[str]]:
    header, *rows = shared_file(f"feeds/shadowserver/{name}").read_text().splitlines()
    return header, unique_rows(rows, count)


def test_a_stray_quote_in_a_shadowserver_report_costs_that_line_alone() -> None:
    header, rows = shadowserver_rows("event4_sinkhole_http.csv", 5)
    at = rows[1].rindex('",') + 2  # an empty cell after the row's last quoted one
    data = "\n".join([header, rows[0], with_quote(rows[1], at), *rows[2:], ""]).encode()
    records, errors = read(READER, data, "2021-03-04-event4_sinkhole_http-x.csv")
    assert [(e.location.line, e.reason) for e in errors] == [
        (3, f"unclosed quote at column {at + 1}: the field it opens does not end on this line")
    ]
    assert [r.location.line for r in records] == [2, 4, 5, 6]
    assert values(records[1], V4, "victim") == ["10.0.2.1"]


@pytest.mark.parametrize("name", ["scan_rdp.csv", "event4_sinkhole_http.csv"])
def test_a_stray_quote_anywhere_in_a_shadowserver_row_costs_that_line_at_most(name: str) -> None:
    header, rows = shadowserver_rows(name, 5)
    refused = 0
    for at in range(len(rows[1]) + 1):
        broken = [rows[0], with_quote(rows[1], at), *rows[2:]]
        data = "\n".join([header, *broken, ""]).encode()
        records, errors = read(READER, data, f"2019-09-04-{name}")
        assert [e.location.line for e in errors] in ([], [3]), at
        assert {4, 5, 6} <= {r.location.line for r in records}, at
        assert accounted(records, errors) == [2, 3, 4, 5, 6], at
        refused += bool(errors) and errors[0].reason.startswith("unclosed quote")
    assert refused >= 2  # where the quote runs over the line end


def test_a_quoted_field_may_span_lines_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfeed, "MAX_SPAN", 4)
    good = '"2024-01-01 00:00:00","192.0.2.1","tcp",22,"a","ssh",64500,"KZ"\n'
    three = '"2024-01-01 00:00:00","192.0.2.2","tcp",22,"a\nb\nc","ssh",64500,"KZ"\n'
    five = '"2024-01-01 00:00:00","192.0.2.3","tcp",22,"a\nb\nc\nd\ne","ssh",64500,"KZ"\n'
    records, errors = read(READER, scan(good, three, five, good), "scan_ssh.csv")
    assert [(r.location.line, values(r, V4)) for r in records] == [
        (2, ["192.0.2.1"]),
        (3, ["192.0.2.2"]),  # lines 3 to 5
        (11, ["192.0.2.1"]),
    ]
    assert records[1].extra["hostname"] == "a\nb\nc"
    # the five-line field is over the bound: its first line is refused, each line after it
    # read on its own
    assert errors[0].location.line == 6
    assert errors[0].reason == (
        f"unclosed quote at column 44: the field it opens runs on over 4 lines or "
        f"{csvfeed.MAX_LINE} characters"
    )
    assert accounted(records, errors) == list(range(2, 12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(
        ["cert_eu_example.csv", "shadowserver/scan_rdp.csv", "shadowserver/scan_ssh.csv"]
    ),
    st.lists(st.tuples(st.integers(0, 29), st.integers(0, 10_000)), min_size=1, max_size=4),
)
def test_stray_quotes_anywhere_cost_no_line_silently(
    sample: str, quotes: list[tuple[int, int]]
) -> None:
    """Whatever the stray quotes do, each line is in a record or in an error, exactly once."""
    header, *rows = shared_file(f"feeds/{sample}").read_text().splitlines()
    rows = unique_rows(rows, 30)
    for row, at in quotes:
        rows[row] = with_quote(rows[row], at % (len(rows[row]) + 1))
    name = sample.rsplit("/", 1)[-1]
    reader = CSV_READER if name.startswith("cert") else READER
    records, errors = read(reader, "\n".join([header, *rows, ""]).encode(), name)
    assert accounted(records, errors) == list(range(2, 32))
    # a row without a stray quote is read, whatever the row before it holds
    untouched = set(range(2, 32)) - {row + 2 for row, _ in quotes}
    assert untouched <= {r.location.line for r in records}


# --- fuzzing ------------------------------------------------------------------------------------


def _seeds() -> list[tuple[str, bytes]]:
    seeds = [(p.name, p.read_bytes()) for p in sorted(FEEDS.iterdir())]
    shared = SHARED_DATA / "feeds"
    if shared.is_dir():  # the real samples too, when they are beside the checkout
        seeds += [(p.name, p.read_bytes()) for p in sorted(shared.rglob("*")) if p.is_file()]
    return seeds


SEEDS = _seeds()
SPECIAL = [b'"', b",", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", b"|", b"#", b"  |  ", b""]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name, data = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "cut"]))
        if operation == "insert":
            piece = draw(st.one_of(st.sampled_from(SPECIAL), st.binary(max_size=20)))
            data = data[:at] + piece + data[at:]
        elif operation == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 40)) :]
        elif operation == "replace" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif operation == "duplicate":
            lines = data.splitlines(keepends=True)
            if lines:
                line = lines[draw(st.integers(0, len(lines) - 1))]
                data = data[:at] + line + data[at:]
        else:
            data = data[:at]
    return name, data


def check(items: Iterable[EventRecord | ReadError], source: str) -> None:
    for item in items:
        assert isinstance(item, EventRecord | ReadError)
        assert item.location.source == source
        assert isinstance(item.location.line, int) and item.location.line >= 1
        if isinstance(item, ReadError):
            assert item.reason
            continue
        assert len(item.raw.encode("utf-8", "surrogateescape")) <= MAX_RAW
        assert item.time is None or item.time.utcoffset() is not None
        assert item.rsit_class in RSIT
        assert item.port is None or 0 < item.port <= 65535


READERS: list[Reader] = [READER, CSV_READER, *(CsvFeedReader(p) for p in PROFILES.values())]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from(READERS), st.booleans())
def test_fuzz_never_raises_and_every_error_has_a_line(
    case: tuple[str, bytes], reader: Reader, keep_name: bool
) -> None:
    name, data = case
    source = name if keep_name else "upload.bin"
    reader.sniff(data[:65536], source)
    check(reader.read(io.BytesIO(data), source), source)


# --- bounded memory on a large feed -------------------------------------------------------------


class GeneratedFeed(io.RawIOBase):
    """A Shadowserver scan report of `rows` rows produced on demand, never held whole."""

    def __init__(self, rows: int) -> None:
        self._chunks = self._generate(rows)
        self._pending = memoryview(b"")

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield b'"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"\n'
        batch = []
        for i in range(rows):
            batch.append(
                f'"2024-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",'
                f'"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}","udp",123,'
                f'"host{i}.example.net","ntp",{64500 + i % 50},"KZ","ALMATY","ALMATY"\n'
            )
            if len(batch) == 1000:
                yield "".join(batch).encode()
                batch = []
        yield "".join(batch).encode()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def test_a_large_feed_streams_in_bounded_memory() -> None:
    """300,000 rows pass through; memory stays flat. tracemalloc makes each row some 20 times
    slower, so it watches the last 5,000 rows (peak and growth) and the count of allocated
    blocks watches the whole stream."""
    rows, traced = 300_000, 5_000
    stream = io.BufferedReader(GeneratedFeed(rows))
    items = READER.read(stream, "2024-01-01-scan_ntp-big-asn.csv")
    started = time.perf_counter()
    count = errors = 0
    blocks: dict[int, int] = {}

    def take(n: int) -> None:
        nonlocal count, errors
        for item in itertools.islice(items, n):
            if isinstance(item, EventRecord):
                count += 1
            else:
                errors += 1
            if count % 50_000 == 0:
                blocks[count] = sys.getallocatedblocks()

    take(rows - traced)
    tracemalloc.start()
    try:
        take(1_000)
        early, _ = tracemalloc.get_traced_memory()
        take(traced)
        late, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, errors) == (rows, 0)
    assert next(items, None) is None
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert late - early < 256 * 1024, f"grew {(late - early) / 1e3:.0f} kB in 4,000 rows"
    # no growth between 50,000 and 250,000 rows: nothing is kept per row
    assert blocks[250_000] - blocks[50_000] < 10_000, blocks
    assert time.perf_counter() - started < 30  # a guard against a quadratic path


def test_the_generated_feed_is_valid_csv() -> None:
    text = io.TextIOWrapper(io.BufferedReader(GeneratedFeed(3)), newline="").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 4 and all(len(r) == 10 for r in rows)


def test_the_intake_registry_recognises_these_feeds() -> None:
    from concord.intake import registry

    for path, reader in (
        (FEEDS / "2024-03-01-scan_rdp-example-asn.csv", "shadowserver"),
        (FEEDS / "2024-03-02-event4_sinkhole_http-example-asn.csv", "shadowserver"),
        (FEEDS / "urlhaus_recent.csv", "csv"),
        (FEEDS / "dataplane_sshclient.txt", "csv"),
    ):
        assert registry.choose(path.read_bytes()[:65536], path.name, None).name == reader
    assert {"shadowserver", "csv"} <= set(registry.readers())
