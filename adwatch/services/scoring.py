"""Profile-level indicator scores, stored beside each profile as an assessment.

Scores are recomputed for the profiles a linking batch touched; every score records the
indicator model version that produced it (LED art. 7: an assessment, not a fact).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Text, bindparam, cast, select, update
from sqlalchemy.orm import Session

from matching.indicators import (
    Appearance,
    IndicatorModel,
    IndicatorScore,
    ProfileFacts,
    ad_score_from_rules,
    describe,
    score_ad,
    score_profile,
)
from storage.models import (
    Ad,
    AdLinkFeatures,
    AdPhone,
    CandidateProfile,
    Phone,
    ProfileMembership,
    Site,
)

# Whether the linker's evidence shows a photo shared inside the profile. Matched in the
# stored JSON text, not decoded: decoding every member's evidence was half the cost of
# scoring a large profile. (The key and value are written by ``Evidence.as_dict``, never
# by an ad; inside a JSON string a quote is escaped, so ad text cannot produce this.)
_SHARES_A_PHOTO = cast(ProfileMembership.evidence, Text).like('%"kind": "image"%')


@dataclass(slots=True)
class _Member:
    by_photo: bool
    score: IndicatorScore | None  # None until assessed (no kept assessment of this model)
    appearance: Appearance


def _kept_assessment(
    digest: str | None, fired_rules: str | None, model: IndicatorModel
) -> IndicatorScore | None:
    """The kept assessment of an ad when the same model made it (and it reads back)."""
    if not model.digest or digest != model.digest or fired_rules is None:
        return None
    try:
        return ad_score_from_rules(model, fired_rules.split())
    except ValueError:
        return None  # assessed again, and kept anew


def kept_fired_rules(score: IndicatorScore) -> str:
    """What an ad keeps of its assessment: the ids of the rules that fired."""
    return " ".join(fired.rule_id for fired in score.fired)


def _assess_missing(
    session: Session,
    model: IndicatorModel,
    members: dict[int, list[_Member]],
    unassessed: list[tuple[int, int, int, int | None]],
) -> None:
    """Assess the ads that have no kept assessment of this model, and keep theirs.

    Only these ads' texts are read: a profile that grows by one ad reads one text.
    """
    if not unassessed:
        return
    texts: dict[int, tuple[str | None, str]] = {}
    ad_ids = sorted({ad_id for _, _, ad_id, _ in unassessed})
    for start in range(0, len(ad_ids), 500):
        for ad_id, title, text in session.execute(
            select(Ad.id, Ad.title, Ad.text).where(Ad.id.in_(ad_ids[start : start + 500]))
        ):
            texts[ad_id] = (title, text)
    kept: list[dict[str, object]] = []
    for profile_id, position, ad_id, has_features in unassessed:
        title, text = texts[ad_id]
        score = score_ad(model, title, text)
        members[profile_id][position].score = score
        if has_features is not None:
            kept.append({"key": ad_id, "digest": model.digest, "fired": kept_fired_rules(score)})
    if kept:
        session.connection().execute(
            update(AdLinkFeatures.__table__)
            .where(AdLinkFeatures.__table__.c.ad_id == bindparam("key"))
            .values(ad_assessment_digest=bindparam("digest"), ad_fired_rules=bindparam("fired")),
            kept,
        )


def score_profiles(session: Session, profile_ids: Iterable[int], model: IndicatorModel) -> None:
    """Recompute and store the indicator score of each given profile.

    An ad's own assessment is kept with its linking features and reused while the model
    is the same (by digest): growing a profile assesses only its new ads.
    """
    ids = sorted(set(profile_ids))
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        members: dict[int, list[_Member]] = defaultdict(list)
        # Ads without a kept assessment by this model: (profile, position, ad id, features).
        unassessed: list[tuple[int, int, int, int | None]] = []
        # Most ads share one of a few sets of fired rules: each set is read back once.
        read_back: dict[tuple[str | None, str | None], IndicatorScore | None] = {}
        for row in session.execute(
            select(
                ProfileMembership.profile_id,
                _SHARES_A_PHOTO.label("by_photo"),
                Ad.id,
                Ad.city,
                Ad.posted_at,
                Site.key,
                AdLinkFeatures.ad_id.label("has_features"),
                AdLinkFeatures.ad_assessment_digest,
                AdLinkFeatures.ad_fired_rules,
            )
            .join(Ad, Ad.id == ProfileMembership.ad_id)
            .join(Site, Site.id == Ad.site_id)
            .outerjoin(AdLinkFeatures, AdLinkFeatures.ad_id == Ad.id)
            .where(ProfileMembership.profile_id.in_(chunk))
        ):
            key = (row.ad_assessment_digest, row.ad_fired_rules)
            if key not in read_back:
                read_back[key] = _kept_assessment(*key, model)
            score = read_back[key]
            if score is None:
                unassessed.append(
                    (row.profile_id, len(members[row.profile_id]), row.id, row.has_features)
                )
            members[row.profile_id].append(
                _Member(bool(row.by_photo), score, Appearance(row.posted_at, row.city, row.key))
            )
        _assess_missing(session, model, members, unassessed)
        phones: dict[int, dict[str, str | None]] = defaultdict(dict)
        for profile_id, e164, region in session.execute(
            select(ProfileMembership.profile_id, Phone.e164, Phone.region)
            .join(AdPhone, AdPhone.ad_id == ProfileMembership.ad_id)
            .join(Phone, Phone.id == AdPhone.phone_id)
            .where(ProfileMembership.profile_id.in_(chunk))
        ):
            phones[profile_id][e164] = region or None
        profiles = {
            profile.id: profile
            for profile in session.scalars(
                select(CandidateProfile).where(CandidateProfile.id.in_(chunk))
            )
        }
        for profile_id in chunk:
            profile = profiles.get(profile_id)
            ads = members.get(profile_id, [])
            if profile is None or not ads:
                continue
            ad_scores = [member.score for member in ads if member.score is not None]
            if len(ad_scores) != len(ads):
                raise RuntimeError(f"profile {profile_id}: an ad was left unassessed")
            numbers = phones[profile_id]
            facts = ProfileFacts(
                ad_count=len(ads),
                phones=tuple(numbers),
                phone_regions=tuple(numbers.values()),
                appearances=tuple(member.appearance for member in ads),
                shared_image_ad_count=sum(1 for member in ads if member.by_photo),
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
                "fired": [fired.as_dict() for fired in score.fired],
            }
