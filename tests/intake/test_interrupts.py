"""A run of `concord ingest` stopped before its end (Ctrl-C, or its process killed) reads as
interrupted wherever its submission is shown, never as running for ever; sent again, the file
goes on where it stopped, without loss or duplicates."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from concord.db import session_factory
from concord.events.model import Submission
from tests.conftest import free_port
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
    home = client.get("/").text  # the dashboard's recent submissions say so too
    line = home.split(f'<a href="/intake/{sub_id}">', 1)[1].split("</li>", 1)[0]
    assert 'data-status="interrupted"' in line

    again = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resumed an interrupted submission" in again.stdout
    assert totals(session) == (ROWS, ROWS)
    session.rollback()
    assert session.get(Submission, sub_id).status == "done"  # type: ignore[union-attr]
    assert _status_listed(client, sub_id) == "done"
    home = client.get("/").text  # a file taken in whole needs no word on the dashboard
    assert "data-status" not in home.split(f'<a href="/intake/{sub_id}">', 1)[1].split("</li>")[0]


def _serve(port: int, log):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-m", "concord", "serve", "--port", str(port), "--no-worker"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None, "the server did not start"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)


def _stopped_mid_request(port: int, log_path, send, reached) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Serve on `port`, `send` a request from a thread, and once `reached()` returns, press
    Ctrl-C twice on the server, as one stopping it at once. The request's answer: a 503
    problem, with no traceback in the server's log."""
    answered: dict[str, httpx.Response] = {}
    with log_path.open("w") as log:
        server = _serve(port, log)
        sender = threading.Thread(target=lambda: answered.update(response=send()))
        try:
            sender.start()
            reached(sender)
            server.send_signal(signal.SIGINT)  # waits for the request to end...
            time.sleep(0.5)
            server.send_signal(signal.SIGINT)  # ... unless told again: stop now
            sender.join(60)
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
    response = answered["response"]
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    said = log_path.read_text()
    assert "Exception in ASGI application" not in said, said
    assert "Traceback" not in said, said  # neither the request's nor the server's own
    return response


@pytest.mark.slow
def test_a_server_stopped_during_an_upload_answers_503_and_the_file_resumes(  # type: ignore[no-untyped-def]
    env, session, network, auth, tmp_path, monkeypatch
) -> None:
    """A second Ctrl-C on `concord serve` while a request is taking a file in: the request
    ends with a 503 problem, the log holds no traceback, and the file sent
    again goes on where it stopped."""
    monkeypatch.setenv("CONCORD_INTAKE_COMMIT_ROWS", "10000")  # a commit per batch
    data = _feed(tmp_path).read_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/intake"
    headers = {**auth["kz-analyst"], "x-filename": "scan_rdp.csv"}
    log_path = tmp_path / "serve.log"

    def upload() -> httpx.Response:
        return httpx.post(url, headers=headers, content=data, timeout=120)

    def writing(sender: threading.Thread) -> None:  # a batch of the file is stored
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sender.is_alive():
            session.rollback()
            if session.scalar(select(Submission.rows_done)):
                break
            time.sleep(0.05)

    response = _stopped_mid_request(port, log_path, upload, writing)
    assert (
        "sending it again once the server is back goes on where it stopped"
        in (response.json()["detail"])
    )
    session.rollback()
    sub = session.scalars(select(Submission)).one()
    assert sub.status == "interrupted" and 0 < sub.rows_done < ROWS, (sub.status, sub.rows_done)

    with log_path.open("a") as log:
        server = _serve(port, log)
        try:
            again = httpx.post(url, headers=headers, content=data, timeout=300)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
    assert again.status_code == 200, again.text
    receipt = again.json()
    assert receipt["id"] == sub.id and receipt["note"] == "resumed an interrupted submission"
    assert totals(session) == (ROWS, ROWS)


@pytest.mark.slow
def test_a_server_stopped_while_an_upload_form_arrives_answers_503(  # type: ignore[no-untyped-def]
    env, session, network, auth, tmp_path
) -> None:
    """A second Ctrl-C while a form's file is still being received, before any intake: the
    request ends with a 503 problem saying to send it again, and the log holds no
    traceback."""
    from concord.web.app import SERVER_STOPPING

    port = free_port()
    receiving = threading.Event()

    def form():  # type: ignore[no-untyped-def]
        yield (
            b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n"
        )
        receiving.set()
        for _ in range(300):  # a slow link: the rest would take 30 s
            time.sleep(0.1)
            yield b"x" * 1000
        yield b"\r\n--XX--\r\n"

    def upload() -> httpx.Response:
        return httpx.post(
            f"http://127.0.0.1:{port}/api/v1/intake",
            headers={**auth["kz-analyst"], "content-type": "multipart/form-data; boundary=XX"},
            content=form(),
            timeout=60,
        )

    def arriving(_sender: threading.Thread) -> None:  # the form's file part has begun
        assert receiving.wait(30)
        time.sleep(0.5)

    response = _stopped_mid_request(port, tmp_path / "serve.log", upload, arriving)
    assert response.json()["detail"] == SERVER_STOPPING
    session.rollback()
    assert session.scalar(select(Submission.id)) is None  # nothing was taken in


def _cancelled_once_written(principal, data: bytes, pause: float):  # type: ignore[no-untyped-def]
    """What a server's stop does to a request: its task is cancelled as soon as the intake,
    in a worker thread, has written a batch (each batch then takes `pause` seconds, a slow
    database). The request's answer: its receipt, or the exception it raised."""
    import asyncio

    from concord.intake import api
    from concord.web.uploads import Upload

    written = threading.Event()

    def slowly(_done: int) -> None:
        written.set()
        time.sleep(pause)

    async def cancelled() -> object:
        request = asyncio.create_task(
            api.ingest_in_thread(
                principal,
                Upload(data, "scan_rdp.csv", ""),
                batch_size=1000,
                parallel_from=1 << 40,
                progress=slowly,
            )
        )
        while not written.is_set():
            await asyncio.sleep(0.01)
        request.cancel()
        try:
            return await request
        except Exception as exc:
            return exc

    return asyncio.run(cancelled())


def test_a_request_cancelled_mid_intake_stops_it_after_a_batch_and_answers_503(  # type: ignore[no-untyped-def]
    session, network, monkeypatch
) -> None:
    """The stop comes mid-file: the intake stops after the batch it writes, keeping what it
    wrote, and the request is answered 503."""
    from concord.i18n import gettext
    from concord.intake import service

    monkeypatch.setattr(service, "COMMIT_ROWS", 1)  # a commit per batch
    rows = 20_000
    data = scan_csv(
        [("2026-11-30 10:00:00", f"10.7.{i >> 8}.{i & 255}", 3389) for i in range(rows)]
    )
    stopped = _cancelled_once_written(network["kz-analyst"], data, 0.1)
    assert isinstance(stopped, service.Stopped) and stopped.status == 503
    session.rollback()
    sub = session.scalars(select(Submission)).one()
    assert sub.status == "interrupted" and 0 < sub.rows_done < rows, (sub.status, sub.rows_done)
    assert totals(session)[0] == sub.rows_done  # what it wrote, kept
    assert gettext("ru", service.SERVER_STOPPING).startswith("сервер останавливается")

    again = service.ingest(
        session_factory(), network["kz-analyst"], service.Source(io.BytesIO(data), "scan_rdp.csv")
    )
    assert again.note == "resumed an interrupted submission"
    assert totals(session) == (rows, rows)


def test_a_request_whose_intake_ends_whole_as_the_server_stops_gets_its_receipt(  # type: ignore[no-untyped-def]
    session, network
) -> None:
    """A stop that comes as the last batch is written: the file is taken in whole, and the
    request is answered with its receipt, not a 503 saying it was not."""
    from concord.intake import service

    rows = 500  # one batch, written as the stop comes
    data = scan_csv(
        [("2026-11-30 10:00:00", f"10.8.{i >> 8}.{i & 255}", 3389) for i in range(rows)]
    )
    receipt = _cancelled_once_written(network["kz-analyst"], data, 0.3)
    assert isinstance(receipt, service.Receipt), receipt
    assert receipt.status == "done" and receipt.accepted == rows
    assert totals(session) == (rows, rows)


class _Interrupting:
    """A value whose binding interrupts the driver mid-statement, as a Ctrl-C can."""

    at = 0.0


def _interrupt(_value: _Interrupting) -> str:
    _Interrupting.at = time.monotonic()
    raise KeyboardInterrupt


def test_a_ctrl_c_inside_the_driver_is_said_on_the_receipt_at_once(  # type: ignore[no-untyped-def]
    session, network, monkeypatch
) -> None:
    """Ctrl-C may land while the driver runs a statement: the connection it interrupted must
    not keep the write lock from the line that marks the receipt."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the driver's statement is interrupted in SQLite's executemany")
    import sqlite3

    from concord.intake import service
    from concord.intake.prepare import EVENT_COLUMNS

    monkeypatch.setitem(sqlite3.adapters, (_Interrupting, sqlite3.PrepareProtocol), _interrupt)
    monkeypatch.setattr(service, "COMMIT_ROWS", 1)  # a commit per batch
    key = EVENT_COLUMNS.index("dedup_key")
    real = service.write_batch

    def interrupted_in_the_third(session, sub, plan, batch):  # type: ignore[no-untyped-def]
        if sub.rows_done >= 2000:
            row = list(batch.rows[500])
            row[key] = _Interrupting()
            batch.rows[500] = tuple(row)
        return real(session, sub, plan, batch)

    monkeypatch.setattr(service, "write_batch", interrupted_in_the_third)
    rows = 5000
    data = scan_csv(
        [("2026-11-30 10:00:00", f"10.8.{i >> 8}.{i & 255}", 3389) for i in range(rows)]
    )
    source = service.Source(io.BytesIO(data), "scan_rdp.csv")
    with pytest.raises(KeyboardInterrupt):
        service.ingest(
            session_factory(), network["kz-analyst"], source, batch_size=1000, parallel_from=1 << 40
        )
    # said at once, without waiting for a lock
    assert time.monotonic() - _Interrupting.at < service.INTERRUPTED_MARK_WAIT_MS / 1000
    session.rollback()
    sub = session.scalars(select(Submission)).one()
    assert (sub.status, sub.rows_done) == ("interrupted", 2000)
    monkeypatch.setattr(service, "write_batch", real)
    again = service.ingest(
        session_factory(), network["kz-analyst"], service.Source(io.BytesIO(data), "x.csv")
    )
    assert again.note == "resumed an interrupted submission"
    assert totals(session) == (rows, rows)
