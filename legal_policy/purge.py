"""Purge: delete what has outlived its legal basis, or everything of a case that closes.

Rows go in the caller's transaction; files (blobs no case holds any more, run logs) are
only *listed* for deletion, so that the caller deletes them after the transaction commits
and a failed purge loses nothing. Every purge leaves a deletion receipt in the audit log:
counts and SHA-256 digests of what went, never content. A purge with nothing to delete
changes no data (its receipt says so).

What is derived from deleted ads goes with them: the profiles that keep ads are re-linked
(by the caller's ``relink``) before profiles left empty are deleted, event reasons that cite
a deleted ad are withdrawn, and the assessments of profiles merged into a profile that lost
ads (which may quote the deleted ads) are cleared.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext
from legal_policy.audit_log import record_event
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.errors import InvalidRetention, UnknownLegalBasis
from legal_policy.registry import get_case, linking_scopes
from legal_policy.retention import authorisation_end, expiry_of
from legal_policy.roles import Permission
from storage.models import (
    Ad,
    AdImage,
    AdPhone,
    Authorisation,
    CandidateProfile,
    Case,
    CaseCombination,
    CaseMember,
    CrawlRun,
    Phone,
    ProfileCategoryChange,
    ProfileEventRecord,
    ProfileMembership,
    StoredBlob,
    WarcFile,
)

_BATCH = 500
# A blob file nobody registers is swept only when older than this: a crawl writes the file
# just before it commits the row that registers it.
ORPHAN_GRACE_SECONDS = 3600
# How the matching engine names an ad in a profile event's reason ("ad 12 shares phone …").
_CITED_AD = re.compile(r"\bad (\d+)\b")
WITHDRAWN_REASON = "[reason withdrawn: it cited ads deleted by a purge]"
# Appended to a WARC file's name while its run writes it (crawler.warc); the row names the
# final name, and purge deletes the file under either.
UNFINISHED_WARC_SUFFIX = ".open"

# Re-links the remaining ads of some cases (and of the cases combined with them).
Relink = Callable[[Session, frozenset[int]], object]


@dataclass
class PurgeReceipt:
    """What a purge deleted (or, for a dry run, would delete): counts and digests only."""

    scope: str
    case: str | None
    cutoff: datetime
    counts: dict[str, int] = field(default_factory=dict)
    ads_digest: str = ""
    blobs_digest: str = ""
    warcs_digest: str = ""
    affected_case_ids: frozenset[int] = frozenset()
    # Files to delete once the transaction has committed.
    blob_files: tuple[str, ...] = ()
    log_files: tuple[Path, ...] = ()

    def as_properties(self) -> dict[str, object]:
        """The receipt as written to the audit log."""
        return {
            "scope": self.scope,
            "case": self.case,
            "cutoff": self.cutoff.isoformat(),
            "counts": dict(self.counts),
            "ads_digest": self.ads_digest,
            "blobs_digest": self.blobs_digest,
            "warcs_digest": self.warcs_digest,
        }

    @property
    def deleted_anything(self) -> bool:
        """Whether any row or file is (or would be) deleted."""
        return any(self.counts.values())


def _digest(values: Iterable[str]) -> str:
    """SHA-256 over the sorted hashes of what was deleted: lets an auditor confirm a list
    of deleted items later without the receipt holding any of them."""
    hasher = hashlib.sha256()
    for value in sorted(values):
        hasher.update(value.encode("ascii") + b"\n")
    return hasher.hexdigest()


def _chunks(values: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(values), _BATCH):
        yield list(values[start : start + _BATCH])


def purge(
    session: Session,
    access: AccessContext,
    catalogue: LegalBasisCatalogue,
    *,
    now: datetime,
    log_dir: Path,
    case_number: str | None = None,
    reason: str | None = None,
    relink: Relink | None = None,
    data_dir: Path | None = None,
) -> PurgeReceipt:
    """Delete expired data, or (``case_number``) close a case and delete all of it.

    Legal officers only. ``catalogue`` must carry the retention periods in force. The
    cases that lost ads (or, when a case closes, the cases combined with it) are passed to
    ``relink`` before profiles left empty are deleted, so that a re-linked profile never
    takes the id of a deleted one. The receipt lists the files for the caller to delete
    after commit; it is audited here. WARC file paths are relative to ``data_dir`` (by
    default the parent of ``log_dir``).
    """
    access.require(Permission.PURGE)
    closed: set[int] = set()
    partners: frozenset[int] = frozenset()
    if case_number is not None:
        if reason is None or len(reason.strip()) < 3:
            raise InvalidRetention(
                "closing a case with purge --case needs a reason (--reason)", case=case_number
            )
        case = get_case(session, case_number)
        receipt = PurgeReceipt("case", case.number, now)
        ad_filter = Ad.case_id == case.id
        run_ids = list(
            session.scalars(
                select(CrawlRun.id)
                .join(Authorisation, Authorisation.id == CrawlRun.authorisation_id)
                .where(Authorisation.case_id == case.id, CrawlRun.logs_purged_at.is_(None))
            )
        )
        # Cases whose profiles were linked with this one's ads: linked apart again below.
        partners = linking_scopes(session, [case.id])[case.id] - {case.id}
        closed.add(case.id)
        receipt.counts["case_memberships"] = _close_case(session, access, case, now, reason)
    else:
        if reason is not None and len(reason.strip()) < 3:
            raise InvalidRetention("a reason, when given, must say something")
        receipt = PurgeReceipt("expired", None, now)
        ad_filter = Ad.expires_at <= now
        run_ids = _expired_runs(session, catalogue, now)
    deleted_ads, touched = _delete_ads(session, receipt, ad_filter)
    to_relink = (receipt.affected_case_ids | partners) - closed
    if relink is not None and to_relink:
        relink(session, to_relink)
    profiles, events, changes = delete_empty_profiles(session)
    receipt.counts.update(profiles=profiles, profile_events=events, category_changes=changes)
    receipt.counts["event_reasons_withdrawn"] = _withdraw_reasons_citing(session, deleted_ads)
    receipt.counts["assessments_cleared"] = _clear_stub_assessments(session, touched)
    _delete_unused_phones(session, receipt)
    _release_blobs(session, receipt)
    _scrub_runs(session, receipt, run_ids, log_dir, now)
    _drop_warc_files(session, receipt, run_ids, data_dir or log_dir.parent)
    record_event(
        session,
        access.event(
            "purge.receipt",
            "purge",
            properties=receipt.as_properties(),
            cases=[receipt.case] if receipt.case else _case_numbers(session, receipt),
            justification=reason.strip() if reason else None,
        ),
    )
    return receipt


def _case_numbers(session: Session, receipt: PurgeReceipt) -> list[str]:
    if not receipt.affected_case_ids:
        return []
    return list(session.scalars(select(Case.number).where(Case.id.in_(receipt.affected_case_ids))))


def _close_case(
    session: Session, access: AccessContext, case: Case, now: datetime, reason: str
) -> int:
    """Close the case: no more collection or reading; members and combinations end."""
    if case.closed_at is None:
        case.closed_at = now
        case.closed_by = access.user
        record_event(
            session,
            access.event(
                "case.closed",
                f"case:{case.number}",
                cases=[case.number],
                justification=reason.strip(),
            ),
        )
    for combination in session.scalars(
        select(CaseCombination).where(
            CaseCombination.separated_at.is_(None),
            (CaseCombination.case_a_id == case.id) | (CaseCombination.case_b_id == case.id),
        )
    ):
        combination.separated_at = now
        combination.separated_by = access.user
        combination.separation_reason = f"case {case.number} closed: {reason.strip()}"
    result = session.execute(delete(CaseMember).where(CaseMember.case_id == case.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _expired_runs(session: Session, catalogue: LegalBasisCatalogue, now: datetime) -> list[int]:
    """Runs whose logs have outlived the retention of the data they collected."""
    expired = []
    for run_id, started, finished, basis, valid_until, revoked in session.execute(
        select(
            CrawlRun.id,
            CrawlRun.started_at,
            CrawlRun.finished_at,
            Authorisation.legal_basis,
            Authorisation.valid_until,
            Authorisation.revoked_at,
        )
        .join(Authorisation, Authorisation.id == CrawlRun.authorisation_id)
        .where(CrawlRun.logs_purged_at.is_(None), CrawlRun.finished_at.is_not(None))
    ):
        ended = authorisation_end(valid_until, revoked)
        try:
            rule = catalogue.get(basis).retention
        except UnknownLegalBasis:
            # A basis taken out of the catalogue: no review period is known any more, so
            # the logs go when the authorisation ended (its ads keep their own expiry).
            expires = ended
        else:
            expires = expiry_of(rule, ended=ended, captured_at=finished or started)
        if expires <= now:
            expired.append(run_id)
    return expired


def _delete_ads(
    session: Session, receipt: PurgeReceipt, ad_filter: object
) -> tuple[set[int], set[int]]:
    """Delete the ads and what hangs on them; returns their ids and the profiles they left."""
    rows = session.execute(
        select(Ad.id, Ad.content_sha256, Ad.case_id).where(ad_filter)  # type: ignore[arg-type]
    ).all()
    ad_ids = [row.id for row in rows]
    receipt.ads_digest = _digest(row.content_sha256 for row in rows)
    receipt.affected_case_ids = frozenset(row.case_id for row in rows)
    counts = dict.fromkeys(("ads", "images", "phone_links", "memberships"), 0)
    touched_profiles: set[int] = set()
    for chunk in _chunks(ad_ids):
        touched_profiles.update(
            session.scalars(
                select(ProfileMembership.profile_id).where(ProfileMembership.ad_id.in_(chunk))
            )
        )
        for key, table, column in (
            ("memberships", ProfileMembership, ProfileMembership.ad_id),
            ("images", AdImage, AdImage.ad_id),
            ("phone_links", AdPhone, AdPhone.ad_id),
            ("ads", Ad, Ad.id),
        ):
            result = session.execute(
                delete(table).where(column.in_(chunk)),
                execution_options={"synchronize_session": False},
            )
            counts[key] += int(result.rowcount or 0)  # type: ignore[attr-defined]
    receipt.counts.update(counts)
    receipt.counts["profiles_touched"] = len(touched_profiles)
    session.flush()
    return set(ad_ids), touched_profiles


def delete_empty_profiles(session: Session) -> tuple[int, int, int]:
    """Delete profiles that hold no ad any more, unless merged into one that still lives,
    with their events and assessments; returns (profiles, events, assessments) deleted."""
    holding = select(ProfileMembership.profile_id).distinct()
    empty = set(
        session.scalars(select(CandidateProfile.id).where(CandidateProfile.id.not_in(holding)))
    )
    merged_into = dict(
        session.execute(
            select(CandidateProfile.id, CandidateProfile.merged_into_id).where(
                CandidateProfile.id.in_(empty)
            )
        ).all()
    )
    doomed: set[int] = set()
    changed = True
    while changed:  # a merged stub goes when the profile it was merged into went
        changed = False
        for profile_id in empty - doomed:
            target = merged_into.get(profile_id)
            if target is None or target in doomed:
                doomed.add(profile_id)
                changed = True
    ids = sorted(doomed)
    events = changes = 0
    for chunk in _chunks(ids):
        result = session.execute(
            delete(ProfileEventRecord).where(
                ProfileEventRecord.profile_id.in_(chunk)
                | ProfileEventRecord.other_profile_id.in_(chunk)
            )
        )
        events += int(result.rowcount or 0)  # type: ignore[attr-defined]
        result = session.execute(
            delete(ProfileCategoryChange).where(ProfileCategoryChange.profile_id.in_(chunk))
        )
        changes += int(result.rowcount or 0)  # type: ignore[attr-defined]
        session.execute(
            update(CandidateProfile)
            .where(CandidateProfile.merged_into_id.in_(chunk))
            .values(merged_into_id=None),
            execution_options={"synchronize_session": False},
        )
    for chunk in _chunks(ids):
        session.execute(
            delete(CandidateProfile).where(CandidateProfile.id.in_(chunk)),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    return len(ids), events, changes


def _withdraw_reasons_citing(session: Session, deleted_ads: set[int]) -> int:
    """Withdraw the reasons of profile events that cite a deleted ad (a merge's reason names
    an ad and the phone or photo it shared): the event stays, its reason goes."""
    if not deleted_ads:
        return 0
    withdrawn = []
    for event_id, reason in session.execute(
        select(ProfileEventRecord.id, ProfileEventRecord.reason)
        .where(ProfileEventRecord.reason.like("%ad %"))
        .execution_options(yield_per=_BATCH)
    ):
        cited = list(_CITED_AD.finditer(reason))
        if any(int(match.group(1)) in deleted_ads for match in cited):
            # From the first ad it names on ("profile 4 merged into 2: ad 9 shares phone …").
            withdrawn.append(
                {"id": event_id, "reason": reason[: cited[0].start()] + WITHDRAWN_REASON}
            )
    for start in range(0, len(withdrawn), _BATCH):
        session.execute(update(ProfileEventRecord), withdrawn[start : start + _BATCH])
    session.flush()
    return len(withdrawn)


def _clear_stub_assessments(session: Session, touched: set[int]) -> int:
    """Clear the indicator assessments of profiles merged (directly or through others) into
    a profile that lost ads: they hold no ads, and their assessment, made when they did,
    may quote the ads just deleted (cities, phones, phrases)."""
    if not touched:
        return 0
    merged_into = dict(
        session.execute(
            select(CandidateProfile.id, CandidateProfile.merged_into_id).where(
                CandidateProfile.merged_into_id.is_not(None)
            )
        ).all()
    )
    stubs = []
    for profile_id in merged_into:
        seen: set[int] = set()
        target: int | None = profile_id
        while target is not None and target not in touched and target not in seen:
            seen.add(target)
            target = merged_into.get(target)
        if target is not None and target in touched:
            stubs.append(profile_id)
    cleared = 0
    for chunk in _chunks(sorted(stubs)):
        result = session.execute(
            update(CandidateProfile)
            .where(
                CandidateProfile.id.in_(chunk),
                CandidateProfile.indicator_model_version.is_not(None),
            )
            .values(indicator_score=None, indicator_model_version=None, indicator_assessment={}),
            execution_options={"synchronize_session": False},
        )
        cleared += int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.flush()
    return cleared


def _delete_unused_phones(session: Session, receipt: PurgeReceipt) -> None:
    used = select(AdPhone.phone_id).distinct()
    result = session.execute(
        delete(Phone).where(Phone.id.not_in(used)),
        execution_options={"synchronize_session": False},
    )
    receipt.counts["phones"] = int(result.rowcount or 0)  # type: ignore[attr-defined]


def _release_blobs(session: Session, receipt: PurgeReceipt) -> None:
    """Drop each case's hold on blobs its remaining ads no longer use; list the files
    no case holds any more."""
    used_pages = select(Ad.raw_sha256, Ad.case_id).where(Ad.raw_sha256.is_not(None))
    used_images = (
        select(AdImage.blob_sha256, Ad.case_id)
        .join(Ad, Ad.id == AdImage.ad_id)
        .where(AdImage.blob_sha256.is_not(None))
    )
    still_used = {(sha, case) for sha, case in session.execute(used_pages.union(used_images))}
    # A file a remaining ad uses stays, even if (by a bug elsewhere) no case holds it.
    referenced = {sha for sha, _ in still_used}
    released: list[tuple[str, int, int | None]] = []
    for blob in session.scalars(select(StoredBlob)):
        if (blob.sha256, blob.case_id) not in still_used:
            released.append((blob.sha256, blob.case_id, blob.size))
    for sha256, case_id, _ in released:
        session.execute(
            delete(StoredBlob).where(StoredBlob.sha256 == sha256, StoredBlob.case_id == case_id)
        )
    session.flush()
    held = set(session.scalars(select(StoredBlob.sha256).distinct()))
    files = sorted({sha for sha, _, _ in released} - held - referenced)
    receipt.blob_files = tuple(files)
    receipt.blobs_digest = _digest(files)
    receipt.counts["blob_holds"] = len(released)
    receipt.counts["blobs"] = len(files)
    sizes = {sha: size or 0 for sha, _, size in released}
    receipt.counts["blob_bytes"] = sum(sizes[sha] for sha in files)


def _scrub_runs(
    session: Session, receipt: PurgeReceipt, run_ids: list[int], log_dir: Path, now: datetime
) -> None:
    """Run logs go; a run's record stays (counts, who, when) without the ad URLs it listed."""
    files: list[Path] = []
    for chunk in _chunks(run_ids):
        for run in session.scalars(select(CrawlRun).where(CrawlRun.id.in_(chunk))):
            # The run's log, its worker's, and those of workers that joined it.
            for path in sorted(log_dir.glob(f"run-{run.id}.*log")):
                if path.is_file():
                    files.append(path)
            run.problems = []
            run.logs_purged_at = now
    receipt.log_files = tuple(files)
    receipt.counts["run_logs"] = len(files)
    receipt.counts["runs_scrubbed"] = len(run_ids)
    session.flush()


def _drop_warc_files(
    session: Session, receipt: PurgeReceipt, run_ids: list[int], data_dir: Path
) -> None:
    """WARC files go with their run's logs, and as soon as none of their run's ads remains
    (what they hold is gone, whatever expiry their row still shows): rows deleted, files
    listed for after the commit."""
    columns = select(WarcFile.id, WarcFile.path, WarcFile.sha256)
    rows = {
        row.id: row
        for row in session.execute(
            columns.where(WarcFile.run_id.not_in(select(Ad.run_id).distinct()))
        )
    }
    for chunk in _chunks(run_ids):
        rows.update(
            (row.id, row) for row in session.execute(columns.where(WarcFile.run_id.in_(chunk)))
        )
    files: list[Path] = []
    for row in rows.values():
        path = data_dir / row.path
        for candidate in (path, path.with_name(path.name + UNFINISHED_WARC_SUFFIX)):
            if candidate.exists():
                files.append(candidate)
    for chunk in _chunks(sorted(rows)):
        session.execute(
            delete(WarcFile).where(WarcFile.id.in_(chunk)),
            execution_options={"synchronize_session": False},
        )
    receipt.log_files = (*receipt.log_files, *files)
    receipt.warcs_digest = _digest(row.sha256 for row in rows.values() if row.sha256)
    receipt.counts["warc_files"] = len(rows)
    session.flush()


def unregistered_blob_files(blob_root: Path, session: Session) -> list[Path]:
    """Blob files no case holds (left by a crash between writing a file and committing
    its row, or by a purge that died before deleting), older than the grace period; never
    a file a stored ad still uses."""
    held = set(session.scalars(select(StoredBlob.sha256).distinct()))
    cutoff = time.time() - ORPHAN_GRACE_SECONDS
    orphans: list[Path] = []
    if not blob_root.is_dir():
        return orphans
    unheld: dict[str, Path] = {}
    for path in blob_root.glob("??/??/*"):
        if path.stat().st_mtime >= cutoff:
            continue
        if path.name.startswith(".tmp-"):
            orphans.append(path)
        elif path.name not in held:
            unheld[path.name] = path
    names = sorted(unheld)
    for start in range(0, len(names), _BATCH):
        chunk = names[start : start + _BATCH]
        pages = select(Ad.raw_sha256).where(Ad.raw_sha256.in_(chunk))
        images = select(AdImage.blob_sha256).where(AdImage.blob_sha256.in_(chunk))
        for sha256 in session.scalars(pages.union(images)):
            if sha256 is not None:
                unheld.pop(sha256, None)
    return orphans + [unheld[name] for name in sorted(unheld)]


def count_expired(session: Session, now: datetime) -> int:
    """Ads past their expiry (for warnings and the overview)."""
    return int(session.scalar(select(func.count(Ad.id)).where(Ad.expires_at <= now)) or 0)
