"""The e-mail reader: ARF, X-ARF and plain-text abuse reports, from real samples and bad input."""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concord.errors import FaultLocation
from concord.events.rsit import RSIT
from concord.i18n import gettext
from concord.intake.prepare import DedupPolicy
from concord.intake.readers import email as email_reader
from concord.intake.readers.email import (
    MAX_PART_BYTES,
    ORIGINAL_TRUNCATED,
    READER,
    SUBJECT_RULES,
    parse_feedback_report,
    read_xarf_json,
    refang,
)
from concord.intake.records import MAX_RAW, EventRecord, Observable, ObservableKind, ReadError
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "email"
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def read(data: bytes, source: str = "mail.eml") -> tuple[list[EventRecord], list[ReadError]]:
    return split(READER.read(io.BytesIO(data), source))


def read_file(name: str) -> tuple[list[EventRecord], list[ReadError]]:
    return read((SAMPLES / name).read_bytes(), name)


# The arf-01 sample ends without its closing boundary, inside its original message (a cut
# RFC 5965 allows): closed, the same report is read with no note of it.
ARF_01_CLOSED = (SAMPLES / "arf-01.eml").read_bytes() + b"--boundary-0000-00000-0000000-000000--\n"


def split(items: Iterable[object]) -> tuple[list[EventRecord], list[ReadError]]:
    records: list[EventRecord] = []
    errors: list[ReadError] = []
    for item in items:
        assert isinstance(item, EventRecord | ReadError), item
        (records if isinstance(item, EventRecord) else errors).append(item)
    return records, errors


def values(record: EventRecord) -> set[tuple[str, str, str]]:
    return {(o.kind.value, o.value, o.role) for o in record.observables}


def reasons(errors: list[ReadError]) -> str:
    return " | ".join(f"{e.location}: {e.reason}" for e in errors)


# --- sniffing --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.eml")), ids=lambda p: p.name)
def test_sniffs_every_mail_sample_by_name_and_by_content(path: Path) -> None:
    head = path.read_bytes()[:65536]
    assert READER.sniff(head, path.name)
    assert READER.sniff(head, "upload.bin")


@pytest.mark.parametrize(
    "name",
    [
        "abusix_v3_portscan_sample.json",
        "connection-login-attack.json",
        "infrastructure-botnet.json",
        "messaging-spam.json",
        "vulnerability-open-service.json",
    ],
)
def test_sniffs_bare_xarf_json(name: str) -> None:
    assert READER.sniff((SAMPLES / name).read_bytes(), name)


@pytest.mark.parametrize(
    "head",
    [
        b"time,source.ip,classification.type\n2025-01-01,192.0.2.1,scanner\n",
        b'{"type": "bundle", "id": "bundle--1", "objects": []}',
        b'{"Event": {"info": "x", "Attribute": []}}',
        b"key: value\nother: thing\n",
        b"\x00\x01\x02binary",
        b"",
    ],
)
def test_does_not_claim_other_formats(head: bytes) -> None:
    assert not READER.sniff(head, "feed.dat")


# --- ARF (RFC 5965) --------------------------------------------------------------------------

ARF = {
    # file: (RSIT class/type, observables, time, where the source IP came from)
    "arf-01.eml": (
        ("abusive-content", "spam"),
        {("ipv4", "192.0.2.89", "source"), ("domain", "example.ed.jp", "source")},
        datetime(2009, 4, 29, 0, 0, tzinfo=UTC),
        "Source-IP",
    ),
    "arf-14.eml": (
        ("abusive-content", "spam"),
        {
            # No Source-IP: the first external hop of the original message's Received chain.
            ("ipv4", "192.0.2.2", "source"),
            ("domain", "amazonses.com", "source"),
            (
                "email",
                "2222222222222222-22222222-0000-eeee-ffff-222222222222-222222@amazonses.com",
                "source",
            ),
        },
        datetime(2017, 4, 29, 23, 34, 45, tzinfo=UTC),
        "Received",
    ),
    "arf-20.eml": (
        ("fraud", "masquerade"),
        {
            ("ipv4", "203.0.113.2", "source"),
            ("domain", "example.net", "target"),  # auth-failure: the abused domain
            ("email", "dmarc-bounces@ietf.example.org", "source"),
        },
        datetime(2015, 4, 29, 23, 34, 45, tzinfo=UTC),
        "Source-IP",
    ),
    "stalwart_001.eml": (
        ("abusive-content", "spam"),
        {("ipv4", "192.0.2.1", "source")},
        datetime(2005, 3, 8, 18, 0, tzinfo=UTC),  # top Received: 14:00 -0400
        "Received",
    ),
}


@pytest.mark.parametrize("name", sorted(ARF))
def test_arf_samples(name: str) -> None:
    rsit, observables, time, ip_from = ARF[name]
    records, _ = read_file(name)
    assert len(records) == 1
    record = records[0]
    assert (record.rsit_class, record.rsit_type) == rsit
    assert values(record) == observables
    assert record.time == time
    assert record.extra["source_ip_from"] == ip_from
    assert record.feed == "arf"
    assert record.location.source == name
    assert record.location.pointer == "/part/2"
    assert record.raw.startswith("Feedback-Type: ")


def test_arf_details_from_the_report_and_the_original_message() -> None:
    (a01,), _ = read_file("arf-01.eml")
    assert a01.extra["user_agent"] == "SMP-FBL"
    assert a01.extra["time_from"] == "Received-Date"
    assert a01.extra["original_subject"] == "Kijitora cat family"
    assert a01.extra["original_from"] == '"Email Abuse" <abuse@example.ed.jp>'
    (a14,), _ = read_file("arf-14.eml")
    assert a14.extra["original_rcpt_to"] == "kijitora@y.example.com"
    assert "dkim=pass" in a14.extra["authentication_results"]
    (a20,), _ = read_file("arf-20.eml")
    assert a20.extra["feedback_type"] == "auth-failure"
    assert a20.extra["auth_failure"] == "dmarc"
    assert a20.extra["original_envelope_id"] == "0022FFEE"
    # No Arrival-Date: the time comes from the original's text/rfc822-headers Received chain.
    assert a20.extra["time_from"] == "Received"


CUT_SHORT = "multipart is truncated: its closing boundary is missing"


def last_line(data: bytes) -> int:
    return data.count(b"\n") + (not data.endswith(b"\n"))


def test_arf_01_truncated_original_is_accepted_with_a_note() -> None:
    # The sample's original message (its third part) is cut short, closing boundary and all:
    # RFC 5965 allows a truncated original, and feedback loops send such reports, whose own
    # parts are whole before it; so the report is accepted, with a note.
    records, errors = read_file("arf-01.eml")
    assert errors == [], reasons(errors)
    (record,) = records
    assert values(record) == {
        ("ipv4", "192.0.2.89", "source"),
        ("domain", "example.ed.jp", "source"),
    }
    assert (record.rsit_class, record.rsit_type) == ("abusive-content", "spam")
    assert record.time == datetime(2009, 4, 29, 0, 0, tzinfo=UTC)
    assert record.location.pointer == "/part/2"
    assert record.extra["original_truncated"] == ORIGINAL_TRUNCATED
    assert record.extra["original_subject"] == "Kijitora cat family"
    # closed, its whole original is no truncated one
    (closed,), errors = read(ARF_01_CLOSED)
    assert errors == [], reasons(errors)
    assert values(closed) == values(record) and "original_truncated" not in closed.extra


def _blank_line_after(data: bytes, at: int) -> int:
    found = [i for i in (data.find(b"\n\n", at), data.find(b"\r\n\r\n", at)) if i >= 0]
    return min(found)


def _original_body_starts(data: bytes) -> int:
    """Where the body of an ARF sample's third part, the original message, begins."""
    boundary = re.search(rb'boundary="?([^";\r\n]+)"?', data)
    assert boundary
    marker = b"\n--" + boundary.group(1)
    at = -1
    for _ in range(3):
        at = data.index(marker, at + 1)
    return _blank_line_after(data, at)


@pytest.mark.parametrize("name", ["arf-01.eml", "arf-14.eml", "arf-20.eml", "stalwart_001.eml"])
@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_an_arf_sample_cut_in_transport_is_refused_whole_unless_in_its_original(
    name: str, fraction: float
) -> None:
    # Cut in a report's own parts (its text, its feedback report), the report would be read
    # wrong (a description cut mid-word, a source missing): an error naming the file, and no
    # record. Cut inside the original, the report is whole: the truncated original RFC 5965
    # allows.
    data = (SAMPLES / name).read_bytes()
    cut = data[: int(len(data) * fraction)]
    records, errors = read(cut, name)
    if len(cut) > _original_body_starts(data):
        assert errors == [], reasons(errors)
        (record,) = records
        assert record.extra["original_truncated"] == ORIGINAL_TRUNCATED
        return
    assert records == [] and len(errors) == 1 and errors[0].location.source == name
    if len(cut) > _blank_line_after(data, 0):  # the mail's headers whole: its body is cut
        assert (errors[0].location.line, errors[0].location.pointer) == (last_line(cut), "/")
        assert errors[0].reason == CUT_SHORT
        assert gettext("ru", CUT_SHORT) != CUT_SHORT  # the receipt reads it in Russian


def test_arf_20_with_its_original_truncated_inside_a_whole_structure_is_read() -> None:
    # What RFC 5965 allows: the reporter cuts the original's headers short, and the report's
    # closing boundary still follows.
    data = (SAMPLES / "arf-20.eml").read_bytes()
    start = data.index(b"Content-Type: text/rfc822-headers")
    end = data.rindex(b"--example.net:0022FFEE--")
    truncated = data[: (start + end) // 2] + b"\n" + data[end:]
    (record,), errors = read(truncated, "arf-20.eml")
    assert errors == [], reasons(errors)
    assert values(record) == ARF["arf-20.eml"][1]
    assert record.extra["feedback_type"] == "auth-failure"


ORIGINAL_MULTIPART = (
    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
    "Received: from mx.spam.example (mx.spam.example [198.51.100.9]) by mx.isp.example;"
    " Tue, 14 Jan 2025 09:00:00 +0000\r\nSubject: Buy now\r\n"
    'Content-Type: multipart/alternative; boundary="in"\r\n\r\n'
    "--in\r\nContent-Type: text/plain\r\n\r\nBuy\r\n"  # no closing "--in--"
)


def test_arf_original_cut_inside_is_a_note() -> None:
    mail = arf_mail("Feedback-Type: abuse", ORIGINAL_MULTIPART)
    records, errors = read(mail)
    assert errors == [], reasons(errors)
    (record,) = records
    assert values(record) == {("ipv4", "198.51.100.9", "source")}
    assert record.extra["original_truncated"] == ORIGINAL_TRUNCATED
    # without the report's own closing boundary too: the cut is still in the original, last
    mail = mail.removesuffix(b"--b--\r\n")
    (record,), errors = read(mail)
    assert errors == [], reasons(errors)
    assert record.extra["original_truncated"] == ORIGINAL_TRUNCATED


def test_arf_cut_after_the_original_is_refused_whole() -> None:
    # A part after the original is cut short: that is no truncated original.
    fourth = "--b\r\nContent-Type: text/plain\r\n\r\nmore\r\n"
    mail = arf_mail(
        "Feedback-Type: abuse\r\nSource-IP: 192.0.2.3",
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: x\r\n\r\n" + fourth,
    ).removesuffix(b"--b--\r\n")
    records, errors = read(mail)
    assert records == []
    assert [(e.location.pointer, e.reason) for e in errors] == [("/", CUT_SHORT)]


def test_a_nested_multipart_left_open_refuses_the_mail_and_an_attached_one_does_not() -> None:
    nested = (
        b'From: a@r.example\nSubject: scan\nContent-Type: multipart/mixed; boundary="o"\n\n'
        b'--o\nContent-Type: multipart/alternative; boundary="i"\n\n'
        b"--i\nContent-Type: text/plain\n\nScan from 192.0.2.1\n"  # no "--i--"
        b"--o\nContent-Type: text/plain\n\nmore\n--o--\n"
    )
    records, errors = read(nested)
    assert records == []
    assert [(e.location.line, e.location.pointer, e.reason) for e in errors] == [
        (None, "/part/1", CUT_SHORT)
    ]
    # the same, inside a forwarded message: the mail's own structure is whole
    attached = nested.replace(
        b'--o\nContent-Type: multipart/alternative; boundary="i"\n\n',
        b"--o\nContent-Type: message/rfc822\n\n"
        b'Subject: spam\nContent-Type: multipart/alternative; boundary="i"\n\n',
    )
    (record,), errors = read(attached)
    assert errors == [], reasons(errors)
    assert values(record) == {("ipv4", "192.0.2.1", "source")}


@pytest.mark.parametrize("name", ["arf-14.eml", "arf-20.eml", "stalwart_001.eml"])
def test_complete_arf_samples_read_without_errors(name: str) -> None:
    (record,), errors = read_file(name)
    assert errors == [], reasons(errors)
    assert "original_truncated" not in record.extra


def test_feedback_fields_match_mail_auths_own_parse() -> None:
    expected = json.loads((SAMPLES / "stalwart_001.expected.json").read_text())
    (record,), _ = read_file("stalwart_001.eml")
    report = parse_feedback_report(record.raw)
    assert report.feedback_type == expected["feedback_type"].lower()
    assert report.user_agent == expected["user_agent"]
    assert int(report.version or 0) == expected["version"]
    assert report.incidents == expected["incidents"]
    assert report.arrival_date == expected["arrival_date"]
    assert report.source_ip == expected["source_ip"]
    assert (report.source_port or 0) == expected["source_port"]
    assert report.original_mail_from == expected["original_mail_from"]
    assert report.original_envelope_id == expected["original_envelope_id"]
    assert report.reporting_mta == expected["reporting_mta"]
    assert list(report.original_rcpt_to) == (expected["original_rcpt_to"] or [])
    assert list(report.reported_domain) == expected["reported_domain"]
    assert list(report.reported_uri) == expected["reported_uri"]
    assert list(report.authentication_results) == expected["authentication_results"]


def test_feedback_report_tolerates_line_endings_and_odd_folding() -> None:
    text = (
        "Feedback-Type: fraud\r"
        "User-Agent: Some\r\n   Generator/2.0\n"
        "\n"  # a stray blank line inside the block
        "Source-IP:192.0.2.7\r\n"
        "garbage line without a colon\n"
        "Reported-URI: http://phish.example/login\n"
        "Reported-URI: http://phish.example/2\n"
        "Arrival-Date: Tue, 14 Jan 2025 10:00:00 +0100\n"
    )
    report = parse_feedback_report(text)
    assert report.feedback_type == "fraud"
    assert report.user_agent == "Some Generator/2.0"
    assert report.source_ip == "192.0.2.7"
    assert report.reported_uri == ("http://phish.example/login", "http://phish.example/2")
    assert report.arrival_date == "Tue, 14 Jan 2025 10:00:00 +0100"


def arf_mail(fields: str, third: str = "") -> bytes:
    return (
        "From: fbl@isp.example\r\nTo: abuse@concord.example\r\nSubject: FBL\r\n"
        "Date: Tue, 14 Jan 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        f"--b\r\nContent-Type: message/feedback-report\r\n\r\n{fields}\r\n"
        f"{third}--b--\r\n"
    ).encode()


def test_arf_fraud_report_with_uris_and_arrival_date() -> None:
    records, errors = read(
        arf_mail(
            "Feedback-Type: fraud\r\nUser-Agent: x/1\r\nVersion: 1\r\n"
            "Arrival-Date: Tue, 14 Jan 2025 10:00:00 +0100\r\nSource-IP: 2001:DB8::0:7\r\n"
            "Reported-URI: http://Phish.Example/login\r\nIncidents: 3"
        )
    )
    assert errors == []
    (record,) = records
    assert (record.rsit_class, record.rsit_type) == ("fraud", "phishing")
    assert values(record) == {
        ("ipv6", "2001:db8::7", "source"),
        ("url", "http://phish.example/login", "source"),
    }
    assert record.time == datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    assert record.extra["incidents"] == "3"


@pytest.mark.parametrize(
    ("feedback_type", "rsit"),
    [
        ("virus", ("malicious-code", "malware-distribution")),
        ("other", ("other", "undetermined")),
        ("not-spam", ("other", "other")),
        ("Abuse", ("abusive-content", "spam")),
        ("something-new", ("other", "undetermined")),
    ],
)
def test_feedback_type_mapping(feedback_type: str, rsit: tuple[str, str]) -> None:
    (record,), _ = read(arf_mail(f"Feedback-Type: {feedback_type}\r\nSource-IP: 192.0.2.3"))
    assert (record.rsit_class, record.rsit_type) == rsit


def test_arf_bad_fields_are_located() -> None:
    records, errors = read(
        arf_mail(
            "Feedback-Type: abuse\r\nSource-IP: 192.0.2.300\r\nReported-Domain: -bad-.\r\n"
            "Arrival-Date: yesterday-ish",
            "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "Received: from mx.spam.example (mx.spam.example [198.51.100.9]) by mx.isp.example;"
            " Tue, 14 Jan 2025 09:00:00 +0000\r\nSubject: Buy now\r\n\r\n",
        ),
        "fbl.eml",
    )
    found = {(e.location.pointer, e.location.field) for e in errors}
    assert found == {
        ("/part/2", "Source-IP"),
        ("/part/2", "Reported-Domain"),
        ("/part/2", "Arrival-Date"),
    }
    assert all(e.location.source == "fbl.eml" for e in errors)
    # The record is still made from what is valid: the Received chain gives the sender.
    (record,) = records
    assert values(record) == {("ipv4", "198.51.100.9", "source")}
    assert record.time == datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    assert record.extra["original_subject"] == "Buy now"


def test_arf_report_part_encoded_in_base64_is_still_read() -> None:
    # RFC 2046 forbids it for message/*, some feedback loops do it anyway.
    fields = base64.b64encode(b"Feedback-Type: abuse\r\nSource-IP: 192.0.2.44\r\n").decode()
    mail = arf_mail(fields).replace(
        b"message/feedback-report\r\n",
        b"message/feedback-report\r\nContent-Transfer-Encoding: base64\r\n",
    )
    (record,), errors = read(mail)
    assert errors == []
    assert values(record) == {("ipv4", "192.0.2.44", "source")}


def test_arf_source_port_is_the_senders_not_the_events() -> None:
    (record,), errors = read(
        arf_mail("Feedback-Type: abuse\r\nSource-IP: 192.0.2.3\r\nSource-Port: 51234")
    )
    assert errors == []
    assert (record.port, record.application) == (None, "smtp")
    assert record.extra["source_port"] == "51234"


def test_arf_without_feedback_type_is_an_error() -> None:
    records, errors = read(arf_mail("User-Agent: x/1\r\nSource-IP: 192.0.2.3"))
    assert records == []
    (error,) = errors
    assert (error.location.pointer, error.location.field) == ("/part/2", "Feedback-Type")


# --- X-ARF -----------------------------------------------------------------------------------

XARF = {
    # file: (source, RSIT, port, time, other observables)
    "connection-login-attack.json": (
        "198.51.100.77",
        ("intrusion-attempts", "brute-force"),
        22,  # destination_port: the attacked service's, not the client's 45621
        datetime(2025, 1, 11, 12, 17, 20, tzinfo=UTC),
        {("ipv4", "203.0.113.22", "destination")},
    ),
    "infrastructure-botnet.json": (
        "198.51.100.25",
        ("malicious-code", "infected-system"),
        None,
        datetime(2025, 1, 11, 15, 0, 52, tzinfo=UTC),
        {("domain", "malicious-command.example.com", "c2")},
    ),
    "messaging-spam.json": (
        "192.168.1.100",  # private, but the report says so explicitly: kept
        ("abusive-content", "spam"),
        25,
        datetime(2025, 1, 11, 10, 59, 45, tzinfo=UTC),
        {("email", "marketing@example.com", "source")},
    ),
    "vulnerability-open-service.json": (
        "192.0.2.50",
        ("vulnerable", "potentially-unwanted-accessible"),
        3389,
        datetime(2025, 1, 11, 15, 35, 37, tzinfo=UTC),
        set(),
    ),
    "abusix_v3_portscan_sample.json": (
        "192.0.2.55",
        ("information-gathering", "scanner"),
        80,  # DestinationPort, not the scanner's SourcePort 54321
        datetime(2018, 2, 5, 14, 17, 10, tzinfo=UTC),
        {("ipv4", "198.51.100.33", "destination")},
    ),
}


@pytest.mark.parametrize("name", sorted(XARF))
def test_xarf_json_samples(name: str) -> None:
    source_ip, rsit, port, time, others = XARF[name]
    data = (SAMPLES / name).read_bytes()
    records, errors = read(data, name)
    assert errors == [], reasons(errors)
    (record,) = records
    assert (record.rsit_class, record.rsit_type) == rsit
    assert values(record) == {("ipv4", source_ip, "source")} | others
    assert record.port == port
    assert record.time == time
    assert record.feed == "xarf"
    assert record.location.pointer == ""
    assert record.raw == data.decode()[:MAX_RAW]
    # The public function gives the same.
    assert split(read_xarf_json(data, name)) == (records, [])


def test_xarf_v4_details() -> None:
    (login,), _ = read_file("connection-login-attack.json")
    assert (login.protocol, login.application) == ("tcp", "ssh")
    assert login.attack_techniques == ("T1110",)
    assert login.extra["report_id"] == "dbf79f17-f4f4-4c22-ae58-19991f52a1e8"
    assert login.extra["reporter_org"] == "SSH Honeypot Network"
    (bot,), _ = read_file("infrastructure-botnet.json")
    assert bot.extra["malware_family"] == "Conficker"
    (spam,), _ = read_file("messaging-spam.json")
    assert spam.application == "smtp"


def test_xarf_event_port_is_the_service_port_and_the_source_port_is_kept() -> None:
    (login,), _ = read_file("connection-login-attack.json")
    assert login.extra["source_port"] == "45621"
    (scan,), _ = read_file("abusix_v3_portscan_sample.json")
    assert scan.extra["source_port"] == "54321"
    assert "destination_port" not in scan.extra
    # No destination: the source is the service (a spam sender's SMTP port).
    (spam,), _ = read_file("messaging-spam.json")
    assert "source_port" not in spam.extra
    (rdp,), _ = read_file("vulnerability-open-service.json")
    assert (rdp.port, rdp.application) == (3389, "rdp")


def test_the_same_attack_from_another_source_port_folds_into_one_event() -> None:
    first = json.loads((SAMPLES / "connection-login-attack.json").read_text())
    second = {**first, "report_id": "another", "source_port": 45622}
    records, errors = split(read_xarf_json(json.dumps([first, second]).encode(), "two.json"))
    assert errors == []
    assert [r.port for r in records] == [22, 22]
    when = datetime(2025, 1, 11, tzinfo=UTC)
    keys = {DedupPolicy().key(r, when) for r in records}
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("ports", "port", "source_port", "bad"),
    [
        # a destination without its port: the client's port does not stand in for it
        ({"destination_ip": "203.0.113.22", "source_port": 50000}, None, "50000", None),
        ({"service_port": 443, "source_port": 443}, 443, None, None),
        ({"destination_port": "x", "source_port": 50000}, None, "50000", "destination_port"),
        ({"destination_port": 22, "source_port": 70000}, 22, None, "source_port"),
    ],
)
def test_xarf_v4_ports(
    ports: dict[str, object], port: int | None, source_port: str | None, bad: str | None
) -> None:
    doc = {"source_identifier": "192.0.2.9", "category": "connection", "type": "login_attack"}
    records, errors = split(read_xarf_json(json.dumps({**doc, **ports}).encode(), "r.json"))
    (record,) = records
    assert record.port == port
    assert record.extra.get("source_port") == source_port
    # an optional value that cannot be read is kept aside and costs the report nothing, as
    # in a feed's row: the receipt counts the one report once, as accepted
    assert errors == []
    if bad:
        assert record.extra[f"invalid.{bad}"] == str(ports[bad])


def test_xarf_v3_bad_optional_values_are_kept_aside() -> None:
    doc = json.loads((SAMPLES / "abusix_v3_portscan_sample.json").read_text())
    doc["Report"]["DestinationPort"] = "http"
    doc["Report"]["DestinationIp"] = "999.1.1.1"
    (record,), errors = split(read_xarf_json(json.dumps(doc).encode(), "v3.json"))
    assert errors == []  # kept aside, as in a feed's row
    assert record.port is None
    assert record.extra["source_port"] == "54321"
    assert record.extra["invalid.DestinationPort"] == "http"
    assert record.extra["invalid.DestinationIp"] == "999.1.1.1"
    # a date that cannot be read refuses the report, at the date, once
    doc["Report"]["Date"] = "soon"
    records, (error,) = split(read_xarf_json(json.dumps(doc).encode(), "v3.json"))
    assert records == [] and error.location.pointer == "/Report/Date"
    assert CYRILLIC.search(gettext("ru", error.reason))


def test_xarf_v4_attached_to_a_mail() -> None:
    msg = EmailMessage()
    msg["From"] = "honeypot@ssh-monitor.example"
    msg["To"] = "abuse@concord.example"
    msg["Subject"] = "X-ARF report"
    msg["Date"] = "Sat, 11 Jan 2025 12:20:00 +0000"
    msg.set_content("An X-ARF v4 report is attached.")
    msg.add_attachment(
        (SAMPLES / "connection-login-attack.json").read_bytes(),
        maintype="application",
        subtype="json",
        filename="report.json",
    )
    records, errors = read(msg.as_bytes())
    assert errors == []
    (record,) = records
    assert record.location.pointer == "/part/2"
    assert ("ipv4", "198.51.100.77", "source") in values(record)
    assert (record.rsit_class, record.rsit_type) == ("intrusion-attempts", "brute-force")


def test_xarf_json_array_and_errors_are_located_by_json_pointer() -> None:
    good = json.loads((SAMPLES / "infrastructure-botnet.json").read_text())
    bad = {**good, "source_identifier": "not an address!", "timestamp": "soon"}
    del bad["c2_server"]
    records, errors = split(read_xarf_json(json.dumps([good, bad, 7]).encode(), "batch.json"))
    assert [r.location.pointer for r in records] == ["/0"]
    # one fault per report refused, at what refuses it: no source left to read
    assert [(e.location.pointer, e.reason.split(" ")[0]) for e in errors] == [
        ("/1/source_identifier", "source_identifier"),
        ("/2", "an"),
    ]
    assert "is not an IP address, domain, URL or e-mail address" in errors[0].reason
    # Inside a mail, the JSON pointer follows the part path.
    _, errors = split(read_xarf_json(b'{"xarf_version": "4"}', "m.eml", pointer="/part/2"))
    assert [e.location.pointer for e in errors] == ["/part/2/source_identifier"]


@pytest.mark.parametrize(
    ("xtype", "category", "rsit"),
    [
        ("port_scan", "connection", ("information-gathering", "scanner")),
        ("ddos", "connection", ("availability", "ddos")),
        ("ddos_amplification", "connection", ("vulnerable", "ddos-amplifier")),
        ("phishing", "content", ("fraud", "phishing")),
        ("malware", "content", ("malicious-code", "malware-distribution")),
        ("compromised_server", "infrastructure", ("intrusions", "system-compromise")),
        ("p2p", "copyright", ("fraud", "copyright")),
        ("cve", "vulnerability", ("vulnerable", "vulnerable-system")),
        ("something_new", "messaging", ("abusive-content", "spam")),
        ("something_new", "reputation", ("other", "undetermined")),
    ],
)
def test_xarf_type_mapping(xtype: str, category: str, rsit: tuple[str, str]) -> None:
    doc = {"source_identifier": "192.0.2.9", "category": category, "type": xtype}
    (record,), _ = split(read_xarf_json(json.dumps(doc).encode(), "r.json"))
    assert (record.rsit_class, record.rsit_type) == rsit
    assert record.rsit_type in RSIT[record.rsit_class]


def test_xarf_02_mail() -> None:
    records, errors = read_file("xarf-02-login-attack.eml")
    assert errors == []
    (record,) = records
    assert values(record) == {("ipv4", "203.0.113.45", "source")}
    assert (record.rsit_class, record.rsit_type) == ("intrusion-attempts", "brute-force")
    assert record.port == 22
    assert record.application == "ssh"
    assert record.tlp == "amber"
    assert record.time == datetime(2025, 1, 13, 8, 59, 41, tzinfo=UTC)
    assert record.location.pointer == "/part/2"
    assert record.extra["occurrences"] == "48"
    assert "Report-Type: login-attack" in record.raw


def test_xarf_02_yaml_alias_bomb_and_missing_report() -> None:
    mail = (SAMPLES / "xarf-02-login-attack.eml").read_bytes()
    bomb = b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
    bomb += b"c: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nSource: 192.0.2.8\nReport-Type: spam\n"
    start = mail.index(b"---\nReported-From")
    end = mail.index(b"TLP: amber\n") + len(b"TLP: amber\n")
    (record,), errors = read(mail[:start] + bomb + mail[end:])
    assert errors == []
    assert values(record) == {("ipv4", "192.0.2.8", "source")}
    assert (record.rsit_class, record.rsit_type) == ("abusive-content", "spam")
    records, errors = read(mail[:start] + b"nothing useful here\n" + mail[end:])
    assert records == []
    assert [e.location.pointer for e in errors] == ["/part/2"]


# --- plain-text abuse mails ------------------------------------------------------------------


def observed(records: list[EventRecord]) -> list[list[tuple[str, str]]]:
    """Each record's observables, in order: one list per host the mail names."""
    return [[(o.kind.value, o.value) for o in r.observables] for r in records]


def test_plain_phishing_mail_with_defanged_values() -> None:
    records, errors = read_file("plain-phishing.eml")
    assert errors == []
    # One event per host named, each its owner's: the phishing page's site (with the drop
    # address, an address of mail on no host the mail names), the address it resolves to,
    # and the one the kit was downloaded from.
    assert observed(records) == [
        [
            ("url", "https://secure-login.bank-north-verify.example/auth/index.php?id=7781"),
            ("email", "collector@mail-drop.example"),
        ],
        [("ipv4", "198.51.100.23")],
        [("ipv4", "198.51.100.24")],
    ]
    # Reporter (From, Reply-To, signature URL), recipients (To, Cc), file names and
    # loopback are left out; the private sensor address is kept aside, not as an observable.
    for record in records:
        assert all(o.role == "source" for o in record.observables)
        assert record.extra["private_addresses"] == "10.20.30.40"
        assert (record.rsit_class, record.rsit_type) == ("fraud", "phishing")
        assert record.tlp == "amber"
        assert record.time == datetime(2025, 1, 14, 7, 30, tzinfo=UTC)
        assert record.feed == "email"
        assert record.location == FaultLocation(source="plain-phishing.eml", pointer="/part/1")
        assert record.raw.startswith("Colleagues,")
        assert record.description == records[0].description != ""


def test_plain_mail_with_html_alternative() -> None:
    records, errors = read_file("plain-bruteforce-html.eml")
    assert errors == []
    # Each brute-forcer is an event of its own, which names its owner. The HTML part's
    # link is a blocklist's page about the first, kept for the analyst on its event but no
    # observable; the reporter's own log URL is left out.
    assert observed(records) == [[("ipv4", "203.0.113.77")], [("ipv6", "2001:db8:4::1f")]]
    assert records[0].extra["reference_links"] == "https://blocklist.example.org/ip/203.0.113.77"
    assert "reference_links" not in records[1].extra
    for record in records:
        assert (record.rsit_class, record.rsit_type) == ("intrusion-attempts", "brute-force")
        assert record.time == datetime(2025, 1, 15, 12, 45, 10, tzinfo=UTC)
        assert record.location.pointer == "/part/1"  # the text part names both first


def test_plain_russian_mail_in_windows_1251() -> None:
    records, errors = read_file("plain-ru-scan.eml")
    assert errors == []
    assert observed(records) == [
        [("ipv4", "192.0.2.200")],
        [("domain", "xn----7sbpboiseuicdb.xn--p1ai")],  # сканер-пример.рф
        [("domain", "scan-source.example.net")],
    ]
    for record in records:
        assert (record.rsit_class, record.rsit_type) == ("information-gathering", "scanner")
        assert record.description == "Сканирование портов с адреса 192.0.2.200"
        assert "ведётся сканирование" in record.raw
        assert record.time == datetime(2025, 1, 16, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("subject", "rsit"),
    [
        ("Spam from your customer", ("abusive-content", "spam")),
        ("Phishing spam campaign", ("fraud", "phishing")),
        ("Port scanning from 192.0.2.1", ("information-gathering", "scanner")),
        ("Bruteforce on RDP", ("intrusion-attempts", "brute-force")),
        ("DDoS attack against our resolver", ("availability", "ddos")),
        ("Botnet member in your AS", ("malicious-code", "infected-system")),
        ("Malware hosted on your server", ("malicious-code", "malware-distribution")),
        ("Подбор паролей SSH", ("intrusion-attempts", "brute-force")),
        ("Рассылка спама", ("abusive-content", "spam")),
        ("Question about your network", ("other", "undetermined")),
    ],
)
def test_subject_keywords(subject: str, rsit: tuple[str, str]) -> None:
    found = next(((c, t) for p, c, t in SUBJECT_RULES if p.search(subject)), None)
    assert (found or ("other", "undetermined")) == rsit
    mail = f"From: a@r.example\nSubject: {subject}\n\nSource 192.0.2.1\n".encode()
    (record,), _ = read(mail)
    assert (record.rsit_class, record.rsit_type) == rsit


def test_refang() -> None:
    assert refang("hxxps://evil[.]example[.]com/x") == "https://evil.example.com/x"
    assert refang("hXXp[:]//a(dot)b(dot)example") == "http://a.b.example"
    assert refang("user[at]mail [.] example") == "user@mail.example"
    assert refang("192[.]0[.]2[.]1") == "192.0.2.1"
    assert refang("fxp[://]files[.]example/fxp/x") == "ftp://files.example/fxp/x"
    assert refang("an fxp transfer, see hxxp://a[.]example/fxp") == (
        "an fxp transfer, see http://a.example/fxp"
    )


def test_plain_mail_noise_is_left_out() -> None:
    mail = (
        b"From: Reporter <r@cert.example>\nTo: abuse@concord.example\nSubject: report\n\n"
        b"See readme.md, invoice.zip and Hello.World for details; version 10.1.2.3.4.\n"
        b"Contact r@cert.example or https://www.cert.example/x; bcast 255.255.255.255.\n"
        b"Time 10:00:00 and MAC 00:1a:2b:3c:4d:5e; build 1.2.3.4/56, 10.1.2.3/24.5 and\n"
        b"1.2.3.4/12/2024; period 2025-01-10/2025-01-12; rule 0.0.0.0/0 and ::/0.\n"
    )
    records, errors = read(mail)
    assert records == []
    (error,) = errors
    assert error.reason == "no IP address, domain, URL or e-mail address found in the text"
    assert error.location.pointer == "/part/1"


def plain_mail(body: str, subject: str = "Abuse report") -> bytes:
    return (
        "From: Reporter <r@cert-west.example>\nTo: abuse@concord.example\n"
        f"Subject: {subject}\nDate: Tue, 14 Jan 2025 10:30:00 +0300\n"
        f"Content-Type: text/plain; charset=utf-8\n\n{body}"
    ).encode()


@pytest.mark.parametrize(
    ("subject", "body", "tlp"),
    [
        ("Abuse report", "TLP:CLEAR summary\nDetails below are TLP:RED: 198.51.100.7\n", "red"),
        ("[TLP:AMBER] Scan", "TLP:GREEN for the owner. Source 198.51.100.7\n", "amber"),
        ("[TLP:CLEAR] Scan", "Source 198.51.100.7, TLP:AMBER+STRICT\n", "amber+strict"),
        ("[TLP:RED] Scan", "TLP:WHITE part: 198.51.100.7\n", "red"),
        ("Scan", "Source 198.51.100.7\n", None),
    ],
)
def test_plain_mail_takes_the_strictest_tlp_marking(subject: str, body: str, tlp: str) -> None:
    (record,), errors = read(plain_mail(body, subject))
    assert errors == []
    assert record.tlp == tlp


def test_a_signature_and_links_about_a_named_address_are_no_observables() -> None:
    body = (
        "Our honeypot saw SSH password guessing from 203.0.113.9 and 198.51.100.70:\n"
        "https://www.abuseipdb.example/check/203.0.113.9\n"
        "https://lookup.example/?q=198.51.100.70#whois\n"
        "The bot downloads http://203.0.113.9/bins/x86 (the host itself: an observable).\n"
        "-- \n"
        "Duty analyst, CERT West, https://pgp.cert-other.example/key 192.0.2.99\n"
        "duty@cert-other.example\n"
        "\n"
        "> the earlier report: scans from 192.0.2.140\n"  # a quote below the signature
    )
    records, errors = read(plain_mail(body, "SSH brute force"))
    assert errors == []
    assert observed(records) == [
        [("ipv4", "203.0.113.9"), ("url", "http://203.0.113.9/bins/x86")],  # a URL on it
        [("ipv4", "198.51.100.70")],
        [("ipv4", "192.0.2.140")],
    ]
    # each link about an address goes with that address's event
    assert [r.extra.get("reference_links") for r in records] == [
        "https://www.abuseipdb.example/check/203.0.113.9",
        "https://lookup.example/?q=198.51.100.70#whois",
        None,
    ]


def test_a_grep_separator_is_no_signature() -> None:
    body = "Log:\n198.51.100.1 failed\n--\n198.51.100.2 failed\n"
    records, _ = read(plain_mail(body, "brute force"))
    assert observed(records) == [[("ipv4", "198.51.100.1")], [("ipv4", "198.51.100.2")]]


def test_the_url_of_a_phishing_report_comes_first() -> None:
    (record, *_), _ = read_file("plain-phishing.eml")
    assert record.observables[0] == Observable(
        ObservableKind.URL,
        "https://secure-login.bank-north-verify.example/auth/index.php?id=7781",
    )
    # On a host the mail names, the URL of a phishing report comes before the host; in a
    # report about no URL-borne incident, the host comes first.
    body = "hxxp://bad[.]example/login hosted on bad.example, 198.51.100.23\n"
    phishing, _ = read(plain_mail(body, "Phishing page"))
    other, _ = read(plain_mail(body, "Port scan"))
    assert observed(phishing) == [
        [("url", "http://bad.example/login"), ("domain", "bad.example")],
        [("ipv4", "198.51.100.23")],
    ]
    assert observed(other) == [
        [("domain", "bad.example"), ("url", "http://bad.example/login")],
        [("ipv4", "198.51.100.23")],
    ]
    # The phishing URL is kept even where the host's address is named as well.
    assert not any("reference_links" in r.extra for r in phishing)


def test_plain_mail_networks() -> None:
    body = (
        "Scans from 198.51.100.0/24 and 2001:db8:5::/48, one host 198.51.100.4:8080 and the\n"
        "interface 203.0.113.5/24; internal 10.20.0.0/16, a single 192.0.2.1/32,\n"
        "a typo 2001:db8::/8 and on 2025-01-10 at 10:00:00 (v2.1.0).\n"
    )
    records, errors = read(plain_mail(body, "Port scan"))
    assert errors == []
    assert observed(records) == [
        [("ipv4-net", "198.51.100.0/24")],
        [("ipv6-net", "2001:db8:5::/48")],
        [("ipv4", "198.51.100.4")],
        [("ipv4", "203.0.113.5"), ("ipv4-net", "203.0.113.0/24")],  # host bits: in its network
        [("ipv4", "192.0.2.1")],
    ]
    assert {r.extra["private_addresses"] for r in records} == {"10.20.0.0/16"}


def test_each_host_a_plain_mail_names_is_an_event_of_its_own() -> None:
    body = (
        "We saw attacks from 192.0.2.1, 198.51.100.7 and evil.example "
        "(see hxxp://evil[.]example/kit).\n"
    )
    records, errors = read(plain_mail(body, "Brute force"))
    assert errors == []
    assert observed(records) == [
        [("ipv4", "192.0.2.1")],
        [("ipv4", "198.51.100.7")],
        [("domain", "evil.example"), ("url", "http://evil.example/kit")],  # its URL with it
    ]
    # what the mail says of all of them, each says
    assert {(r.time, r.rsit_type, r.description, r.tlp, r.raw) for r in records} == {
        (datetime(2025, 1, 14, 7, 30, tzinfo=UTC), "brute-force", "Brute force", None, body)
    }
    # a host named twice is one event, at its first naming
    (again,), _ = read(plain_mail("198.51.100.7 and again 198.51.100.7\n", "Scan"))
    assert observed([again]) == [[("ipv4", "198.51.100.7")]]


def test_addresses_of_mail_go_with_their_host_or_the_first() -> None:
    body = (
        "Spam from 198.51.100.8 for spammer@evil.example, a mailbox on evil.example.\n"
        "Also sent from drop@mailer.example; please tell abuse@hoster.example.\n"
    )
    records, _ = read(plain_mail(body, "Spam"))
    # a mailbox on a host the mail names is that host's; a contact named in passing, or a
    # mailbox on a host it does not name, makes no event: it goes with the first
    assert observed(records) == [
        [
            ("ipv4", "198.51.100.8"),
            ("email", "drop@mailer.example"),
            ("email", "abuse@hoster.example"),
        ],
        [("domain", "evil.example"), ("email", "spammer@evil.example")],
    ]
    # a mail that names addresses of mail alone: one event of them
    (record,), _ = read(plain_mail("Phishing sent from a@x.example and b@y.example\n", "Spam"))
    assert observed([record]) == [[("email", "a@x.example"), ("email", "b@y.example")]]


PASTED = """Spam received by our customer, full headers below:

Received: from mx1.victim.example (mx1.victim.example [203.0.113.5])
        by store.victim.example (Postfix) with LMTP id 1234
        for <user@victim.example>; Tue, 14 Jan 2025 09:00:00 +0000
Received: from spam-relay.example (unknown [198.51.100.66])
        by mx1.victim.example (Postfix) with ESMTP id 5678
        for <user@victim.example>; Tue, 14 Jan 2025 08:59:58 +0000
Received: from [10.0.0.5] (helo=pc)
        by spam-relay.example with esmtpa; Tue, 14 Jan 2025 08:59:50 +0000
X-Received: by 2001:db8:77::1 with SMTP id q12; Tue, 14 Jan 2025 08:59:59 +0000
Return-Path: <bounce@spam-sender.example>
From: "Offers" <offers@spam-sender.example>
To: user@victim.example,
  other@victim.example
Message-ID: <abc123@spam-relay.example>
Subject: Cheap meds

Buy at http://pharma.example/buy
"""


@pytest.mark.parametrize(
    "quote", ["", "> ", ">> ", "    "], ids=["as-is", "quoted", "twice", "indented"]
)
def test_pasted_headers_name_the_sender_not_the_receiving_side(quote: str) -> None:
    body = "".join(quote + line if line else line for line in PASTED.splitlines(True))
    records, errors = read(plain_mail(body, "Spam"))
    assert errors == []
    # The hops that received the spam (from "by" on, and the hop from mx1, a host of the
    # recipient's domain), its recipients and its Message-ID are the victim's: the sender's
    # relay (which received it from the sender's own PC before), its address, its addresses
    # of mail and its link are what is reported.
    assert observed(records) == [
        [
            ("domain", "spam-relay.example"),
            ("email", "bounce@spam-sender.example"),
            ("email", "offers@spam-sender.example"),
        ],
        [("ipv4", "198.51.100.66")],
        [("url", "http://pharma.example/buy")],
    ]
    assert records[0].extra["private_addresses"] == "10.0.0.5"


def test_a_reports_own_line_that_reads_like_a_header_is_the_reports_text() -> None:
    """Only a block of headers is taken for pasted headers: one line that starts "To:" or
    "References:" in a report says what it says."""
    body = (
        "To: whom it may concern, 198.51.100.7 scanned us.\n\n"
        "References:\n    http://phish.example/login\n    203.0.113.9\n"
    )
    records, errors = read(plain_mail(body))
    assert errors == []
    assert observed(records) == [
        [("ipv4", "198.51.100.7")],
        [("url", "http://phish.example/login")],
        [("ipv4", "203.0.113.9")],
    ]


GMAIL_FORWARD = """Hello, we got this phishing, headers follow.

Delivered-To: victim.user@gmail.example
Received: by 2001:db8:7300:5388:b0:f1:3c1d:7d5a with SMTP id w8csp1234567dyb;
        Mon, 13 Jan 2025 05:12:33 -0800 (PST)
ARC-Seal: i=1; a=rsa-sha256; t=1736773953; cv=none;
        d=gmail.example; s=arc-20240605;
Return-Path: <bounce@mailer.phish-sender.example>
Received: from mailer.phish-sender.example (mailer.phish-sender.example. [198.51.100.200])
        by mx.gmail.example with ESMTPS id a640c23a62f3a.456.2025.01.13.05.12.32
        for <victim.user@gmail.example>
        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);
        Mon, 13 Jan 2025 05:12:33 -0800 (PST)
Received-SPF: pass (gmail.example: domain of bounce@mailer.phish-sender.example designates
 198.51.100.200 as permitted sender) client-ip=198.51.100.200;
Authentication-Results: mx.gmail.example;
       spf=pass (gmail.example: domain of bounce@mailer.phish-sender.example) smtp.mailfrom=x
From: "Bank" <security@bank-verify.example>
To: victim.user@gmail.example
Message-ID: <20250113131232.ABC123@mailer.phish-sender.example>

Click hxxps://bank-verify[.]example/login
"""


def test_a_forwarded_phishing_names_its_sender_not_the_mailbox_provider() -> None:
    records, errors = read(plain_mail(GMAIL_FORWARD, "Phishing"))
    assert errors == []
    assert observed(records) == [
        [
            ("domain", "mailer.phish-sender.example"),
            ("email", "bounce@mailer.phish-sender.example"),
        ],
        [("ipv4", "198.51.100.200")],
        [("url", "https://bank-verify.example/login"), ("email", "security@bank-verify.example")],
    ]


def test_the_mails_own_transport_is_no_source() -> None:
    mail = (
        b"Received: from relay.cert-hub.example (relay.cert-hub.example [192.0.2.25])\n"
        b"\tby mx.concord.example with ESMTPS; Tue, 14 Jan 2025 10:30:05 +0300\n"
    ) + plain_mail(
        "Our relay 192.0.2.25 (relay.cert-hub.example) got spam from 198.51.100.8,\n"
        "see https://relay.cert-hub.example/quarantine/1 and http://192.0.2.25/log\n",
        "Spam",
    )
    records, _ = read(mail)
    assert observed(records) == [[("ipv4", "198.51.100.8")]]


def test_a_url_on_a_private_or_loopback_host_is_no_event() -> None:
    body = "Scans from 198.51.100.3 against http://10.1.2.3:8080/admin and http://127.0.0.1/x\n"
    (record,), _ = read(plain_mail(body, "Scan"))
    assert observed([record]) == [[("ipv4", "198.51.100.3")]]
    assert record.extra["private_addresses"] == "http://10.1.2.3:8080/admin"


def test_a_host_named_only_in_the_html_part_is_located_there() -> None:
    mail = (
        b"From: a@r.example\nSubject: scan\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="a"\n\n'
        b"--a\nContent-Type: text/plain\n\nScans from 198.51.100.1\n"
        b"--a\nContent-Type: text/html\n\n<p>Scans from 198.51.100.1 and <b>198.51.100.2</b></p>\n"
        b"--a--\n"
    )
    records, _ = read(mail)
    assert [(r.observables[0].value, r.location.pointer) for r in records] == [
        ("198.51.100.1", "/part/1"),
        ("198.51.100.2", "/part/2"),
    ]


# --- bad input -------------------------------------------------------------------------------


def test_empty_and_not_an_email() -> None:
    _, (error,) = read(b"")
    assert error.location.line == 1
    records, (error,) = read(b"\x89PNG\r\n\x1a\n\x00\x00binary junk")
    assert records == []
    assert error.reason.startswith("not an e-mail message")
    assert (error.location.source, error.location.line) == ("mail.eml", 1)


def test_truncated_multipart() -> None:
    data = (SAMPLES / "stalwart_001.eml").read_bytes()
    cut = data.index(b"Feedback-Type")
    # Cut inside the report's first field, or after it: the cut alone is told, not what it
    # leaves missing (the Feedback-Type, the original message's Received chain).
    for end in (cut + 10, cut + 30):
        records, errors = read(data[:end])
        assert records == []
        assert [(e.location.line, e.location.pointer, e.reason) for e in errors] == [
            (last_line(data[:end]), "/", CUT_SHORT)
        ]
    # Cut before the first boundary: the multipart has no part at all.
    end = data.index(b"--part1_")
    records, errors = read(data[:end])
    assert records == []
    assert [(e.location.line, e.location.pointer) for e in errors] == [(last_line(data[:end]), "/")]
    assert errors[0].reason.startswith("multipart body has no start boundary")


def test_undecodable_charset_is_reported_and_read_anyway() -> None:
    mail = (
        b"From: a@r.example\nSubject: spam\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="x"\n\n'
        b"--x\nContent-Type: text/plain; charset=x-no-such-charset\n\nSpam from 192.0.2.10\n"
        b"--x\nContent-Type: text/plain; charset=utf-8\n\nAlso \xff\xfe 192.0.2.11\n--x--\n"
    )
    records, errors = read(mail)
    assert {e.location.pointer for e in errors} == {"/part/1", "/part/2"}
    assert "unknown charset 'x-no-such-charset'" in errors[0].reason
    assert "not valid utf-8" in errors[1].reason
    assert [(values(r), r.location.pointer) for r in records] == [
        ({("ipv4", "192.0.2.10", "source")}, "/part/1"),
        ({("ipv4", "192.0.2.11", "source")}, "/part/2"),  # each at the part that names it
    ]


def test_charset_that_is_no_codec_name_at_all() -> None:
    # The stdlib itself raises ValueError on this one when asked for the payload.
    mail = (
        b'From: a@r.example\nSubject: spam\nContent-Type: text/plain; charset="utf-8\x00"\n'
        b"Content-Transfer-Encoding: 8bit\n\nSpam \xc3\xa9 from 192.0.2.5\n"
    )
    (record,), (error,) = read(mail)
    assert values(record) == {("ipv4", "192.0.2.5", "source")}
    assert error.location.pointer == "/part/1"
    assert error.reason.startswith("unknown charset")


def test_a_log_of_many_addresses_is_capped_and_the_receipt_says_so() -> None:
    lines = "\n".join(f"198.51.{i // 250}.{i % 250 + 1} failed login" for i in range(2000))
    mail = f"From: a@r.example\nSubject: brute force\n\n{lines}\n10.0.0.1\n".encode()
    records, errors = read(mail)
    assert len(records) == email_reader.MAX_HOSTS == 500
    assert observed(records[:2]) == [[("ipv4", "198.51.0.1")], [("ipv4", "198.51.0.2")]]
    assert records[-1].observables[0].value == "198.51.1.250"
    assert all(r.extra["private_addresses"] == "10.0.0.1" for r in records)
    assert all(len(r.raw.encode()) <= MAX_RAW for r in records)
    # what was left out is one fault on the receipt, at the part that names it
    assert [(e.location.pointer, e.reason) for e in errors] == [
        (
            "/part/1",
            "the mail names 2000 hosts: an event was made for each of the first 500 and the "
            "other 1500 were left out; send a longer list as a feed file",
        )
    ]
    assert CYRILLIC.search(gettext("ru", errors[0].reason))
    assert "2000" in gettext("ru", errors[0].reason)


def test_urls_on_one_host_are_capped_in_its_event() -> None:
    lines = "\n".join(f"http://198.51.100.9/p/{i}" for i in range(600))
    (record,), errors = read(plain_mail(f"Malware hosted on 198.51.100.9:\n{lines}\n", "x"))
    assert errors == []
    assert len(record.observables) == email_reader.MAX_OBSERVABLES
    assert record.observables[0] == Observable(ObservableKind.IPV4, "198.51.100.9")
    assert record.extra["observables_left_out"] == "101"


def test_a_50_mb_attachment_is_set_aside_and_the_report_still_read() -> None:
    chunk = b"A" * 996 + b"\r\n"  # lines of the longest length RFC 5322 allows
    big = chunk * (50 * 1024 * 1024 // len(chunk))
    mail = arf_mail(
        "Feedback-Type: abuse\r\nSource-IP: 192.0.2.77",
        '--b\r\nContent-Type: text/plain; name="capture.log"\r\n\r\n',
    ).replace(b"--b--\r\n", big + b"--b--\r\n")
    records, errors = read(mail)
    (record,) = records
    assert values(record) == {("ipv4", "192.0.2.77", "source")}
    (error,) = errors
    assert error.location.pointer == "/part/3"
    assert "50 MiB" in error.reason and f"{MAX_PART_BYTES // 1024 // 1024} MiB" in error.reason


def test_message_over_the_total_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(email_reader, "MAX_MESSAGE_BYTES", 4096)
    mail = b"From: a@r.example\nSubject: x\n\n" + b"--\n192.0.2.1\n" * 1000
    records, (error,) = read(mail)
    assert records == []
    assert error.location.pointer == "/"
    assert "larger than" in error.reason


def test_bad_json_is_located_by_line() -> None:
    records, (error,) = read(b'{\n  "xarf_version": "4",\n  oops\n}', "r.json")
    assert records == []
    assert (error.location.source, error.location.line) == ("r.json", 3)


# --- fuzzing ---------------------------------------------------------------------------------

SEEDS = [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix in (".eml", ".json")]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["truncate", "flip", "drop-line", "insert", "dup-line"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "truncate":
            del data[at:]
        elif action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(max_size=40))
        else:
            lines = bytes(data).split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            if action == "drop-line":  # header removal, among others
                del lines[index]
            else:
                lines.insert(index, lines[index])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def check_contract(data: bytes) -> None:
    records, errors = read(data, "fuzz.eml")
    for error in errors:
        loc = error.location
        assert loc.source == "fuzz.eml"
        assert loc.line is not None or loc.pointer is not None or loc.field is not None
        assert error.reason
    for record in records:
        assert record.location.source == "fuzz.eml"
        assert record.location.pointer is not None
        assert record.rsit_type in RSIT[record.rsit_class]
        assert record.observables
        assert record.time is None or record.time.utcoffset() is not None
        assert len(record.raw.encode()) <= MAX_RAW
        for observable in record.observables:
            assert observable.value and observable.value == observable.value.strip()
        # Every string is storable: no lone surrogates left from raw bytes.
        for text in (record.raw, record.description, *record.extra.values()):
            text.encode("utf-8")
        for observable in record.observables:
            observable.value.encode("utf-8")
    plain = [r for r in records if r.feed == "email"]
    assert len(plain) <= email_reader.MAX_HOSTS
    hosts = [host_of(r) for r in plain]
    assert len(set(hosts)) == len(hosts), hosts  # a host is one event
    if plain:  # what the mail says, every event of it says
        assert len({(r.time, r.rsit_type, r.description, r.tlp, r.raw) for r in plain}) == 1


def host_of(record: EventRecord) -> str:
    """The one host a plain-text mail's event is about: its address, network or domain, on
    which its URLs are (a network may be the one an address was named in); "" for an event
    of addresses of mail alone."""
    ip_kinds = (ObservableKind.IPV4, ObservableKind.IPV6)
    net_kinds = (ObservableKind.IPV4_NET, ObservableKind.IPV6_NET)
    hosts: set[str] = set()
    networks: list[str] = []
    for o in record.observables:
        if o.kind == ObservableKind.URL:
            hosts.add(email_reader._url_host(o.value))
        elif o.kind in net_kinds:
            networks.append(o.value)
        elif o.kind != ObservableKind.EMAIL:
            hosts.add(o.value)
    if not hosts and networks:
        hosts.add(networks.pop(0))
    assert len(hosts) <= 1, record.observables
    host = next(iter(hosts), "")
    for network in networks:  # 203.0.113.5/24: the host and the network it was named in
        assert record.observables[0].kind in ip_kinds
        assert ipaddress.ip_address(host) in ipaddress.ip_network(network), record.observables
    return host


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_fuzz_mutated_samples_never_raise(data: bytes) -> None:
    check_contract(data)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    check_contract(data)
    check_contract(b"From: a@b.example\nContent-Type: multipart/report; boundary=b\n\n" + data)


XARF_KEYS = [
    "xarf_version", "source_identifier", "source_port", "category", "type", "timestamp",
    "reported_at", "first_seen", "protocol", "service", "url", "domain", "smtp_from",
    "destination_ip", "c2_server", "confidence", "reporter", "tags", "evidence", "tlp",
    "destination_port", "service_port", "Version", "ReporterInfo", "Report", "SourceIp",
    "SourcePort", "DestinationIp", "DestinationPort", "Source", "ReportType", "ReportClass",
    "Date", "SourceUrl", "AdditionalInfo", "C2Server", "Samples",
]  # fmt: skip
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["192.0.2.1", "2001:db8::1", "http://x.example/", "a@b.example", "botnet",
                      "2025-01-11T12:17:20Z", "login_attack", "\ud800", "TLP:RED"])
)  # fmt: skip
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(XARF_KEYS), inner, max_size=6)
    ),
    max_leaves=10,
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(XARF_KEYS), JSON_VALUES, max_size=12))
def test_fuzz_xarf_json_documents_never_raise(doc: dict) -> None:
    check_contract(json.dumps({"xarf_version": "4", **doc}).encode())
    check_contract(json.dumps({"Report": doc, "ReporterInfo": doc}).encode())


def test_damaged_base64_is_named_with_its_part() -> None:
    report = base64.b64encode((FIXTURES / "email" / "connection-login-attack.json").read_bytes())
    damaged = report[:40] + b"!!!@@@###" + report[40:]
    mail = (
        b"From: honeypot@ssh-monitor.example\nTo: abuse@localhost\nSubject: abuse report\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XB"\n\n'
        b"--XB\nContent-Type: text/plain\n\nAbuse report, see attached.\n\n"
        b'--XB\nContent-Type: application/json; name="xarf.json"\n'
        b"Content-Transfer-Encoding: base64\n\n%s\n--XB--\n"
    )
    _, errors = read(mail % damaged)
    assert (errors[0].location.pointer, errors[0].reason) == (
        "/part/2",
        "the base64 of this application/json part is damaged: it is read only as far as it can be",
    )
    sound, sound_errors = read(mail % report)  # the same mail, undamaged: its X-ARF report
    assert sound and sound_errors == []


@pytest.mark.parametrize(
    "header",
    [
        b"Auto-Submitted: auto-replied",
        b"X-Autoreply: yes",
        b"Precedence: auto_reply",
    ],
)
def test_an_auto_reply_is_skipped(header: bytes) -> None:
    mail = (FIXTURES / "email" / "plain-phishing.eml").read_bytes()
    assert read(mail)[0]  # as it is, a report
    items = list(email_reader.READER.read(io.BytesIO(header + b"\r\n" + mail), "mail.eml"))
    assert [type(i).__name__ for i in items] == ["Skipped"]


@pytest.mark.parametrize(
    "header",
    [
        b"Auto-Submitted: auto-generated",  # a honeypot's complaint, as RFC 3834 asks
        b"List-Id: <abuse.cert.example>",  # an abuse@ address that is a list
        b"Precedence: bulk",
    ],
)
def test_a_machine_made_or_listed_report_is_read(header: bytes) -> None:
    mail = (FIXTURES / "email" / "plain-phishing.eml").read_bytes()
    assert read(header + b"\r\n" + mail)[0] == read(mail)[0]


def test_a_delivery_report_is_no_abuse_report() -> None:
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@mail.example"
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce.set_content("Your message to x@minfin-kz.example could not be delivered.")
    bounce.make_mixed()
    bounce.replace_header("Content-Type", 'multipart/report; report-type="delivery-status"')
    items = list(email_reader.READER.read(io.BytesIO(bounce.as_bytes()), "bounce.eml"))
    assert [type(i).__name__ for i in items] == ["Skipped"]


def test_a_signature_ends_at_a_quote_and_a_long_line_costs_linear_time() -> None:
    strip = email_reader._without_signature
    body = "Brute force from 203.0.113.77\n-- \nCERT team\nhttps://cert.example\n"
    kept = strip(body + "> 198.51.100.9 in the quote\n").splitlines()
    assert kept == ["Brute force from 203.0.113.77", "> 198.51.100.9 in the quote"]
    assert "cert.example" not in strip(body + "On Monday, Ivan wrote:\n> text\n")
    assert strip(body + "Иван пишет:\n> text\n").splitlines()[-2] == "Иван пишет:"
    assert "cert.example" not in strip(body)
    # a 400 kB line of blanks after the delimiter: the attribution test once took minutes
    long = strip("report\n-- \n" + " " * 400_000 + "x:\n")
    assert long == "report"


def test_a_link_local_address_with_its_zone_is_no_source() -> None:
    # "fe80::1%eth0" names an interface of the reporter's own host: the sample's report with
    # that Source-IP names no address, as the other readers refuse a zone too
    data = (SAMPLES / "arf-01.eml").read_bytes().replace(b"192.0.2.89", b"fe80::1%eth0")
    records, _ = read(data)
    assert all(
        o.value != "fe80::1%eth0" and "%" not in o.value for r in records for o in r.observables
    )


# --- fuzzing the plain-text reading: one event per host named -------------------------------

# no label that reads as defanged ("hxxp", "fxp"): refanged, it would be another name
LABELS = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(
    lambda label: refang(label) == label
)
DOMAINS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABELS, min_size=1, max_size=3),
    st.sampled_from(["example", "test", "org", "net", "com"]),
)
PUBLIC = st.one_of(
    st.ip_addresses(network="198.51.100.0/24"),
    st.ip_addresses(network="203.0.113.0/25"),
    st.ip_addresses(network="2001:db8::/64"),
).map(str)
NOISE = [
    "internal 10.1.2.3",
    "resolver 127.0.0.1",
    "see invoice.pdf",
    "version 1.2.3.4.5",
    "write to r@cert-west.example",
    "https://www.cert-west.example/case",
    "TLP:AMBER",
    # the receiving side of pasted headers, the victim's (a blank line ends them: a line that
    # starts with a space would continue the last)
    "\nDelivered-To: user@victim.example\nMessage-ID: <a1@mx.victim.example>\n\n",
    "\nReceived: from mx.victim.example ([203.0.113.250]) by store.victim.example for"
    " <user@victim.example>; Tue, 14 Jan 2025 09:00:00 +0000\n"
    "Received: from unknown by mx.victim.example with ESMTP\n\n",
]


@st.composite
def named_hosts(draw: st.DrawFn) -> tuple[str, dict[str, set[str]]]:
    """A plain-text body naming hosts as a report would (bare, defanged, as URLs on them,
    among noise the reader leaves out), and what each host's event should hold."""
    hosts = draw(st.lists(st.one_of(PUBLIC, DOMAINS), min_size=1, max_size=12, unique=True))
    expected: dict[str, set[str]] = {}
    pieces: list[str] = []
    for host in hosts:
        written = f"[{host}]" if ":" in host else host
        forms = draw(st.lists(st.sampled_from(["bare", "defanged", "url", "hxxp"]), min_size=1))
        for form in forms:
            path = draw(st.sampled_from(["", "/", "/kit", "/a/b.php?id=1", "/x#y"]))
            if form == "bare":
                pieces.append(host)
                expected.setdefault(host, set()).add(host)
            elif form == "defanged":
                pieces.append(host.replace(".", "[.]"))
                expected.setdefault(host, set()).add(host)
            else:
                scheme = "http" if form == "url" else "hxxp"
                pieces.append(f"{scheme}://{written}{path}")
                expected.setdefault(host, set()).add(f"http://{written}{path or '/'}")
        if draw(st.booleans()):
            pieces.append(draw(st.sampled_from(NOISE)))
    separators = st.sampled_from([", ", " and ", "\n", " ; ", "\n> ", "\n  "])
    body = "Attacks from " + "".join(p + draw(separators) for p in pieces) + "\n"
    return body, expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(named_hosts(), st.sampled_from(["Brute force", "Phishing page", "Abuse report"]))
def test_fuzz_each_host_named_is_one_event_holding_its_urls(
    case: tuple[str, dict[str, set[str]]], subject: str
) -> None:
    body, expected = case
    data = plain_mail(body, subject)
    check_contract(data)
    records, errors = read(data)
    assert errors == [], reasons(errors)
    found = {host_of(r): {o.value for o in r.observables} for r in records}
    assert found == expected, body
    # in the order the mail names them, each led by its host, or by a URL on it when the
    # report is about one (a phishing page)
    assert [host_of(r) for r in records] == list(expected)
    for record in records:
        first = record.observables[0]
        if subject.startswith("Phishing") and any(o.kind == "url" for o in record.observables):
            assert first.kind == ObservableKind.URL
        elif host_of(record) in expected[host_of(record)]:
            assert first.value == host_of(record)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(1, 12), st.integers(1, 6))
def test_fuzz_the_number_of_events_is_bounded_and_the_excess_told(hosts: int, limit: int) -> None:
    body = "".join(f"attack from 198.51.100.{i + 1}\n" for i in range(hosts))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(email_reader, "MAX_HOSTS", limit)
        records, errors = read(plain_mail(body, "Scan"))
    assert [r.observables[0].value for r in records] == [
        f"198.51.100.{i + 1}" for i in range(min(hosts, limit))
    ]
    if hosts > limit:
        (error,) = errors
        assert error.reason.startswith(f"the mail names {hosts} hosts: ")
        assert f"the other {hosts - limit} were left out" in error.reason
    else:
        assert errors == []
