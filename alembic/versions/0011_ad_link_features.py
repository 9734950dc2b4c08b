"""what linking compares of each ad is kept with the ad

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Linking used to compute every stored ad's features again (phones, boilerplate, MinHash
signature) for each new batch. They are now kept per ad when it is first linked; ads
linked before this revision get theirs at the next linking of their case. Each ad's
indicator assessment is kept beside them, with the digest of the model that made it, so
that re-scoring a profile does not assess its older ads again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ad_link_features",
        sa.Column("ad_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.String(length=40), nullable=False),
        sa.Column("owner_key", sa.String(length=16), nullable=False),
        sa.Column("sentence_keys", sa.LargeBinary(), nullable=False),
        sa.Column("distinctive_text", sa.Text(), nullable=False),
        sa.Column("distinctive_share", sa.Float(), nullable=False),
        sa.Column("text_signature", sa.LargeBinary(), nullable=False),
        sa.Column("ad_assessment_digest", sa.String(length=64), nullable=True),
        sa.Column("ad_assessment", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["ad_id"], ["ads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ad_id"),
    )


def downgrade() -> None:
    op.drop_table("ad_link_features")
