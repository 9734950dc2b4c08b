"""ad phones keep the order in which the ad wrote them; images keep their dHashes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

Linking takes an ad's first number that is not a hub as its author; read back sorted by
number, a site's help-desk line (+3185…) came before the advertiser's mobile (+316…).
Rows stored before this revision keep position 0 and are read in number order, as before.

A photo match near the radius links only when the dHashes agree too; images stored before
this revision have none (NULL), so such a match of theirs is not confirmed. Memberships
record the linkage model version that made them (NULL for older ones).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ad_phones", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("position", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dhashes", sa.JSON(), nullable=True))
    with op.batch_alter_table("profile_memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("linkage_version", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_memberships", schema=None) as batch_op:
        batch_op.drop_column("linkage_version")
    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.drop_column("dhashes")
    with op.batch_alter_table("ad_phones", schema=None) as batch_op:
        batch_op.drop_column("position")
