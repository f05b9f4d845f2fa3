"""a case says how it ended, and counts its changes

A resolved or closed case now keeps its resolution (remediated, mitigated, false positive,
duplicate, no action), which reports count. Its version number grows with each change and is
the API's ETag: a client sending `If-Match` changes only the case it has read. Cases written
before this revision have no resolution and start at version 1.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 22:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

RESOLUTIONS = "'remediated','mitigated','false-positive','duplicate','no-action'"


def upgrade() -> None:
    with op.batch_alter_table("cases") as table:
        table.add_column(sa.Column("resolution", sa.String(20), nullable=True))
        table.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        table.create_check_constraint(op.f("ck_cases_resolution"), f"resolution in ({RESOLUTIONS})")


def downgrade() -> None:
    with op.batch_alter_table("cases") as table:
        table.drop_constraint(op.f("ck_cases_resolution"), type_="check")
        table.drop_column("version")
        table.drop_column("resolution")
