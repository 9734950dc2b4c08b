"""Running a purge: delete in one transaction, re-link what remains, then remove files.

On SQLite the purge's connection deletes with ``secure_delete`` (freed space is zeroed) and
the write-ahead log is truncated after the commit, so that the database file keeps no
readable copy of what was deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.link_snapshots import LinkSnapshots
from adwatch.services.linking import relink_cases
from legal_policy.access import AccessContext
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.checkpoints import append_checkpoint_if_new
from legal_policy.purge import PurgeReceipt, purge, unregistered_blob_files
from legal_policy.roles import Permission
from storage.blobstore import BlobStore
from storage.models import Case


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    """The receipt, and what happened to files after the commit."""

    receipt: PurgeReceipt
    dry_run: bool
    files_deleted: int
    files_missing: int
    orphans_deleted: int


def run_purge(
    session_factory: sessionmaker[Session],
    access: AccessContext,
    catalogue: LegalBasisCatalogue,
    *,
    blob_store: BlobStore,
    log_dir: Path,
    now: datetime,
    default_region: str,
    case_number: str | None = None,
    reason: str | None = None,
    dry_run: bool = False,
    checkpoint_file: Path | None = None,
    snapshots: LinkSnapshots | None,
) -> PurgeOutcome:
    """Purge expired data (or close ``case_number`` and purge all of it).

    The remaining ads of the cases that lost ads (and, when a case closes, of the cases
    combined with it) are re-linked, so that no link rests on evidence that was deleted.
    Files go only after the transaction committed, except a blob a crawl stored again
    while the purge ran (it is about to be held again); a dry run rolls everything back and
    deletes nothing. Linking snapshots of the cases that lost ads are deleted or rewritten
    without them (``snapshots``; ``None`` only where none are kept). With
    ``checkpoint_file`` the audit head, receipt included, is checkpointed after the commit.
    """
    started = time.time()
    why = (
        f"case {case_number} closed; its ads were deleted"
        if case_number is not None
        else "ads of the profile were deleted at the end of their retention"
    )

    def relink(session: Session, case_ids: frozenset[int]) -> None:
        relink_cases(
            session,
            access,
            case_ids,
            why,
            permission=Permission.PURGE,
            default_region=default_region,
            # A dry run changes nothing, snapshots included.
            snapshots=None if dry_run else snapshots,
        )

    session = session_factory.writer()  # type: ignore[attr-defined]
    try:
        session.begin()
        _sqlite_pragma(session.connection(), "secure_delete = ON")
        if snapshots is not None and case_number is not None and not dry_run:
            # A closed case is not re-linked, so its linking snapshot would outlive it.
            closing = session.scalar(select(Case.id).where(Case.number == case_number))
            if closing is not None:
                snapshots.discard([closing])
        receipt = purge(
            session,
            access,
            catalogue,
            now=now,
            log_dir=log_dir,
            case_number=case_number,
            reason=reason,
            relink=relink,
        )
        orphans = [] if dry_run else unregistered_blob_files(blob_store.root, session)
        if dry_run:
            session.rollback()
            return PurgeOutcome(receipt, True, 0, 0, 0)
        session.commit()
        bind = session.get_bind()
    finally:
        session.close()
    _truncate_sqlite_log(bind)
    deleted = missing = 0
    for sha256 in receipt.blob_files:
        if blob_store.stored_since(sha256, started):
            continue  # written again by a crawl meanwhile; the sweep decides next time
        if blob_store.delete(sha256):
            deleted += 1
        else:
            missing += 1
    for path in receipt.log_files:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            missing += 1
    for path in orphans:
        path.unlink(missing_ok=True)
    if checkpoint_file is not None:
        with session_factory() as session:
            append_checkpoint_if_new(session, checkpoint_file, "purge")
    return PurgeOutcome(receipt, False, deleted, missing, len(orphans))


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA {pragma}")


def _truncate_sqlite_log(bind: Engine | Connection) -> None:
    """Copy the log into the database file and empty it: until then the log still holds the
    pages as they were before the purge. Outside any transaction; best effort (a reader
    that holds an old snapshot keeps the log until it is done)."""
    engine = bind.engine
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()
