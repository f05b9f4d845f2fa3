"""Feed profiles of the deployment's own: from the profiles folder (a format for the API,
the UI and the CLI) or given to `concord ingest --profile`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from concord.cli import app
from concord.db import session_factory
from concord.events.model import Event
from concord.events.rsit import RSIT
from concord.intake import registry, service
from concord.intake.readers.csvfeed import CsvFeedReader
from concord.intake.readers.csvprofiles import CSV_READER, PROFILES, READER
from concord.intake.records import EventRecord, Observable, ObservableKind
from concord.orgs import service as orgs
from tests.intake.test_csvfeed import BLOCKLIST, FEEDS
from tests.intake.test_service import give_prefix

DATA = (
    b"ip,first_seen,reason,ignored\n"
    b"192.0.2.1,2024-03-01T10:00:00Z,ssh login attempts,x\n"
    b"192.0.2.2,2024-03-01T12:00:00+02:00,,y\n"
    b"192.0.2.300,2024-03-01T10:00:00Z,bad,z\n"
)
BROKEN = "name: half-done\nobservables: []\n"


def install(env, name: str, text: str) -> None:  # type: ignore[no-untyped-def]
    folder = env.home / "profiles"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


def feeds(session) -> set[str]:  # type: ignore[no-untyped-def]
    session.rollback()
    return set(session.scalars(select(Event.feed)))


def test_formats_lists_profiles_and_names_the_broken_ones(env) -> None:  # type: ignore[no-untyped-def]
    install(env, "blocklist.yaml", BLOCKLIST)
    install(env, "half.yml", BROKEN)
    install(env, "stix.yaml", BLOCKLIST.replace("blocklist-de", "stix"))
    result = CliRunner().invoke(app, ["formats", "--json"])
    assert result.exit_code == 1  # a profile that is not used is worth a failing exit
    listing = json.loads(result.stdout)
    origins = {f["name"]: f["origin"] for f in listing["formats"]}
    assert origins["blocklist-de"] == "profile" and origins["shadowserver"] == "built-in"
    reasons = {p["file"]: p["reason"] for p in listing["problems"]}
    assert "observables" in reasons["half.yml"]
    assert "built-in format" in reasons["stix.yaml"]


def test_api_reads_with_an_installed_profile(env, client, auth, session) -> None:  # type: ignore[no-untyped-def]
    install(env, "blocklist.yaml", BLOCKLIST)
    r = client.post(
        "/api/v1/intake",
        params={"format": "blocklist-de"},
        headers=auth["kz-analyst"],
        files={"file": ("blocklist.csv", DATA, "text/csv")},
    )
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert (receipt["format"], receipt["accepted"], receipt["rejected"]) == ("blocklist-de", 2, 1)
    assert receipt["errors"][0]["line"] == 4 and receipt["errors"][0]["field"] == "ip"
    assert feeds(session) == {"blocklist-de"}
    unknown = client.post(
        "/api/v1/intake",
        params={"format": "half-done"},
        headers=auth["kz-analyst"],
        files={"file": ("x.csv", DATA, "text/csv")},
    )
    assert unknown.status_code == 415 and "blocklist-de" in unknown.json()["detail"]


def test_cli_ingest_with_a_profile_file(env, network, session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    profile = tmp_path / "mine.yaml"
    profile.write_text(BLOCKLIST)
    feed = tmp_path / "today.csv"
    feed.write_bytes(DATA)
    runner = CliRunner()
    args = ["ingest", str(feed), "--profile", str(profile), "--as", "kz-cert", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert (receipt["accepted"], receipt["rejected"]) == (2, 1)
    assert receipt["files"][0]["format"] == "blocklist-de"
    assert feeds(session) == {"blocklist-de"}


def test_cli_refuses_a_broken_profile_and_stores_nothing(env, network, session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    profile = tmp_path / "half.yaml"
    profile.write_text(BROKEN)
    feed = tmp_path / "today.csv"
    feed.write_bytes(DATA)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "concord",
            "ingest",
            str(feed),
            "--profile",
            str(profile),
            "--as",
            "kz-cert",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "half.yaml" in proc.stderr and "observables" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert feeds(session) == set()
    # a profile that is not there is named with the reason alone, not Python's errno
    missing = tmp_path / "gone.yaml"
    result = CliRunner().invoke(
        app, ["ingest", str(feed), "--profile", str(missing), "--as", "kz-cert"]
    )
    assert result.exit_code != 0
    assert str(result.exception) == f"{missing}: cannot read it: No such file or directory"


def test_profile_reader_runs_in_the_child_process(env, network, session) -> None:  # type: ignore[no-untyped-def]
    rows = b"".join(
        f"192.0.2.{i % 250},2024-03-01T10:00:00Z,try {i},x\n".encode() for i in range(600)
    )
    data = DATA.split(b"\n", 1)[0] + b"\n" + rows
    receipt = service.ingest(
        session_factory(),
        network["kz-analyst"],
        service.Source(io.BytesIO(data), "today.csv"),
        reader=CsvFeedReader.from_yaml(BLOCKLIST),
        parallel_from=0,
        batch_size=100,
    )
    assert (receipt.format, receipt.rejected) == ("blocklist-de", 0)
    assert (receipt.accepted, receipt.duplicates) == (250, 350)  # one event per address
    assert feeds(session) == {"blocklist-de"}


def test_a_profile_that_is_not_yaml_names_its_line_and_column_in_one_line(
    env, network, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    profile = tmp_path / "typo.yaml"
    profile.write_text(BLOCKLIST.replace("observables:", "observables: [", 1))
    feed = tmp_path / "today.csv"
    feed.write_bytes(DATA)
    result = CliRunner().invoke(
        app, ["ingest", str(feed), "--profile", str(profile), "--as", "kz-cert"]
    )
    assert result.exit_code != 0
    message = str(result.exception)
    assert "\n" not in message and "not valid YAML" in message
    assert message.startswith(f"{profile}: line ") and ", column " in message


# --- Shadowserver's honeypot and sinkhole DNS reports: told apart from the sinkhole reports ---

HONEYPOT_REPORTS = [
    # fixture report, profile, RSIT of each row, role of src_ip
    (
        "event4_honeypot_brute_force",
        "shadowserver-honeypot-brute-force",
        [("intrusion-attempts", "brute-force")] * 2,
        "source",
    ),
    (
        "event4_honeypot_darknet",
        "shadowserver-honeypot-darknet",
        [  # a scan unless the packets' fingerprint names a bot
            ("malicious-code", "infected-system"),
            ("information-gathering", "scanner"),
            ("malicious-code", "infected-system"),
        ],
        "source",
    ),
    (
        "event4_honeypot_http_scan",
        "shadowserver-honeypot-http-scan",
        [("information-gathering", "scanner"), ("intrusion-attempts", "exploit")],
        "source",
    ),
    (
        "event4_honeypot_ddos_amp",
        "shadowserver-honeypot-ddos-amp",
        [("availability", "ddos")] * 2,
        "target",  # the spoofed source: attacked, not attacking, not infected
    ),
    (
        "event4_sinkhole_dns",
        "shadowserver-sinkhole-dns",
        [("malicious-code", "infected-system")] * 2,
        "victim",
    ),
]


def fixture(report: str) -> Path:
    return FEEDS / f"2024-03-05-{report}-example-asn.csv"


@pytest.mark.parametrize(("report", "profile", "classes", "role"), HONEYPOT_REPORTS)
def test_honeypot_and_sinkhole_dns_reports(
    report: str, profile: str, classes: list[tuple[str, str]], role: str
) -> None:
    path = fixture(report)
    for name in (path.name, "upload.csv"):  # by file name, and by the header alone
        items = list(READER.read(io.BytesIO(path.read_bytes()), name))
        records = [i for i in items if isinstance(i, EventRecord)]
        assert len(records) == len(items)
        assert [(r.rsit_class, r.rsit_type) for r in records] == classes
        assert {r.feed for r in records} == {f"shadowserver:{report}"}
        for record in records:
            src = [o for o in record.observables if o.kind is ObservableKind.IPV4]
            assert src[0].role == role
            # the sensor the host reached is never taken for the host the event is about
            assert {o.role for o in src[1:]} <= {"destination"}
            if role != "victim":  # "victim" is the infected host of a sinkhole report
                assert all(o.role != "victim" for o in record.observables)


@pytest.mark.parametrize(("report", "profile", "classes", "role"), HONEYPOT_REPORTS)
def test_honeypot_and_sinkhole_dns_reports_are_detected(
    report: str, profile: str, classes: list[tuple[str, str]], role: str
) -> None:
    path = fixture(report)
    head = path.read_bytes()[:65536]
    for name in (path.name, "upload.csv"):
        assert registry.choose(head, name, None).name == "shadowserver"
        assert READER.chosen(head, name) == profile
        assert CSV_READER.chosen(head, name) == profile
        # declared by its profile's name, it reads as detection does
        assert registry.choose(head, name, profile) is READER


def test_the_sinkhole_reports_read_as_before() -> None:
    for name, profile in (
        ("2024-03-02-event4_sinkhole_http-example-asn.csv", "shadowserver-sinkhole"),
        ("2024-03-01-scan_rdp-example-asn.csv", "shadowserver-scan"),
    ):
        head = (FEEDS / name).read_bytes()
        assert READER.chosen(head, name) == READER.chosen(head, "upload.csv") == profile


def test_honeypot_report_details() -> None:
    def rows(report: str) -> list[EventRecord]:
        items = list(READER.read(io.BytesIO(fixture(report).read_bytes()), "upload.csv"))
        return [i for i in items if isinstance(i, EventRecord)]

    ssh, telnet = rows("event4_honeypot_brute_force")
    assert (ssh.port, ssh.protocol, ssh.application) == (22, "tcp", "ssh")
    assert ssh.extra["username"] == "root" and "password" not in ssh.extra
    assert Observable(ObservableKind.MD5, "0123456789abcdef0123456789abcdef", "malware") in (
        telnet.observables
    )
    assert telnet.extra["malware"] == "mirai"
    _, scanner, bot = rows("event4_honeypot_darknet")
    assert "malware" not in scanner.extra and bot.extra["infection"] == "Mirai-Like"
    probe, exploit = rows("event4_honeypot_http_scan")
    assert probe.application == exploit.application == "http"
    assert exploit.extra["vulnerability_id"] == "CVE-2023-0001"
    assert [o.role for o in exploit.observables if o.kind is ObservableKind.SHA256] == ["malware"]
    amplified, _ = rows("event4_honeypot_ddos_amp")
    assert (amplified.port, amplified.protocol) == (389, "udp")  # the service abused
    assert amplified.extra["bytes"] == "96000" and "malware" not in amplified.extra
    infected, _ = rows("event4_sinkhole_dns")
    assert infected.application == "dns" and infected.extra["malware"] == "qsnatch"
    assert Observable(ObservableKind.DOMAIN, "dga-one.example.net", "c2") in infected.observables


def test_a_vulnerability_id_that_means_none_is_a_scan() -> None:
    lines = fixture("event4_honeypot_http_scan").read_text().splitlines(keepends=True)
    data = (lines[0] + lines[2].replace('"CVE-2023-0001"', '"unknown"')).encode()
    (record,) = READER.read(io.BytesIO(data), "upload.csv")
    assert isinstance(record, EventRecord)
    assert (record.rsit_class, record.rsit_type) == ("information-gathering", "scanner")


def test_new_profiles_classify_within_the_taxonomy() -> None:
    for _, name, classes, _ in HONEYPOT_REPORTS:
        profile = PROFILES[name]
        assert profile.rsit_type in RSIT[profile.rsit_class]
        for rsit_class, rsit_type in (*profile.classify_map.values(), *classes):
            assert rsit_type in RSIT[rsit_class]


def test_the_target_of_an_amplification_attack_is_told(session, network) -> None:  # type: ignore[no-untyped-def]
    # kz-bank holds the attacked address and, in the brute force report, the honeypot
    give_prefix(session, "kz-bank", "198.51.100.0/24")
    for report in ("event4_honeypot_ddos_amp", "event4_honeypot_brute_force"):
        path = fixture(report)
        receipt = service.ingest(
            session_factory(),
            network["kz-analyst"],
            service.Source(io.BytesIO(path.read_bytes()), path.name),
        )
        assert (receipt.format, receipt.rejected) == ("shadowserver", 0)
    session.rollback()
    kz_bank = orgs.get_org_for_write(session, "kz-bank")
    owned = session.execute(
        select(Event.primary_value, Event.rsit_type, Event.feed).where(
            Event.owner_org_id == kz_bank.id
        )
    ).all()
    # the attacked host, as the target of a DDoS; not the honeypot the attackers reached
    assert owned == [("198.51.100.70", "ddos", "shadowserver:event4_honeypot_ddos_amp")]
