"""what the centre or a partner reported is no state's

Events and sightings took the country of the organisation that reported them, so a centre
with its seat in a member state counted its reports as that state's: in cross-state
correlations, in the state's reports and on its cases board. Intake now gives them no
state; this revision does the same to what is stored, and clears the cross-state flag of
indicators that only the centre's or a partner's reports made cross-state. The next
correlation pass (`concord correlate`, or the worker's) recomputes campaigns; alerts are read
only while the reader's visible events show two states, so those that lost their second
state no longer show.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 23:25:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NO_STATE = "SELECT id FROM organizations WHERE kind IN ('centre', 'partner')"


def upgrade() -> None:
    op.execute(
        f"UPDATE events SET country = NULL WHERE country IS NOT NULL "
        f"AND origin_org_id IN ({NO_STATE})"
    )
    op.execute(
        f"UPDATE sightings SET country = NULL WHERE country IS NOT NULL AND org_id IN ({NO_STATE})"
    )
    op.execute(
        "UPDATE indicators SET cross_state = false WHERE cross_state AND id NOT IN ("
        "SELECT indicator_id FROM sightings WHERE country IS NOT NULL "
        "GROUP BY indicator_id HAVING count(DISTINCT country) >= 2)"
    )


def downgrade() -> None:
    # The countries cleared are those of the organisations' seats, which are still stored.
    op.execute(
        "UPDATE events SET country = (SELECT country FROM organizations "
        "WHERE organizations.id = events.origin_org_id) "
        f"WHERE country IS NULL AND origin_org_id IN ({NO_STATE})"
    )
    op.execute(
        "UPDATE sightings SET country = (SELECT country FROM organizations "
        "WHERE organizations.id = sightings.org_id) "
        f"WHERE country IS NULL AND org_id IN ({NO_STATE})"
    )
