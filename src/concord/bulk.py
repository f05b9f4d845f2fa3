"""Batched writes for hot paths: plain DB-API executemany with hand-written SQL.

SQLAlchemy's per-row parameter processing costs more than the database itself on a feed of
millions of rows, so the intake pipeline writes tuples straight to the driver. Values must
already be what the driver expects: `timestamp()` below turns UTC datetimes into the text
SQLAlchemy stores on SQLite, so the ORM reads these rows back like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session


class Timestamps:
    """UTC datetimes as the driver of `dialect` takes them (a session is not needed, so
    intake can prepare rows in another process)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._stamps: dict[datetime, str] = {}

    def __call__(self, value: datetime) -> Any:
        if self.dialect != "sqlite":
            return value
        # Feeds repeat the same timestamps a lot; formatting is the costly part.
        text = self._stamps.get(value)
        if text is None:
            text = value.replace(tzinfo=None).isoformat(" ", "microseconds")
            if len(self._stamps) > 100_000:
                self._stamps.clear()
            self._stamps[value] = text
        return text


# (table, columns) -> their PostgreSQL type names, or None where COPY must use text
_COPY_TYPES: dict[tuple[str, tuple[str, ...]], list[str] | None] = {}


def _copy_types(conn: Connection, table: str, columns: Sequence[str]) -> list[str] | None:
    """The types of `columns` for a binary COPY, if the driver can dump them all."""
    key = (table, tuple(columns))
    if key not in _COPY_TYPES:
        found = dict(
            conn.exec_driver_sql(
                "SELECT attname, atttypid::regtype::text FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            ).fetchall()
        )
        registry = conn.connection.driver_connection.adapters.types
        names = [found.get(c) for c in columns]
        _COPY_TYPES[key] = (
            names if all(n is not None and registry.get(n) is not None for n in names) else None
        )
    return _COPY_TYPES[key]


# Binary COPY sends the low bytes of a Python int: a value beyond the column's range would
# be stored wrapped around, silently.
_INT_BOUNDS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def _in_range(types: list[str], rows: list[tuple[Any, ...]]) -> bool:
    for j, name in enumerate(types):
        bound = _INT_BOUNDS.get(name)
        if bound is None:
            continue
        values = [v for r in rows if (v := r[j]) is not None]
        if values and (min(values) < -bound or max(values) >= bound):
            return False
    return True


_LITERAL_TYPES = (int, bool, str, type(None))


def _literal(value: Any) -> str | None:
    """`value` as SQL text, where that is exact and safe; else None."""
    if value is None:
        return "NULL"
    if isinstance(value, int):  # bool included: SQLite stores it as 0 or 1 anyway
        # beyond 64 bits SQLite would read the text as a float, where binding fails loudly
        return str(int(value)) if -(2**63) <= value < 2**63 else None
    if len(value) <= 200 and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


def literal(value: Any) -> str:
    """A constant (an int, a short string or None) as SQL text, to write into a statement."""
    text = _literal(value)
    if text is None:
        raise ValueError(f"{value!r} cannot be written into a statement exactly")
    return text


def _fold_constants(rows: list[tuple[Any, ...]]) -> tuple[list[str | None], list[tuple[Any, ...]]]:
    """Columns with one value across `rows` become literals in the statement.

    A feed's batch repeats its submission, organisation, state, TLP, feed name and class in
    every row; binding each of them once per row costs SQLite more than the row's own data.
    Returns one literal (or None for a parameter) per column, and the rows of parameters.
    """
    if len(rows) < 2:
        return [None] * len(rows[0]), rows
    columns = list(zip(*rows, strict=True))
    n = len(rows)
    values: list[str | None] = []
    for column in columns:
        first = column[0]
        literal = None
        if (
            type(first) in _LITERAL_TYPES
            and column.count(first) == n
            # equal is not enough for numbers: 1 == 1.0 == True, but a TEXT column keeps "1.0"
            and (first is None or type(first) is str or len(set(map(type, column))) == 1)
        ):
            literal = _literal(first)
        values.append(literal)
    if all(v is None for v in values):
        return values, rows
    if all(v is not None for v in values):
        return [None] * len(values), rows  # a statement needs parameters to run per row
    varying = [c for c, v in zip(columns, values, strict=True) if v is None]
    return values, list(zip(*varying, strict=True))


def _action(update: str | None, only_if: str | None) -> str:
    if not update:
        return "DO NOTHING"
    return f"DO UPDATE SET {update}" + (f" WHERE {only_if}" if only_if else "")


class Bulk:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.mark = "%s" if self.dialect == "postgresql" else "?"
        self.timestamp = Timestamps(self.dialect)
        self.changed = 0

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
        conflict: Sequence[str] | None = None,
        update: str | None = None,
        returning: str | None = None,
        only_if: str | None = None,
    ) -> list[tuple[Any, ...]] | None:
        """INSERT rows; with `conflict` columns, either DO NOTHING or DO UPDATE SET `update`
        (SQL text using `excluded.` for the new values), for the rows where `only_if` holds
        when given. On PostgreSQL an upsert can return the `returning` columns of every row
        it inserted or updated; elsewhere it returns None and the caller selects what it
        needs, and sets `changed` to how many rows the statement inserted or updated."""
        if not rows:
            return [] if returning and self.dialect == "postgresql" else None
        if self.dialect == "postgresql":
            if not conflict:
                self._copy(table, columns, rows)
                return None
            # Upserts: COPY into a session-local staging table, then one INSERT ... SELECT.
            stage = f"_stage_{table}"
            cols = ", ".join(columns)
            conn = self.session.connection()
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS SELECT {cols} FROM {table} "
                "WITH NO DATA"
            )
            conn.exec_driver_sql(f"TRUNCATE {stage}")
            self._copy(stage, columns, rows)
            action = _action(update, only_if)
            # In key order: concurrent writers then lock rows in one order, never deadlock.
            keys = ", ".join(conflict)
            result = conn.exec_driver_sql(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ORDER BY {keys} "
                f"ON CONFLICT ({keys}) {action}" + (f" RETURNING {returning}" if returning else "")
            )
            return [tuple(r) for r in result.fetchall()] if returning else None
        values, rows = _fold_constants(rows)
        marks = ", ".join(self.mark if v is None else v for v in values)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        if conflict:
            sql += f" ON CONFLICT ({', '.join(conflict)}) {_action(update, only_if)}"
        self.changed = self.session.connection().exec_driver_sql(sql, rows).rowcount
        return None

    def _copy(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """COPY FROM STDIN: several times faster than INSERT for plain appends.

        In binary format where the driver knows every column's type: neither side then
        formats or parses text (timestamps especially), which makes intake about a third
        faster."""
        conn = self.session.connection()
        types = _copy_types(conn, table, columns)
        if types and not _in_range(types, rows):
            types = None  # as text, PostgreSQL refuses the value instead of wrapping it
        raw = conn.connection.driver_connection
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        if types:
            statement += " (FORMAT BINARY)"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.session.connection().exec_driver_sql(sql.replace("?", self.mark), rows)

    def max_id(self, table: str) -> int:
        """The largest id in `table` (0 when empty)."""
        return (
            self.session.connection()
            .exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}")
            .scalar()
            or 0
        )

    def greatest(self, a: str, b: str) -> str:
        return f"GREATEST({a}, {b})" if self.dialect == "postgresql" else f"MAX({a}, {b})"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.dialect == "postgresql" else f"MIN({a}, {b})"
