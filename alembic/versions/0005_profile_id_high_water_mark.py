"""profile id high-water mark: ids of purged profiles are never given out again

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_counters",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_id_counters")),
    )
    op.execute(
        "INSERT INTO id_counters (name, next_value) "
        "SELECT 'candidate_profiles', COALESCE(MAX(id), 0) + 1 FROM candidate_profiles"
    )


def downgrade() -> None:
    op.drop_table("id_counters")
