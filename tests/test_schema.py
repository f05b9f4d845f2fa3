"""The migrations build exactly the tables the models describe, and the latest one can be
taken back and forth without losing rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, func, select, text

import concord.models  # noqa: F401  (every table on the metadata)
from concord.db import Base
from concord.events.model import Event, EventObservable, Indicator, Sighting, Submission
from concord.migrate import alembic_config
from concord.orgs.model import Organization
from tests.conftest import BACKEND, _pg_url


@contextmanager
def opened(url: str) -> Iterator[Engine]:
    """An engine on the scratch database, disposed after: a migration run next must find
    no connection of a test's still open."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def scratch_url(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database of the backend under test (a throw-away schema on PostgreSQL)."""
    if BACKEND != "postgresql":
        yield f"sqlite:///{tmp_path / 'schema.db'}"
        return
    base = _pg_url()
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text("drop schema if exists schema_check cascade"))
        conn.execute(text("create schema schema_check"))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3Dschema_check"
    finally:
        with admin.begin() as conn:
            conn.execute(text("drop schema schema_check cascade"))
        admin.dispose()


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config(url)
    with opened(url) as engine, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_migrations_match_the_models(scratch_url: str) -> None:
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_lean_index_migration_keeps_every_row(scratch_url: str) -> None:
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine:
        when = datetime(2026, 11, 30, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                Indicator.__table__.insert(),
                [
                    {
                        "id": 1,
                        "kind": "ipv4",
                        "value": "146.185.0.1",
                        "first_seen": when,
                        "last_seen": when,
                        "cross_state": True,
                    },
                    {
                        "id": 2,
                        "kind": "domain",
                        "value": "c2.example",
                        "first_seen": when,
                        "last_seen": when,
                        "cross_state": False,
                    },
                ],
            )
            conn.execute(
                Sighting.__table__.insert(),
                [
                    {
                        "indicator_id": 1,
                        "org_id": 1,
                        "country": "KZ",
                        "count": 3,
                        "first_seen": when,
                        "last_seen": when,
                    },
                    {
                        "indicator_id": 1,
                        "org_id": 2,
                        "country": "UZ",
                        "count": 1,
                        "first_seen": when,
                        "last_seen": when,
                    },
                ],
            )
    migrate(scratch_url, "0005", down=True)
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        sightings = conn.execute(
            select(Sighting.org_id, Sighting.count).order_by(Sighting.org_id)
        ).all()
        flagged = conn.scalars(select(Indicator.value).where(Indicator.cross_state.is_(True)))
        assert [tuple(r) for r in sightings] == [(1, 3), (2, 1)]
        assert list(flagged) == ["146.185.0.1"]
        assert conn.scalar(select(func.count()).select_from(EventObservable)) == 0


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite has neither")
def test_every_column_and_table_has_the_collation_and_fill_its_model_names(
    scratch_url: str,
) -> None:
    # alembic's comparison of the models with the database looks at neither
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        stored = {
            (table, column): collation
            for table, column, collation in conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name "
                    "FROM information_schema.columns WHERE table_schema = current_schema()"
                )
            )
        }
        dialect = conn.dialect
        options = dict(
            conn.execute(
                text(
                    "SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' "
                    "AND relnamespace = current_schema()::regnamespace"
                )
            ).all()
        )
    named = {
        (table.name, column.name): getattr(column.type.dialect_impl(dialect), "collation", None)
        for table in Base.metadata.sorted_tables
        for column in table.columns
    }
    assert {key: stored[key] for key in named} == named
    assert named[("indicators", "value")] == "C"
    fills = {
        table.name: [
            f"{k}={v}" for k, v in (table.dialect_options["postgresql"]["with"] or {}).items()
        ]
        or None
        for table in Base.metadata.sorted_tables
    }
    assert {name: options[name] for name in fills} == fills
    assert fills["events"] == ["fillfactor=85"]


def test_submissions_get_the_span_of_their_events_ids(scratch_url: str) -> None:
    migrate(scratch_url, "0009")
    with opened(scratch_url) as engine:
        when = datetime(2026, 11, 30, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                Organization.__table__.insert(),
                [{"id": 1, "slug": "kz-cert", "kind": "national-body", "name_en": "KZ-CERT"}],
            )
            for sub_id in (1, 2, 3):
                conn.execute(
                    text(
                        "INSERT INTO submissions (id, org_id, channel, filename, format, tlp, "
                        "sha256, size, status, rows_done, accepted, duplicates, rejected, errors, "
                        "created_at) VALUES (:id, 1, 'cli', 'f.csv', 'csv', 'amber', :sha, 0, "
                        "'done', 0, 0, 0, 0, '[]', :now)"
                    ),
                    {"id": sub_id, "sha": str(sub_id) * 64, "now": when},
                )
            # two submissions whose events interleave; the third added none
            conn.execute(
                Event.__table__.insert(),
                [
                    {
                        "id": event_id,
                        "time": when,
                        "last_seen": when,
                        "rsit_class": "vulnerable",
                        "rsit_type": "vulnerable-system",
                        "feed": "scan",
                        "dedup_key": event_id,
                        "submission_id": sub_id,
                        "raw_location": "line 2",
                        "origin_org_id": 1,
                    }
                    for event_id, sub_id in ((10, 1), (11, 2), (12, 1), (13, 2), (14, 2))
                ],
            )
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        spans = conn.execute(
            select(
                Submission.id,
                Submission.first_event_id,
                Submission.last_event_id,
                Submission.shared,
            ).order_by(Submission.id)
        ).all()
    assert [tuple(r) for r in spans] == [(1, 10, 12, 0), (2, 11, 14, 0), (3, None, None, 0)]


def test_a_migration_rebuilding_a_table_keeps_the_rows_that_hang_on_it(scratch_url: str) -> None:
    # On SQLite, 0017 rebuilds the cases table; with foreign keys on, dropping the old copy
    # deleted every case's timeline, participants and links through ON DELETE CASCADE.
    from concord.db import get_engine
    from concord.migrate import upgrade

    migrate(scratch_url, "0016")
    with opened(scratch_url) as engine:
        when = datetime(2026, 11, 30, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cases (id, title, summary, status, severity, created_at, "
                    "updated_at, tlp, share_constituents) VALUES (1, 'Botnet', '', 'new', 'low', "
                    ":now, :now, 'amber', false)"
                ),
                {"now": when},
            )
            conn.execute(
                text(
                    "INSERT INTO case_timeline (id, case_id, at, actor, kind, text, detail) "
                    "VALUES (1, 1, :now, 'kz-analyst', 'comment', 'seen at two banks', '{}')"
                ),
                {"now": when},
            )
            conn.execute(
                text("INSERT INTO case_events (case_id, event_id, linked_at) VALUES (1, 5, :now)"),
                {"now": when},
            )
    upgrade(scratch_url)  # as `concord` runs it, foreign keys on
    with get_engine(scratch_url).connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("cases", "case_timeline", "case_events")
        }
        assert conn.execute(text("SELECT version, resolution FROM cases")).one() == (1, None)
    get_engine(scratch_url).dispose()
    assert counts == {"cases": 1, "case_timeline": 1, "case_events": 1}


def test_what_the_centre_reported_becomes_no_states(scratch_url: str) -> None:
    migrate(scratch_url, "0017")
    with opened(scratch_url) as engine:
        when = datetime(2026, 11, 30, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                Organization.__table__.insert(),
                [
                    {
                        "id": 1,
                        "slug": "ccc",
                        "kind": "centre",
                        "name_en": "Centre",
                        "country": "KZ",
                    },
                    {
                        "id": 2,
                        "slug": "uz-cert",
                        "kind": "national-body",
                        "name_en": "UZ",
                        "country": "UZ",
                    },
                    {
                        "id": 3,
                        "slug": "kz-cert",
                        "kind": "national-body",
                        "name_en": "KZ",
                        "country": "KZ",
                    },
                ],
            )
            conn.execute(
                Indicator.__table__.insert(),
                [
                    {"id": i, "kind": "ipv4", "value": v, "first_seen": when, "last_seen": when}
                    for i, v in ((1, "192.0.2.1"), (2, "192.0.2.2"))
                ],
            )
            conn.execute(text("UPDATE indicators SET cross_state = true"))
            sightings = [(1, 1, "KZ"), (1, 2, "UZ"), (2, 3, "KZ"), (2, 2, "UZ")]
            conn.execute(
                Sighting.__table__.insert(),
                [
                    {"indicator_id": i, "org_id": o, "country": c, "count": 1}
                    | {"first_seen": when, "last_seen": when}
                    for i, o, c in sightings
                ],
            )
            conn.execute(
                Submission.__table__.insert(),
                [
                    {"id": org_id, "org_id": org_id, "channel": "cli", "filename": "f.csv"}
                    | {"format": "csv", "tlp": "amber", "sha256": str(org_id) * 64, "size": 0}
                    | {"status": "done", "created_at": when}
                    for org_id in (1, 3)
                ],
            )
            conn.execute(
                Event.__table__.insert(),
                [
                    {
                        "id": event_id,
                        "time": when,
                        "last_seen": when,
                        "rsit_class": "vulnerable",
                        "rsit_type": "vulnerable-system",
                        "feed": "scan",
                        "dedup_key": event_id,
                        "raw_location": "line 2",
                        "origin_org_id": org_id,
                        "submission_id": org_id,
                        "country": country,
                    }
                    for event_id, org_id, country in ((1, 1, "KZ"), (2, 3, "KZ"))
                ],
            )
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        events = conn.execute(select(Event.id, Event.country).order_by(Event.id)).all()
        seen = conn.execute(
            select(Sighting.indicator_id, Sighting.org_id, Sighting.country).order_by(
                Sighting.indicator_id, Sighting.org_id
            )
        ).all()
        flagged = list(conn.scalars(select(Indicator.value).where(Indicator.cross_state)))
    assert [tuple(e) for e in events] == [(1, None), (2, "KZ")]
    assert [tuple(s) for s in seen] == [(1, 1, None), (1, 2, "UZ"), (2, 2, "UZ"), (2, 3, "KZ")]
    # only the centre's report made 192.0.2.1 cross-state; two states reported 192.0.2.2
    assert flagged == ["192.0.2.2"]
    migrate(scratch_url, "0017", down=True)
    with opened(scratch_url) as engine, engine.connect() as conn:
        assert conn.scalar(select(Event.country).where(Event.id == 1)) == "KZ"


def test_stored_alerts_go_to_the_national_bodies_of_their_state_and_the_centre(
    scratch_url: str,
) -> None:
    migrate(scratch_url, "0018")
    with opened(scratch_url) as engine:
        when = datetime(2026, 11, 30, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                Organization.__table__.insert(),
                [
                    {"id": i, "slug": slug, "kind": kind, "name_en": slug, "country": country}
                    for i, slug, kind, country in (
                        (1, "ccc", "centre", "KZ"),
                        (2, "uz-cert", "national-body", "UZ"),
                        (3, "kz-cert", "national-body", "KZ"),
                        (4, "kz-bank", "owner", "KZ"),
                    )
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO correlation_alerts (indicator_id, country, created_at) "
                    "VALUES (7, 'KZ', :when), (7, 'UZ', :when)"
                ),
                {"when": when},
            )
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.indicator_id, a.country, o.slug FROM correlation_alerts a "
                "JOIN organizations o ON o.id = a.org_id ORDER BY a.country, o.slug"
            )
        ).all()
        # the national bodies keep the alerts' ids: their feeds read by cursor go on
        kept = conn.execute(
            text(
                "SELECT a.id, o.slug FROM correlation_alerts a "
                "JOIN organizations o ON o.id = a.org_id WHERE a.id <= 2 ORDER BY a.id"
            )
        ).all()
        dated = set(conn.scalars(text("SELECT created_at FROM correlation_alerts")))
    assert [tuple(r) for r in rows] == [
        (7, "KZ", "ccc"),
        (7, "KZ", "kz-cert"),
        (7, "UZ", "ccc"),
        (7, "UZ", "uz-cert"),
    ]
    assert [tuple(r) for r in kept] == [(1, "kz-cert"), (2, "uz-cert")]
    assert len(dated) == 1  # with their date
    migrate(scratch_url, "0018", down=True)
    with opened(scratch_url) as engine, engine.connect() as conn:
        back = conn.execute(
            text("SELECT indicator_id, country FROM correlation_alerts ORDER BY country")
        ).all()
    assert [tuple(r) for r in back] == [(7, "KZ"), (7, "UZ")]


def test_ipv6_indicators_stored_before_get_their_key(scratch_url: str) -> None:
    migrate(scratch_url, "0021")
    when = datetime(2026, 12, 1, tzinfo=UTC)
    stored = [
        ("ipv6", "2001:db8::71"),
        ("ipv4", "192.0.2.7"),
        ("ipv6", "2001:db8:4::1f"),
        ("domain", "example.org"),
        ("ipv6", "::1"),
    ]
    with opened(scratch_url) as engine, engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO indicators (id, kind, value, first_seen, last_seen, cross_state) "
                "VALUES (:id, :kind, :value, :when, :when, false)"
            ),
            [
                {"id": i, "kind": kind, "value": value, "when": when}
                for i, (kind, value) in enumerate(stored, 1)
            ],
        )
    migrate(scratch_url, "head")
    with opened(scratch_url) as engine, engine.connect() as conn:
        keys = dict(conn.execute(select(Indicator.value, Indicator.ipv6_hex)).all())
    assert keys == {
        "2001:db8::71": "20010db8000000000000000000000071",
        "192.0.2.7": None,
        "2001:db8:4::1f": "20010db800040000000000000000001f",
        "example.org": None,
        "::1": "00000000000000000000000000000001",
    }
    migrate(scratch_url, "0021", down=True)
    migrate(scratch_url, "head")
