"""Linking a run's new ads into candidate profiles in the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from matching.linking import AdPhones, PhoneOwner, link_by_shared_phone
from storage.models import Ad, AdPhone, CandidateProfile, Phone, ProfileMembership
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """What linking a batch of ads changed."""

    ads_linked: int
    profiles_created: int
    profiles_grown: int
    profiles_merged: int


def link_unlinked_ads(session: Session, actor: str) -> LinkOutcome:
    """Give every ad without a profile one, joining profiles that share its phones."""
    unlinked = session.scalars(
        select(Ad.id)
        .outerjoin(ProfileMembership, ProfileMembership.ad_id == Ad.id)
        .where(ProfileMembership.id.is_(None))
        .order_by(Ad.id)
    ).all()
    if not unlinked:
        return LinkOutcome(0, 0, 0, 0)
    phones_of: dict[int, list[str]] = {ad_id: [] for ad_id in unlinked}
    for ad_id, e164 in session.execute(
        select(AdPhone.ad_id, Phone.e164)
        .join(Phone, Phone.id == AdPhone.phone_id)
        .where(AdPhone.ad_id.in_(unlinked))
        .order_by(AdPhone.ad_id, Phone.e164)
    ):
        phones_of[ad_id].append(e164)
    wanted = {p for phones in phones_of.values() for p in phones}
    known: dict[str, PhoneOwner] = {}
    if wanted:
        for e164, profile_id, ad_id in session.execute(
            select(Phone.e164, ProfileMembership.profile_id, ProfileMembership.ad_id)
            .join(AdPhone, AdPhone.phone_id == Phone.id)
            .join(ProfileMembership, ProfileMembership.ad_id == AdPhone.ad_id)
            .where(Phone.e164.in_(wanted))
            .order_by(ProfileMembership.profile_id)
        ):
            known.setdefault(e164, PhoneOwner(profile_id, ad_id))
    result = link_by_shared_phone(
        [AdPhones(ad_id, tuple(phones_of[ad_id])) for ad_id in unlinked],
        known,
        profile_order=sorted({owner.profile_id for owner in known.values()}),
    )
    now = utcnow()
    new_profiles: dict[int, CandidateProfile] = {}
    grown: set[int] = set()
    for assignment in result.assignments:
        if assignment.profile_id is not None:
            profile = session.get(CandidateProfile, assignment.profile_id)
            assert profile is not None
            grown.add(profile.id)
        else:
            assert assignment.new_profile is not None
            profile = new_profiles.get(assignment.new_profile)
            if profile is None:
                profile = CandidateProfile(created_at=now, updated_at=now)
                session.add(profile)
                session.flush()
                new_profiles[assignment.new_profile] = profile
        profile.updated_at = now
        session.add(
            ProfileMembership(
                profile_id=profile.id,
                ad_id=assignment.ad_id,
                linked_at=now,
                evidence=[
                    {
                        "kind": e.kind,
                        "value": e.value,
                        "other_ad_id": e.other_ad_id,
                        "explanation": e.describe(),
                    }
                    for e in assignment.evidence
                ],
            )
        )
    session.flush()
    for merge in result.merges:
        for membership in session.scalars(
            select(ProfileMembership).where(ProfileMembership.profile_id == merge.absorbed)
        ):
            membership.profile_id = merge.survivor  # type: ignore[assignment]
        absorbed = session.get(CandidateProfile, merge.absorbed)
        assert absorbed is not None
        absorbed.merged_into_id = merge.survivor  # type: ignore[assignment]
        record_event(
            session,
            AuditEvent(
                action="profiles.merged",
                actor=actor,
                subject=f"profile:{merge.survivor}",
                properties={"absorbed": merge.absorbed, "reason": merge.reason},
            ),
        )
    outcome = LinkOutcome(
        ads_linked=len(result.assignments),
        profiles_created=len(new_profiles),
        profiles_grown=len(grown),
        profiles_merged=len(result.merges),
    )
    record_event(
        session,
        AuditEvent(
            action="profiles.linked",
            actor=actor,
            subject="profiles",
            properties={
                "ads_linked": outcome.ads_linked,
                "profiles_created": outcome.profiles_created,
                "profiles_grown": outcome.profiles_grown,
                "profiles_merged": outcome.profiles_merged,
                "method": "shared_phone",
            },
        ),
    )
    return outcome
