"""schedules, and APScheduler's job store table

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

APScheduler's SQLAlchemyJobStore would create ``apscheduler_jobs`` itself; it is made here,
with the job store's own definition, so that the schema changes only through migrations.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apscheduler_jobs")),
    )
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_apscheduler_jobs_next_run_time"), ["next_run_time"], unique=False
        )

    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("authorisation_id", sa.Integer(), nullable=False),
        sa.Column("site_key", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("expression", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["authorisation_id"],
            ["authorisations.id"],
            name=op.f("fk_schedules_authorisation_id_authorisations"),
        ),
        sa.ForeignKeyConstraint(
            ["last_run_id"], ["crawl_runs.id"], name=op.f("fk_schedules_last_run_id_crawl_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schedules_authorisation_id"), ["authorisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedules_authorisation_id"))

    op.drop_table("schedules")
    with op.batch_alter_table("apscheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apscheduler_jobs_next_run_time"))

    op.drop_table("apscheduler_jobs")
