"""an IPv6 network searched for finds the events of the addresses in it

IPv6 addresses are stored as compressed text, whose order is not the addresses' order, so a
network searched for found only events that reported the network itself. Each IPv6 indicator
now keeps its address as 32 hex digits as well, indexed where set: a network is one range.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 06:10:00.000000
"""

from __future__ import annotations

import ipaddress

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BATCH = 5000


def _hex(value: str) -> str | None:
    try:
        return f"{int(ipaddress.IPv6Address(value)):032x}"
    except ValueError:
        return None


def upgrade() -> None:
    column = sa.String(32).with_variant(sa.String(32, collation="C"), "postgresql")
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ipv6_hex", column, nullable=True))
    conn = op.get_bind()
    # in steps along the primary key, so the table is read once however many steps it takes
    page = sa.text(
        "SELECT id, value FROM indicators WHERE kind = 'ipv6' AND id > :after "
        f"ORDER BY id LIMIT {BATCH}"
    )
    update = sa.text("UPDATE indicators SET ipv6_hex = :hex WHERE id = :id")
    after = 0
    while chunk := conn.execute(page, {"after": after}).all():
        keys = [{"id": i, "hex": h} for i, value in chunk if (h := _hex(value)) is not None]
        if keys:
            conn.execute(update, keys)
        after = chunk[-1][0]
    op.create_index(
        "ix_indicators_ipv6_hex",
        "indicators",
        ["ipv6_hex"],
        sqlite_where=sa.text("ipv6_hex IS NOT NULL"),
        postgresql_where=sa.text("ipv6_hex IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_indicators_ipv6_hex", table_name="indicators")
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.drop_column("ipv6_hex")
