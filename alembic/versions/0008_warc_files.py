"""WARC files of crawl runs, with case and expiry

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warc_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_warc_files_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["crawl_runs.id"], name=op.f("fk_warc_files_run_id_crawl_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warc_files")),
        sa.UniqueConstraint("path", name=op.f("uq_warc_files_path")),
    )
    with op.batch_alter_table("warc_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warc_files_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_warc_files_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_warc_files_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("warc_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warc_files_run_id"))
        batch_op.drop_index(batch_op.f("ix_warc_files_expires_at"))
        batch_op.drop_index(batch_op.f("ix_warc_files_case_id"))

    op.drop_table("warc_files")
