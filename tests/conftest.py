"""Test database per test: SQLite by default, PostgreSQL when CONCORD_TEST_BACKEND=postgresql.

SQLite: the schema is migrated once into a template file and copied for every test.
PostgreSQL: migrated once into CONCORD_TEST_DATABASE_URL, tables truncated for every test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from concord import db as dbmod
from concord.config import reset_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures"
BACKEND = os.environ.get("CONCORD_TEST_BACKEND", "sqlite")


def pytest_report_header(config: pytest.Config) -> str:
    return f"concord test database backend: {BACKEND}"


# The fixtures through which a test reaches the database under test.
DATABASE_FIXTURES = {"template_db", "scratch_url"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that reach a database: the others (readers, fuzzing,
    settings) do the same work on either backend, and the SQLite run has them."""
    if BACKEND != "postgresql":
        return
    kept: list[pytest.Item] = []
    without_database: list[pytest.Item] = []
    for item in items:
        uses_database = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        (kept if uses_database else without_database).append(item)
    if without_database:
        config.hook.pytest_deselected(items=without_database)
        items[:] = kept


def shared_file(relative: str) -> Path:
    """A sample from the shared data folder that may not be copied into the repository."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared sample {relative} is not present beside the checkout")
    return path


def _pg_url() -> str:
    url = os.environ.get("CONCORD_TEST_DATABASE_URL")
    if not url:
        pytest.skip("CONCORD_TEST_DATABASE_URL is not set")
    return url


def _reset_pg_schema(url: str) -> None:
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("drop schema public cascade"))
        conn.execute(text("create schema public"))
    engine.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    from concord.migrate import upgrade

    if BACKEND == "postgresql":
        url = _pg_url()
        _reset_pg_schema(url)
        upgrade(url)
        dbmod.dispose_engines()
        return url
    path = tmp_path_factory.mktemp("template") / "concord.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    dbmod.dispose_engines()
    return url


TRUNCATE_SKIP = {"alembic_version"}


def _empty_pg_database(url: str) -> None:
    """Every table emptied and every sequence restarted. Only the tables holding rows are
    truncated: truncating one costs a new file on disk, and most tests fill few tables."""
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        tables = [
            name
            for (name,) in conn.execute(
                text("select tablename from pg_tables where schemaname = 'public'")
            )
            if name not in TRUNCATE_SKIP
        ]
        if tables:
            probe = " union all ".join(
                f"select '{name}' where exists (select 1 from \"{name}\")" for name in tables
            )
            filled = [name for (name,) in conn.execute(text(probe))]
            if filled:
                conn.execute(
                    text("truncate " + ", ".join(f'"{name}"' for name in filled) + " cascade")
                )
        conn.execute(
            text(
                "select setval(format('%I.%I', schemaname, sequencename), start_value, false)"
                " from pg_sequences where schemaname = 'public' and last_value is not null"
            )
        )
    engine.dispose()


@dataclass
class TestEnv:
    home: Path
    database_url: str
    jobs_url: str


@pytest.fixture
def env(template_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestEnv]:
    """A fresh, migrated, empty database and CONCORD_* settings pointing at it."""
    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    if BACKEND == "postgresql":
        url = template_db
        _empty_pg_database(url)
        jobs_url = url
    else:
        path = home / "var" / "concord.db"
        shutil.copyfile(template_db.removeprefix("sqlite:///"), path)
        url = f"sqlite:///{path}"
        jobs_url = f"sqlite:///{home / 'var' / 'jobs.db'}"
    monkeypatch.setenv("CONCORD_HOME", str(home))
    monkeypatch.setenv("CONCORD_DATABASE_URL", url)
    monkeypatch.setenv("CONCORD_JOBS_URL", jobs_url)
    monkeypatch.setenv("CONCORD_ARGON2_FAST", "1")
    monkeypatch.delenv("CONCORD_SMTP_URL", raising=False)
    reset_settings()
    from concord.audit.service import system_actor
    from concord.orgs.whois import forget_indexes

    forget_indexes()
    actor = system_actor.set("system")  # the CLI tests set the operator's name
    yield TestEnv(home, url, jobs_url)
    system_actor.reset(actor)
    dbmod.dispose_engines()
    reset_settings()
    forget_indexes()


@pytest.fixture
def session(env: TestEnv) -> Iterator[Session]:
    # Deferred transactions: a test's own reads must not hold SQLite's write lock while the
    # app under test serves requests.
    s = dbmod.session_factory(env.database_url, readonly=True)()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


PASSWORD = "correct-horse-battery"


def sign_in(client, username: str, password: str = PASSWORD, **kwargs):  # type: ignore[no-untyped-def]
    """Sign in through the login form as a browser does: the form's token with its cookie."""
    form = client.get("/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form)
    assert token, form
    data = {"username": username, "password": password, "login_token": token.group(1)}
    return client.post("/login", data=data, **kwargs)


@dataclass
class Network:
    """A small network: the centre, two national bodies, one owner under each, and a user
    of every role. Principals are keyed by username."""

    principals: dict[str, object]

    def __getitem__(self, username: str):  # type: ignore[no-untyped-def]
        return self.principals[username]


NETWORK_USERS = [
    ("centre-admin", "ccc", "admin"),
    ("centre-analyst", "ccc", "analyst"),
    ("centre-reader", "ccc", "reader"),
    ("kz-admin", "kz-cert", "admin"),
    ("kz-analyst", "kz-cert", "analyst"),
    ("kz-reader", "kz-cert", "reader"),
    ("uz-admin", "uz-cert", "admin"),
    ("uz-analyst", "uz-cert", "analyst"),
    ("kz-bank-contact", "kz-bank", "owner-contact"),
    ("uz-telecom-contact", "uz-telecom", "owner-contact"),
]


def build_network(s: Session) -> Network:
    from concord.access import service as access
    from concord.orgs import service as orgs
    from concord.orgs.model import Organization

    orgs.create_org(
        s,
        None,
        orgs.OrgInput("ccc", "centre", "Coordination Centre", "Координационный центр", "KZ"),
    )
    orgs.create_org(
        s,
        None,
        orgs.OrgInput(
            "kz-cert",
            "national-body",
            "KZ national CERT",
            "Национальный CERT Казахстана",
            "KZ",
            language="ru",
        ),
    )
    orgs.create_org(
        s,
        None,
        orgs.OrgInput(
            "uz-cert", "national-body", "UZ national CERT", "Национальный CERT Узбекистана", "UZ"
        ),
    )
    orgs.create_org(
        s,
        None,
        orgs.OrgInput(
            "kz-bank", "owner", "Steppe Bank", "Степной банк", sector="finance", parent="kz-cert"
        ),
    )
    orgs.create_org(
        s,
        None,
        orgs.OrgInput(
            "uz-telecom",
            "owner",
            "Silk Telecom",
            "Шёлк Телеком",
            sector="telecom",
            parent="uz-cert",
        ),
    )
    principals = {}
    for username, org, role in NETWORK_USERS:
        user = access.create_user(s, None, access.UserInput(username, org, role, PASSWORD))
        organization = s.get(Organization, user.org_id)
        principals[username] = access.principal_for(user, organization)
    s.commit()
    return Network(principals)


@pytest.fixture
def network(session: Session) -> Network:
    return build_network(session)


@pytest.fixture
def client(env: TestEnv):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from concord.web.app import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def auth(network: Network, session: Session) -> dict[str, dict[str, str]]:
    """Authorization headers per network user, each token holding all its role's scopes."""
    from concord.access import policy
    from concord.access import service as access

    headers = {}
    for username, _org, _role in NETWORK_USERS:
        p = network[username]
        secret, _ = access.create_token(
            session, None, username, "test", policy.scopes_for_role(p.role)
        )
        headers[username] = {"Authorization": f"Bearer {secret}"}
    session.commit()
    return headers


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(network: Network) -> Iterator[str]:
    """A real uvicorn server in a thread, over this test's fresh database."""
    import uvicorn

    from concord.web.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
