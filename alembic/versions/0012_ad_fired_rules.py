"""an ad keeps which indicator rules fired, not its whole assessment

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

A profile's score reads of its ads' assessments only which ad rules fired (and that the
same model made them). Reading every member's whole assessment back as JSON was most of
the cost of scoring a large profile again; the fired rule ids are now kept as one short
text column instead. Kept assessments are dropped with the old column and made again,
from each ad's text, the next time its profile is scored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ad_link_features") as batch:
        batch.add_column(sa.Column("ad_fired_rules", sa.Text(), nullable=True))
        batch.drop_column("ad_assessment")
    op.execute("UPDATE ad_link_features SET ad_assessment_digest = NULL")


def downgrade() -> None:
    with op.batch_alter_table("ad_link_features") as batch:
        batch.add_column(sa.Column("ad_assessment", sa.JSON(), nullable=True))
        batch.drop_column("ad_fired_rules")
    op.execute("UPDATE ad_link_features SET ad_assessment_digest = NULL")
