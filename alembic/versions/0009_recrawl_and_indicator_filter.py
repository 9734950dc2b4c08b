"""recrawl validators, last seen, indicator score and threshold, robots exception

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "page_validators",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("ad_id", sa.Integer(), nullable=True),
        sa.Column("blob_sha256", sa.String(length=64), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ad_id"], ["ads.id"], name=op.f("fk_page_validators_ad_id_ads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_page_validators_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "url", name=op.f("pk_page_validators")),
    )
    with op.batch_alter_table("page_validators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_page_validators_ad_id"), ["ad_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_page_validators_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("indicator_score", sa.Float(), nullable=True))

    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "ads_below_threshold", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )

    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("indicator_threshold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("robots_exception", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.drop_column("ads_below_threshold")

    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.drop_column("robots_exception")
        batch_op.drop_column("indicator_threshold")

    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.drop_column("indicator_score")
        batch_op.drop_column("last_seen_at")

    with op.batch_alter_table("page_validators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_validators_expires_at"))
        batch_op.drop_index(batch_op.f("ix_page_validators_ad_id"))

    op.drop_table("page_validators")
