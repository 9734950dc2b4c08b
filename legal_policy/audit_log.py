"""Writing and reading the audit chain in the database, in the caller's transaction.

The table is append-only (migration 0004 adds triggers refusing UPDATE, DELETE and
TRUNCATE); on PostgreSQL the application's role also lacks those privileges
(``storage.privileges``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Row, Select, select, text
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.audit import (
    EMPTY_CHAIN,
    AuditEvent,
    ChainAnchor,
    ChainedEntry,
    ChainHead,
    ChainVerification,
    decode_cases,
    encode_cases,
    entry_digest,
    verify_chain,
)
from legal_policy.audit import GENESIS_HASH as GENESIS_HASH  # re-exported for callers
from storage.models import AuditEntry

# Any constant works; it only has to be the same for every writer of the chain.
_POSTGRES_AUDIT_LOCK = 0x61647761


def record_event(session: Session, event: AuditEvent) -> AuditEntry:
    """Append ``event`` to the chain; it commits or rolls back with the caller's change.

    Two writers must never extend the same head: PostgreSQL serialises them with an
    advisory lock held to the end of the transaction; on SQLite every transaction begins
    IMMEDIATE (``storage.db.make_engine``), so the head is read under the write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_AUDIT_LOCK})
    head = chain_head(session)
    seq, prev_hash = head.seq + 1, head.entry_hash
    properties = dict(event.properties)
    entry = AuditEntry(
        seq=seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        justification=event.justification,
        properties=properties,
        cases=encode_cases(event.cases),
        prev_hash=prev_hash,
        entry_hash=entry_digest(
            seq,
            prev_hash,
            event.at,
            event.actor,
            event.action,
            event.subject,
            event.justification,
            properties,
            event.cases,
        ),
    )
    session.add(entry)
    session.flush()
    return entry


def chain_head(session: Session) -> ChainHead:
    """The newest entry's sequence number and hash (``EMPTY_CHAIN`` when there is none)."""
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return EMPTY_CHAIN if last is None else ChainHead(last.seq, last.entry_hash)


def chain_columns() -> Select[tuple[object, ...]]:
    """The columns of a ``ChainedEntry``, selected as plain rows (no ORM identity map)."""
    return select(
        AuditEntry.seq,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.subject,
        AuditEntry.justification,
        AuditEntry.properties,
        AuditEntry.cases,
        AuditEntry.prev_hash,
        AuditEntry.entry_hash,
    )


def chained_entry(row: Row[tuple[object, ...]]) -> ChainedEntry:
    """A row of ``chain_columns`` as the pure chain sees it."""
    return ChainedEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        justification=row.justification,
        properties=row.properties,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
        cases=decode_cases(row.cases),
    )


def iter_chain(
    session: Session, batch_size: int = 1000, through_seq: int | None = None
) -> Iterator[ChainedEntry]:
    """Stream the chain in order (up to ``through_seq``) without loading it all."""
    last_seq = 0
    while True:
        rows = _batch(session, last_seq, batch_size, through_seq)
        if not rows:
            return
        yield from (chained_entry(row) for row in rows)
        last_seq = rows[-1].seq


def stream_chain(
    session_factory: sessionmaker[Session], through_seq: int, batch_size: int = 1000
) -> Iterator[ChainedEntry]:
    """Stream entries 1..``through_seq``, each batch in a short transaction of its own.

    On SQLite every transaction holds the write lock (``BEGIN IMMEDIATE``), so reading a
    long chain in one would stall every writer; entries already written never change
    (the table is append-only), so batches read apart still form one chain.
    """
    last_seq = 0
    while last_seq < through_seq:
        with session_factory() as session:
            rows = _batch(session, last_seq, batch_size, through_seq)
        if not rows:
            return
        yield from (chained_entry(row) for row in rows)
        last_seq = rows[-1].seq


def _batch(
    session: Session, after_seq: int, batch_size: int, through_seq: int | None
) -> list[Row[tuple[object, ...]]]:
    query = chain_columns().where(AuditEntry.seq > after_seq)
    if through_seq is not None:
        query = query.where(AuditEntry.seq <= through_seq)
    return list(session.execute(query.order_by(AuditEntry.seq).limit(batch_size)).all())


def verify_stored_chain(
    session: Session, expected_head: str | None = None, anchors: Iterable[ChainAnchor] = ()
) -> ChainVerification:
    """Verify the whole stored chain end to end, and against ``anchors`` kept outside it."""
    return verify_chain(iter_chain(session), expected_head, anchors)


def verify_stored_chain_in_batches(
    session_factory: sessionmaker[Session], anchors: Iterable[ChainAnchor] = ()
) -> ChainVerification:
    """Like ``verify_stored_chain``, reading the chain as it was when called, in short
    transactions (see ``stream_chain``); writers go on meanwhile."""
    with session_factory() as session:
        head = chain_head(session)
    return verify_chain(stream_chain(session_factory, head.seq), anchors=anchors)
