"""event links go with their events by trigger, not by foreign key

A deleted event must take its links to indicators with it (else a campaign of deleted
events never dissolves). A foreign key did that, but on PostgreSQL it also checked every
link intake writes against the events table, one row lock per link: that cost intake more
than writing the link itself, to confirm an id the same transaction had just inserted. A
trigger after each delete on events keeps the cascade and drops the check.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 13:30:00.000000
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
TRIGGER = "events_take_their_links"

SQLITE_TRIGGER = f"""
CREATE TRIGGER {TRIGGER} AFTER DELETE ON events FOR EACH ROW
BEGIN
    DELETE FROM event_observables WHERE event_id = OLD.id;
END
"""

# One statement per delete, whatever its number of rows: the deleted ids arrive as a table.
POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_observables WHERE event_id IN (SELECT id FROM gone);
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = f"""
CREATE TRIGGER {TRIGGER} AFTER DELETE ON events
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()
"""


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
        op.execute(SQLITE_TRIGGER)
    else:
        op.drop_constraint(FK, "event_observables", type_="foreignkey")
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TRIGGER {TRIGGER}")
        _sqlite_rebuild(checked=True)
    else:
        op.execute(f"DROP TRIGGER {TRIGGER} ON events")
        op.execute(f"DROP FUNCTION {TRIGGER}()")
        op.create_foreign_key(
            FK, "event_observables", "events", ["event_id"], ["id"], ondelete="CASCADE"
        )
