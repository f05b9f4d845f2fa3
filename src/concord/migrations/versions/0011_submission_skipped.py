"""a submission counts the records it skipped as naming nothing to take in

A MISP event's comments, file names or registry keys are read but name no observable; the
receipt counts them, so that every record of a file is accounted for. Past submissions
count none.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.add_column(sa.Column("skipped", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.drop_column("skipped")
