"""Retention per legal basis (Wpg art. 8, 9(4); LED art. 5): until when each ad and blob
may be kept, and the legal officer's changes to the periods.

Every stored ad, and every blob a case holds, carries its legal basis, case and expiry;
``purge`` deletes what has expired. Expiry is counted from the end of the authorisation
(its validity, or its revocation if earlier) or from the capture, as the catalogue says.
When a period or an authorisation's end changes, ``refresh_expiry`` recomputes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext
from legal_policy.audit_log import record_event
from legal_policy.catalogue import LegalBasisCatalogue, RetentionRule, RetentionStart
from legal_policy.errors import InvalidRetention
from legal_policy.roles import Permission
from storage.models import (
    Ad,
    AdImage,
    Authorisation,
    RetentionSetting,
    StoredBlob,
    WarcFile,
)
from storage.types import utcnow
from storage.upsert import upsert_all

_BATCH = 500


@dataclass(frozen=True, slots=True)
class RetentionRow:
    """One legal basis as ``retention show`` lists it."""

    legal_basis: str
    title: str
    days: int
    catalogue_days: int
    max_days: int
    counted_from: str
    set_by: str | None
    set_at: datetime | None
    reason: str | None
    ads_kept: int
    ads_expired: int


def authorisation_end(valid_until: datetime, revoked_at: datetime | None) -> datetime:
    """When an authorisation stopped allowing collection: its end, or revocation if earlier."""
    return min(valid_until, revoked_at) if revoked_at is not None else valid_until


def expiry_of(rule: RetentionRule, *, ended: datetime, captured_at: datetime) -> datetime:
    """Until when data under ``rule`` may be kept."""
    start = ended if rule.counted_from is RetentionStart.AUTHORISATION_END else captured_at
    return start + timedelta(days=rule.days)


def effective_catalogue(session: Session, catalogue: LegalBasisCatalogue) -> LegalBasisCatalogue:
    """The catalogue with the retention periods legal officers have set."""
    overrides = dict(
        session.execute(select(RetentionSetting.legal_basis, RetentionSetting.days)).all()
    )
    return catalogue.with_retention_days(overrides)


class _Ending(Protocol):
    @property
    def legal_basis(self) -> str: ...

    @property
    def valid_until(self) -> datetime: ...

    @property
    def revoked_at(self) -> datetime | None: ...


def ad_expiry(
    catalogue: LegalBasisCatalogue, authorisation: _Ending, captured_at: datetime
) -> datetime:
    """The expiry of an ad captured now under ``authorisation``."""
    rule = catalogue.get(authorisation.legal_basis).retention
    return expiry_of(
        rule,
        ended=authorisation_end(authorisation.valid_until, authorisation.revoked_at),
        captured_at=captured_at,
    )


def hold_blob(
    session: Session,
    *,
    sha256: str,
    case_id: int,
    kind: str,
    size: int | None,
    legal_basis: str,
    expires_at: datetime,
) -> None:
    """Record that a case holds a blob until ``expires_at`` (the latest of its users)."""
    hold_blobs(
        session,
        [BlobHold(sha256, kind, size)],
        case_id=case_id,
        legal_basis=legal_basis,
        expires_at=expires_at,
    )


@dataclass(frozen=True, slots=True)
class BlobHold:
    """A blob a case holds: its hash, kind ("page", "image") and size in bytes."""

    sha256: str
    kind: str
    size: int | None


def hold_blobs(
    session: Session,
    blobs: Iterable[BlobHold],
    *,
    case_id: int,
    legal_basis: str,
    expires_at: datetime,
) -> None:
    """Record that a case holds these blobs until ``expires_at``, in one statement.

    Two runs of one case may store the same bytes at once: a row is inserted if absent,
    and an existing row's expiry only ever moves later.
    """
    stored_at = utcnow()
    upsert_all(
        session,
        StoredBlob,
        (
            {
                "sha256": blob.sha256,
                "case_id": case_id,
                "kind": blob.kind,
                "size": blob.size,
                "legal_basis": legal_basis,
                "stored_at": stored_at,
                "expires_at": expires_at,
            }
            for blob in blobs
        ),
        ["sha256", "case_id"],
        lambda excluded: {
            "expires_at": case(
                (StoredBlob.expires_at < excluded.expires_at, excluded.expires_at),
                else_=StoredBlob.expires_at,
            )
        },
    )


def refresh_expiry(
    session: Session,
    catalogue: LegalBasisCatalogue,
    *,
    authorisation_ids: Iterable[int] | None = None,
    legal_basis: str | None = None,
) -> int:
    """Recompute the expiry of the ads (and the blobs they use) of some authorisations, or
    of every authorisation under one legal basis; returns the number of ads updated."""
    query = select(Authorisation)
    if authorisation_ids is not None:
        query = query.where(Authorisation.id.in_(list(authorisation_ids)))
    if legal_basis is not None:
        query = query.where(Authorisation.legal_basis == legal_basis)
    updated = 0
    cases: set[int] = set()
    for authorisation in session.scalars(query).all():
        rule = catalogue.get(authorisation.legal_basis).retention
        ended = authorisation_end(authorisation.valid_until, authorisation.revoked_at)
        cases.add(authorisation.case_id)
        if rule.counted_from is RetentionStart.AUTHORISATION_END:
            result = session.execute(
                update(Ad)
                .where(Ad.authorisation_id == authorisation.id)
                .values(expires_at=expiry_of(rule, ended=ended, captured_at=ended)),
                execution_options={"synchronize_session": False},
            )
            updated += result.rowcount or 0  # type: ignore[attr-defined]
            continue
        rows = session.execute(
            select(Ad.id, Ad.captured_at).where(Ad.authorisation_id == authorisation.id)
        ).all()
        for start in range(0, len(rows), _BATCH):
            session.execute(
                update(Ad),
                [
                    {"id": ad_id, "expires_at": expiry_of(rule, ended=ended, captured_at=at)}
                    for ad_id, at in rows[start : start + _BATCH]
                ],
            )
        updated += len(rows)
    _refresh_blob_expiry(session, cases)
    _refresh_warc_expiry(session, cases)
    return updated


def _refresh_warc_expiry(session: Session, case_ids: set[int]) -> None:
    """A run's WARC files keep what its ads hold: they expire with the latest of them."""
    if not case_ids:
        return
    latest = dict(
        session.execute(
            select(Ad.run_id, func.max(Ad.expires_at))
            .where(Ad.case_id.in_(case_ids))
            .group_by(Ad.run_id)
        ).all()
    )
    for warc in session.scalars(select(WarcFile).where(WarcFile.case_id.in_(case_ids))):
        expires = latest.get(warc.run_id)
        if expires is not None:
            warc.expires_at = _aware(expires)


def _refresh_blob_expiry(session: Session, case_ids: set[int]) -> None:
    if not case_ids:
        return
    pages = (
        select(Ad.raw_sha256, Ad.case_id, func.max(Ad.expires_at))
        .where(Ad.case_id.in_(case_ids), Ad.raw_sha256.is_not(None))
        .group_by(Ad.raw_sha256, Ad.case_id)
    )
    images = (
        select(AdImage.blob_sha256, Ad.case_id, func.max(Ad.expires_at))
        .join(Ad, Ad.id == AdImage.ad_id)
        .where(Ad.case_id.in_(case_ids), AdImage.blob_sha256.is_not(None))
        .group_by(AdImage.blob_sha256, Ad.case_id)
    )
    # The latest expiry of the ads that use each (blob, case).
    latest: dict[tuple[str, int], datetime] = {}
    for query in (pages, images):
        for sha256, case_id, expires in session.execute(query):
            if sha256 is not None:
                value = _aware(expires)
                latest[(sha256, case_id)] = max(value, latest.get((sha256, case_id), value))
    for blob in session.scalars(select(StoredBlob).where(StoredBlob.case_id.in_(case_ids))):
        until = latest.get((blob.sha256, blob.case_id))
        if until is not None and until != blob.expires_at:
            blob.expires_at = until


def _aware(value: datetime | str) -> datetime:
    # Aggregates bypass the column type on SQLite and come back as naive text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def set_retention(
    session: Session,
    access: AccessContext,
    catalogue: LegalBasisCatalogue,
    legal_basis: str,
    days: int,
    reason: str | None,
) -> int:
    """Set the retention period of a legal basis (legal officers; audited); every ad under it
    gets its new expiry. Returns the number of ads whose expiry was recomputed.

    ``catalogue`` is the file's catalogue (its ``max_days`` is the legal ceiling).
    """
    access.require(Permission.SET_RETENTION)
    basis = catalogue.get(legal_basis)
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise InvalidRetention("a retention change needs a reason (--reason)")
    if days < 0 or days > basis.retention.max_days:
        raise InvalidRetention(
            f"{legal_basis}: {days} days is outside 0–{basis.retention.max_days}, the legal "
            "maximum the catalogue states for this basis"
        )
    row = session.get(RetentionSetting, legal_basis)
    previous = row.days if row is not None else basis.retention.days
    if row is None:
        row = RetentionSetting(legal_basis=legal_basis, days=days, set_by=access.user, reason="")
        session.add(row)
    row.days, row.set_at, row.set_by, row.reason = days, utcnow(), access.user, reason
    session.flush()
    updated = refresh_expiry(
        session, effective_catalogue(session, catalogue), legal_basis=legal_basis
    )
    record_event(
        session,
        access.event(
            "retention.set",
            f"legal_basis:{legal_basis}",
            properties={
                "days": days,
                "previous_days": previous,
                "counted_from": basis.retention.counted_from.value,
                "ads_recomputed": updated,
            },
            justification=reason,
        ),
    )
    return updated


def retention_overview(
    session: Session, access: AccessContext, catalogue: LegalBasisCatalogue, now: datetime
) -> list[RetentionRow]:
    """Every legal basis with its period (as set), who set it, and how much data it holds."""
    access.require(Permission.SET_RETENTION)
    settings = {row.legal_basis: row for row in session.scalars(select(RetentionSetting))}
    kept = dict(
        session.execute(select(Ad.legal_basis, func.count(Ad.id)).group_by(Ad.legal_basis)).all()
    )
    expired = dict(
        session.execute(
            select(Ad.legal_basis, func.count(Ad.id))
            .where(Ad.expires_at <= now)
            .group_by(Ad.legal_basis)
        ).all()
    )
    rows = []
    for basis in catalogue.bases:
        setting = settings.get(basis.code)
        rows.append(
            RetentionRow(
                legal_basis=basis.code,
                title=basis.title,
                days=setting.days if setting else basis.retention.days,
                catalogue_days=basis.retention.days,
                max_days=basis.retention.max_days,
                counted_from=basis.retention.counted_from.value,
                set_by=setting.set_by if setting else None,
                set_at=setting.set_at if setting else None,
                reason=setting.reason if setting else None,
                ads_kept=kept.get(basis.code, 0),
                ads_expired=expired.get(basis.code, 0),
            )
        )
    for code in sorted(set(kept) - {basis.code for basis in catalogue.bases}):
        # Data under a basis the catalogue no longer names keeps the expiry it was given.
        rows.append(
            RetentionRow(
                legal_basis=code,
                title="not in the catalogue: its ads keep the expiry they were given",
                days=0,
                catalogue_days=0,
                max_days=0,
                counted_from="unknown",
                set_by=None,
                set_at=None,
                reason=None,
                ads_kept=kept.get(code, 0),
                ads_expired=expired.get(code, 0),
            )
        )
    return rows
