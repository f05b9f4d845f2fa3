"""a mail's attachments and an archive's files taken in are listed on its receipt

A mail or an archive uploaded through the API, the intake page or `concord ingest` is taken
in as the files it holds; each is a submission of its own, and `submission_parts` names the
mail's or archive's submission each belongs to (a file sent again in another mail belongs to
both), so that its receipt lists them.

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
    op.create_table(
        "submission_parts",
        sa.Column("submission_id", sa.BigInteger(), nullable=False),
        sa.Column("part_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_parts_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["part_id"],
            ["submissions.id"],
            name=op.f("fk_submission_parts_part_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "part_id", name=op.f("pk_submission_parts")),
    )


def downgrade() -> None:
    op.drop_table("submission_parts")
