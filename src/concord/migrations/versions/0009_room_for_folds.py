"""room in PostgreSQL pages for the rows intake folds repeats into

A repeat of an event already stored updates its count and last seen, its indicator's span
and its sighting's count. With full pages PostgreSQL writes each such update on another
page, with a new entry in every index of the table; with some room left on the page (fill
factor 85) the update stays there and the indexes are untouched. Intake of a feed with a
fifth of repeats was about a tenth faster. Pages written before keep their fill.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 16:50:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("events", "indicators", "sightings")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 85)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
