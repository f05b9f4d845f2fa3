"""records with an identity of their own are counted once

A MISP attribute or object, or a STIX object, sent again in a file that differs from the first
(a MISP event re-pulled after an edit, a bundle re-serialised) added one to its event's count
each time. `record_marks` keeps, per sender, a hash of each such record's identity with its
event's dedup key, so the writer takes a record seen before as a duplicate.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_marks",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "mark", name=op.f("pk_record_marks")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("record_marks")
