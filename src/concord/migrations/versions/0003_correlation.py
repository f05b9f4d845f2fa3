"""correlation: alerts and campaigns

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import concord.db


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "correlation_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("indicator_id", sa.BigInteger(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("created_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correlation_alerts")),
        sa.UniqueConstraint(
            "indicator_id", "country", name=op.f("uq_correlation_alerts_indicator_id_country")
        ),
    )
    with op.batch_alter_table("correlation_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_correlation_alerts_country", ["country", "id"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("label", sa.String(length=500), nullable=False),
        sa.Column("label_indicator_id", sa.BigInteger(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("indicator_count", sa.BigInteger(), nullable=False),
        sa.Column("states", sa.String(length=200), nullable=False),
        sa.Column("first_seen", concord.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen", concord.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column("created_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_merged_into"), ["merged_into"], unique=False)

    op.create_table(
        "campaign_events",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_events_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_campaign_events")),
    )
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_events_campaign", ["campaign_id", "event_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_events", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_events_campaign")

    op.drop_table("campaign_events")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_merged_into"))

    op.drop_table("campaigns")
    with op.batch_alter_table("correlation_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_correlation_alerts_country")

    op.drop_table("correlation_alerts")
