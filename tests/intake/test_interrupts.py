"""A run of `concord ingest` stopped before its end (Ctrl-C, or its process killed) reads as
interrupted wherever its submission is shown, never as running for ever; sent again, the file
goes on where it stopped, without loss or duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from concord.events.model import Submission
from tests.intake.test_service import scan_csv, totals
from tests.intake.test_views import login

ROWS = 150_000


def _feed(tmp_path):  # type: ignore[no-untyped-def]
    rows = [
        ("2026-11-30 10:00:00", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 3389)
        for i in range(ROWS)
    ]
    path = tmp_path / "scan_rdp.csv"
    path.write_bytes(scan_csv(rows))
    return path


def _status_listed(client, sub_id: int) -> str:  # type: ignore[no-untyped-def]
    """The status the intake page's list gives the submission."""
    page = client.get("/intake").text
    row = page.split(f'<a href="/intake/{sub_id}">{sub_id}</a>', 1)[1].split("</tr>", 1)[0]
    return row.split('data-status="', 1)[1].split('"', 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_stopped_ingest_reads_as_interrupted_and_resumes(  # type: ignore[no-untyped-def]
    env, session, network, client, auth, tmp_path, monkeypatch, stop
) -> None:
    monkeypatch.setenv("CONCORD_INTAKE_COMMIT_ROWS", "10000")  # a commit per batch
    path = _feed(tmp_path)
    login(client, "kz-analyst")
    cmd = [sys.executable, "-m", "concord", "ingest", str(path), "--as", "kz-cert"]
    proc = subprocess.Popen(
        cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            session.rollback()
            if session.scalar(select(Submission.rows_done)):
                break
            time.sleep(0.05)
        sub_id = session.scalar(select(Submission.id))
        # while its run goes on, it is being taken in
        assert _status_listed(client, sub_id) == "running"
        proc.send_signal(stop)
    finally:
        proc.wait(timeout=60)
    said = proc.stderr.read().decode() if proc.stderr else ""
    if stop == signal.SIGINT:
        assert proc.returncode == 130, said
        assert said.startswith("interrupted: ") and "run the same command again" in said
    session.rollback()
    sub = session.get(Submission, sub_id)
    assert sub is not None and 0 < sub.rows_done < ROWS, "not stopped half-way"
    # Ctrl-C says so on the submission; a killed run could not, and its lease tells instead
    assert sub.status == ("interrupted" if stop == signal.SIGINT else "running")
    assert _status_listed(client, sub_id) == "interrupted"
    receipt = client.get(f"/api/v1/intake/{sub_id}", headers=auth["kz-analyst"]).json()
    assert receipt["status"] == "interrupted"
    assert "send the same file again to go on" in client.get(f"/intake/{sub_id}").text

    again = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resumed an interrupted submission" in again.stdout
    assert totals(session) == (ROWS, ROWS)
    session.rollback()
    assert session.get(Submission, sub_id).status == "done"  # type: ignore[union-attr]
    assert _status_listed(client, sub_id) == "done"
