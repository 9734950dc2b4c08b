"""The audit chain detects edits, deletions, reordering and truncation.

The database refuses every change to stored entries (migration 0004), so to simulate
tampering each test first removes that protection the way the database owner could: on
SQLite by dropping the triggers, on PostgreSQL (as the superuser ``postgres``) by disabling
them; and puts it back afterwards, as a careful intruder would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.audit import AuditEvent, ChainAnchor, entry_digest, parse_anchor
from legal_policy.audit_log import chain_head, iter_chain, record_event, verify_stored_chain
from legal_policy.audit_reading import verify_audit_log
from legal_policy.checkpoints import append_checkpoint_if_new
from legal_policy.errors import AccessDenied
from storage.models import AuditEntry

if TYPE_CHECKING:
    from tests.conftest import People

SQLITE_TRIGGERS = {
    "audit_entries_no_update": "UPDATE",
    "audit_entries_no_delete": "DELETE",
}


@contextmanager
def as_owner_without_protection(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction in which the append-only triggers are off, as an owner could do."""
    with session_factory.begin() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if sqlite:
            for name in SQLITE_TRIGGERS:
                session.execute(text(f"DROP TRIGGER {name}"))
        else:
            session.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER ALL"))
        yield session
        session.flush()
        if sqlite:
            for name, operation in SQLITE_TRIGGERS.items():
                session.execute(
                    text(
                        f"CREATE TRIGGER {name} BEFORE {operation} ON audit_entries BEGIN "
                        f"SELECT RAISE(ABORT, 'audit_entries is append-only'); END"
                    )
                )
        else:
            session.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER ALL"))


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
                    cases=("CASE-1",) if i % 2 else (),
                ),
            )
    with session_factory() as session:
        return verify_stored_chain(session).head_hash


def _checkpoint(session_factory: sessionmaker[Session], path: Path) -> None:
    with session_factory() as session:
        assert append_checkpoint_if_new(session, path, "test") is not None


def _delete_from(session_factory: sessionmaker[Session], seq: int) -> None:
    with as_owner_without_protection(session_factory) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= seq))


def _verify(people: People, path: Path, *heads: str) -> tuple[bool, tuple[str, ...]]:
    anchors = [parse_anchor(head, "--head") for head in heads]
    result = verify_audit_log(
        people.session_factory, people.legal, checkpoint_file=path, heads=anchors
    )
    return result.ok, result.problems


# --- the chain alone --------------------------------------------------------------------


def test_intact_chain_verifies(session_factory: sessionmaker[Session]) -> None:
    head = _write(session_factory, 5)
    with session_factory() as session:
        result = verify_stored_chain(session, head)
    assert result.ok and result.entries_checked == 5 and result.head_hash == head


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone else"),
        delete(AuditEntry).where(AuditEntry.seq == 3),
        delete(AuditEntry),
    ],
    ids=["update", "delete-one", "delete-all"],
)
def test_without_removing_the_protection_the_database_refuses(
    session_factory: sessionmaker[Session], statement: object
) -> None:
    _write(session_factory, 4)
    with pytest.raises(IntegrityError, match="append-only"), session_factory.begin() as session:
        session.execute(statement)  # type: ignore[call-overload]
    with session_factory() as session:
        result = verify_stored_chain(session)
    assert result.ok and result.entries_checked == 4


def test_edited_entry_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 4)
    with as_owner_without_protection(session_factory) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone else"))
    with session_factory() as session:
        result = verify_stored_chain(session)
    assert not result.ok
    assert any("entry 2" in p and "edited" in p for p in result.problems)


def test_edited_case_list_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 4)
    with as_owner_without_protection(session_factory) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(cases="|CASE-2|"))
    with session_factory() as session:
        problems = verify_stored_chain(session).problems
    assert problems == ("entry 2: content does not match its hash (edited)",)


def test_deleted_entry_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 4)
    with as_owner_without_protection(session_factory) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    with session_factory() as session:
        assert not verify_stored_chain(session).ok


def test_reordering_is_detected(session_factory: sessionmaker[Session]) -> None:
    _write(session_factory, 3)
    with as_owner_without_protection(session_factory) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(seq=-1))
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(seq=1))
        session.execute(update(AuditEntry).where(AuditEntry.seq == -1).values(seq=2))
    with session_factory() as session:
        assert not verify_stored_chain(session).ok


def test_truncation_is_detected_against_an_exported_head(
    session_factory: sessionmaker[Session],
) -> None:
    head = _write(session_factory, 4)
    _delete_from(session_factory, 4)
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


# --- against checkpoints kept outside the database ---------------------------------------


@pytest.fixture
def checkpoints(tmp_path: Path) -> Path:
    return tmp_path / "outside" / "audit-checkpoints.jsonl"


def test_intact_chain_verifies_against_its_checkpoints(people: People, checkpoints: Path) -> None:
    _write(people.session_factory, 3)
    _checkpoint(people.session_factory, checkpoints)
    _write(people.session_factory, 2)  # newer than the checkpoint: still fine
    _checkpoint(people.session_factory, checkpoints)
    result = verify_audit_log(people.session_factory, people.legal, checkpoint_file=checkpoints)
    assert result.ok, result.problems
    assert result.chain.anchors_checked == 2 and result.can_detect_truncation
    assert result.uncovered_entries == 0


def test_truncation_below_a_checkpoint_is_detected(people: People, checkpoints: Path) -> None:
    _write(people.session_factory, 5)
    _checkpoint(people.session_factory, checkpoints)
    with people.session_factory() as session:
        checkpoint_seq = chain_head(session).seq
    _delete_from(people.session_factory, checkpoint_seq - 2)
    ok, problems = _verify(people, checkpoints)
    assert not ok
    assert any(
        f"records entry {checkpoint_seq}, but the chain ends at entry {checkpoint_seq - 3}" in p
        for p in problems
    ), problems


def test_deleted_last_entry_covered_by_a_checkpoint_is_detected(
    people: People, checkpoints: Path
) -> None:
    _write(people.session_factory, 3)
    _checkpoint(people.session_factory, checkpoints)
    with people.session_factory() as session:
        last = chain_head(session).seq
    _delete_from(people.session_factory, last)
    ok, problems = _verify(people, checkpoints)
    assert not ok
    assert any("the newest entries were deleted" in p for p in problems)


def test_emptied_table_is_detected(people: People, checkpoints: Path) -> None:
    _write(people.session_factory, 3)
    _checkpoint(people.session_factory, checkpoints)
    _delete_from(people.session_factory, 1)
    ok, problems = _verify(people, checkpoints)
    assert not ok
    assert any("but the chain ends at entry 0" in p for p in problems)


def test_recomputed_chain_is_detected(people: People, checkpoints: Path) -> None:
    _write(people.session_factory, 4)
    _checkpoint(people.session_factory, checkpoints)
    _write(people.session_factory, 1)
    with people.session_factory() as session:
        entries = list(iter_chain(session))
    edited_from = entries[-3].seq  # below the checkpoint
    # Edit one entry and recompute every hash after it: the chain alone is consistent again.
    with as_owner_without_protection(people.session_factory) as session:
        prev = entries[edited_from - 2].entry_hash
        for entry in entries[edited_from - 1 :]:
            actor = "nobody" if entry.seq == edited_from else entry.actor
            digest = entry_digest(
                entry.seq,
                prev,
                entry.at,
                actor,
                entry.action,
                entry.subject,
                entry.justification,
                entry.properties,
                entry.cases,
            )
            session.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == entry.seq)
                .values(actor=actor, prev_hash=prev, entry_hash=digest)
            )
            prev = digest
    with people.session_factory() as session:
        assert verify_stored_chain(session).ok  # undetectable from inside the database
    ok, problems = _verify(people, checkpoints)
    assert not ok
    assert any("the chain was rewritten up to there" in p for p in problems), problems


def test_a_kept_head_stays_valid_when_more_is_appended(people: People, checkpoints: Path) -> None:
    _write(people.session_factory, 3)
    with people.session_factory() as session:
        kept = chain_head(session)
    _write(people.session_factory, 3)
    assert _verify(people, checkpoints, str(kept)) == (True, ())
    assert _verify(people, checkpoints, kept.entry_hash) == (True, ())  # bare: anywhere
    wrong_place = f"{kept.seq + 1}:{kept.entry_hash}"
    ok, problems = _verify(people, checkpoints, wrong_place)
    assert not ok and problems[0].startswith("--head: entry")
    _delete_from(people.session_factory, kept.seq)
    ok, problems = _verify(people, checkpoints, kept.entry_hash)
    assert not ok and "is not in the chain" in problems[0]


def test_without_checkpoints_truncation_goes_unnoticed_and_says_so(
    people: People, checkpoints: Path
) -> None:
    _write(people.session_factory, 3)
    _delete_from(people.session_factory, 3)
    result = verify_audit_log(people.session_factory, people.legal, checkpoint_file=checkpoints)
    assert result.ok
    assert not result.checkpoints.found and not result.can_detect_truncation


def test_malformed_checkpoint_lines_are_problems(people: People, checkpoints: Path) -> None:
    _write(people.session_factory, 2)
    _checkpoint(people.session_factory, checkpoints)
    with checkpoints.open("ab") as out:
        out.write(b'{"seq": "two"}\n\xff\xfe\nnot json\n[1, 2]\n')
    result = verify_audit_log(people.session_factory, people.legal, checkpoint_file=checkpoints)
    assert not result.ok and result.chain.ok
    assert [p.split(":")[0] for p in result.problems] == [
        f"{checkpoints.name} line {n}" for n in (2, 3, 4, 5)
    ]
    assert result.chain.anchors_checked == 1  # the good line still counts


def test_unreadable_checkpoint_file_is_a_problem(people: People, checkpoints: Path) -> None:
    checkpoints.mkdir(parents=True)  # a directory where the file should be
    result = verify_audit_log(people.session_factory, people.legal, checkpoint_file=checkpoints)
    assert not result.ok
    assert result.problems[0].startswith("cannot read the checkpoint file")


def test_verification_needs_the_permission(people: People, checkpoints: Path) -> None:
    with pytest.raises(AccessDenied, match="verify the audit log"):
        verify_audit_log(people.session_factory, people("analyst"), checkpoint_file=checkpoints)
    assert verify_audit_log(people.session_factory, people.admin, checkpoint_file=checkpoints).ok


def test_anchor_at_sequence_zero_is_the_empty_chain(people: People, checkpoints: Path) -> None:
    genesis = ChainAnchor("0" * 64, 0, "--head")
    result = verify_audit_log(
        people.session_factory, people.legal, checkpoint_file=checkpoints, heads=[genesis]
    )
    assert result.ok
