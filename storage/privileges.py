"""Database roles: the application may append to the audit log, never alter or empty it.

On PostgreSQL the schema owner (``ADWATCH_MIGRATION_DATABASE_URL``) runs the migrations and
owns every table, and with them the append-only triggers. The application connects as
another role (``ADWATCH_DATABASE_URL``) that may read and write the other tables but only
SELECT and INSERT audit entries; it can neither drop nor disable the triggers, which only
an owner or a superuser can. ``adwatch db upgrade`` grants exactly that and warns when the
application's role could still alter or empty the audit table.

SQLite has no roles: whoever may write the database file may drop the triggers. There the
checkpoint file kept on other storage is what detects a shortened log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from storage.db import DatabaseUnavailable, describe_dbapi_error, make_engine

AUDIT_TABLE = "audit_entries"
# Migrations' own bookkeeping: the application reads it (is the schema current?) only.
VERSION_TABLE = "alembic_version"

SQLITE_NOTE = (
    "SQLite has no database roles: whoever can write the database file can drop the audit "
    "table's triggers; keep the audit checkpoint file on other storage"
)


@dataclass(frozen=True, slots=True)
class RoleSetup:
    """What ``secure_application_role`` found and did."""

    backend: str
    application_role: str | None
    migration_role: str | None
    # Whether privileges were granted to the application's role (a role other than the owner).
    granted: bool
    # Ways the application's role could still alter or empty the audit table.
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()


def secure_application_role(migration_url: str, application_url: str) -> RoleSetup:
    """Grant the application's role what it needs when it is not the schema owner, then
    check what it could do to the audit table; run after the migrations."""
    with _connection(application_url) as app:
        if app.dialect.name != "postgresql":
            return RoleSetup(app.dialect.name, None, None, False, (), (SQLITE_NOTE,))
        app_role, app_database = app.execute(text("SELECT current_user, current_database()")).one()
    with _connection(migration_url) as owner:
        owner_role, owner_database = owner.execute(
            text("SELECT current_user, current_database()")
        ).one()
        if owner_database != app_database:
            warning = (
                f"the migration URL names database {owner_database!r}, the application URL "
                f"{app_database!r}: no privileges were granted"
            )
            return RoleSetup("postgresql", app_role, owner_role, False, (warning,))
        granted = app_role != owner_role
        if granted:
            grant_application_privileges(owner, app_role)
            owner.commit()
    # Checked as the application itself: role memberships and PUBLIC grants count too.
    with _connection(application_url) as app:
        warnings = audit_table_powers(app)
    return RoleSetup("postgresql", app_role, owner_role, granted, tuple(warnings))


def grant_application_privileges(owner: Connection, role: str) -> None:
    """As the schema owner: read and write every table, but only SELECT and INSERT audit
    entries and only SELECT the migration version; use the sequences."""
    quote = owner.dialect.identifier_preparer.quote_identifier
    schema = owner.execute(
        text(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(:table)"
        ),
        {"table": AUDIT_TABLE},
    ).scalar_one_or_none()
    if schema is None:
        raise DatabaseUnavailable(f"table {AUDIT_TABLE} not found: run the migrations first")
    grantee, schema_name = quote(role), quote(schema)
    audit, version = f"{schema_name}.{AUDIT_TABLE}", f"{schema_name}.{VERSION_TABLE}"
    for statement in (
        f"GRANT USAGE ON SCHEMA {schema_name} TO {grantee}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_name} TO {grantee}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_name} TO {grantee}",
        # Revoked from PUBLIC too: every role inherits what PUBLIC holds.
        f"REVOKE ALL ON {audit} FROM PUBLIC",
        f"REVOKE ALL ON {audit} FROM {grantee}",
        f"GRANT SELECT, INSERT ON {audit} TO {grantee}",
        f"REVOKE ALL ON {version} FROM {grantee}",
        f"GRANT SELECT ON {version} TO {grantee}",
    ):
        owner.execute(text(statement))


def audit_table_powers(connection: Connection) -> list[str]:
    """How the connected role could alter or empty the audit table (empty: it cannot)."""
    row = connection.execute(
        text(
            "SELECT r.rolsuper AS superuser, "
            "pg_has_role(current_user, c.relowner, 'MEMBER') AS owns_table, "
            "pg_has_role(current_user, n.nspowner, 'MEMBER') AS owns_schema, "
            "n.nspname AS schema, "
            "has_table_privilege(c.oid, 'UPDATE') AS can_update, "
            "has_table_privilege(c.oid, 'DELETE') AS can_delete, "
            "has_table_privilege(c.oid, 'TRUNCATE') AS can_truncate "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_roles r ON r.rolname = current_user "
            "WHERE c.oid = to_regclass(:table)"
        ),
        {"table": AUDIT_TABLE},
    ).one_or_none()
    role = connection.execute(text("SELECT current_user")).scalar_one()
    if row is None:
        return [f"table {AUDIT_TABLE} not found: run the migrations first"]
    if row.superuser:
        return [
            f"the application connects as {role!r}, a superuser: it can disable the audit "
            "table's triggers and empty it; connect as a role of its own "
            "(see README, PostgreSQL roles)"
        ]
    warnings = []
    if row.owns_table:
        warnings.append(
            f"the application's role {role!r} owns {AUDIT_TABLE} (or is a member of its "
            "owner): it can drop the append-only triggers and empty the table; connect as "
            "a role of its own and migrate with ADWATCH_MIGRATION_DATABASE_URL"
        )
    if row.owns_schema:
        warnings.append(
            f"the application's role {role!r} owns schema {row.schema!r} (or is a member of "
            f"its owner): it can drop {AUDIT_TABLE}"
        )
    held = (
        []
        if row.owns_table
        else [  # an owner can do anything to it anyway
            name
            for name, has in (
                ("UPDATE", row.can_update),
                ("DELETE", row.can_delete),
                ("TRUNCATE", row.can_truncate),
            )
            if has
        ]
    )
    if held:
        warnings.append(
            f"the application's role {role!r} holds {', '.join(held)} on {AUDIT_TABLE}: "
            "run `adwatch db upgrade` with ADWATCH_MIGRATION_DATABASE_URL set to the owner"
        )
    return warnings


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    except DBAPIError as exc:
        raise DatabaseUnavailable(describe_dbapi_error(exc)) from None
    finally:
        engine.dispose()
