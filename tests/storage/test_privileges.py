"""On PostgreSQL the application's own role may append to the audit log and nothing more.

Real roles are created in the test server (unique names, dropped afterwards); the schema
is migrated as ``postgres``, the owner, as ``adwatch db upgrade`` does with
ADWATCH_MIGRATION_DATABASE_URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event, verify_stored_chain
from legal_policy.registry import bootstrap_administrator
from storage.db import (
    ensure_schema_current,
    make_engine,
    make_session_factory,
    upgrade_database,
)
from storage.privileges import SQLITE_NOTE, audit_table_powers, secure_application_role


def _admin(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}", autocommit=True
    )


@pytest.fixture
def app_role(postgres_url: str) -> Iterator[str]:
    """A fresh login role, without privileges, dropped after the test."""
    name = f"adwatch_app_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield name
    finally:
        # Its grants live in the test database: drop them there, then the role.
        with _admin(make_url(postgres_url).database or "") as db:
            db.execute(f'DROP OWNED BY "{name}"')
        with _admin() as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def _as(postgres_url: str, role: str) -> str:
    return make_url(postgres_url).set(username=role).render_as_string(hide_password=False)


@pytest.fixture
def app_engine(postgres_url: str, app_role: str) -> Iterator[Engine]:
    upgrade_database(postgres_url)
    setup = secure_application_role(postgres_url, _as(postgres_url, app_role))
    assert setup.granted and setup.warnings == ()
    assert (setup.application_role, setup.migration_role) == (app_role, "postgres")
    engine = make_engine(_as(postgres_url, app_role))
    yield engine
    engine.dispose()


def _refused(engine: Engine, statement: str, message: str) -> None:
    with pytest.raises(ProgrammingError, match=message), engine.begin() as connection:
        connection.execute(text(statement))


@pytest.mark.postgres
def test_the_application_role_appends_but_cannot_alter_or_empty_the_log(
    app_engine: Engine,
) -> None:
    ensure_schema_current(app_engine)  # it may read the migration version
    factory = make_session_factory(app_engine)
    with factory.begin() as session:
        bootstrap_administrator(session, "admin", via="test")  # users + audit entry
        record_event(session, AuditEvent(action="test.written", actor="a", subject="s"))
    for statement in (
        "UPDATE audit_entries SET actor = 'x'",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
        "UPDATE alembic_version SET version_num = '0001'",
    ):
        _refused(app_engine, statement, "permission denied")
    for statement in (
        "DROP TRIGGER audit_entries_append_only ON audit_entries",
        "ALTER TABLE audit_entries DISABLE TRIGGER ALL",
        "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
        "DROP TABLE audit_entries",
        "DROP FUNCTION audit_entries_append_only()",
    ):
        _refused(app_engine, statement, "must be owner")
    with factory() as session:
        result = verify_stored_chain(session)
    assert result.ok and result.entries_checked == 2
    with app_engine.begin() as connection:  # other tables stay writable
        connection.execute(text("UPDATE users SET name = name"))
        connection.execute(text("DELETE FROM users WHERE false"))
        assert audit_table_powers(connection) == []


@pytest.mark.postgres
def test_connecting_as_postgres_is_warned_about(postgres_url: str) -> None:
    upgrade_database(postgres_url)
    setup = secure_application_role(postgres_url, postgres_url)
    assert not setup.granted
    assert len(setup.warnings) == 1 and "a superuser" in setup.warnings[0]


@pytest.mark.postgres
def test_a_role_holding_update_is_warned_about_and_upgrade_revokes_it(
    app_engine: Engine, postgres_url: str, app_role: str
) -> None:
    with _admin(make_url(postgres_url).database or "") as db:
        db.execute(f'GRANT UPDATE, TRUNCATE ON audit_entries TO "{app_role}"')
    with app_engine.connect() as connection:
        assert audit_table_powers(connection) == [
            f"the application's role {app_role!r} holds UPDATE, TRUNCATE on audit_entries: "
            "run `adwatch db upgrade` with ADWATCH_MIGRATION_DATABASE_URL set to the owner"
        ]
    setup = secure_application_role(postgres_url, _as(postgres_url, app_role))
    assert setup.warnings == ()


@pytest.mark.postgres
def test_a_member_of_the_owner_role_is_warned_about(
    app_engine: Engine, postgres_url: str, app_role: str
) -> None:
    with _admin() as admin:
        admin.execute(f'GRANT postgres TO "{app_role}"')
    try:
        with app_engine.connect() as connection:
            warnings = audit_table_powers(connection)
        assert "owns audit_entries" in warnings[0]
        assert "owns schema 'public'" in warnings[1]
    finally:
        with _admin() as admin:
            admin.execute(f'REVOKE postgres FROM "{app_role}"')


@pytest.mark.postgres
def test_urls_naming_different_databases_grant_nothing(postgres_url: str, app_role: str) -> None:
    upgrade_database(postgres_url)
    other = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    setup = secure_application_role(other, _as(postgres_url, app_role))
    assert not setup.granted
    assert "no privileges were granted" in setup.warnings[0]


def test_sqlite_has_no_roles_and_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    upgrade_database(url)
    setup = secure_application_role(url, url)
    assert (setup.backend, setup.granted, setup.warnings, setup.notes) == (
        "sqlite",
        False,
        (),
        (SQLITE_NOTE,),
    )
