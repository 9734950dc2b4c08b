"""Migration 0004: the database itself refuses UPDATE, DELETE and TRUNCATE of audit entries."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event, verify_stored_chain
from storage.db import alembic_config, make_engine, make_session_factory, upgrade_database
from storage.models import AuditEntry


def _append(session_factory: sessionmaker[Session], n: int) -> None:
    with session_factory.begin() as session:
        for i in range(n):
            record_event(session, AuditEvent(action="test.written", actor="a", subject=f"s{i}"))


def _count(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def _refused(session_factory: sessionmaker[Session], statement: object) -> None:
    with pytest.raises(IntegrityError, match="append-only"), session_factory.begin() as session:
        session.execute(statement)  # type: ignore[call-overload]


def test_update_and_delete_are_refused_and_the_chain_stays(
    session_factory: sessionmaker[Session],
) -> None:
    _append(session_factory, 3)
    _refused(session_factory, update(AuditEntry).where(AuditEntry.seq == 2).values(actor="x"))
    _refused(session_factory, update(AuditEntry).values(justification="rewritten"))
    _refused(session_factory, delete(AuditEntry).where(AuditEntry.seq == 3))
    # SQLite empties a table without a WHERE clause by its truncate shortcut, unless a
    # trigger is there: this is the "TRUNCATE" of SQLite.
    _refused(session_factory, delete(AuditEntry))
    assert _count(session_factory) == 3
    with session_factory() as session:
        result = verify_stored_chain(session)
        assert result.ok and result.entries_checked == 3


def test_appending_still_works(session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 2)
    _append(session_factory, 1)
    assert _count(session_factory) == 3


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(postgres_url: str) -> None:
    upgrade_database(postgres_url)
    engine = make_engine(postgres_url)
    try:
        factory = make_session_factory(engine)
        _append(factory, 2)
        # Statement-level trigger: refused even when nothing would change.
        _refused(factory, text("TRUNCATE audit_entries"))
        _refused(factory, text("DELETE FROM audit_entries WHERE false"))
        assert _count(factory) == 2
    finally:
        engine.dispose()


def test_downgrade_removes_the_triggers_and_upgrade_restores_them(database_url: str) -> None:
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    try:
        _append(factory, 2)
        command.downgrade(alembic_config(database_url), "0003")
        with factory.begin() as session:
            session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(actor="x"))
        upgrade_database(database_url)
        _refused(factory, update(AuditEntry).where(AuditEntry.seq == 1).values(actor="y"))
        with factory() as session:
            assert session.scalar(select(AuditEntry.actor).where(AuditEntry.seq == 1)) == "x"
    finally:
        engine.dispose()
