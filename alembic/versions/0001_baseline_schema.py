"""baseline schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_audit_entries_entry_hash")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_entries_seq")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)

    op.create_table(
        "authorisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(length=100), nullable=False),
        sa.Column("legal_basis", sa.String(length=50), nullable=False),
        sa.Column("order_reference", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=50), nullable=False),
        sa.Column("officer", sa.String(length=200), nullable=False),
        sa.Column("dpia_reference", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_pages_per_run", sa.Integer(), nullable=False),
        sa.Column("max_runs_per_day", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorisations")),
    )
    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorisations_case_number"), ["case_number"], unique=False
        )

    op.create_table(
        "candidate_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject_category", sa.String(length=30), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["candidate_profiles.id"],
            name=op.f("fk_candidate_profiles_merged_into_id_candidate_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_profiles")),
    )
    op.create_table(
        "phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phones")),
        sa.UniqueConstraint("e164", name=op.f("uq_phones_e164")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("profile_sha256", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("key", name=op.f("uq_sites_key")),
    )
    op.create_table(
        "authorisation_sites",
        sa.Column("authorisation_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["authorisation_id"],
            ["authorisations.id"],
            name=op.f("fk_authorisation_sites_authorisation_id_authorisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_authorisation_sites_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("authorisation_id", "site_id", name=op.f("pk_authorisation_sites")),
    )
    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("authorisation_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("software_version", sa.String(length=50), nullable=False),
        sa.Column("profile_sha256", sa.String(length=64), nullable=False),
        sa.Column("pages_fetched", sa.Integer(), nullable=False),
        sa.Column("ads_captured", sa.Integer(), nullable=False),
        sa.Column("ads_unchanged", sa.Integer(), nullable=False),
        sa.Column("images_stored", sa.Integer(), nullable=False),
        sa.Column("requests_refused", sa.Integer(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["authorisation_id"],
            ["authorisations.id"],
            name=op.f("fk_crawl_runs_authorisation_id_authorisations"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_crawl_runs_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_runs")),
    )
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_crawl_runs_authorisation_id"), ["authorisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_crawl_runs_site_id"), ["site_id"], unique=False)

    op.create_table(
        "ads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("authorisation_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["authorisation_id"],
            ["authorisations.id"],
            name=op.f("fk_ads_authorisation_id_authorisations"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["crawl_runs.id"], name=op.f("fk_ads_run_id_crawl_runs")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_ads_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ads")),
        sa.UniqueConstraint("site_id", "url", "content_sha256", name=op.f("uq_ads_site_id")),
    )
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ads_authorisation_id"), ["authorisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ads_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ads_site_id"), ["site_id"], unique=False)
        batch_op.create_index("ix_ads_site_url", ["site_id", "url"], unique=False)

    op.create_table(
        "ad_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ad_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ad_id"], ["ads.id"], name=op.f("fk_ad_images_ad_id_ads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_images")),
    )
    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ad_images_ad_id"), ["ad_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ad_images_blob_sha256"), ["blob_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_ad_images_phash"), ["phash"], unique=False)

    op.create_table(
        "ad_phones",
        sa.Column("ad_id", sa.Integer(), nullable=False),
        sa.Column("phone_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["ad_id"], ["ads.id"], name=op.f("fk_ad_phones_ad_id_ads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["phone_id"], ["phones.id"], name=op.f("fk_ad_phones_phone_id_phones")
        ),
        sa.PrimaryKeyConstraint("ad_id", "phone_id", name=op.f("pk_ad_phones")),
    )
    with op.batch_alter_table("ad_phones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ad_phones_phone_id"), ["phone_id"], unique=False)

    op.create_table(
        "profile_memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("ad_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ad_id"], ["ads.id"], name=op.f("fk_profile_memberships_ad_id_ads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["candidate_profiles.id"],
            name=op.f("fk_profile_memberships_profile_id_candidate_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_memberships")),
        sa.UniqueConstraint("ad_id", name=op.f("uq_profile_memberships_ad_id")),
    )
    with op.batch_alter_table("profile_memberships", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_memberships_profile_id"), ["profile_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("profile_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_memberships_profile_id"))

    op.drop_table("profile_memberships")
    with op.batch_alter_table("ad_phones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ad_phones_phone_id"))

    op.drop_table("ad_phones")
    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ad_images_phash"))
        batch_op.drop_index(batch_op.f("ix_ad_images_blob_sha256"))
        batch_op.drop_index(batch_op.f("ix_ad_images_ad_id"))

    op.drop_table("ad_images")
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.drop_index("ix_ads_site_url")
        batch_op.drop_index(batch_op.f("ix_ads_site_id"))
        batch_op.drop_index(batch_op.f("ix_ads_run_id"))
        batch_op.drop_index(batch_op.f("ix_ads_authorisation_id"))

    op.drop_table("ads")
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crawl_runs_site_id"))
        batch_op.drop_index(batch_op.f("ix_crawl_runs_authorisation_id"))

    op.drop_table("crawl_runs")
    op.drop_table("authorisation_sites")
    op.drop_table("sites")
    op.drop_table("phones")
    op.drop_table("candidate_profiles")
    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorisations_case_number"))

    op.drop_table("authorisations")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_action"))

    op.drop_table("audit_entries")
