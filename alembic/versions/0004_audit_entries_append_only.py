"""audit entries append-only: triggers refuse UPDATE, DELETE and TRUNCATE

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

The hash chain detects a changed log; these triggers stop the application (or anyone
connected as it) from changing it at all. Only the table's owner can remove them, and on
PostgreSQL the application connects as another role (``storage.privileges``). On SQLite
there are no roles: whoever can write the file can drop the triggers, which is why the
checkpoint file is kept outside the database.

Note for later migrations: on SQLite, ``batch_alter_table("audit_entries")`` recreates the
table and with it drops these triggers; such a migration must create them again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Both raise an integrity error (SQLite's RAISE(ABORT) is SQLITE_CONSTRAINT; PostgreSQL
# is given SQLSTATE 23000), so the application sees the same exception on either.
SQLITE_TRIGGERS = {
    "audit_entries_no_update": "UPDATE",
    "audit_entries_no_delete": "DELETE",
}

POSTGRES_FUNCTION = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""

# Statement level: refused even when no row matches, and TRUNCATE has no rows at all.
POSTGRES_TRIGGER = """
CREATE TRIGGER audit_entries_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name, operation in SQLITE_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON audit_entries "
                f"BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only: {operation} "
                "is not allowed'); END"
            )
    elif dialect == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        raise NotImplementedError(f"no append-only triggers for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION IF EXISTS audit_entries_append_only()")
