"""Reading candidate profiles; every read is a consultation entry in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext, require_justification
from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from storage.models import (
    Ad,
    AdPhone,
    CandidateProfile,
    Phone,
    ProfileEventRecord,
    ProfileMembership,
    Site,
)


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
    indicator_score: float | None = None


def list_profiles(
    session: Session,
    access: AccessContext,
    *,
    min_ads: int = 1,
    limit: int = 100,
    rank_by: str = "ads",
) -> list[ProfileSummary]:
    """Profiles with at least ``min_ads`` ads; audited as a consultation.

    ``rank_by`` is ``"ads"`` (largest first) or ``"score"`` (highest indicator score first).
    """
    if rank_by not in ("ads", "score"):
        raise ValueError(f"rank_by must be 'ads' or 'score', not {rank_by!r}")
    justification = require_justification(access, "candidate profiles")
    seen = func.coalesce(Ad.posted_at, Ad.captured_at)
    rows = session.execute(
        select(
            CandidateProfile.id,
            CandidateProfile.subject_category,
            func.count(ProfileMembership.ad_id),
            func.min(seen),
            func.max(seen),
            CandidateProfile.indicator_score,
        )
        .join(ProfileMembership, ProfileMembership.profile_id == CandidateProfile.id)
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .where(CandidateProfile.merged_into_id.is_(None))
        .group_by(
            CandidateProfile.id,
            CandidateProfile.subject_category,
            CandidateProfile.indicator_score,
        )
        .having(func.count(ProfileMembership.ad_id) >= min_ads)
        .order_by(
            *(
                (func.coalesce(CandidateProfile.indicator_score, -1.0).desc(),)
                if rank_by == "score"
                else ()
            ),
            func.count(ProfileMembership.ad_id).desc(),
            CandidateProfile.id,
        )
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
            indicator_score=score,
        )
        for pid, category, count, first, last, score in rows
    ]
    record_event(
        session,
        AuditEvent(
            action="profiles.consulted",
            actor=access.actor,
            subject="profiles",
            justification=justification,
            properties={"min_ads": min_ads, "rank_by": rank_by, "profile_ids": ids},
        ),
    )
    return summaries


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite and come back as naive text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Appearance:
    """One ad of a profile on the movement timeline."""

    ad_id: int
    seen_at: datetime | None
    city: str | None
    site: str
    url: str
    title: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProfileDetail:
    """A profile with its timeline, the evidence per ad, its history and its assessment."""

    profile_id: int
    subject_category: str
    phones: tuple[str, ...]
    timeline: tuple[Appearance, ...]
    events: tuple[tuple[datetime, str, str], ...]
    indicator_score: float | None
    indicator_model_version: str | None
    indicator_assessment: dict[str, Any]
    merged_into: int | None


def show_profile(session: Session, access: AccessContext, profile_id: int) -> ProfileDetail:
    """One profile in full; audited as a consultation. Unknown ids raise ``ProfileNotFound``."""
    justification = require_justification(access, f"profile {profile_id}")
    profile = session.get(CandidateProfile, profile_id)
    if profile is None:
        raise ProfileNotFound(f"no candidate profile {profile_id}")
    seen = func.coalesce(Ad.posted_at, Ad.captured_at)
    rows = session.execute(
        select(Ad.id, seen, Ad.city, Site.key, Ad.url, Ad.title, ProfileMembership.evidence)
        .join(ProfileMembership, ProfileMembership.ad_id == Ad.id)
        .join(Site, Site.id == Ad.site_id)
        .where(ProfileMembership.profile_id == profile_id)
        .order_by(seen, Ad.id)
    ).all()
    timeline = tuple(
        Appearance(
            ad_id=ad_id,
            seen_at=_aware(seen_at),
            city=city,
            site=site,
            url=url,
            title=title,
            reasons=tuple(str(e.get("explanation", "")) for e in evidence or ()),
        )
        for ad_id, seen_at, city, site, url, title, evidence in rows
    )
    phones = tuple(
        sorted(
            set(
                session.scalars(
                    select(Phone.e164)
                    .join(AdPhone, AdPhone.phone_id == Phone.id)
                    .join(ProfileMembership, ProfileMembership.ad_id == AdPhone.ad_id)
                    .where(ProfileMembership.profile_id == profile_id)
                )
            )
        )
    )
    events = tuple(
        (_aware(at) or at, kind, reason)
        for at, kind, reason in session.execute(
            select(ProfileEventRecord.at, ProfileEventRecord.kind, ProfileEventRecord.reason)
            .where(
                (ProfileEventRecord.profile_id == profile_id)
                | (ProfileEventRecord.other_profile_id == profile_id)
            )
            .order_by(ProfileEventRecord.id)
        )
    )
    record_event(
        session,
        AuditEvent(
            action="profile.consulted",
            actor=access.actor,
            subject=f"profile:{profile_id}",
            justification=justification,
            properties={"ads": len(timeline)},
        ),
    )
    return ProfileDetail(
        profile_id=profile.id,
        subject_category=profile.subject_category,
        phones=phones,
        timeline=timeline,
        events=events,
        indicator_score=profile.indicator_score,
        indicator_model_version=profile.indicator_model_version,
        indicator_assessment=dict(profile.indicator_assessment or {}),
        merged_into=profile.merged_into_id,
    )


class ProfileNotFound(LookupError):
    """No candidate profile with that id."""
