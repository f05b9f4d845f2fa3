"""cases

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import concord.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("assignee_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", concord.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", concord.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tlp", sa.String(length=16), nullable=False),
        sa.Column("origin_org_id", sa.Integer(), nullable=True),
        sa.Column("origin_user_id", sa.Integer(), nullable=True),
        sa.Column("share_constituents", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "severity in ('low','medium','high','critical')", name=op.f("ck_cases_severity")
        ),
        sa.CheckConstraint(
            "status in ('new','triage','in-progress','resolved','closed')",
            name=op.f("ck_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_user_id"],
            ["users.id"],
            name=op.f("fk_cases_assignee_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cases_assignee_user_id"), ["assignee_user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cases_origin_org_id"), ["origin_org_id"], unique=False)
        batch_op.create_index("ix_cases_status_updated", ["status", "updated_at"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "event_id", name=op.f("pk_case_events")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index("ix_case_events_event", ["event_id"], unique=False)

    op.create_table(
        "case_indicators",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("indicator_id", sa.BigInteger(), nullable=False),
        sa.Column("linked_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_indicators_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "indicator_id", name=op.f("pk_case_indicators")),
    )
    with op.batch_alter_table("case_indicators", schema=None) as batch_op:
        batch_op.create_index("ix_case_indicators_indicator", ["indicator_id"], unique=False)

    op.create_table(
        "case_participants",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("added_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("added_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_participants_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_case_participants_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "org_id", name=op.f("pk_case_participants")),
    )
    with op.batch_alter_table("case_participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_participants_org_id"), ["org_id"], unique=False)

    op.create_table(
        "case_techniques",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("technique_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("added_at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_techniques_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "technique_id", name=op.f("pk_case_techniques")),
    )
    with op.batch_alter_table("case_techniques", schema=None) as batch_op:
        batch_op.create_index("ix_case_techniques_technique", ["technique_id"], unique=False)

    op.create_table(
        "case_timeline",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", concord.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind in ('comment','status','assign','link','participant','technique',"
            "'create','update')",
            name=op.f("ck_case_timeline_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_timeline_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_timeline")),
    )
    with op.batch_alter_table("case_timeline", schema=None) as batch_op:
        batch_op.create_index("ix_case_timeline_case", ["case_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("case_timeline")
    op.drop_table("case_techniques")
    op.drop_table("case_participants")
    op.drop_table("case_indicators")
    op.drop_table("case_events")
    op.drop_table("cases")
