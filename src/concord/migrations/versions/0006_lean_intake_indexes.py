"""lean intake indexes: fewer index writes per event

Indicators: one unique (value, kind) index serves lookups by value and by both, and the
cross-state flag is indexed only where it is set. Sightings are keyed by (indicator,
organisation), without a separate row id; on SQLite event observables also lose their row
id and live in their (event, indicator) key. On PostgreSQL, event pages keep room for the
count updates of duplicates, so they stay on their page without new index entries (HOT).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import concord.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _sightings(name: str, *, lean: bool) -> None:
    columns: list[sa.Column[object]] = []
    if not lean:
        columns.append(
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)
        )
    key = (
        sa.PrimaryKeyConstraint("indicator_id", "org_id", name=op.f("pk_sightings"))
        if lean
        else sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings"))
    )
    extra: list[sa.SchemaItem] = (
        []
        if lean
        else [
            sa.UniqueConstraint("indicator_id", "org_id", name="uq_sightings_indicator_id_org_id")
        ]
    )
    op.create_table(
        name,
        *columns,
        sa.Column("indicator_id", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", concord.db.UTCDateTime(timezone=True), nullable=False),
        key,
        *extra,
        sqlite_with_rowid=not lean,
    )


def _event_observables(name: str, *, lean: bool) -> None:
    op.create_table(
        name,
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("indicator_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_observables_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "indicator_id", name=op.f("pk_event_observables")),
        sqlite_with_rowid=not lean,
    )


def _rebuild(table: str, make: object, columns: str, *, lean: bool) -> None:
    """Copy `table` into its new shape and put the new table in its place."""
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    if op.get_bind().dialect.name == "postgresql":
        # constraint names stay with the renamed table; free them for the new one
        op.execute(f"ALTER TABLE {table}_old RENAME CONSTRAINT pk_{table} TO pk_{table}_old")
    make(table, lean=lean)  # type: ignore[operator]
    op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_old")
    op.drop_table(f"{table}_old")


def _event_observables_rowid(*, lean: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL tables have no row id to drop
    op.drop_index("ix_event_observables_indicator", table_name="event_observables")
    _rebuild("event_observables", _event_observables, "event_id, indicator_id, role", lean=lean)
    op.create_index(
        "ix_event_observables_indicator", "event_observables", ["indicator_id", "event_id"]
    )


SIGHTING_COLUMNS = "indicator_id, org_id, country, count, first_seen, last_seen"


def upgrade() -> None:
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.drop_index("ix_indicators_value")
        batch_op.drop_index("ix_indicators_cross_state")
        batch_op.drop_constraint("uq_indicators_kind_value", type_="unique")
        batch_op.create_unique_constraint("uq_indicators_value_kind", ["value", "kind"])
    op.create_index(
        "ix_indicators_cross_state",
        "indicators",
        ["cross_state"],
        sqlite_where=sa.text("cross_state = 1"),
        postgresql_where=sa.text("cross_state"),
    )

    op.drop_index("ix_sightings_country", table_name="sightings")
    _rebuild("sightings", _sightings, SIGHTING_COLUMNS, lean=True)
    op.create_index("ix_sightings_country", "sightings", ["country", "indicator_id"])

    _event_observables_rowid(lean=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events RESET (fillfactor)")
    _event_observables_rowid(lean=False)

    op.drop_index("ix_sightings_country", table_name="sightings")
    _rebuild("sightings", _sightings, SIGHTING_COLUMNS, lean=False)
    op.create_index("ix_sightings_country", "sightings", ["country", "indicator_id"])

    op.drop_index("ix_indicators_cross_state", table_name="indicators")
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.drop_constraint("uq_indicators_value_kind", type_="unique")
        batch_op.create_unique_constraint("uq_indicators_kind_value", ["kind", "value"])
        batch_op.create_index("ix_indicators_value", ["value"])
        batch_op.create_index("ix_indicators_cross_state", ["cross_state"])
