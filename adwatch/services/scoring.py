"""Profile-level indicator scores, stored beside each profile as an assessment.

Scores are recomputed for the profiles a linking batch touched; every score records the
indicator model version that produced it (LED art. 7: an assessment, not a fact).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from matching.indicators import (
    Appearance,
    IndicatorModel,
    ProfileFacts,
    describe,
    score_ad,
    score_profile,
)
from storage.models import Ad, AdPhone, CandidateProfile, Phone, ProfileMembership, Site


def score_profiles(session: Session, profile_ids: Iterable[int], model: IndicatorModel) -> None:
    """Recompute and store the indicator score of each given profile."""
    ids = sorted(set(profile_ids))
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        ads: dict[int, list[tuple[bool, str, str, str | None, datetime | None, str]]] = defaultdict(
            list
        )
        for profile_id, evidence, title, text, city, posted_at, site in session.execute(
            select(
                ProfileMembership.profile_id,
                ProfileMembership.evidence,
                Ad.title,
                Ad.text,
                Ad.city,
                Ad.posted_at,
                Site.key,
            )
            .join(Ad, Ad.id == ProfileMembership.ad_id)
            .join(Site, Site.id == Ad.site_id)
            .where(ProfileMembership.profile_id.in_(chunk))
        ):
            # Photos shared inside the profile, as the linker's evidence records them.
            by_photo = any(item.get("kind") == "image" for item in evidence or ())
            ads[profile_id].append((by_photo, title, text, city, posted_at, site))
        phones: dict[int, dict[str, str | None]] = defaultdict(dict)
        for profile_id, e164, region in session.execute(
            select(ProfileMembership.profile_id, Phone.e164, Phone.region)
            .join(AdPhone, AdPhone.ad_id == ProfileMembership.ad_id)
            .join(Phone, Phone.id == AdPhone.phone_id)
            .where(ProfileMembership.profile_id.in_(chunk))
        ):
            phones[profile_id][e164] = region or None
        for profile_id in chunk:
            profile = session.get(CandidateProfile, profile_id)
            members = ads.get(profile_id, [])
            if profile is None or not members:
                continue
            ad_scores = [score_ad(model, title, text) for _, title, text, _, _, _ in members]
            numbers = phones[profile_id]
            facts = ProfileFacts(
                ad_count=len(members),
                phones=tuple(numbers),
                phone_regions=tuple(numbers.values()),
                appearances=tuple(
                    Appearance(posted_at=posted_at, city=city, site=site)
                    for _, _, _, city, posted_at, site in members
                ),
                shared_image_ad_count=sum(1 for member in members if member[0]),
            )
            score = score_profile(model, facts, ad_scores)
            profile.indicator_score = score.score
            profile.indicator_model_version = score.model_version
            profile.indicator_assessment = {
                "model_version": score.model_version,
                "model_digest": model.digest,
                "threshold": score.threshold,
                "over_threshold": score.over_threshold,
                "note": score.note,
                "summary": describe(score),
                "fired": [
                    {
                        "rule_id": fired.rule_id,
                        "category": fired.category,
                        "weight": fired.weight,
                        "description": fired.description,
                        "evidence": fired.evidence,
                    }
                    for fired in score.fired
                ],
            }
