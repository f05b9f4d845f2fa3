"""a submission keeps the span of its events' ids and how many it shared with owners

Listing one submission's events, and sharing them with their owners, then reads a range of
the events' primary key instead of scanning the table or keeping an index on
events.submission_id, which intake would update for every event. Past submissions get
their span from their events, once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.add_column(sa.Column("first_event_id", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("last_event_id", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("shared", sa.BigInteger(), nullable=False, server_default="0"))
    # one grouped pass over the events, not one scan per submission
    op.execute(
        "UPDATE submissions SET first_event_id = span.low, last_event_id = span.high "
        "FROM (SELECT submission_id, min(id) AS low, max(id) AS high FROM events "
        "GROUP BY submission_id) AS span WHERE span.submission_id = submissions.id"
    )


def downgrade() -> None:
    with op.batch_alter_table("submissions") as table:
        table.drop_column("shared")
        table.drop_column("last_event_id")
        table.drop_column("first_event_id")
