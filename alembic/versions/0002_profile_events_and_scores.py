"""profile events, image hash variants, profile indicator scores

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profile_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("other_profile_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["other_profile_id"],
            ["candidate_profiles.id"],
            name=op.f("fk_profile_events_other_profile_id_candidate_profiles"),
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["candidate_profiles.id"],
            name=op.f("fk_profile_events_profile_id_candidate_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_events")),
    )
    with op.batch_alter_table("profile_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_events_profile_id"), ["profile_id"], unique=False
        )

    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        # Existing rows get an empty list; the next link run recomputes nothing from it.
        batch_op.add_column(
            sa.Column("phash_variants", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )

    with op.batch_alter_table("candidate_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("indicator_score", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("indicator_model_version", sa.String(length=50), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "indicator_assessment",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("candidate_profiles", schema=None) as batch_op:
        batch_op.drop_column("indicator_assessment")
        batch_op.drop_column("indicator_model_version")
        batch_op.drop_column("indicator_score")

    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.drop_column("phash_variants")

    with op.batch_alter_table("profile_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_events_profile_id"))

    op.drop_table("profile_events")
