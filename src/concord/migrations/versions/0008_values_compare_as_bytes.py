"""indicator values and event values compare as bytes on PostgreSQL

Under a linguistic collation (a database created with en_US.UTF-8, say) every comparison
in the indexes of indicator values and of events' first values goes through the locale,
which made writing indicators about a fifth slower. These values (addresses, domains,
URLs, hashes) need no linguistic order: they now use the "C" collation whatever the
database's locale, which also lets a prefix search (LIKE 'x%') use their indexes. SQLite
compares bytes already.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 16:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (
    ("indicators", "kind", 12),
    ("indicators", "value", 500),
    ("events", "primary_value", 500),
)


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, length in COLUMNS:
        op.execute(
            f'ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR({length}) COLLATE "{collation}"'
        )


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
