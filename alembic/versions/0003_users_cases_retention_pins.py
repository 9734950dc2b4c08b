"""users, cases and need-to-know; authorisation pins; retention and minimisation columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Existing data is carried over: every case number named by an authorisation becomes a case,
each authorised site is pinned to the profile hash recorded for it, and every ad gets the
case, legal basis and expiry of its authorisation (retention as the bundled catalogue had
it when this migration was written: Wpg art. 8 one year from capture, the others 182 days
after the authorisation ended). Profiles whose category was never set by an analyst
become "unknown".
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MIGRATOR = "migration 0003"


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


def _stored(value: datetime, dialect: str) -> datetime:
    # UTCDateTime keeps naive UTC on SQLite and timestamptz on PostgreSQL.
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_cases_number")),
    )
    op.create_table(
        "retention_settings",
        sa.Column("legal_basis", sa.String(length=50), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("legal_basis", name=op.f("pk_retention_settings")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("legal_basis", sa.String(length=50), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_blobs_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sha256", "case_id", name=op.f("pk_blobs")),
    )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blobs_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_blobs_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "case_combinations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_a_id", sa.Integer(), nullable=False),
        sa.Column("case_b_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("combined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("combined_by", sa.String(length=100), nullable=False),
        sa.Column("separated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("separated_by", sa.String(length=100), nullable=True),
        sa.Column("separation_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_a_id"], ["cases.id"], name=op.f("fk_case_combinations_case_a_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["case_b_id"], ["cases.id"], name=op.f("fk_case_combinations_case_b_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_combinations")),
    )
    with op.batch_alter_table("case_combinations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_combinations_case_a_id"), ["case_a_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_case_combinations_case_b_id"), ["case_b_id"], unique=False
        )

    op.create_table(
        "case_members",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_members_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_case_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "user_id", name=op.f("pk_case_members")),
    )
    with op.batch_alter_table("case_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "profile_category_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("previous", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["candidate_profiles.id"],
            name=op.f("fk_profile_category_changes_profile_id_candidate_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_category_changes")),
    )
    with op.batch_alter_table("profile_category_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_category_changes_profile_id"), ["profile_id"], unique=False
        )

    # New columns arrive nullable, are filled from what is stored, then become required.
    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("monitor_baseline", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("monitor_reviewed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("monitor_reviewed_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("authorisation_sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("allowed_origins", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("legal_basis", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("minimisation", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )

    _carry_over_existing_data()

    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_authorisations_case_id"), ["case_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_authorisations_case_id_cases"), "cases", ["case_id"], ["id"]
        )
    with op.batch_alter_table("authorisation_sites", schema=None) as batch_op:
        batch_op.alter_column("profile_sha256", existing_type=sa.String(64), nullable=False)
        batch_op.alter_column(
            "reviewed_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("reviewed_by", existing_type=sa.String(100), nullable=False)
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("legal_basis", existing_type=sa.String(50), nullable=False)
        batch_op.alter_column(
            "expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("title", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("text", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("raw_sha256", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index(batch_op.f("ix_ads_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ads_expires_at"), ["expires_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_ads_case_id_cases"), "cases", ["case_id"], ["id"]
        )

    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.alter_column("blob_sha256", existing_type=sa.String(length=64), nullable=True)

    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cases", sa.String(length=1000), nullable=True))

    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stop_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("logs_purged_at", sa.DateTime(timezone=True), nullable=True))

    op.execute(
        "UPDATE candidate_profiles SET subject_category = 'unknown' "
        "WHERE subject_category = 'possible_victim'"
    )


def _carry_over_existing_data() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    now = _stored(datetime.now(UTC), dialect)
    authorisations = bind.execute(
        sa.text(
            "SELECT id, case_number, legal_basis, valid_until, revoked_at, registered_at, "
            "registered_by FROM authorisations ORDER BY id"
        )
    ).all()
    case_ids: dict[str, int] = {}
    for row in authorisations:
        if row.case_number not in case_ids:
            bind.execute(
                sa.text(
                    "INSERT INTO cases (number, title, created_at, created_by) "
                    "VALUES (:number, '', :at, :by)"
                ),
                {"number": row.case_number, "at": now, "by": MIGRATOR},
            )
            case_ids[row.case_number] = bind.execute(
                sa.text("SELECT id FROM cases WHERE number = :number"),
                {"number": row.case_number},
            ).scalar_one()
        bind.execute(
            sa.text("UPDATE authorisations SET case_id = :case_id WHERE id = :id"),
            {"case_id": case_ids[row.case_number], "id": row.id},
        )
    for pin in bind.execute(
        sa.text(
            "SELECT p.authorisation_id, p.site_id, s.base_url, s.profile_sha256, "
            "a.registered_at, a.registered_by FROM authorisation_sites p "
            "JOIN sites s ON s.id = p.site_id JOIN authorisations a ON a.id = p.authorisation_id"
        )
    ).all():
        bind.execute(
            sa.text(
                "UPDATE authorisation_sites SET profile_sha256 = :sha, allowed_origins = :origins, "
                "reviewed_at = :at, reviewed_by = :by "
                "WHERE authorisation_id = :authorisation_id AND site_id = :site_id"
            ),
            {
                "sha": pin.profile_sha256,
                "origins": f'["{_origin(pin.base_url)}"]',
                "at": pin.registered_at,
                "by": pin.registered_by,
                "authorisation_id": pin.authorisation_id,
                "site_id": pin.site_id,
            },
        )
    terms = {row.id: row for row in authorisations}
    for ad in bind.execute(
        sa.text("SELECT id, authorisation_id, captured_at FROM ads ORDER BY id")
    ).all():
        row = terms[ad.authorisation_id]
        if row.legal_basis == "wpg-8":
            expires = _aware(ad.captured_at) + timedelta(days=365)  # type: ignore[operator]
        else:
            ended = min(
                value for value in (_aware(row.valid_until), _aware(row.revoked_at)) if value
            )
            expires = ended + timedelta(days=182)
        bind.execute(
            sa.text(
                "UPDATE ads SET case_id = :case_id, legal_basis = :basis, expires_at = :expires "
                "WHERE id = :id"
            ),
            {
                "case_id": case_ids[row.case_number],
                "basis": row.legal_basis,
                "expires": _stored(expires, dialect),
                "id": ad.id,
            },
        )
    for sha256, case_id, kind, basis, expires in bind.execute(
        sa.text(
            "SELECT raw_sha256, case_id, 'page', legal_basis, MAX(expires_at) FROM ads "
            "WHERE raw_sha256 IS NOT NULL GROUP BY raw_sha256, case_id, legal_basis "
            "UNION ALL "
            "SELECT i.blob_sha256, a.case_id, 'image', a.legal_basis, MAX(a.expires_at) "
            "FROM ad_images i JOIN ads a ON a.id = i.ad_id "
            "GROUP BY i.blob_sha256, a.case_id, a.legal_basis"
        )
    ).all():
        exists = bind.execute(
            sa.text("SELECT 1 FROM blobs WHERE sha256 = :sha AND case_id = :case_id"),
            {"sha": sha256, "case_id": case_id},
        ).first()
        if exists is None:
            bind.execute(
                sa.text(
                    "INSERT INTO blobs (sha256, case_id, kind, legal_basis, stored_at, "
                    "expires_at) VALUES (:sha, :case_id, :kind, :basis, :at, :expires)"
                ),
                {
                    "sha": sha256,
                    "case_id": case_id,
                    "kind": kind,
                    "basis": basis,
                    "at": now,
                    "expires": expires,
                },
            )


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.drop_column("logs_purged_at")
        batch_op.drop_column("stop_reason")

    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("cases")

    with op.batch_alter_table("authorisations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_authorisations_case_id_cases"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_authorisations_case_id"))
        batch_op.drop_column("monitor_reviewed_by")
        batch_op.drop_column("monitor_reviewed_at")
        batch_op.drop_column("monitor_baseline")
        batch_op.drop_column("pause_reason")
        batch_op.drop_column("paused_at")
        batch_op.drop_column("case_id")

    with op.batch_alter_table("authorisation_sites", schema=None) as batch_op:
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("allowed_origins")
        batch_op.drop_column("profile_sha256")

    # Rows whose dropped fields are NULL cannot go back to a schema that requires them.
    op.execute("DELETE FROM ad_images WHERE blob_sha256 IS NULL")
    op.execute("UPDATE ads SET title = '' WHERE title IS NULL")
    op.execute("UPDATE ads SET text = '' WHERE text IS NULL")
    op.execute("UPDATE ads SET raw_sha256 = '' WHERE raw_sha256 IS NULL")
    with op.batch_alter_table("ads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ads_case_id_cases"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ads_expires_at"))
        batch_op.drop_index(batch_op.f("ix_ads_case_id"))
        batch_op.alter_column("raw_sha256", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("text", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("title", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("minimisation")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("legal_basis")
        batch_op.drop_column("case_id")

    with op.batch_alter_table("ad_images", schema=None) as batch_op:
        batch_op.alter_column("blob_sha256", existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table("profile_category_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_category_changes_profile_id"))
    op.drop_table("profile_category_changes")
    with op.batch_alter_table("case_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_members_user_id"))
    op.drop_table("case_members")
    with op.batch_alter_table("case_combinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_combinations_case_b_id"))
        batch_op.drop_index(batch_op.f("ix_case_combinations_case_a_id"))
    op.drop_table("case_combinations")
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blobs_expires_at"))
        batch_op.drop_index(batch_op.f("ix_blobs_case_id"))
    op.drop_table("blobs")
    op.drop_table("users")
    op.drop_table("retention_settings")
    op.drop_table("cases")
