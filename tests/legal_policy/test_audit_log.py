"""The audit chain detects edits, deletions, reordering and truncation."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event, verify_stored_chain
from storage.models import AuditEntry


def _write(session_factory: sessionmaker[Session], n: int) -> str:
    with session_factory.begin() as session:
        for i in range(n):
            record_event(
                session,
                AuditEvent(
                    action="profiles.consulted",
                    actor="analyst",
                    subject=f"profile:{i}",
                    justification="case review",
                    properties={"i": i, "ids": [i, i + 1]},
                ),
            )
    with session_factory() as session:
        return verify_stored_chain(session).head_hash


def test_intact_chain_verifies(session_factory: sessionmaker[Session]) -> None:
    head = _write(session_factory, 5)
    with session_factory() as session:
        result = verify_stored_chain(session, head)
    assert result.ok and result.entries_checked == 5 and result.head_hash == head


def test_edited_entry_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 4)
    with session_factory.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone else"))
    with session_factory() as session:
        result = verify_stored_chain(session)
    assert not result.ok
    assert any("entry 2" in p and "edited" in p for p in result.problems)


def test_deleted_entry_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 4)
    with session_factory.begin() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    with session_factory() as session:
        assert not verify_stored_chain(session).ok


def test_reordering_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 3)
    with session_factory.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(seq=-1))
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(seq=1))
        session.execute(update(AuditEntry).where(AuditEntry.seq == -1).values(seq=2))
    with session_factory() as session:
        assert not verify_stored_chain(session).ok


def test_truncation_is_detected_against_an_exported_head(
    session_factory: sessionmaker[Session],
) -> None:
    head = _write(session_factory, 4)
    with session_factory.begin() as session:
        last = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
        session.execute(delete(AuditEntry).where(AuditEntry.seq == last))
    with session_factory() as session:
        assert verify_stored_chain(session).ok  # the rest still links...
        assert not verify_stored_chain(session, head).ok  # ...but the exported head is gone


def test_entry_rolls_back_with_the_change_it_records(
    session_factory: sessionmaker[Session],
) -> None:
    try:
        with session_factory.begin() as session:
            record_event(session, AuditEvent(action="x", actor="a", subject="s"))
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    with session_factory() as session:
        assert session.scalar(select(AuditEntry.id)) is None
