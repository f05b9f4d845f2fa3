"""an alert is written for each organisation it goes to

An alert was one row per (indicator, state), dated when the indicator became cross-state
network-wide. A state that saw the indicator cross-state only later, when a report it may read
arrived, was shown the earlier date, and a feed read by id skipped the alert. Alerts are now
written per recipient (a national body of the state, or the centre), when that organisation's
own view turns cross-state. Stored alerts go to the national bodies of their state and to the
centre, with their date; each keeps its id as the alert of its state's national body, so that a
client reading that body's feed by cursor is not sent it again. `alert_marks` keeps how far the pass has looked, so that the
five-minute pass looks again only at what new events and shares touch.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 01:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from concord.db import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("correlation_alerts") as table:
        table.add_column(sa.Column("org_id", sa.BigInteger(), nullable=True))
        table.drop_constraint(op.f("uq_correlation_alerts_indicator_id_country"), type_="unique")
        table.drop_index("ix_correlation_alerts_country")
    # the recipient each stored alert stays with: its state's (first) national body, else the
    # centre
    kept = (
        "COALESCE((SELECT min(n.id) FROM organizations n WHERE n.kind = 'national-body' "
        "AND n.country = {a}.country), (SELECT min(c.id) FROM organizations c "
        "WHERE c.kind = 'centre'))"
    )
    op.execute(
        "INSERT INTO correlation_alerts (indicator_id, country, org_id, created_at) "
        "SELECT a.indicator_id, a.country, o.id, a.created_at FROM correlation_alerts a "
        "JOIN organizations o ON o.kind = 'centre' "
        "OR (o.kind = 'national-body' AND o.country = a.country) "
        f"WHERE a.org_id IS NULL AND o.id <> {kept.format(a='a')} ORDER BY a.id, o.id"
    )
    op.execute(
        f"UPDATE correlation_alerts SET org_id = {kept.format(a='correlation_alerts')} "
        "WHERE org_id IS NULL"
    )
    op.execute("DELETE FROM correlation_alerts WHERE org_id IS NULL")
    with op.batch_alter_table("correlation_alerts") as table:
        table.alter_column("org_id", existing_type=sa.BigInteger(), nullable=False)
        table.create_unique_constraint(
            op.f("uq_correlation_alerts_indicator_id_country_org_id"),
            ["indicator_id", "country", "org_id"],
        )
        table.create_index("ix_correlation_alerts_org_id", ["org_id", "id"], unique=False)
    op.create_table(
        "alert_marks",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id_before", sa.BigInteger(), nullable=False),
        sa.Column("share_id", sa.BigInteger(), nullable=False),
        sa.Column("share_id_before", sa.BigInteger(), nullable=False),
        sa.Column("complete_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_marks")),
    )


def downgrade() -> None:
    op.drop_table("alert_marks")
    # One row per (indicator, state) again, the earliest.
    op.execute(
        "DELETE FROM correlation_alerts WHERE id NOT IN (SELECT min(id) FROM correlation_alerts "
        "GROUP BY indicator_id, country)"
    )
    with op.batch_alter_table("correlation_alerts") as table:
        table.drop_index("ix_correlation_alerts_org_id")
        table.drop_constraint(
            op.f("uq_correlation_alerts_indicator_id_country_org_id"), type_="unique"
        )
        table.drop_column("org_id")
        table.create_unique_constraint(
            op.f("uq_correlation_alerts_indicator_id_country"), ["indicator_id", "country"]
        )
        table.create_index("ix_correlation_alerts_country", ["country", "id"], unique=False)
