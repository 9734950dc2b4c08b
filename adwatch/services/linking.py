"""Linking newly captured ads into candidate profiles in the database.

The stored ads are loaded into the matching engine with the profiles they already have
(no re-linking); only the new ads are linked, and only the profiles they touch are
re-evaluated. Memberships, profile events and indicator scores are written back in the
caller's transaction, and the change is audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adwatch.services.scoring import score_profiles
from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from matching.engine import BatchResult, MatchConfig, MatchingEngine
from matching.features import build_features
from matching.indicators import IndicatorModel, load_indicator_model
from matching.records import AdInput, ImageFingerprint
from storage.models import (
    Ad,
    AdImage,
    AdPhone,
    CandidateProfile,
    Phone,
    ProfileEventRecord,
    ProfileMembership,
    Site,
)
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """What linking a batch of ads changed."""

    ads_linked: int
    profiles_created: int
    profiles_grown: int
    profiles_merged: int
    profiles_split: int = 0


def load_ad_inputs(session: Session, ad_ids: Iterable[int] | None = None) -> list[AdInput]:
    """Stored ads as matcher input (images as their stored perceptual hashes)."""
    query = select(Ad.id, Site.key, Ad.url, Ad.city, Ad.posted_at, Ad.title, Ad.text).join(
        Site, Site.id == Ad.site_id
    )
    image_query = select(AdImage.ad_id, AdImage.phash, AdImage.phash_variants).order_by(
        AdImage.ad_id, AdImage.position
    )
    if ad_ids is not None:
        wanted = list(ad_ids)
        query = query.where(Ad.id.in_(wanted))
        image_query = image_query.where(AdImage.ad_id.in_(wanted))
    images: dict[int, list[ImageFingerprint]] = defaultdict(list)
    for ad_id, phash, variants in session.execute(image_query):
        images[ad_id].append(
            ImageFingerprint(int(phash, 16), tuple(int(v, 16) for v in variants or ()))
        )
    return [
        AdInput(
            ad_id=str(ad_id),
            site=site,
            url=url,
            city=city,
            posted_at=posted_at,
            title=title,
            text=text,
            images=tuple(images.get(ad_id, ())),
        )
        for ad_id, site, url, city, posted_at, title, text in session.execute(query.order_by(Ad.id))
    ]


def stored_phones(session: Session) -> dict[str, tuple[str, ...]]:
    """The E.164 numbers the crawler stored for each ad, keyed by the ad id as text."""
    phones: dict[str, list[str]] = defaultdict(list)
    for ad_id, e164 in session.execute(
        select(AdPhone.ad_id, Phone.e164)
        .join(Phone, Phone.id == AdPhone.phone_id)
        .order_by(AdPhone.ad_id, Phone.e164)
    ):
        phones[str(ad_id)].append(e164)
    return {ad_id: tuple(values) for ad_id, values in phones.items()}


def link_unlinked_ads(
    session: Session,
    actor: str,
    *,
    default_region: str = "NL",
    config: MatchConfig | None = None,
    indicator_model: IndicatorModel | None = None,
) -> LinkOutcome:
    """Link every ad without a profile; existing profiles grow, merge or split as needed."""
    memberships = {
        str(ad_id): profile_id
        for ad_id, profile_id in session.execute(
            select(ProfileMembership.ad_id, ProfileMembership.profile_id)
        )
    }
    inputs = load_ad_inputs(session)
    unlinked = [ad for ad in inputs if ad.ad_id not in memberships]
    if not unlinked:
        return LinkOutcome(0, 0, 0, 0)
    features = build_features(
        inputs, default_region=default_region, known_phones=stored_phones(session)
    )
    highest = session.scalar(select(func.max(CandidateProfile.id))) or 0
    engine = MatchingEngine(config, first_profile_id=highest + 1)
    engine.load([f for f in features if f.ad_id in memberships], memberships)
    result = engine.add([f for f in features if f.ad_id not in memberships])
    _store(session, result)
    touched = {m.profile_id for m in result.memberships}
    score_profiles(session, touched, indicator_model or load_indicator_model())
    outcome = LinkOutcome(
        ads_linked=len(unlinked),
        profiles_created=result.count("created"),
        profiles_grown=result.count("grown"),
        profiles_merged=result.count("merged"),
        profiles_split=result.count("split"),
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
                "profiles_split": outcome.profiles_split,
                "method": "matching.engine",
            },
        ),
    )
    return outcome


def _store(session: Session, result: BatchResult) -> None:
    now = utcnow()
    needed = {m.profile_id for m in result.memberships} | {e.profile_id for e in result.events}
    existing = set(
        session.scalars(select(CandidateProfile.id).where(CandidateProfile.id.in_(needed)))
    )
    for profile_id in sorted(needed - existing):
        session.add(CandidateProfile(id=profile_id, created_at=now, updated_at=now))
    session.flush()
    stored = {
        m.ad_id: m
        for m in session.scalars(
            select(ProfileMembership).where(
                ProfileMembership.ad_id.in_([int(m.ad_id) for m in result.memberships])
            )
        )
    }
    for membership in result.memberships:
        evidence = [item.as_dict() for item in membership.evidence]
        row = stored.get(int(membership.ad_id))
        if row is None:
            session.add(
                ProfileMembership(
                    profile_id=membership.profile_id,
                    ad_id=int(membership.ad_id),
                    linked_at=now,
                    evidence=evidence,
                )
            )
        else:
            row.profile_id = membership.profile_id
            row.evidence = evidence
            row.linked_at = now
    for event in result.events:
        session.add(
            ProfileEventRecord(
                profile_id=event.profile_id,
                kind=event.kind,
                other_profile_id=event.other_profile_id,
                reason=event.reason,
                at=now,
            )
        )
        if event.kind == "merged" and event.other_profile_id is not None:
            absorbed = session.get(CandidateProfile, event.other_profile_id)
            if absorbed is not None:
                absorbed.merged_into_id = event.profile_id
                absorbed.updated_at = now
    for profile_id in needed:
        profile = session.get(CandidateProfile, profile_id)
        if profile is not None:
            profile.updated_at = now
    session.flush()
