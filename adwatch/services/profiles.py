"""Reading, assessing and exporting candidate profiles, inside the reader's cases.

Every read goes through the access context: only ads of cases the user may read are
counted, shown or exported, and every consultation is an audit entry with its
justification. A profile that spans combined cases shows a member of one case only that
case's ads, and says how many ads of other cases it holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext, require_justification
from legal_policy.audit_log import record_event
from legal_policy.errors import AccessDenied, InvalidAssessment
from legal_policy.registry import case_ref, get_case
from legal_policy.roles import Permission
from storage.models import (
    Ad,
    AdPhone,
    Authorisation,
    CandidateProfile,
    Case,
    Phone,
    ProfileCategoryChange,
    ProfileEventRecord,
    ProfileMembership,
    Site,
)
from storage.types import utcnow

# LED art. 6: categories of data subjects; "unknown" until an analyst assesses the profile.
SUBJECT_CATEGORIES = ("unknown", "possible_victim", "suspect", "other")


class ProfileNotFound(LookupError):
    """No candidate profile with that id."""


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One line of the profile list (readable ads only)."""

    profile_id: int
    ad_count: int
    phones: tuple[str, ...]
    cities: tuple[str, ...]
    cases: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None
    subject_category: str
    indicator_score: float | None = None


@dataclass(frozen=True, slots=True)
class Appearance:
    """One ad of a profile on the movement timeline."""

    ad_id: int
    seen_at: datetime | None
    city: str | None
    site: str
    case: str
    url: str
    title: str | None
    reasons: tuple[str, ...]
    # The ad's numbers in the order it wrote them, and the authorisation it was taken under.
    phones: tuple[str, ...] = ()
    authorisation: str = ""
    # The evidence behind ``reasons``, as stored (kind, other ad, distances, score, …).
    evidence: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class CategoryChange:
    """One assessment of a profile's data-subject category."""

    at: datetime
    category: str
    previous: str
    by: str
    reason: str


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
    cases: tuple[str, ...]
    ads_in_other_cases: int
    category_history: tuple[CategoryChange, ...]
    # What joins ads that share no number: one sentence per bridge (photo or text).
    bridges: tuple[str, ...] = ()


def readable_cases(
    session: Session, access: AccessContext, case_number: str | None
) -> tuple[frozenset[int] | None, tuple[str, ...]]:
    """The case ids a read may touch (None: all) and their numbers, for one named case or
    for every case the user may read; refuses a case outside the user's reach."""
    if case_number is not None:
        case = get_case(session, case_number)
        access.require(Permission.READ_CONTENT, case_ref(case))
        return frozenset({case.id}), (case.number,)
    ids = access.case_filter(Permission.READ_CONTENT)
    query = select(Case.number).order_by(Case.number)
    if ids is not None:
        query = query.where(Case.id.in_(ids))
    return ids, tuple(session.scalars(query))


def _within(ids: frozenset[int] | None) -> ColumnElement[bool]:
    return Ad.case_id.in_(ids) if ids is not None else Ad.case_id.is_not(None)


def list_profiles(
    session: Session,
    access: AccessContext,
    *,
    case_number: str | None = None,
    min_ads: int = 1,
    limit: int = 100,
    rank_by: str = "ads",
) -> list[ProfileSummary]:
    """Profiles with at least ``min_ads`` readable ads; audited as a consultation.

    ``rank_by`` is ``"ads"`` (largest first) or ``"score"`` (highest indicator score first).
    """
    if rank_by not in ("ads", "score"):
        raise ValueError(f"rank_by must be 'ads' or 'score', not {rank_by!r}")
    justification = require_justification(access, "candidate profiles")
    ids, numbers = readable_cases(session, access, case_number)
    seen = func.coalesce(Ad.posted_at, Ad.captured_at)
    count = func.count(ProfileMembership.ad_id)
    rows = session.execute(
        select(
            CandidateProfile.id,
            CandidateProfile.subject_category,
            count,
            func.min(seen),
            func.max(seen),
            CandidateProfile.indicator_score,
        )
        .join(ProfileMembership, ProfileMembership.profile_id == CandidateProfile.id)
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .where(CandidateProfile.merged_into_id.is_(None), _within(ids))
        .group_by(
            CandidateProfile.id,
            CandidateProfile.subject_category,
            CandidateProfile.indicator_score,
        )
        .having(count >= min_ads)
        .order_by(
            *(
                (func.coalesce(CandidateProfile.indicator_score, -1.0).desc(),)
                if rank_by == "score"
                else ()
            ),
            count.desc(),
            CandidateProfile.id,
        )
        .limit(limit)
    ).all()
    profile_ids = [row[0] for row in rows]
    phones = _per_profile(
        session,
        select(ProfileMembership.profile_id, Phone.e164)
        .join(AdPhone, AdPhone.ad_id == ProfileMembership.ad_id)
        .join(Phone, Phone.id == AdPhone.phone_id)
        .join(Ad, Ad.id == ProfileMembership.ad_id),
        profile_ids,
        ids,
    )
    cities = _per_profile(
        session,
        select(ProfileMembership.profile_id, Ad.city)
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .where(Ad.city.is_not(None)),
        profile_ids,
        ids,
    )
    cases = _per_profile(
        session,
        select(ProfileMembership.profile_id, Case.number)
        .join(Ad, Ad.id == ProfileMembership.ad_id)
        .join(Case, Case.id == Ad.case_id),
        profile_ids,
        ids,
    )
    summaries = [
        ProfileSummary(
            profile_id=pid,
            ad_count=ads,
            phones=tuple(sorted(phones.get(pid, ()))),
            cities=tuple(sorted(cities.get(pid, ()))),
            cases=tuple(sorted(cases.get(pid, ()))),
            first_seen=_aware(first),
            last_seen=_aware(last),
            subject_category=category,
            indicator_score=score,
        )
        for pid, category, ads, first, last, score in rows
    ]
    record_event(
        session,
        access.event(
            "profiles.consulted",
            "profiles",
            properties={
                "case": case_number,
                "min_ads": min_ads,
                "rank_by": rank_by,
                "profile_ids": profile_ids,
            },
            cases=numbers,
            justification=justification,
        ),
    )
    return summaries


def _per_profile(
    session: Session, query: Any, profile_ids: list[int], ids: frozenset[int] | None
) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for start in range(0, len(profile_ids), 500):
        chunk = profile_ids[start : start + 500]
        for profile_id, value in session.execute(
            query.where(ProfileMembership.profile_id.in_(chunk), _within(ids))
        ):
            found.setdefault(profile_id, set()).add(value)
    return found


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite and come back as naive text.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _profile_in_reach(
    session: Session, access: AccessContext, profile_id: int, permission: Permission
) -> tuple[CandidateProfile, frozenset[int] | None, tuple[str, ...]]:
    """The profile, the case ids of it the user may read, and all its cases; refuses a
    profile none of whose ads is in the user's cases (audited as a refused consultation)."""
    profile = session.get(CandidateProfile, profile_id)
    if profile is None:
        raise ProfileNotFound(f"no candidate profile {profile_id}")
    ids = access.case_filter(permission)
    cases = session.execute(
        select(Case.id, Case.number)
        .distinct()
        .join(Ad, Ad.case_id == Case.id)
        .join(ProfileMembership, ProfileMembership.ad_id == Ad.id)
        .where(ProfileMembership.profile_id == profile_id)
    ).all()
    numbers = tuple(sorted(number for _, number in cases))
    if ids is not None and not any(case_id in ids for case_id, _ in cases):
        raise AccessDenied(
            f"profile {profile_id} holds no ads of a case {access.user} is a member of "
            "(need to know)",
            case=numbers[0] if numbers else None,
        )
    return profile, ids, numbers


def show_profile(session: Session, access: AccessContext, profile_id: int) -> ProfileDetail:
    """One profile in full (its readable ads); audited as a consultation."""
    justification = require_justification(access, f"profile {profile_id}")
    profile, ids, _ = _profile_in_reach(session, access, profile_id, Permission.READ_CONTENT)
    seen = func.coalesce(Ad.posted_at, Ad.captured_at)
    rows = session.execute(
        select(
            Ad.id,
            seen,
            Ad.city,
            Site.key,
            Case.number,
            Ad.url,
            Ad.title,
            ProfileMembership.evidence,
            Authorisation.id,
            Authorisation.order_reference,
        )
        .join(ProfileMembership, ProfileMembership.ad_id == Ad.id)
        .join(Site, Site.id == Ad.site_id)
        .join(Case, Case.id == Ad.case_id)
        .join(Authorisation, Authorisation.id == Ad.authorisation_id)
        .where(ProfileMembership.profile_id == profile_id, _within(ids))
        .order_by(seen, Ad.id)
    ).all()
    total = session.scalar(
        select(func.count(ProfileMembership.id)).where(ProfileMembership.profile_id == profile_id)
    )
    phones_of_ad: dict[int, list[str]] = defaultdict(list)
    for ad_id, e164 in session.execute(
        select(AdPhone.ad_id, Phone.e164)
        .join(Phone, Phone.id == AdPhone.phone_id)
        .join(ProfileMembership, ProfileMembership.ad_id == AdPhone.ad_id)
        .join(Ad, Ad.id == AdPhone.ad_id)
        .where(ProfileMembership.profile_id == profile_id, _within(ids))
        .order_by(AdPhone.ad_id, AdPhone.position, Phone.e164)
    ):
        phones_of_ad[ad_id].append(e164)
    timeline = tuple(
        Appearance(
            ad_id=ad_id,
            seen_at=_aware(seen_at),
            city=city,
            site=site,
            case=case,
            url=url,
            title=title,
            reasons=tuple(str(e.get("explanation", "")) for e in evidence or ()),
            phones=tuple(phones_of_ad.get(ad_id, ())),
            evidence=tuple(dict(e) for e in evidence or ()),
            authorisation=f"authorisation {authorisation_id} (order {order})",
        )
        for ad_id, seen_at, city, site, case, url, title, evidence, authorisation_id, order in rows
    )
    phones = tuple(sorted({phone for listed in phones_of_ad.values() for phone in listed}))
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
    history = tuple(
        CategoryChange(
            change.set_at, change.category, change.previous, change.set_by, change.reason
        )
        for change in session.scalars(
            select(ProfileCategoryChange)
            .where(ProfileCategoryChange.profile_id == profile_id)
            .order_by(ProfileCategoryChange.id)
        )
    )
    readable = tuple(sorted({a.case for a in timeline}))
    record_event(
        session,
        access.event(
            "profile.consulted",
            f"profile:{profile_id}",
            properties={"ads": len(timeline)},
            cases=readable,
            justification=justification,
        ),
    )
    return ProfileDetail(
        bridges=_bridges(timeline),
        profile_id=profile.id,
        subject_category=profile.subject_category,
        phones=phones,
        timeline=timeline,
        events=events,
        indicator_score=profile.indicator_score,
        indicator_model_version=profile.indicator_model_version,
        indicator_assessment=dict(profile.indicator_assessment or {}),
        merged_into=profile.merged_into_id,
        cases=readable,
        ads_in_other_cases=int(total or 0) - len(timeline),
        category_history=history,
    )


_BRIDGING_KINDS = ("image", "text")


def _bridges(timeline: Iterable[Appearance]) -> tuple[str, ...]:
    """Evidence that joins two ads with numbers of their own but none in common: what
    bridged two phone groups into one profile (the place to look first for a false link)."""
    phones = {appearance.ad_id: set(appearance.phones) for appearance in timeline}
    found: dict[tuple[int, int], str] = {}
    for appearance in timeline:
        own = phones[appearance.ad_id]
        for evidence in appearance.evidence:
            if evidence.get("kind") not in _BRIDGING_KINDS:
                continue
            try:
                other = int(str(evidence.get("other_ad_id")))
            except ValueError:
                continue
            theirs = phones.get(other)
            if not own or not theirs or own & theirs:
                continue
            pair = (min(appearance.ad_id, other), max(appearance.ad_id, other))
            found.setdefault(
                pair,
                f"ad {appearance.ad_id} ({', '.join(sorted(own))}) and ad {other} "
                f"({', '.join(sorted(theirs))}): {evidence.get('explanation')}",
            )
    return tuple(found[pair] for pair in sorted(found))


def set_subject_category(
    session: Session, access: AccessContext, profile_id: int, category: str, reason: str
) -> CategoryChange:
    """An analyst's assessment of who the profile is about (LED art. 6), with a reason;
    audited. It stays an assessment: the history keeps every change."""
    if category not in SUBJECT_CATEGORIES:
        raise InvalidAssessment(
            f"unknown category {category!r}; categories are: {', '.join(SUBJECT_CATEGORIES)}"
        )
    if len(reason.strip()) < 3:
        raise InvalidAssessment("an assessment needs a reason (--reason)")
    profile, _, cases = _profile_in_reach(session, access, profile_id, Permission.ASSESS_PROFILES)
    previous = profile.subject_category
    if previous == category:
        raise InvalidAssessment(f"profile {profile_id} is already assessed as {category}")
    change = ProfileCategoryChange(
        profile_id=profile_id,
        category=category,
        previous=previous,
        reason=reason.strip(),
        set_by=access.user,
        set_at=utcnow(),
    )
    session.add(change)
    profile.subject_category = category
    session.flush()
    record_event(
        session,
        access.event(
            "profile.category_set",
            f"profile:{profile_id}",
            properties={"category": category, "previous": previous},
            cases=cases,
            justification=reason.strip(),
        ),
    )
    return CategoryChange(change.set_at, category, previous, access.user, change.reason)


def export_profiles(
    session: Session,
    access: AccessContext,
    out: IO[str],
    *,
    profile_ids: Iterable[int] = (),
    case_number: str | None = None,
    recipient: str,
) -> int:
    """Write profiles with their readable ads as JSON lines (one profile per line) and
    audit the disclosure with its recipient and justification; returns profiles written.

    Either ``profile_ids`` or ``case_number`` (every profile of that case) selects them.
    """
    justification = require_justification(access, "an export of candidate profiles")
    if len(recipient.strip()) < 3:
        raise InvalidAssessment("an export names its recipient (--recipient)")
    access.require(Permission.EXPORT_CONTENT)
    wanted = list(profile_ids)
    if case_number is not None:
        case = get_case(session, case_number)
        access.require(Permission.EXPORT_CONTENT, case_ref(case))
        wanted += list(
            session.scalars(
                select(ProfileMembership.profile_id)
                .distinct()
                .join(Ad, Ad.id == ProfileMembership.ad_id)
                .where(Ad.case_id == case.id)
                .order_by(ProfileMembership.profile_id)
            )
        )
    written = 0
    cases: set[str] = set()
    for profile_id in dict.fromkeys(wanted):
        _, ids, _ = _profile_in_reach(session, access, profile_id, Permission.EXPORT_CONTENT)
        if case_number is not None:
            ids = frozenset({get_case(session, case_number).id})
        rows = session.execute(
            select(Ad, Site.key, Case.number, ProfileMembership.evidence)
            .join(ProfileMembership, ProfileMembership.ad_id == Ad.id)
            .join(Site, Site.id == Ad.site_id)
            .join(Case, Case.id == Ad.case_id)
            .where(ProfileMembership.profile_id == profile_id, _within(ids))
            .order_by(Ad.id)
        ).all()
        profile = session.get(CandidateProfile, profile_id)
        assert profile is not None
        record = {
            "profile_id": profile_id,
            "subject_category": profile.subject_category,
            "indicator_assessment": profile.indicator_assessment or {},
            "ads": [
                {
                    "ad_id": ad.id,
                    "case": case,
                    "site": site,
                    "url": ad.url,
                    "captured_at": ad.captured_at.isoformat(),
                    "posted_at": ad.posted_at.isoformat() if ad.posted_at else None,
                    "city": ad.city,
                    "title": ad.title,
                    "text": ad.text,
                    "phones": sorted(link.phone.e164 for link in ad.phone_links),
                    "images": [
                        {"position": i.position, "sha256": i.blob_sha256, "phash": i.phash}
                        for i in ad.images
                    ],
                    "legal_basis": ad.legal_basis,
                    "minimisation": ad.minimisation or {},
                    "evidence": evidence or [],
                }
                for ad, site, case, evidence in rows
            ],
        }
        cases.update(ad["case"] for ad in record["ads"])  # type: ignore[union-attr]
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    record_event(
        session,
        access.event(
            "profiles.exported",
            "profiles",
            properties={"profile_ids": list(dict.fromkeys(wanted)), "recipient": recipient},
            cases=sorted(cases | ({case_number} if case_number else set())),
            justification=justification,
        ),
    )
    return written
