"""Bulk writes store exactly what was given, whichever way the statement is built."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from concord.bulk import Bulk, literal

COLUMNS = ("id", "n", "word", "note", "flag", "score")


def _table(session: Session) -> Bulk:
    session.connection().exec_driver_sql(
        "CREATE TEMP TABLE bulk_probe (id INTEGER PRIMARY KEY, n BIGINT, word TEXT, "
        "note TEXT, flag BOOLEAN, score REAL)"
    )
    return Bulk(session)


def _stored(session: Session) -> list[tuple[object, ...]]:
    rows = session.connection().exec_driver_sql("SELECT * FROM bulk_probe ORDER BY id").fetchall()
    return [tuple(r) for r in rows]


def test_columns_equal_in_every_row_are_stored_as_given(session: Session) -> None:
    bulk = _table(session)
    # n, word, note, flag repeat in every row (the case of a feed's batch); score varies
    rows = [(k, 7, "it's; DROP TABLE x --", None, True, k / 2) for k in range(1, 6)]
    bulk.insert("bulk_probe", COLUMNS, rows)
    assert _stored(session) == [
        (k, 7, "it's; DROP TABLE x --", None, True, k / 2) for k in range(1, 6)
    ]


def test_values_that_are_equal_but_not_the_same_are_bound(session: Session) -> None:
    bulk = _table(session)
    long_text = "x" * 500
    # SQLite keeps a NUL inside text (a literal would end there); PostgreSQL refuses it
    word = "a\x00b" if bulk.dialect == "sqlite" else "a\nb"
    rows = [
        (1, 2**40, word, long_text, False, 1),
        (2, 2**40, word, long_text, False, 1.0),  # 1 == 1.0, yet a float
        (3, 2**40, word, long_text, False, 1),
    ]
    bulk.insert("bulk_probe", COLUMNS, rows)
    stored = _stored(session)
    assert [r[1:5] for r in stored] == [(2**40, word, long_text, False)] * 3
    assert [r[5] for r in stored] == [1.0, 1.0, 1.0]


def test_an_upsert_folds_into_stored_rows_with_constant_columns(session: Session) -> None:
    bulk = _table(session)
    bulk.insert("bulk_probe", COLUMNS, [(k, 1, "old", "n", False, 0.5) for k in (1, 2)])
    bulk.insert(
        "bulk_probe",
        COLUMNS,
        [(k, 5, "new", "n", True, 0.5) for k in (2, 3)],
        conflict=("id",),
        update="n = bulk_probe.n + excluded.n, word = excluded.word",
    )
    assert _stored(session) == [
        (1, 1, "old", "n", False, 0.5),
        (2, 6, "new", "n", False, 0.5),
        (3, 5, "new", "n", True, 0.5),
    ]


def test_an_upsert_updates_only_the_rows_its_condition_holds_for(session: Session) -> None:
    bulk = _table(session)
    bulk.insert("bulk_probe", COLUMNS, [(k, 10, "old", "n", False, 0.5) for k in (1, 2)])
    bulk.insert(
        "bulk_probe",
        COLUMNS,
        [
            (1, 5, "new", "n", False, 0.5),
            (2, 20, "new", "n", False, 0.5),
            (3, 1, "new", "n", False, 0.5),
        ],
        conflict=("id",),
        update="word = excluded.word",
        only_if="excluded.n > bulk_probe.n",
    )
    assert [r[2] for r in _stored(session)] == ["old", "new", "new"]
    if bulk.dialect == "sqlite":
        assert bulk.changed == 2  # one row inserted, one updated, one left


def test_a_number_beyond_its_column_is_refused_not_wrapped(session: Session) -> None:
    bulk = _table(session)
    if bulk.dialect != "postgresql":
        pytest.skip("SQLite's INTEGER holds any 64-bit number")
    from psycopg.errors import NumericValueOutOfRange

    with pytest.raises(NumericValueOutOfRange):
        bulk.insert("bulk_probe", COLUMNS, [(2**40, 1, "w", None, False, 0.5)])
    session.rollback()
    bulk = _table(session)
    bulk.insert("bulk_probe", COLUMNS, [(2**31 - 1, -(2**63), "w", None, False, 0.5)])
    assert _stored(session) == [(2**31 - 1, -(2**63), "w", None, False, 0.5)]


def test_a_constant_written_into_a_statement_reads_back_as_given(session: Session) -> None:
    conn = session.connection()
    for value in (42, -(2**63), "KZ", "it's", None):
        assert conn.exec_driver_sql(f"SELECT {literal(value)}").scalar() == value
    for unsafe in ("x" * 500, "a\x00b", 2**64):
        with pytest.raises(ValueError):
            literal(unsafe)


def test_max_id_is_zero_for_an_empty_table(session: Session) -> None:
    bulk = _table(session)
    assert bulk.max_id("bulk_probe") == 0
    bulk.insert("bulk_probe", COLUMNS, [(5, 1, "a", None, False, 0.5)])
    assert bulk.max_id("bulk_probe") == 5
