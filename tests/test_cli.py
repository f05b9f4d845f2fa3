"""The command line, run as a user would: real processes for serve and --version."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from concord.cli import app
from tests.conftest import free_port

runner = CliRunner()


def _run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _network() -> None:
    _run("org", "add", "ccc", "--kind", "centre", "--name-en", "Centre")
    _run(
        "org",
        "add",
        "kz-cert",
        "--kind",
        "national-body",
        "--name-en",
        "KZ CERT",
        "--country",
        "KZ",
        "--name-ru",
        "КЗ CERT",
    )
    _run(
        "org",
        "add",
        "kz-bank",
        "--kind",
        "owner",
        "--name-en",
        "Steppe Bank",
        "--parent",
        "kz-cert",
        "--sector",
        "finance",
    )


def test_org_and_user_listing_as_json(env) -> None:  # type: ignore[no-untyped-def]
    _network()
    orgs = json.loads(_run("org", "list", "--json").stdout)
    by_slug = {o["slug"]: o for o in orgs}
    assert {"kind": "owner", "country": "KZ", "parent": "kz-cert"}.items() <= by_slug[
        "kz-bank"
    ].items()
    assert by_slug["ccc"]["parent"] is None
    _run(
        "user",
        "add",
        "kz-analyst",
        "--org",
        "kz-cert",
        "--role",
        "analyst",
        "--password",
        "a-long-password",
    )
    users = json.loads(_run("user", "list", "--json").stdout)
    assert {"username": "kz-analyst", "org": "kz-cert", "role": "analyst"}.items() <= users[
        0
    ].items()
    shown = json.loads(_run("org", "show", "kz-bank", "--json").stdout)
    assert shown["sector"] == "finance"


def test_bad_input_one_line_and_nonzero_exit(env) -> None:  # type: ignore[no-untyped-def]
    _network()
    for args, message in (
        (
            [
                "org",
                "add",
                "x",
                "--kind",
                "owner",
                "--name-en",
                "X",
                "--country",
                "XX",
                "--parent",
                "kz-cert",
            ],
            "error: country: invalid country code 'XX'",
        ),
        (
            ["org", "add", "kz-bank", "--kind", "owner", "--name-en", "B", "--parent", "kz-cert"],
            "error: an organisation with slug 'kz-bank' exists already",
        ),
        (
            ["user", "add", "u1", "--org", "kz-bank", "--role", "admin", "--no-password"],
            "error: role: users of an organisation of kind owner may have the roles",
        ),
        (  # no terminal to ask on
            ["user", "add", "u2", "--org", "kz-cert", "--role", "analyst"],
            "error: no password given: use --password P, or --no-password",
        ),
        (
            [
                *("user", "add", "u3", "--org", "kz-cert", "--role", "analyst"),
                *("--password", "long-enough-pw", "--no-password"),
            ],
            "error: give either --password or --no-password, not both",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "concord", *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
            timeout=60,
        )
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith(message), proc.stderr
        assert "Traceback" not in proc.stderr


def test_main_prints_one_line_without_traceback(env) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "concord", "org", "show", "nope"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: no organisation 'nope'"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["report"], "error: Missing option '--period'. (see 'concord report --help')"),
        (["bogus"], "error: No such command 'bogus'. (see 'concord --help')"),
        (
            ["worker", "--threads", "0"],
            "error: Invalid value for '--threads': Input should be greater than or equal to 1 "
            "(see 'concord worker --help')",
        ),
    ],
)
def test_a_usage_error_is_one_line_too(args: list[str], said: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "concord", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (2, said, "")


def test_token_printed_on_last_line_works_against_the_api(env, client) -> None:  # type: ignore[no-untyped-def]
    _network()
    _run("user", "add", "kz-analyst", "--org", "kz-cert", "--role", "analyst", "--no-password")
    result = _run("token", "create", "--user", "kz-analyst", "--scopes", "read,write")
    token = result.stdout.strip().splitlines()[-1]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["username"] == "kz-analyst" and me["scopes"] == ["read", "write"]


def test_assets_import_whois_and_audit(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _network()
    bad = tmp_path / "assets.csv"
    bad.write_text(
        "kind,value\n,203.0.113.0/26\n,mail.steppe-bank.example\n"
        ",203.0.113.77/26\n,pkg:pypi/django@4.2.1\n"
    )
    result = _run("assets", "import", "--owner", "kz-bank", str(bad), ok=False)
    assert result.exit_code == 1
    assert "line 4" in result.stderr and "host bits" in result.stderr
    report = json.loads(
        _run("assets", "import", "--owner", "kz-bank", str(bad), "--valid-only", "--json").stdout
    )
    assert report["added"] == 3 and len(report["refused"]) == 1
    again = json.loads(
        _run("assets", "import", "--owner", "kz-bank", str(bad), "--valid-only", "--json").stdout
    )
    assert again["added"] == 0 and again["unchanged"] == 3
    found = json.loads(_run("whois", "203.0.113.9", "--json").stdout)
    assert found["matched"] == "203.0.113.0/26"
    assert found["owners"][0]["national_body"]["slug"] == "kz-cert"
    assert "Steppe Bank" in _run("whois", "www.mail.steppe-bank.example").stdout
    pasted = _run("whois", "https://www.mail.steppe-bank.example/login?x=1").stdout
    assert "Steppe Bank" in pasted  # a URL: whose is its host
    import pytest

    from concord.errors import ConcordError

    with pytest.raises(ConcordError) as refused:
        _run("whois", "999.1.1.1")
    assert str(refused.value) == "'999.1.1.1' is not an IP address"  # no parameter name
    from concord.db import session_factory
    from concord.orgs import service as orgs

    with session_factory()() as session:
        orgs.add_contact(session, None, "kz-bank", orgs.ContactInput("SOC", "soc@steppe.example"))
        session.commit()
    found = json.loads(_run("whois", "203.0.113.9", "--json").stdout)
    assert [c["email"] for c in found["owners"][0]["contacts"]] == ["soc@steppe.example"]
    assert "contact: SOC <soc@steppe.example>" in _run("whois", "203.0.113.9").stdout
    assert "intact" in _run("audit", "verify").stdout


def test_init_demo_and_version(env) -> None:  # type: ignore[no-untyped-def]
    out = _run("init", "--demo").stdout
    assert "ccc-admin" in out and "demo-logins.txt" in out
    from concord.config import get_settings

    url = get_settings().database_url
    if url.startswith("sqlite:///"):
        assert Path(url.removeprefix("sqlite:///")).stat().st_mode & 0o077 == 0  # owner's only
    assert "loaded already" in _run("init", "--demo").stdout
    proc = subprocess.run(
        [sys.executable, "-m", "concord", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.startswith("concord ")


def test_serve_runs_a_real_server_with_its_worker(env) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "concord", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert r.json()["status"] == "ok"
        page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert page.status_code == 200 and "<form" in page.text
        assert (
            httpx.get(f"http://127.0.0.1:{port}/static/htmx.min.js", timeout=5).status_code == 200
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_serve_on_a_port_in_use_says_so_in_a_line(env) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "concord", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=60,
        )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == f"error: cannot listen on 127.0.0.1:{port}: the port is in use (another server?)"
    )
    assert "Concord" not in proc.stdout  # it never said it runs


def test_settings_and_database_mistakes_are_one_line(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    sample = str(FIXTURES / "stix" / "indicator-for-c2-ip-address.json")

    def fails(args: list[str], **settings: str) -> str:
        environ = {**os.environ, **settings}
        proc = subprocess.run(
            [sys.executable, "-m", "concord", *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        return proc.stderr.strip()

    fresh = str(tmp_path / "fresh")
    blank = {"CONCORD_HOME": fresh, "CONCORD_DATABASE_URL": ""}
    assert "run `concord init` first" in fails(["org", "list"], **blank)
    # a mistyped path makes no folder, nor an empty database in it: `concord init` does
    typo = f"sqlite:///{tmp_path}/typo/concord.db"
    for args in (["org", "list"], ["serve", "--port", "1"], ["ingest", "--as", "x", sample]):
        line = fails(args, CONCORD_DATABASE_URL=typo)
        assert "does not exist yet" in line and "run `concord init` first" in line
    assert not (tmp_path / "typo").exists()
    made = subprocess.run(
        [sys.executable, "-m", "concord", "init"],
        capture_output=True,
        text=True,
        env={**os.environ, "CONCORD_DATABASE_URL": typo},
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "typo" / "concord.db").is_file()
    assert "is not a database" in fails(["org", "list"], CONCORD_DATABASE_URL="garbage")
    unreachable = "postgresql+psycopg://u:secret@127.0.0.1:1/x"
    line = fails(["org", "list"], CONCORD_DATABASE_URL=unreachable)
    assert "cannot use the database" in line and "secret" not in line
    assert "CONCORD_SESSION_HOURS must be a whole number" in fails(
        ["org", "list"], CONCORD_SESSION_HOURS="abc"
    )
    # a typo must not turn the cookies' Secure flag off, nor leave pages half translated
    said = "CONCORD_SECURE_COOKIES must be true or false (or yes/no, on/off, 1/0; given 'ture')"
    assert said in fails(["org", "list"], CONCORD_SECURE_COOKIES="ture")
    assert "CONCORD_DEFAULT_LANGUAGE must be one of en, ru (given 'de')" in fails(
        ["org", "list"], CONCORD_DEFAULT_LANGUAGE="de"
    )
    _network()
    nowhere = str(tmp_path / "no-such-folder" / "r.html")
    line = fails(["report", "--period", "2026-11", "--out", nowhere])
    assert line == f"error: {nowhere}: No such file or directory"
    sheet = tmp_path / "r.xlsx"
    line = fails(["report", "--period", "2026-11", "--out", str(sheet)])
    assert "name the file .html, .json or .csv" in line and not sheet.exists()
    assert "CONCORD_DEDUP_FIELDS names unknown field(s) bogus" in fails(
        ["ingest", "--as", "kz-cert", sample], CONCORD_DEDUP_FIELDS="feed,bogus"
    )
    assert "CONCORD_DEDUP_WINDOW" in fails(
        ["ingest", "--as", "kz-cert", sample], CONCORD_DEDUP_WINDOW="abc"
    )
    # a server or a worker reads these per request or job: they stop it at start instead
    port = str(free_port())
    (tmp_path / "fresh" / "var").mkdir(parents=True)  # a database file, empty
    for args in (["serve", "--port", port, "--no-worker"], ["worker", "--once"]):
        assert "CONCORD_DEDUP_WINDOW" in fails(args, CONCORD_DEDUP_WINDOW="abc")
        assert "CONCORD_DEDUP_FIELDS" in fails(args, CONCORD_DEDUP_FIELDS="bogus")
        assert "CONCORD_REPORT_MIN_COUNT" in fails(args, CONCORD_REPORT_MIN_COUNT="2")
        # nor does one start on a database without this release's schema
        line = fails(args, **blank)
        assert line.endswith("has no schema yet: run `concord init` first"), line


def test_a_database_locked_or_not_upgraded_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from tests.conftest import FIXTURES

    home = tmp_path / "home"
    environ = {**os.environ, "CONCORD_HOME": str(home), "CONCORD_DATABASE_URL": ""}

    def concord(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "concord", *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=120,
        )

    assert concord("init").returncode == 0
    assert concord("org", "add", "ccc", "--kind", "centre", "--name-en", "C").returncode == 0
    sample = str(FIXTURES / "stix" / "indicator-for-c2-ip-address.json")
    database = sqlite3.connect(home / "var" / "concord.db", isolation_level=None)
    database.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the wait
    try:
        locked = concord("ingest", sample, "--as", "ccc")
    finally:
        database.execute("ROLLBACK")
    assert locked.returncode == 1 and "Traceback" not in locked.stderr, locked.stderr
    assert locked.stderr.strip().splitlines() == [
        "not taken in: indicator-for-c2-ip-address.json: intake failed: database is locked; "
        "send it again"
    ]
    database.execute("ALTER TABLE submissions DROP COLUMN skipped")  # as before an upgrade
    database.close()
    old = concord("ingest", sample, "--as", "ccc")
    assert old.returncode == 1 and "Traceback" not in old.stderr, old.stderr
    assert "older than this release: run `concord init` to upgrade it" in old.stderr
    assert len(old.stderr.strip().splitlines()) == 1, old.stderr


def test_sizes_are_read_as_the_readme_writes_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from concord.config import env_bytes

    for text, value in (("4GiB", 4 * 1024**3), ("50MB", 50 * 1000**2), ("8388608", 8388608)):
        monkeypatch.setenv("CONCORD_X", text)
        assert env_bytes("CONCORD_X", 1) == value


def test_red_from_the_console_is_refused_not_stored_out_of_reach(env) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    _network()
    sample = str(FIXTURES / "stix" / "indicator-for-c2-ip-address.json")
    import pytest

    from concord.errors import InvalidInput

    with pytest.raises(InvalidInput, match="TLP:RED is for named people"):
        _run("ingest", "--as", "kz-cert", "--tlp", "red", sample, ok=False)


def test_ingest_tells_its_own_mistakes_before_reading_any_file(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An unknown organisation and a refused TLP are the command's, whatever the files: told
    together, before a file is read, even when no file could be."""
    _network()
    stray = tmp_path / "capture.dat"
    stray.write_bytes(b"\x00\x01 not a report")
    command = [sys.executable, "-m", "concord", "ingest", str(stray)]
    proc = subprocess.run(
        [*command, "--as", "nope", "--tlp", "red"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: tlp: TLP:RED is for named people: send it through the API or the intake page "
        "as the user who will read it",
        "error: as: no organisation 'nope'",
    ], proc.stderr
    said = json.loads(
        subprocess.run(
            [*command, "--as", "nope", "--tlp", "purple", "--json"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=60,
        ).stdout
    )
    assert [(e["field"], e["reason"][:20]) for e in said["errors"]] == [
        ("tlp", "unknown TLP label 'p"),
        ("as", "no organisation 'nop"),
    ]
    assert said["files"] == []  # no file read


def test_lists_keep_identifiers_whole_and_refuse_filters_nothing_matches(env) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from concord.errors import InvalidInput, NotFound

    _network()
    long_slug = "kz-national-institute-of-oncology-and-radiology"
    _run("org", "add", long_slug, "--kind", "owner", "--name-en", "Oncology", "--parent", "kz-cert")
    listed = _run("org", "list").stdout  # 80 columns when not on a terminal
    assert long_slug in listed
    with pytest.raises(InvalidInput, match="unknown organisation kind"):
        _run("org", "list", "--kind", "wizard")
    with pytest.raises(NotFound, match="no organisation 'nosuch'"):
        _run("user", "list", "--org", "nosuch")
    port = _run("serve", "--port", "99999", ok=False)
    assert port.exit_code == 2 and "65535" in port.output


def test_tokens_are_listed_by_id_and_a_second_revoke_says_so(env) -> None:  # type: ignore[no-untyped-def]
    from concord.errors import InvalidInput, NotFound

    _network()
    _run("user", "add", "kz-robot", "--org", "kz-cert", "--role", "analyst", "--no-password")
    with pytest.raises(InvalidInput, match="choose at least one scope"):
        _run("token", "create", "--user", "kz-robot", "--scopes", "", "--name", "misp")
    with pytest.raises(InvalidInput, match="unknown scope\\(s\\) 'rid', 'bogus'; use read"):
        _run("token", "create", "--user", "kz-robot", "--scopes", "rid,read,bogus")
    created = _run("token", "create", "--user", "kz-robot", "--name", "misp")
    assert "with scopes read;" in created.stderr
    (listed,) = json.loads(_run("token", "list", "--json").stdout)
    assert (listed["user"], listed["name"], listed["scopes"]) == ("kz-robot", "misp", ["read"])
    assert listed["state"] == "active"
    # times as the API writes them
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", listed["created_at"])
    assert created.stdout.strip() not in _run("token", "list").stdout  # never the secret
    assert "revoked." in _run("token", "revoke", str(listed["id"])).stdout
    assert "revoked already" in _run("token", "revoke", str(listed["id"])).stdout
    (revoked,) = json.loads(_run("token", "list", "--json").stdout)
    assert revoked["revoked_at"] is not None and revoked["state"] == "revoked"
    assert "revoked" in _run("token", "list", "--user", "kz-robot").stdout
    # a user nobody has is a mistake, as an organisation nobody has is
    with pytest.raises(NotFound, match="no user 'nobody'"):
        _run("token", "list", "--user", "nobody")


def test_correlate_runs_a_pass_now(env) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    _network()
    _run(
        "org",
        "add",
        "uz-cert",
        "--kind",
        "national-body",
        "--name-en",
        "UZ CERT",
        "--country",
        "UZ",
    )
    sample = str(FIXTURES / "misp" / "malware_exist.json")
    for org in ("kz-cert", "uz-cert"):
        _run("ingest", sample, "--as", org)
    figures = json.loads(_run("correlate", "--json").stdout)
    assert figures["cross_state"] == 3  # the file's md5, sha1 and sha256
    assert figures["campaigns"]["campaigns"] == 1
    again = _run("correlate").stdout
    assert again.startswith("Correlation: ") and "cross-state +0" in again


def test_ingest_says_when_a_folder_holds_no_file_to_read(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import FIXTURES

    _network()
    empty = tmp_path / "reports"
    empty.mkdir()
    hidden = tmp_path / "dotted"
    (hidden / ".git").mkdir(parents=True)
    (hidden / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (hidden / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    for folder, said in (
        (empty, f"error: {empty}: no file found in this folder"),
        (
            hidden,
            f"error: {hidden}: no file found in this folder but hidden ones (named with a "
            "leading dot), which are not read",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "concord", "ingest", str(folder), "--as", "kz-cert"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=60,
        )
        assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (1, said, "")
    # beside a report, the hidden files are counted as skipped
    (hidden / "scan_rdp.csv").write_bytes(
        (FIXTURES / "feeds" / "2024-03-01-scan_rdp-example-asn.csv").read_bytes()
    )
    result = _run("ingest", str(hidden), "--as", "kz-cert")
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("1 file, 2 hidden files skipped: "), result.stdout
    totals = json.loads(_run("ingest", str(hidden), "--as", "kz-cert", "--json").stdout)
    assert totals["skipped_files"] == ["dotted/.DS_Store", "dotted/.git/HEAD"]
    assert [f["filename"] for f in totals["files"]] == ["dotted/scan_rdp.csv"]


def test_the_operator_lets_a_locked_out_admin_back_in_and_disables_an_account(env, client) -> None:  # type: ignore[no-untyped-def]
    from concord.errors import Conflict, InvalidInput
    from tests.conftest import sign_in

    def login(password: str) -> int:
        client.cookies.clear()
        return int(sign_in(client, "kz-boss", password, follow_redirects=False).status_code)

    _network()
    _run(
        "user", "add", "kz-boss", "--org", "kz-cert", "--role", "admin", "--password", "old-pw-123"
    )
    for _ in range(5):  # locked out by failed attempts
        assert login("wrong-pw-123") == 401
    assert login("old-pw-123") == 401  # "too many failed attempts"
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        _run("user", "password", "kz-boss", "--password", "short")
    said = _run("user", "password", "kz-boss", "--password", "new-pw-12345").stdout
    assert "unlocked" in said
    assert login("old-pw-123") == 401
    assert login("new-pw-12345") == 303
    # disabled: no sign-in, no token
    token = _run("token", "create", "--user", "kz-boss").stdout.strip().splitlines()[-1]
    assert "revoked" in _run("user", "disable", "kz-boss").stdout
    client.cookies.clear()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login("new-pw-12345") == 401
    _run("user", "enable", "kz-boss")
    assert login("new-pw-12345") == 303
    # locked out again: unlocked as it is, the password kept
    for _ in range(5):
        assert login("wrong-pw-123") == 401
    assert login("new-pw-12345") == 401
    assert "may sign in again at once" in _run("user", "unlock", "kz-boss").stdout
    assert login("new-pw-12345") == 303
    with pytest.raises(Conflict, match="is not locked"):
        _run("user", "unlock", "kz-boss")


def _commands(group: typer.Typer) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for info in group.registered_commands:
        found.append((info.name or info.callback.__name__, info.callback))  # type: ignore[union-attr]
    for sub in group.registered_groups:
        found.extend(_commands(sub.typer_instance))  # type: ignore[arg-type]
    return found


def test_help_wraps_a_paragraph_to_the_terminal_not_where_the_source_does() -> None:
    for args, paragraph in (
        (["correlate"], "Flags the indicators two or more states reported, alerts their"),
        (["user", "password"], "The way back in for an admin who forgot the password or is"),
        (["ingest"], "Every file is read, even when one of them cannot be: a file whose"),
    ):
        shown = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "400"}).output
        line = next(line for line in shown.splitlines() if paragraph in line)
        assert line.rstrip().endswith(("intake.", "logins.", "rejected.")), line


def test_every_command_is_summed_up_in_one_line_of_the_listing() -> None:
    # The command list shows a help's first paragraph: a summary, short enough for its line
    # in the source, so that the list reads as one line per command.
    for name, callback in _commands(app):
        summary = (callback.__doc__ or "").strip().split("\n\n")[0]  # type: ignore[attr-defined]
        assert summary, f"{name} has no help"
        assert "\n" not in summary, f"{name}: the first paragraph of its help runs over lines"


def test_a_database_permission_refused_is_one_line_without_its_sql(env) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import ProgrammingError

    from concord.cli import _database_problem

    refused = ProgrammingError(
        "SELECT alembic_version.version_num FROM alembic_version",
        {},
        Exception("permission denied for table alembic_version\nLINE 1: SELECT ..."),
    )
    said = _database_problem(refused)
    assert said is not None and said.endswith(
        "may not do this: permission denied for table alembic_version"
    ), said
    assert "SELECT" not in said
