"""event links without a foreign key check

Intake writes an event's links to its indicators in the same transaction as the event, with
the ids that insert returned, so checking each link against the events table only repeats
what is already known; on PostgreSQL that check (a trigger per row) cost more than writing
the link itself. Nothing deletes events; whatever does one day removes their links first.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FK = "fk_event_observables_event_id_events"
COLUMNS = "event_id, indicator_id, role"


def _event_observables(name: str, *, checked: bool) -> None:
    checks = (
        [sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=FK, ondelete="CASCADE")]
        if checked
        else []
    )
    op.create_table(
        name,
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("indicator_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        *checks,
        sa.PrimaryKeyConstraint("event_id", "indicator_id", name=op.f("pk_event_observables")),
        sqlite_with_rowid=False,
    )


def _sqlite_rebuild(*, checked: bool) -> None:
    """SQLite cannot drop or add a foreign key in place: copy the table into its new shape."""
    op.drop_index("ix_event_observables_indicator", table_name="event_observables")
    op.execute("ALTER TABLE event_observables RENAME TO event_observables_old")
    _event_observables("event_observables", checked=checked)
    op.execute(
        f"INSERT INTO event_observables ({COLUMNS}) SELECT {COLUMNS} FROM event_observables_old"
    )
    op.drop_table("event_observables_old")
    op.create_index(
        "ix_event_observables_indicator", "event_observables", ["indicator_id", "event_id"]
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(checked=False)
    else:
        op.drop_constraint(FK, "event_observables", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(checked=True)
    else:
        op.create_foreign_key(
            FK, "event_observables", "events", ["event_id"], ["id"], ondelete="CASCADE"
        )
