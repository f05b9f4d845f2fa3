"""a submission remembers whether its sender declared its TLP

The same file sent again is the same submission, whether or not a TLP was declared, and is
answered "nothing changed". When the first time left the TLP to the records' own markings and
the second declares it (or the other way round), the receipt now says so: the events keep
the TLP they were given the first time. Rows already stored count as left to their markings,
as the console and the intake page send them by default.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.add_column(
            sa.Column("tlp_declared", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.drop_column("tlp_declared")
