"""An archive's receipt tells the same on every channel (the API, the intake page, `concord
ingest`): what became of each file it holds, in words, counted alike."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from concord.cli import app
from tests.conftest import FIXTURES
from tests.intake.test_channels import send_file
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
