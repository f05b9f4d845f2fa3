"""a mail's attachments taken in are listed on its receipt

A mail uploaded through the API, the intake page or `concord ingest` is taken in as the feeds
it carries, as a mail to the SMTP listener is; each attachment is a submission of its own, and
`part_of` names the mail's, whose receipt lists them.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.add_column(sa.Column("part_of", sa.BigInteger(), nullable=True))
        table.create_index(op.f("ix_submissions_part_of"), ["part_of"])


def downgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.drop_index(op.f("ix_submissions_part_of"))
        table.drop_column("part_of")
