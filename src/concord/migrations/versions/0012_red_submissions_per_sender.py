"""a RED submission is its sender's: the same file from two people is two submissions

Submissions were unique by organisation, content, format and TLP, so a colleague sending a
RED file already sent was answered with the first sender's receipt, and their report was
stored nowhere they could read. `audience` holds the sender's user id for RED (0 for any
other TLP) and joins the unique key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.add_column(sa.Column("audience", sa.BigInteger(), nullable=False, server_default="0"))
        table.drop_constraint("uq_submissions_org_id_sha256_format_tlp", type_="unique")
        table.create_unique_constraint(
            "uq_submissions_org_id_sha256_format_tlp_audience",
            ["org_id", "sha256", "format", "tlp", "audience"],
        )
    op.execute("UPDATE submissions SET audience = coalesce(user_id, 0) WHERE tlp = 'red'")


def downgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.drop_constraint("uq_submissions_org_id_sha256_format_tlp_audience", type_="unique")
        table.create_unique_constraint(
            "uq_submissions_org_id_sha256_format_tlp", ["org_id", "sha256", "format", "tlp"]
        )
        table.drop_column("audience")
