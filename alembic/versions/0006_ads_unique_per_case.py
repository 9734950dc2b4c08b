"""an ad version is unique per case, not per site: two cases keep their own copies

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.drop_constraint("uq_ads_site_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_ads_case_id"), ["case_id", "site_id", "url", "content_sha256"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_ads_case_id"), type_="unique")
        batch_op.create_unique_constraint("uq_ads_site_id", ["site_id", "url", "content_sha256"])
