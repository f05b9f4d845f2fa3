"""a token remembers the token that created it, so that revoking one revokes its successors

A token with the write scope may create tokens; until now, revoking it left those running,
so a leaked token could outlive its revocation through one it had minted. Tokens created
before this revision have no parent recorded.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as table:
        table.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        table.create_index("ix_api_tokens_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as table:
        table.drop_index("ix_api_tokens_parent_id")
        table.drop_column("parent_id")
