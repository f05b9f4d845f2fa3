"""`concord report`: JSON, CSV and HTML, to stdout or a file; errors as one line."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from concord.cli import app
from tests.reports import seed

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_actor() -> Iterator[None]:
    # The CLI names its operator as the audit actor of the process; in-process runs here must
    # not leave that to the tests that follow.
    from concord.audit.service import system_actor

    token = system_actor.set(system_actor.get())
    yield
    system_actor.reset(token)


@pytest.fixture
def data(session, network):  # type: ignore[no-untyped-def]
    return seed(session)


def _run(*args: str) -> str:
    result = runner.invoke(app, ["report", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json(data) -> None:  # type: ignore[no-untyped-def]
    out = json.loads(_run("--period", "2024-07", "--scope", "KZ", "--format", "json"))
    assert (out["scope"], out["tlp"], out["period"]["label"]) == ("KZ", "green", "2024-07")
    assert out["totals"] == {"key": "events", "events": 18, "previous": 8, "change_pct": 125.0}
    assert {r["key"]: r["events"] for r in out["by_state"]} == {"KZ": "16–17", "UZ": "<3"}
    assert out["mitigations"][0]["id"] == "M1049"
    assert out["cases"]["available"] is True


def test_csv_long_format(data) -> None:  # type: ignore[no-untyped-def]
    text = _run("--period", "2024-07", "--format", "csv")
    assert text.startswith("\ufeff")  # the byte-order mark: Excel reads UTF-8 then
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == ["section", "key", "metric", "value"]
    assert rows[1] == ["report", "", "tlp", "amber"]
    cells = {(s, k, m): v for s, k, m, v in rows[1:]}
    assert cells[("report", "", "scope")] == "network"
    assert cells[("totals", "events", "events")] == "24"
    assert cells[("totals", "events", "change_pct")] == "71.4"
    assert cells[("by_sector", "energy", "events")] == "<3"
    assert cells[("by_sector", "", "events")] == "5"  # owners without a sector
    assert cells[("by_class", "availability", "change_pct")] == "-100.0"
    assert cells[("indicators", "198.51.100.7", "countries")] == "KZ UZ"
    assert cells[("cases", "", "median_hours_to_close")] == "48.0"
    assert cells[("cases-closed-by-resolution", "remediated", "cases")] == "2"
    assert cells[("cases-closed-by-resolution", "not-given", "cases")] == "1"
    assert cells[("mitigations", "M1049", "name")] == "Antivirus/Antimalware"
    assert "The MITRE Corporation" in cells[("notice", "attack", "v18.1")]


def test_html_to_a_file_in_russian(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "kz.html"
    target.write_text("an older report, readable by all")
    target.chmod(0o644)
    result = runner.invoke(
        app,
        ["report", "--period", "2024-07", "--scope", "kz", "--out", str(target), "--language=ru"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "TLP:GREEN" in result.stderr and str(target) in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a report above CLEAR is kept close
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert html.count("TLP:GREEN</div>") == 2  # banner at the top and at the bottom
    assert "color:#33FF00" in html
    # Classes, sectors and techniques: KZ's states are all withheld ("16–17", "<3"), and a
    # chart never draws a withheld count.
    assert html.count("<svg") == 3
    assert "Обобщённый отчёт" in html
    assert "&lt;3" in html


def test_an_indicators_kind_reads_by_its_name(data) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["report", "--period", "2024-07", "--format", "html"])
    assert result.exit_code == 0, result.output
    assert "<td><code>198.51.100.7</code></td><td>IPv4 address</td>" in result.stdout
    assert "<td>ipv4</td>" not in result.stdout


def test_the_format_follows_the_output_file_name(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "network.csv"
    result = runner.invoke(app, ["report", "--period", "2024-07", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"\xef\xbb\xbfsection,")
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["section", "key", "metric", "value"]


def test_a_period_not_over_is_said_on_stderr(data) -> None:  # type: ignore[no-untyped-def]
    """The JSON on stdout stays whole; the note goes beside it."""
    from datetime import UTC, datetime

    this_month = datetime.now(UTC).strftime("%Y-%m")
    running = runner.invoke(app, ["report", "--period", this_month, "--format", "json"])
    assert running.exit_code == 0, running.output
    assert json.loads(running.stdout)["period"]["label"] == this_month
    assert f"note: the period {this_month} is not over: the counts run to now" in running.stderr
    past = runner.invoke(app, ["report", "--period", "2024-07", "--format", "json"])
    assert "not over" not in past.stderr


def test_errors_are_one_line(env) -> None:  # type: ignore[no-untyped-def]
    for args, message in (
        (["--period", "2024-13"], "error: period: '2024-13' is not a period"),
        (["--period", "2024-07", "--format", "pdf"], "error: format: unknown report format"),
        (
            ["--period", "2024-07", "--format", "pdf", "--language", "de"],
            "error: format: unknown report format 'pdf'; use one of html, json, csv\n"
            "error: language: unknown language 'de'; use one of en, ru",
        ),
        (["--period", "2024-07"], "error: the network has no centre organisation"),
        (
            ["--period", "2024-07", "--scope", "XX"],
            "error: scope: no national body of XX to report for",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "concord", "report", *args],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
        )
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith(message), proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_bad_scope_and_a_bad_period_are_told_on_a_line_each(env) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "concord", "report", "--period", "July", "--scope", "Kazakhstan"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert [line.split(":")[:2] for line in lines] == [["error", " scope"], ["error", " period"]]


def test_a_threshold_of_two_is_a_configuration_error(env) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "concord", "report", "--period", "2024-07"],
        capture_output=True,
        text=True,
        env={**os.environ, "CONCORD_REPORT_MIN_COUNT": "2"},
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: CONCORD_REPORT_MIN_COUNT=2 would show")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_stored_report_says_its_id(data, session) -> None:  # type: ignore[no-untyped-def]
    from concord.reports.model import StoredReport

    result = runner.invoke(
        app,
        ["report", "--period", "2024-07", "--format", "json", "--store"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # stdout is the report alone
    session.rollback()
    (stored,) = session.scalars(select(StoredReport)).all()
    assert f"Stored as report {stored.id} (GET /api/v1/reports/{stored.id})." in result.stderr
