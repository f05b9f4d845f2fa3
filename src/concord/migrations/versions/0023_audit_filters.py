"""the audit log is filtered by action and by actor, newest first, through an index each

The audit page and `GET /api/v1/audit` filter by action and actor; the log holds a record
per read, so without these a rare action (a disabled account) was found by reading every
record newer than it.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 02:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_action_seq", "audit_log", ["action", "seq"])
    op.create_index("ix_audit_log_actor_seq", "audit_log", ["actor", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_action_seq", table_name="audit_log")
