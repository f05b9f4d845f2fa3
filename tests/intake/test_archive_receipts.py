"""An archive's receipt tells the same on every channel (the API, the intake page, `concord
ingest`): what became of each file it holds, in words, counted alike."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from concord.cli import app
from concord.events.model import Submission
from tests.conftest import FIXTURES
from tests.intake.test_channels import send_file, smtp_intake
from tests.intake.test_views import login, submit

FEED = FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv"
ROWS = len(FEED.read_text().splitlines()) - 1
NO_FORMAT = FIXTURES / "NOTICE.md"  # text of no intake format


def _zip(members: dict[str, bytes]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return packed.getvalue()


def _cli(path: Path, org: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    """`concord ingest PATH --as ORG`: its exit code, its JSON totals, and its text summary."""
    runner = CliRunner()
    as_json = runner.invoke(app, ["ingest", str(path), "--as", org, "--json"])
    totals = json.loads(as_json.stdout)
    text = runner.invoke(app, ["ingest", str(path), "--as", org])
    return as_json.exit_code, totals, text.stdout.strip().splitlines()[-1]


def test_a_file_of_no_known_format_in_an_archive_is_not_taken_in_on_every_channel(  # type: ignore[no-untyped-def]
    client, auth, tmp_path
) -> None:
    data = _zip({FEED.name: FEED.read_bytes(), "NOTICE.md": NO_FORMAT.read_bytes()})
    member = "feeds.zip!NOTICE.md"

    api = send_file(client, auth["kz-analyst"], "feeds.zip", data)
    assert api.status_code == 200, api.text
    receipt = api.json()
    assert (receipt["accepted"], receipt["rejected"], receipt["not_taken_in"]) == (ROWS, 0, 1)
    [error] = receipt["errors"]
    assert error["source"] == member
    assert error["reason"].startswith("not taken in (cannot tell the format of "), error
    [part] = receipt["parts"]
    assert (part["accepted"], part["rejected"], part["not_taken_in"]) == (ROWS, 0, 0)
    # the stored receipt says the same
    stored = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["kz-analyst"]).json()
    assert (stored["rejected"], stored["not_taken_in"], stored["errors"]) == (0, 1, [error])

    # the command, from another state: the same file not taken in, none rejected
    path = tmp_path / "feeds.zip"
    path.write_bytes(data)
    code, totals, summary = _cli(path, "uz-cert")
    assert code == 1  # something was not taken in
    assert (totals["accepted"], totals["rejected"], totals["not_taken_in"]) == (ROWS, 0, 1)
    assert [e["source"] for e in totals["errors"]] == [member]
    assert summary.startswith("2 files, 1 not taken in: ") and "0 rejected" in summary

    # the intake page, from the centre: counted and said as on the API
    csrf = login(client, "centre-analyst")
    page = submit(client, csrf, "feeds.zip", data)
    assert page.status_code == 200, page.text
    assert 'data-count="rejected">0<' in page.text and 'data-count="not_taken_in">1<' in page.text
    assert 'id="receipt-not-taken-in"' in page.text
    assert f"<td>{member}</td><td>not taken in (cannot tell the format of " in page.text
    listed = client.get("/intake").text
    assert "(files not taken in: 1)" in listed


def test_a_file_not_taken_in_reads_in_russian(client, network) -> None:  # type: ignore[no-untyped-def]
    csrf = login(client, "uz-analyst")
    client.post("/language", data={"language": "ru", "csrf_token": csrf})
    data = _zip({FEED.name: FEED.read_bytes(), "inner.zip": _zip({"a.csv": b"x"})})
    page = submit(client, csrf, "feeds.zip", data)
    assert page.status_code == 200, page.text
    assert "не принят (вложенные архивы не принимаются)" in page.text
    assert "Файлы, которые не приняты" in page.text


# what a Mac's "Compress" and a checkout leave in a zip beside the reports: never a report
HIDDEN = {
    "__MACOSX/._" + FEED.name: b"\0\5\26\7\0\2\0\0Mac OS X        ",
    ".DS_Store": b"\0\0\0\1Bud1",
    "old/.git/HEAD": b"ref: refs/heads/main\n",
}


def _with_hidden() -> bytes:
    return _zip({FEED.name: FEED.read_bytes(), **HIDDEN})


def test_hidden_files_of_an_archive_are_listed_on_its_receipt_on_every_channel(  # type: ignore[no-untyped-def]
    client, auth, tmp_path
) -> None:
    data = _with_hidden()
    names = [f"feeds.zip!{name}" for name in HIDDEN]

    api = send_file(client, auth["kz-analyst"], "feeds.zip", data)
    assert api.status_code == 200, api.text
    receipt = api.json()
    # a note: they cost nothing, and are no fault
    assert receipt["skipped_files"] == names
    assert (receipt["accepted"], receipt["rejected"], receipt["not_taken_in"]) == (ROWS, 0, 0)
    assert receipt["errors"] == []
    stored = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["kz-analyst"]).json()
    assert (stored["skipped_files"], stored["errors"]) == (names, [])
    # sent again: nothing changes, and each is listed once
    again = send_file(client, auth["kz-analyst"], "feeds.zip", data).json()
    assert again["id"] == receipt["id"] and again["skipped_files"] == names
    assert (again["accepted"], again["duplicates"]) == (0, ROWS)
    stored = client.get(f"/api/v1/intake/{receipt['id']}", headers=auth["kz-analyst"]).json()
    assert stored["skipped_files"] == names

    # the command counts the same files in its summary, and lists them in its JSON
    path = tmp_path / "feeds.zip"
    path.write_bytes(data)
    code, totals, summary = _cli(path, "uz-cert")
    assert code == 0, totals
    assert totals["skipped_files"] == names and totals["errors"] == []
    assert summary.startswith("1 file, 3 hidden files skipped: ")

    # the intake page lists them apart from the faults
    csrf = login(client, "centre-analyst")
    page = submit(client, csrf, "feeds.zip", data)
    assert page.status_code == 200, page.text
    assert 'id="receipt-hidden"' in page.text and 'class="refused"' not in page.text
    for name in names:
        assert f"<li>{name}</li>" in page.text
    assert 'data-count="rejected">0<' in page.text


def _mail_with(attachment: bytes, name: str) -> bytes:
    from email import policy
    from email.parser import BytesParser

    mail = BytesParser(policy=policy.default).parsebytes(
        (FIXTURES / "email" / "plain-bruteforce-html.eml").read_bytes()
    )
    mail.make_mixed()
    mail.add_attachment(attachment, maintype="application", subtype="zip", filename=name)
    return mail.as_bytes()


def test_hidden_files_of_a_mailed_archive_are_listed_on_the_mails_receipt(  # type: ignore[no-untyped-def]
    client, auth, session, monkeypatch, tmp_path
) -> None:
    mail = _mail_with(_with_hidden(), "Отчёт за март.zip")
    names = [f"Отчёт за март.zip!{name}" for name in HIDDEN]

    # mailed to the intake address
    with smtp_intake(monkeypatch) as smtp:
        smtp.mail("autoreports@shadowserver.example")
        smtp.rcpt("abuse@centre.example")
        code, said = smtp.data(mail.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert code == 250, said
    session.rollback()
    mailed = session.scalar(select(Submission.id).where(Submission.format == "email-attachments"))
    receipt = client.get(f"/api/v1/intake/{mailed}", headers=auth["centre-analyst"]).json()
    assert receipt["format"] == "email-attachments"
    assert receipt["skipped_files"] == names and receipt["errors"] == []
    assert [p["accepted"] for p in receipt["parts"]] == [ROWS]

    # the same mail uploaded to the API, and given to the command
    uploaded = send_file(client, auth["kz-analyst"], "forwarded.eml", mail).json()
    assert uploaded["skipped_files"] == names and uploaded["errors"] == []
    path = tmp_path / "forwarded.eml"
    path.write_bytes(mail)
    code, totals, summary = _cli(path, "uz-cert")
    assert code == 0, totals
    assert totals["files"][0]["skipped_files"] == totals["skipped_files"] == names
    assert summary.startswith("1 file, 3 hidden files skipped: ")


def test_a_damaged_zip_is_said_to_be_one_on_every_channel(client, auth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A .zip whose first bytes are lost is told that it cannot be opened, a 422 located at
    the file, as `concord ingest` tells it: not that its format is unknown."""
    data = b"PK garbage, the rest of the archive lost in transfer\n"
    api = send_file(client, auth["kz-analyst"], "broken.zip", data)
    assert api.status_code == 422, api.text
    problem = api.json()
    assert problem["detail"].startswith("broken.zip: not a valid zip archive (")
    assert problem["errors"][0]["source"] == "broken.zip"

    path = tmp_path / "broken.zip"
    path.write_bytes(data)
    said = CliRunner().invoke(app, ["ingest", str(path), "--as", "kz-cert"])
    assert said.exit_code == 1
    assert "broken.zip: not a valid zip archive (" in said.stderr
