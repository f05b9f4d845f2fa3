"""a case's timeline entry keeps the TLP it was written under

Widening a case's TLP showed every earlier comment, and the titles the case had before, to
everyone the wider label reaches: a participant's TLP:RED comment became readable by all
once the case was set to GREEN. Each entry now keeps the case's TLP at the time it was
written and is read under it. Entries written before this revision have none recorded and
are read under the case's TLP, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_timeline") as table:
        table.add_column(sa.Column("tlp", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_timeline") as table:
        table.drop_column("tlp")
