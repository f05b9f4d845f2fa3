"""Feed profiles of the deployment's own: from the profiles folder (a format for the API,
the UI and the CLI) or given to `concord ingest --profile`."""

from __future__ import annotations

import io
import json

from sqlalchemy import select
from typer.testing import CliRunner

from concord.cli import app
from concord.db import session_factory
from concord.events.model import Event
from concord.intake import service
from concord.intake.readers.csvfeed import CsvFeedReader
from tests.intake.test_csvfeed import BLOCKLIST

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
