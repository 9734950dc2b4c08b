"""Writing and reading the audit chain in the database, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from legal_policy.audit import (
    GENESIS_HASH,
    AuditEvent,
    ChainedEntry,
    ChainVerification,
    entry_digest,
    verify_chain,
)
from storage.models import AuditEntry

# Any constant works; it only has to be the same for every writer of the chain.
_POSTGRES_AUDIT_LOCK = 0x61647761


def record_event(session: Session, event: AuditEvent) -> AuditEntry:
    """Append ``event`` to the chain; it commits or rolls back with the caller's change."""
    if session.get_bind().dialect.name == "postgresql":
        # Serialise writers so two transactions cannot both extend the same head.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_AUDIT_LOCK})
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq = 1 if last is None else last.seq + 1
    prev_hash = GENESIS_HASH if last is None else last.entry_hash
    properties = dict(event.properties)
    entry = AuditEntry(
        seq=seq,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        justification=event.justification,
        properties=properties,
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
        ),
    )
    session.add(entry)
    session.flush()
    return entry


def iter_chain(session: Session, batch_size: int = 1000) -> Iterator[ChainedEntry]:
    """Stream the chain in order without loading it all."""
    last_seq = 0
    while True:
        # Plain rows, not ORM objects: the caller's identity map must not grow with the log.
        rows = session.execute(
            select(
                AuditEntry.seq,
                AuditEntry.at,
                AuditEntry.actor,
                AuditEntry.action,
                AuditEntry.subject,
                AuditEntry.justification,
                AuditEntry.properties,
                AuditEntry.prev_hash,
                AuditEntry.entry_hash,
            )
            .where(AuditEntry.seq > last_seq)
            .order_by(AuditEntry.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return
        for row in rows:
            yield ChainedEntry(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                justification=row.justification,
                properties=row.properties,
                prev_hash=row.prev_hash,
                entry_hash=row.entry_hash,
            )
        last_seq = rows[-1].seq


def verify_stored_chain(session: Session, expected_head: str | None = None) -> ChainVerification:
    """Verify the whole stored chain end to end."""
    return verify_chain(iter_chain(session), expected_head)
