"""Reading candidate profiles; every read is a consultation entry in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext, require_justification
from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from storage.models import Ad, AdPhone, CandidateProfile, Phone, ProfileMembership


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One line of the profile list."""

    profile_id: int
    ad_count: int
    phones: tuple[str, ...]
    cities: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None
    subject_category: str


def list_profiles(
    session: Session, access: AccessContext, *, min_ads: int = 1, limit: int = 100
) -> list[ProfileSummary]:
    """Profiles with at least ``min_ads`` ads, largest first; audited as a consultation."""
    justification = require_justification(access, "candidate profiles")
    seen = func.coalesce(Ad.posted_at, Ad.captured_at)
    rows = session.execute(
        select(
            CandidateProfile.id,
            CandidateProfile.subject_category,
            func.count(ProfileMembership.ad_id),
            func.min(seen),
            func.max(seen),
        )
        .join(ProfileMembership, ProfileMembership.profile_id == CandidateProfile.id)
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .where(CandidateProfile.merged_into_id.is_(None))
        .group_by(CandidateProfile.id, CandidateProfile.subject_category)
        .having(func.count(ProfileMembership.ad_id) >= min_ads)
        .order_by(func.count(ProfileMembership.ad_id).desc(), CandidateProfile.id)
        .limit(limit)
    ).all()
    ids = [row[0] for row in rows]
    phones: dict[int, set[str]] = {i: set() for i in ids}
    cities: dict[int, set[str]] = {i: set() for i in ids}
    if ids:
        for profile_id, e164 in session.execute(
            select(ProfileMembership.profile_id, Phone.e164)
            .join(AdPhone, AdPhone.ad_id == ProfileMembership.ad_id)
            .join(Phone, Phone.id == AdPhone.phone_id)
            .where(ProfileMembership.profile_id.in_(ids))
        ):
            phones[profile_id].add(e164)
        for profile_id, city in session.execute(
            select(ProfileMembership.profile_id, Ad.city)
            .join(Ad, Ad.id == ProfileMembership.ad_id)
            .where(ProfileMembership.profile_id.in_(ids), Ad.city.is_not(None))
        ):
            cities[profile_id].add(city)
    summaries = [
        ProfileSummary(
            profile_id=pid,
            ad_count=count,
            phones=tuple(sorted(phones[pid])),
            cities=tuple(sorted(cities[pid])),
            first_seen=_aware(first),
            last_seen=_aware(last),
            subject_category=category,
        )
        for pid, category, count, first, last in rows
    ]
    record_event(
        session,
        AuditEvent(
            action="profiles.consulted",
            actor=access.actor,
            subject="profiles",
            justification=justification,
            properties={"min_ads": min_ads, "profile_ids": ids},
        ),
    )
    return summaries


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite and come back as naive text.
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
