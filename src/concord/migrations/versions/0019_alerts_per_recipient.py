"""an alert is written for each organisation it goes to

An alert was one row per (indicator, state), dated when the indicator became cross-state
network-wide. A state that saw the indicator cross-state only later, when a report it may read
arrived, was shown the earlier date, and a feed read by id skipped the alert. Alerts are now
written per recipient (a national body of the state, or the centre), when that organisation's
own view turns cross-state. Stored alerts go to the national bodies of their state and to the
centre, with their date.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 01:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("correlation_alerts") as table:
        table.add_column(sa.Column("org_id", sa.BigInteger(), nullable=True))
        table.drop_constraint(op.f("uq_correlation_alerts_indicator_id_country"), type_="unique")
        table.drop_index("ix_correlation_alerts_country")
    op.execute(
        "INSERT INTO correlation_alerts (indicator_id, country, org_id, created_at) "
        "SELECT a.indicator_id, a.country, o.id, a.created_at FROM correlation_alerts a "
        "JOIN organizations o ON o.kind = 'centre' "
        "OR (o.kind = 'national-body' AND o.country = a.country) "
        "WHERE a.org_id IS NULL ORDER BY a.id, o.id"
    )
    op.execute("DELETE FROM correlation_alerts WHERE org_id IS NULL")
    with op.batch_alter_table("correlation_alerts") as table:
        table.alter_column("org_id", existing_type=sa.BigInteger(), nullable=False)
        table.create_unique_constraint(
            op.f("uq_correlation_alerts_indicator_id_country_org_id"),
            ["indicator_id", "country", "org_id"],
        )
        table.create_index("ix_correlation_alerts_org_id", ["org_id", "id"], unique=False)


def downgrade() -> None:
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
