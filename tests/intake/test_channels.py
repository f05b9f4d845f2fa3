"""Intake channels: the REST API, the command line and the SMTP listener."""

from __future__ import annotations

import gzip
import json
import os
import smtplib
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from concord.cli import app
from concord.events.model import Event, Submission
from concord.intake.registry import UnsupportedFormat
from tests.conftest import FIXTURES, SHARED_DATA, free_port, shared_file
from tests.intake.test_service import scan_csv

PROBLEM = "application/problem+json"
STIX_C2 = FIXTURES / "stix" / "indicator-for-c2-ip-address.json"


def send_file(client, headers: dict[str, str], name: str, data: bytes):  # type: ignore[no-untyped-def]
    """POST a file to the intake API as the body, named by `X-Filename`."""
    return client.post("/api/v1/intake", headers={**headers, "x-filename": name}, content=data)


def ingest_json(path: Path) -> tuple[Result, dict[str, Any]]:
    """`concord ingest PATH --as kz-cert --json`: its outcome, and the receipts it printed."""
    result = CliRunner().invoke(app, ["ingest", str(path), "--as", "kz-cert", "--json"])
    return result, json.loads(result.stdout)


def _count(session) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return int(session.scalar(select(func.count()).select_from(Event)))


def test_api_upload_and_receipt(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    data = scan_csv(
        [("2026-11-30 10:00:00", "203.0.113.5", 3389), ("2026-11-30 10:00:00", "203.0.113.5", 3389)]
    )
    r = client.post(
        "/api/v1/intake",
        params={"tlp": "green"},
        headers=auth["kz-analyst"],
        files={"file": ("scan_rdp.csv", data, "text/csv")},
    )
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert (receipt["accepted"], receipt["duplicates"], receipt["rejected"]) == (1, 1, 0)
    assert (receipt["tlp"], receipt["tlp_declared"]) == ("green", True)
    got = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["kz-analyst"]).json()
    assert got["accepted"] == 1
    left = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files={"file": ("other.csv", data.replace(b".5", b".6"), "text/csv")},
    ).json()
    assert (left["tlp"], left["tlp_declared"]) == ("amber", False)
    assert (
        client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["uz-analyst"]).status_code == 404
    )
    events = client.get(
        "/api/v1/events", params={"value": "203.0.113.5"}, headers=auth["kz-reader"]
    ).json()["items"]
    assert events[0]["count"] == 2 and events[0]["reported_by"] == "kz-cert"
    detail = client.get(f"/api/v1/events/{events[0]['id']}", headers=auth["kz-reader"]).json()
    assert "203.0.113.5" in detail["raw"]
    # the events a receipt added, by its id
    other = client.post(
        "/api/v1/intake",
        params={"tlp": "green"},
        headers=auth["kz-analyst"],
        files={"file": ("scan_ssh.csv", scan_csv([("2026-11-30 11:00:00", "203.0.113.6", 22)]))},
    ).json()
    added = client.get(
        "/api/v1/events", params={"submission": other["id"]}, headers=auth["kz-reader"]
    ).json()["items"]
    assert [e["observables"][0]["value"] for e in added] == ["203.0.113.6"]
    bad = client.get("/api/v1/events", params={"submission": 0}, headers=auth["kz-reader"])
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    metrics = client.get("/metrics", headers=auth["centre-admin"])
    assert metrics.status_code == 200 and "concord_intake_records_total" in metrics.text
    # every organisation's intake counted: for the centre's operators only
    assert client.get("/metrics", headers=auth["centre-reader"]).status_code == 403
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert client.get("/metrics", headers=auth["kz-analyst"]).status_code == 403
    wrong = client.get("/metrics", headers={"Authorization": "Bearer cnc_wrong_token"})
    assert wrong.status_code == 401


def test_api_stix_body_and_tlp_visibility(client, auth) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/intake",
        params={"format": "stix", "tlp": "amber"},
        headers={
            **auth["kz-analyst"],
            "content-type": "application/json",
            "x-filename": STIX_C2.name,
        },
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] >= 1
    mine = client.get("/api/v1/events", headers=auth["kz-reader"]).json()["items"]
    assert mine and all(e["tlp"] in ("amber", "amber+strict", "red") for e in mine)
    assert client.get("/api/v1/events", headers=auth["uz-analyst"]).json()["items"] == []
    assert client.get("/api/v1/events", headers=auth["centre-reader"]).json()["items"]


def test_a_raw_body_labelled_as_a_form_is_taken_as_the_file(client, auth, env, network) -> None:  # type: ignore[no-untyped-def]
    # what `curl --data-binary @file` sends when no content type is given
    r = client.post(
        "/api/v1/intake",
        headers={**auth["kz-analyst"], "content-type": "application/x-www-form-urlencoded"},
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["format"], r.json()["accepted"]) == ("stix", 1)
    # no tlp declares nothing: each record keeps its own marking; an empty one is a mistake
    r = client.post(
        "/api/v1/intake",
        params={"tlp": ""},
        headers={**auth["uz-analyst"], "content-type": "application/x-www-form-urlencoded"},
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/tlp", r.text
    r = client.post(
        "/api/v1/intake",
        headers={**auth["uz-analyst"], "content-type": "application/x-www-form-urlencoded"},
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 200 and r.json()["tlp_declared"] is False, r.text


def test_receipts_count_what_names_no_observable(client, auth, env, network) -> None:  # type: ignore[no-untyped-def]
    sample = FIXTURES / "misp" / "57c4445b-c548-4654-af0b-4be3950d210f.json"
    r = client.post(
        "/api/v1/intake",
        headers={**auth["kz-analyst"], "content-type": "application/json", "x-filename": "e.json"},
        content=sample.read_bytes(),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["skipped"]) == (3, 6)
    runner = CliRunner()
    said = runner.invoke(app, ["ingest", str(sample), "--as", "uz-cert"], catch_exceptions=False)
    assert said.exit_code == 0, said.output
    assert "3 accepted, 0 duplicate, 0 rejected, 6 naming no observable" in said.stdout
    totals = json.loads(
        runner.invoke(app, ["ingest", str(sample), "--as", "uz-cert", "--json"]).stdout
    )
    assert (totals["skipped"], totals["files"][0]["skipped"]) == (6, 6)


def test_a_failing_intake_worker_is_a_server_fault(
    env, auth, session, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from concord.intake import parallel, service
    from concord.web.app import create_app

    real = parallel.ChildBatches
    (tmp_path / "a-file").write_text("")
    nowhere = f"sqlite:///{tmp_path}/a-file/gone.db?mode=ro"  # the child cannot open it

    def unreachable(plan, url, *rest):  # type: ignore[no-untyped-def]
        return real(plan, nowhere, *rest)

    monkeypatch.setattr(parallel, "ChildBatches", unreachable)
    monkeypatch.setattr(service, "PARALLEL_FROM", 0)
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        r = client.post(
            "/api/v1/intake",
            headers={
                **auth["kz-analyst"],
                "content-type": "application/json",
                "x-filename": "c2.json",
            },
            content=STIX_C2.read_bytes(),
        )
    assert r.status_code == 500 and r.headers["content-type"] == PROBLEM, r.text
    assert "quote reference" in r.json()["detail"] and "sqlite" not in r.text
    session.rollback()
    assert session.scalar(select(Submission.status)) == "failed" and _count(session) == 0


def test_api_bad_input(client, auth, session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/intake",
        params={"format": "nonsense"},
        headers=auth["kz-analyst"],
        files={"file": ("x.txt", b"hello", "text/plain")},
    )
    assert r.status_code == 415 and r.headers["content-type"].startswith(PROBLEM)
    assert "stix" in r.json()["detail"]
    assert "cert-eu" in r.json()["detail"]  # built-in CSV profiles can be declared too
    assert r.json()["errors"][0]["field"] == "format"
    # an archive that cannot be opened stores nothing
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files={"file": ("feeds.zip", b"PK\x03\x04 damaged", "application/zip")},
    )
    assert r.status_code == 422 and "not a valid zip archive" in r.json()["detail"], r.text
    r = client.post(
        "/api/v1/intake",
        params={"format": "stix"},
        headers=auth["kz-analyst"],
        files={"file": ("broken.json", b'{"type": "bundle", "objects": [', "x")},
    )
    # no record taken in is a failure, told as a problem with each fault and the receipt
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["receipt"]["accepted"] == 0 and problem["receipt"]["rejected"] >= 1
    assert problem["errors"] == [
        {**error, "detail": error["reason"]} for error in problem["receipt"]["errors"]
    ]
    assert problem["errors"][0].get("line") or problem["errors"][0].get("pointer") is not None
    assert f"the receipt ({problem['receipt']['id']})" in problem["detail"]
    assert (
        client.get(f"/api/v1/intake/{problem['receipt']['id']}", headers=auth["kz-analyst"]).json()[
            "rejected"
        ]
        == problem["receipt"]["rejected"]
    )
    assert _count(session) == 0
    from concord.config import reset_settings

    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", "1000")
    reset_settings()
    big = scan_csv([("2026-11-30 10:00:00", f"203.0.113.{i % 250}", 3389) for i in range(100)])
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files={"file": ("scan_rdp.csv", big, "text/csv")},
    )
    assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]
    # a declared length past the limit is refused before the body is read
    r = client.post(
        "/api/v1/intake",
        headers={
            **auth["kz-analyst"],
            "content-type": "multipart/form-data; boundary=x",
            "content-length": str(1 << 30),
        },
        content=b"",
    )
    assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]
    assert (
        client.post(
            "/api/v1/intake", headers=auth["kz-reader"], files={"file": ("a.csv", b"x", "text/csv")}
        ).status_code
        == 403
    )


def test_cli_files_directories_and_archives(env, network, session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "scan_rdp.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 3389)]))
    (folder / "scan_ssh.csv.gz").write_bytes(
        gzip.compress(scan_csv([("2026-11-30 10:00:00", "192.0.2.2", 22)]))
    )
    with zipfile.ZipFile(folder / "bundle.zip", "w") as z:
        z.writestr("scan_rdp-2.csv", scan_csv([("2026-11-30 11:00:00", "192.0.2.3", 3389)]))
    result = runner.invoke(
        app, ["ingest", str(folder), "--as", "kz-cert", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert {"accepted", "duplicates", "rejected", "errors"} <= receipt.keys()
    assert receipt["accepted"] == 3 and len(receipt["files"]) == 3
    # named from the folder given on, without the folders above it
    assert sorted(f["filename"] for f in receipt["files"]) == [
        "drop/bundle.zip!scan_rdp-2.csv",
        "drop/scan_rdp.csv",
        "drop/scan_ssh.csv",
    ]
    session.rollback()
    assert sorted(session.scalars(select(Submission.filename))) == [
        "drop/bundle.zip!scan_rdp-2.csv",
        "drop/scan_rdp.csv",
        "drop/scan_ssh.csv",
    ]
    alone = runner.invoke(app, ["ingest", str(folder / "scan_rdp.csv"), "--as", "kz-cert"])
    assert alone.stdout.startswith("scan_rdp.csv: ")
    again = json.loads(
        runner.invoke(app, ["ingest", str(folder), "--as", "kz-cert", "--json"]).stdout
    )
    assert again["accepted"] == 0 and again["duplicates"] == 3


def test_cli_fails_when_a_file_of_several_had_every_record_rejected(env, network, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes((FIXTURES / "intelmq" / "events.jsonl").read_bytes())
    # no format detection tells, so no other format is named: read as declared
    (folder / "b.txt").write_bytes(b"192.0.2.1 scanned us\n192.0.2.2 too\n")
    # declared IntelMQ: the text's lines are all rejected, the other file is taken in
    said = runner.invoke(app, ["ingest", str(folder), "--as", "kz-cert", "--format", "intelmq"])
    assert said.exit_code == 1, said.output
    last = said.stdout.strip().splitlines()[-1]
    assert last.startswith("2 files: ") and last.endswith(" 2 rejected"), last


def test_cli_reads_the_rest_of_a_folder_past_a_file_it_cannot_take(
    env, network, session, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    folder = tmp_path / "drop"
    folder.mkdir()
    # a test oracle that sits beside the sample it describes: JSON, but no report
    stray = shared_file("email/arf/stalwart_001.expected.json")
    (folder / "a-notes.json").write_bytes(stray.read_bytes())
    (folder / "b-broken.zip").write_bytes(b"PK\x03\x04 cut short")
    (folder / "c-scan_rdp.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.9", 3389)]))
    (folder / "d-report.eml").write_bytes(shared_file("email/arf/arf-20.eml").read_bytes())
    os.mkfifo(folder / "e-pipe")  # opened, it would wait for a writer for ever
    (folder / "f-gone.csv").symlink_to(tmp_path / "moved-away.csv")
    result = runner.invoke(app, ["ingest", str(folder), "--as", "kz-cert", "--json"])
    assert result.exit_code == 1  # something was not taken in
    receipt = json.loads(result.stdout)
    assert [f["status"] for f in receipt["files"]] == ["refused"] * 2 + ["done"] * 2 + [
        "refused"
    ] * 2
    assert receipt["accepted"] == 2 and _count(session) == 2
    reasons = {e["source"].rsplit("/", 1)[-1]: e["reason"] for e in receipt["errors"]}
    assert "cannot tell the format" in reasons["a-notes.json"]
    assert "not a valid zip archive" in reasons["b-broken.zip"]
    assert (
        "not a regular file" in reasons["e-pipe"] and "not a regular file" in reasons["f-gone.csv"]
    )
    refused = receipt["files"][0]  # not taken in: it was declared nothing
    assert (refused["tlp"], refused["tlp_declared"]) == ("", False), refused
    # a pipe named alone is refused too, and nothing waits on it
    alone = runner.invoke(app, ["ingest", str(folder / "e-pipe"), "--as", "kz-cert"])
    assert alone.exit_code == 1 and "e-pipe: not a regular file" in alone.output
    (folder / "e-pipe").unlink()
    (folder / "f-gone.csv").unlink()

    # a declared format that does not exist is the command's mistake: nothing is read
    again = runner.invoke(app, ["ingest", str(folder), "--as", "kz-cert", "--format", "nope"])
    assert isinstance(again.exception, UnsupportedFormat) and _count(session) == 2


def test_cli_refuses_a_compression_bomb(env, network, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    bomb = tmp_path / "scan_rdp.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        for _ in range(64):
            fh.write(b"\0" * (1 << 20))
    proc = subprocess.run(
        [sys.executable, "-m", "concord", "ingest", str(bomb), "--as", "kz-cert"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "compression bomb" in proc.stderr and "Traceback" not in proc.stderr


def test_an_archive_is_bounded_as_a_whole_and_in_files(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    from concord.intake import sources

    sample = (FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv").read_bytes()
    archive = tmp_path / "reports.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(3):
            zf.writestr(f"{k}-scan_rdp.csv", sample)
    # each member fits, but not all three together
    monkeypatch.setattr(sources, "MAX_UNPACKED", 2 * len(sample) + 10)
    got = list(sources.open_sources([str(archive)]))
    assert [type(g).__name__ for g in got] == ["Source", "Source", "Refused"]
    assert "unpacks to more than" in got[2].reason and "in all" in got[2].reason
    monkeypatch.setattr(sources, "MAX_UNPACKED", 1 << 30)
    # an encrypted member (flag bit 0) is named as such, not by Python's words for it
    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(locked, "w") as zf:
        zf.writestr("scan_rdp.csv", sample)
    raw = bytearray(locked.read_bytes())  # mark it encrypted, in both of its headers
    raw[raw.find(b"PK\x03\x04") + 6] |= 0x1
    raw[raw.find(b"PK\x01\x02") + 8] |= 0x1
    locked.write_bytes(bytes(raw))
    [refused] = list(sources.open_sources([str(locked)]))
    assert refused.reason == "locked.zip!scan_rdp.csv: cannot be unpacked (it is encrypted)"
    monkeypatch.setattr(sources, "MAX_MEMBERS", 2)
    [refused] = list(sources.open_sources([str(archive)]))
    assert "holds 3 files, more than the 2" in refused.reason


@contextmanager
def smtp_intake(monkeypatch) -> Iterator[smtplib.SMTP]:  # type: ignore[no-untyped-def]
    """A client of the intake's SMTP listener, on a free port and taking mail for
    abuse@centre.example."""
    from concord.intake.smtp import SmtpSettings, start_listener

    monkeypatch.setenv("CONCORD_INTAKE_ADDRESSES", "abuse@centre.example")
    port = free_port()
    controller = start_listener(SmtpSettings.from_env("127.0.0.1", port))
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo()
            yield smtp
    finally:
        controller.stop()


def test_smtp_listener_takes_an_arf_report(env, network, session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sample = FIXTURES / "email" / "arf-01.eml"
    if not sample.exists():
        sample = SHARED_DATA / "email" / "arf" / "arf-01.eml"
    with smtp_intake(monkeypatch) as smtp:
        code, _ = smtp.docmd("MAIL FROM:<reporter@isp.example>")
        assert code == 250
        code, _ = smtp.docmd("RCPT TO:<someone@centre.example>")
        assert code == 550  # not an intake address
        smtp.rset()
        refused = smtp.sendmail(
            "reporter@isp.example",
            ["abuse@centre.example"],
            sample.read_bytes().replace(b"\n", b"\r\n"),
        )
        assert refused == {}
    deadline = time.monotonic() + 10
    while _count(session) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    session.rollback()
    event = session.scalar(select(Event))
    assert event is not None and event.feed.startswith(("arf", "email"))
    # attributed to the centre as the default: its seat is in KZ, but it reports for no state
    assert event.origin_org_id == network["centre-analyst"].org_id and event.country is None


def test_smtp_listener_takes_a_feed_mailed_as_an_attachment(  # type: ignore[no-untyped-def]
    env, network, session, monkeypatch
) -> None:
    import io
    from email.message import EmailMessage

    csv = FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv"
    rows = len(csv.read_text().splitlines()) - 1
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(csv.name, csv.read_bytes())

    def mail(name: str, data: bytes) -> bytes:
        msg = EmailMessage()
        msg["From"] = "autoreports@shadowserver.example"
        msg["To"] = "abuse@centre.example"
        msg["Subject"] = "Shadowserver scan_rdp report"
        msg.set_content("See https://www.shadowserver.org/what-we-do/network-reporting/ for more.")
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
        return msg.as_bytes().replace(b"\n", b"\r\n")

    with smtp_intake(monkeypatch) as smtp:
        long_name = "Отчёт-" * 40 + ".zip"  # 480 bytes: longer than a file name may be
        for name, data in ((csv.name, csv.read_bytes()), (long_name, packed.getvalue())):
            smtp.mail("autoreports@shadowserver.example")
            smtp.rcpt("abuse@centre.example")
            code, said = smtp.data(mail(name, data))
            assert code == 250, said
            assert f"{rows} accepted".encode() in said or b"duplicate" in said, said
        # a bounce (the null sender) is no report, whatever it holds
        smtp.mail("<>")
        smtp.rcpt("abuse@centre.example")
        code, said = smtp.data(mail(csv.name, b"192.0.2.1\r\n"))
        assert code == 250 and b"not stored" in said, said
    session.rollback()
    feeds = set(session.scalars(select(Event.feed)))
    assert feeds == {"shadowserver:scan_rdp"}, feeds  # the cover letter's link is no event
    assert _count(session) == rows
    files = set(
        session.scalars(select(Submission.filename).where(Submission.format == "shadowserver"))
    )
    assert files == {csv.name}, files  # the zipped copy is the same file: nothing new
    # each mail is kept, its text a cover letter, with its feed as its part
    mails = session.scalars(select(Submission).where(Submission.format == "email-attachments"))
    assert {(m.filename, m.accepted) for m in mails} == {
        ("smtp-from-autoreports@shadowserver.example.eml", 0)
    }


def test_cli_reads_every_member_of_a_zip_past_one_it_refuses(
    env, network, session, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    bundle = tmp_path / "mixed.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a-inner.zip", b"PK\x05\x06" + b"\0" * 18)
        z.writestr("b-bomb.csv", b"\0" * (8 << 20))  # far above the allowed ratio
        z.writestr("c-scan_rdp.csv", scan_csv([("2026-11-30 10:00:00", "192.0.2.21", 3389)]))
        z.writestr("d-scan_ssh.csv", scan_csv([("2026-11-30 10:00:00", "192.0.2.22", 22)]))
        # what a Mac adds to an archive it makes is skipped, as hidden files in a folder
        z.writestr("__MACOSX/._c-scan_rdp.csv", b"\0\5\26\7\0\2\0\0Mac OS X")
        z.writestr(".DS_Store", b"\0\0\0\1Bud1")
    result, receipt = ingest_json(bundle)
    assert result.exit_code == 1
    assert receipt["skipped_files"] == [
        "mixed.zip!__MACOSX/._c-scan_rdp.csv",
        "mixed.zip!.DS_Store",
    ]
    statuses = {f["filename"]: f["status"] for f in receipt["files"]}
    assert statuses == {
        "mixed.zip!a-inner.zip": "refused",
        "mixed.zip!b-bomb.csv": "refused",
        "mixed.zip!c-scan_rdp.csv": "done",
        "mixed.zip!d-scan_ssh.csv": "done",
    }
    assert receipt["accepted"] == 2 and _count(session) == 2
    reasons = " ".join(e["reason"] for e in receipt["errors"])
    assert "nested archives are refused" in reasons and "compression bomb" in reasons


def test_cli_goes_on_past_damaged_and_empty_archives(env, network, session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sample = (FIXTURES / "feeds" / "dataplane_sshclient.txt").read_bytes()
    drop = tmp_path / "drop"
    drop.mkdir()
    packed = bytearray(gzip.compress(sample))
    packed[len(packed) // 2] ^= 0xFF  # damaged compressed data, a sound gzip header
    (drop / "a-damaged.txt.gz").write_bytes(bytes(packed))
    with zipfile.ZipFile(drop / "b-damaged.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("first.txt", sample)
        z.writestr("scan_rdp.csv", scan_csv([("2026-11-30 10:00:00", "192.0.2.31", 3389)]))
    raw = bytearray((drop / "b-damaged.zip").read_bytes())
    raw[200] ^= 0xFF  # inside the first member's compressed data
    (drop / "b-damaged.zip").write_bytes(bytes(raw))
    zipfile.ZipFile(drop / "c-empty.zip", "w").close()
    (drop / "d-scan_ssh.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.32", 22)]))
    (drop / "e-empty.csv").write_bytes(b" \n")
    result, receipt = ingest_json(drop)
    assert result.exit_code == 1, result.output
    statuses = {f["filename"].split("/", 1)[1]: f["status"] for f in receipt["files"]}
    assert statuses == {
        "a-damaged.txt.gz": "refused",
        "b-damaged.zip!first.txt": "refused",
        "b-damaged.zip!scan_rdp.csv": "done",
        "c-empty.zip": "refused",
        "d-scan_ssh.csv": "done",
        "e-empty.csv": "refused",
    }
    # each error names its file as its source; its reason does not repeat the name
    errors = [(e["source"].split("/", 1)[1], e["reason"]) for e in receipt["errors"]]
    assert [source for source, _ in errors] == [
        "a-damaged.txt.gz",
        "b-damaged.zip!first.txt",
        "c-empty.zip",
        "e-empty.csv",
    ]
    reasons = [reason for _, reason in errors]
    assert reasons[0].startswith("not a valid gzip file") and "drop" not in reasons[0]
    assert reasons[1].startswith("cannot be unpacked") and "drop" not in reasons[1]
    assert reasons[2:] == ["the archive holds no file", "the file is empty"]
    assert receipt["accepted"] == 2 and _count(session) == 2


def test_cli_goes_on_past_a_file_whose_intake_fails(
    env, network, session, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from concord.intake import service

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a-scan_rdp.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.31", 3389)]))
    (folder / "b-scan_ssh.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.32", 22)]))
    real = service.write_batch

    def broken_for_the_first(session, sub, plan, batch):  # type: ignore[no-untyped-def]
        if sub.filename.endswith("a-scan_rdp.csv"):
            raise RuntimeError("disk on fire")
        return real(session, sub, plan, batch)

    monkeypatch.setattr(service, "write_batch", broken_for_the_first)
    result, receipt = ingest_json(folder)
    assert result.exit_code == 1
    assert [f["status"] for f in receipt["files"]] == ["failed", "done"]
    assert "disk on fire" in receipt["errors"][0]["reason"]
    session.rollback()
    states = dict(session.execute(select(Submission.filename, Submission.status)).all())
    assert states == {"drop/a-scan_rdp.csv": "failed", "drop/b-scan_ssh.csv": "done"}
    # sent again once the cause is gone, the failed file resumes and completes
    monkeypatch.setattr(service, "write_batch", real)
    again = CliRunner().invoke(app, ["ingest", str(folder), "--as", "kz-cert", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["accepted"] == 1


def test_cli_tells_archives_by_their_content(env, network, session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    feeds = FIXTURES / "feeds"
    rdp = (feeds / "2024-03-01-scan_rdp-example-asn.csv").read_bytes()
    ntp = (feeds / "2024-03-01-scan_ntp-example-asn.csv").read_bytes()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a-scan_rdp.csv.gzip").write_bytes(gzip.compress(rdp))
    with zipfile.ZipFile(drop / "b-reports-noext", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("2024-03-01-scan_ntp-example-asn.csv", ntp)
        z.writestr("inner", gzip.compress(ntp))  # an archive inside, named as none
    (drop / "c-twice.csv.gz").write_bytes(gzip.compress(gzip.compress(ntp)))
    with zipfile.ZipFile(drop / "d-letter.docx", "w") as z:  # a document, no archive
        z.writestr("[Content_Types].xml", "<Types/>")
    result, receipt = ingest_json(drop)
    assert result.exit_code == 1, result.output
    statuses = {f["filename"].split("/", 1)[1]: f["status"] for f in receipt["files"]}
    assert statuses == {
        "a-scan_rdp.csv": "done",
        "b-reports-noext!2024-03-01-scan_ntp-example-asn.csv": "done",
        "b-reports-noext!inner": "refused",
        "c-twice.csv.gz": "refused",
        "d-letter.docx": "refused",
    }
    assert {f["format"] for f in receipt["files"] if f["status"] == "done"} == {"shadowserver"}
    assert receipt["accepted"] == _count(session) > 0
    reasons = {e["source"].split("/", 1)[1]: e["reason"] for e in receipt["errors"]}
    assert reasons["b-reports-noext!inner"] == "nested archives are refused"
    assert reasons["c-twice.csv.gz"] == "nested archives are refused"
    assert "cannot tell the format of 'drop/d-letter.docx'" in reasons["d-letter.docx"]
    # the command never sends its user to itself
    assert not any("concord ingest" in reason for reason in reasons.values())


def test_cli_refusals_name_their_files_and_are_counted(env, network, tmp_path) -> None:  # type: ignore[no-untyped-def]
    misp = [FIXTURES / "misp" / "misp_event.json", FIXTURES / "misp" / "sighting_event.json"]
    stix = FIXTURES / "stix" / "infrastructure.json"
    args = ["ingest", *map(str, misp), str(stix), "--format", "stix", "--as", "kz-cert"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    refusals = [line for line in result.stderr.splitlines() if line.startswith("not taken in:")]
    assert refusals == [
        f"not taken in: {path.name}: this file is not stix (it looks like misp): choose the "
        "format it is in, or let the format be detected"
        for path in misp
    ]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("3 files, 2 not taken in: ") and "0 rejected" in last
    totals = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert {"accepted", "duplicates", "rejected", "errors", "files"} <= totals.keys()
    assert (totals["not_taken_in"], totals["skipped_files"]) == (2, [])
    assert [e["source"] for e in totals["errors"]] == [path.name for path in misp]


def test_json_nested_too_deep_is_refused_as_such_without_a_format(
    client, auth, env, network, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    deep = b"[" * 100_000 + b"]" * 100_000
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files={"file": ("deep.json", deep, "application/json")},
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert r.json()["detail"] == "JSON nested deeper than 64 levels; refusing to read it"
    [where] = r.json()["errors"]
    assert (where["source"], where["line"]) == ("deep.json", 1)
    # brackets in a string nest nothing: that file is only of no known format
    shallow = b'{"note": "' + b"[" * 1000 + b'"}'
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files={"file": ("notes.json", shallow, "application/json")},
    )
    assert r.status_code == 415 and "cannot tell the format" in r.json()["detail"]
    (tmp_path / "deep.json").write_bytes(deep)
    said = CliRunner().invoke(app, ["ingest", str(tmp_path / "deep.json"), "--as", "kz-cert"])
    assert said.exit_code == 1
    assert said.stderr.strip() == (
        "not taken in: deep.json: JSON nested deeper than 64 levels; refusing to read it"
    )


def _post(client, headers, data: bytes, tlp: str, name: str = "events.jsonl"):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/intake",
        params={"tlp": tlp, "format": "intelmq"},
        headers={**headers, "content-type": "application/octet-stream", "x-filename": name},
        content=data,
    )


def test_a_receipt_is_read_as_its_tlp_allows(client, auth) -> None:  # type: ignore[no-untyped-def]
    lines = (FIXTURES / "intelmq" / "events.jsonl").read_bytes().splitlines(True)
    # the refused record is quoted on the receipt: a receipt is read as its records are
    bad = b'{"time.source": "2026-11-30T10:00:00+00:00", "source.ip": "10.66.66.66 secret-host"}\n'
    readers = ("kz-analyst", "kz-reader", "centre-analyst", "uz-analyst")
    expected = {
        "red": {"kz-analyst"},
        "amber+strict": {"kz-analyst", "kz-reader"},
        "amber": {"kz-analyst", "kz-reader", "centre-analyst"},
        "green": {"kz-analyst", "kz-reader", "centre-analyst"},  # a state's own, in its scope
    }
    for tlp, allowed in expected.items():
        r = _post(client, auth["kz-analyst"], lines[0] + bad, tlp, name=f"{tlp}.jsonl")
        assert r.status_code == 200, r.text
        receipt_id = r.json()["id"]
        for reader in readers:
            got = client.get(f"/api/v1/intake/{receipt_id}", headers=auth[reader])
            assert (got.status_code == 200) == (reader in allowed), (tlp, reader, got.text)
            if got.status_code != 200:
                assert got.status_code == 404 and "secret-host" not in got.text


def test_a_red_file_is_its_senders_however_many_send_it(client, auth) -> None:  # type: ignore[no-untyped-def]
    data = (FIXTURES / "intelmq" / "events.jsonl").read_bytes()
    first = _post(client, auth["kz-admin"], data, "red").json()
    # the same file at AMBER says nothing of a colleague's RED one
    amber = _post(client, auth["kz-analyst"], data, "amber").json()
    assert "another TLP" not in amber["note"]
    second = _post(client, auth["kz-analyst"], data, "red").json()
    # a submission of its own, nothing said of the first, and events the sender can read
    assert second["id"] != first["id"] and second["accepted"] == first["accepted"] > 0
    assert "another TLP" in second["note"]  # its own AMBER submission, which it knows of
    mine = client.get("/api/v1/events", headers=auth["kz-analyst"])
    reds = [e for e in mine.json()["items"] if e["tlp"] == "red"]
    assert len(reds) == second["accepted"]
    again = _post(client, auth["kz-analyst"], data, "red").json()
    assert again["id"] == second["id"] and again["accepted"] == 0  # idempotent per sender


def test_a_misspelt_query_parameter_is_refused_not_ignored(client, auth, env, network) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/api/v1/intake",
        params={"TLP": "red"},
        headers={**auth["kz-analyst"], "content-type": "application/json"},
        content=STIX_C2.read_bytes(),
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"][0]["pointer"] == "/query/TLP"
    assert "unknown query parameter 'TLP'" in problem["detail"] and "tlp" in problem["detail"]
    assert client.get("/api/v1/events", headers=auth["kz-analyst"]).json()["items"] == []
    r = client.get("/api/v1/events", params={"channel": "api"}, headers=auth["kz-analyst"])
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/channel"


def test_an_api_form_holds_only_its_file(client, auth, env, network) -> None:  # type: ignore[no-untyped-def]
    data = STIX_C2.read_bytes()
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        data={"tlp": "red"},  # a setting sent as a form field would be ignored in silence
        files={"file": ("c2.json", data, "application/json")},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/tlp", r.text
    assert "?tlp=" in r.json()["detail"]
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files=[
            ("file", ("a.json", data, "application/json")),
            ("file", ("b.json", data, "application/json")),
        ],
    )
    assert r.status_code == 422 and "one file per request" in r.json()["detail"]
    assert client.get("/api/v1/events", headers=auth["kz-analyst"]).json()["items"] == []


def test_smtp_listener_takes_mail_from_the_configured_relays_only(  # type: ignore[no-untyped-def]
    env, network, monkeypatch
) -> None:
    from concord.errors import ConfigurationError
    from concord.intake.smtp import SmtpSettings

    # anyone who reaches the listener could name a national body's contact as the sender
    monkeypatch.setenv("CONCORD_INTAKE_RELAYS", "192.0.2.25, 2001:db8::/32")
    with smtp_intake(monkeypatch) as smtp:
        smtp.mail("contact@kz-cert.example")
        code, said = smtp.rcpt("abuse@centre.example")
        assert code == 550 and b"configured relays" in said
    monkeypatch.setenv("CONCORD_INTAKE_RELAYS", "192.0.2.25,127.0.0.0/8")
    with smtp_intake(monkeypatch) as smtp:
        smtp.mail("contact@kz-cert.example")
        code, _ = smtp.rcpt("abuse@centre.example")
        assert code == 250
    monkeypatch.setenv("CONCORD_INTAKE_RELAYS", "mail.example")
    with pytest.raises(ConfigurationError, match="CONCORD_INTAKE_RELAYS"):
        SmtpSettings.from_env()


def test_an_archive_sent_to_the_api_is_taken_in_as_its_files(client, auth, session) -> None:  # type: ignore[no-untyped-def]
    import io

    feed = FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv"
    rows = len(feed.read_text().splitlines()) - 1
    packed = gzip.compress(STIX_C2.read_bytes())
    r = client.post(
        "/api/v1/intake",
        headers=auth["kz-analyst"],
        files={"file": ("c2.json.gz", packed, "application/gzip")},
    )
    assert r.status_code == 200, r.text
    [part] = r.json()["parts"]
    assert (part["filename"], part["format"], part["accepted"]) == ("c2.json", "stix", 1)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"march/{feed.name}", feed.read_bytes())
        zf.writestr("older.csv.gz", gzip.compress(feed.read_bytes()))
        zf.writestr("notes.txt", "nothing to see here")
    r = send_file(client, auth["uz-analyst"], "feeds.zip", zipped.getvalue())
    assert r.status_code == 200, r.text
    receipt = r.json()
    # files, not records: not taken in, as `concord ingest` says, and none rejected
    assert receipt["format"] == "archive" and receipt["rejected"] == 0
    assert receipt["not_taken_in"] == 2
    assert [e["source"] for e in receipt["errors"]] == [
        "feeds.zip!older.csv.gz",
        "feeds.zip!notes.txt",
    ]
    assert receipt["errors"][0]["reason"] == "not taken in (nested archives are refused)"
    [part] = receipt["parts"]
    assert (part["filename"], part["accepted"]) == (f"feeds.zip!march/{feed.name}", rows)
    again = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["uz-analyst"]).json()
    assert [p["id"] for p in again["parts"]] == [part["id"]] and again["note"] == receipt["note"]
    # the archive's receipt lists the events its files added, as each file's own does
    listed = {}
    for sub in (receipt["id"], part["id"]):
        r = client.get(
            "/api/v1/events", params={"submission": sub, "limit": 1000}, headers=auth["uz-analyst"]
        )
        listed[sub] = sorted(e["id"] for e in r.json()["items"])
    assert len(listed[part["id"]]) == rows and listed[receipt["id"]] == listed[part["id"]]
    # sent again: nothing changes
    r = send_file(client, auth["uz-analyst"], "feeds.zip", zipped.getvalue())
    assert r.json()["parts"][0]["duplicates"] == rows and r.json()["parts"][0]["accepted"] == 0


def test_cli_json_says_why_when_nothing_could_be_read(env, network, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, reason in (
        ([str(empty), "--as", "kz-cert"], "no file found in this folder"),
        ([str(STIX_C2), "--as", "nosuch"], "no organisation 'nosuch'"),
        ([str(STIX_C2), "--as", "kz-cert", "--tlp", "purple"], "purple"),
    ):
        result = runner.invoke(app, ["ingest", *args, "--json"])
        assert result.exit_code != 0, result.output
        said = json.loads(result.stdout)  # a script still gets the receipt's shape
        assert (said["accepted"], said["files"]) == (0, [])
        assert reason in said["errors"][0]["reason"], said


def test_a_progress_display_is_told_which_file_is_read(env, network, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from concord.db import session_factory
    from concord.intake.service import ingest_paths

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "c2.json").write_bytes(STIX_C2.read_bytes())
    (folder / "scan_rdp.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 3389)]))
    names: list[str] = []
    receipts = list(
        ingest_paths(
            session_factory(), None, [str(folder)], starting=names.append, as_org="kz-cert"
        )
    )
    assert names == ["drop/c2.json", "drop/scan_rdp.csv"] == [r.filename for r in receipts]


def test_a_mail_that_reports_nothing_is_one_file_refused_among_several(  # type: ignore[no-untyped-def]
    client, auth, env, network, tmp_path
) -> None:
    from email import policy
    from email.parser import BytesParser

    reply = BytesParser(policy=policy.default).parsebytes(
        (FIXTURES / "email" / "plain-phishing.eml").read_bytes()
    )
    reply["Auto-Submitted"] = "auto-replied"
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.json").write_bytes(STIX_C2.read_bytes())
    (folder / "b.eml").write_bytes(reply.as_bytes())
    (folder / "c.csv").write_bytes(scan_csv([("2026-11-30 10:00:00", "192.0.2.1", 3389)]))
    said = CliRunner().invoke(app, ["ingest", str(folder), "--as", "kz-cert", "--json"])
    totals = json.loads(said.stdout)
    assert [f["status"] for f in totals["files"]] == ["done", "refused", "done"], said.output
    assert "automatic reply is not a report" in totals["files"][1]["errors"][0]["reason"]
    assert totals["accepted"] == 2
    # in an archive sent to the API, the same: refused as that file
    import io

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("b.eml", reply.as_bytes())
        zf.writestr("c.csv", scan_csv([("2026-11-30 10:00:00", "192.0.2.2", 3389)]))
    r = send_file(client, auth["uz-analyst"], "t.zip", packed.getvalue())
    assert r.status_code == 200, r.text
    assert [e["source"] for e in r.json()["errors"]] == ["t.zip!b.eml"]
    assert r.json()["accepted"] == 1


def test_an_archive_sent_to_the_api_unpacks_to_a_few_uploads_at_most(  # type: ignore[no-untyped-def]
    client, auth, monkeypatch
) -> None:
    import io

    from concord.config import reset_settings

    monkeypatch.setenv("CONCORD_MAX_UPLOAD_BYTES", "4000")
    reset_settings()
    rows = [("2026-11-30 10:00:00", f"192.0.2.{i % 250}", 3389) for i in range(900)]
    data = scan_csv(rows)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("scan_rdp.csv", data)
    assert len(packed.getvalue()) < 4000 < 40_000 < len(data) < 200 * len(packed.getvalue())
    r = send_file(client, auth["kz-analyst"], "big.zip", packed.getvalue())
    assert r.status_code == 422, r.text
    assert "unpacks to more than 40000 bytes in all" in r.json()["detail"]
