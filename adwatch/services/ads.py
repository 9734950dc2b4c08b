"""Reading and searching captured ads, inside the reader's cases (every read audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from adwatch.services.profiles import readable_cases
from legal_policy.access import AccessContext, require_justification
from legal_policy.audit_log import record_event
from legal_policy.errors import AccessDenied, SearchNotAllowed
from legal_policy.pseudonyms import case_key, pseudonymise_phone
from legal_policy.registry import case_ref
from legal_policy.roles import Permission
from legal_policy.search_keys import check_text_search
from matching.indicators import IndicatorModel
from matching.phones import normalise_phone
from storage.models import Ad, AdPhone, Case, Phone, ProfileMembership, Site


class AdNotFound(LookupError):
    """No captured ad with that id."""


@dataclass(frozen=True, slots=True)
class AdView:
    """One captured ad as stored (minimised), with where it came from."""

    ad_id: int
    case: str
    site: str
    url: str
    captured_at: datetime
    posted_at: datetime | None
    city: str | None
    title: str | None
    text: str | None
    phones: tuple[tuple[str, str], ...]
    images: tuple[dict[str, Any], ...]
    profile_id: int | None
    legal_basis: str
    expires_at: datetime
    minimisation: dict[str, Any]
    raw_sha256: str | None


@dataclass(frozen=True, slots=True)
class AdHit:
    """One search result."""

    ad_id: int
    case: str
    site: str
    city: str | None
    captured_at: datetime
    title: str | None
    profile_id: int | None


def show_ad(session: Session, access: AccessContext, ad_id: int) -> AdView:
    """One ad in full, if it is in a case the user may read; audited as a consultation."""
    justification = require_justification(access, f"ad {ad_id}")
    ad = session.get(Ad, ad_id)
    if ad is None:
        raise AdNotFound(f"no captured ad {ad_id}")
    case = session.get(Case, ad.case_id)
    assert case is not None
    access.require(Permission.READ_CONTENT, case_ref(case))
    profile_id = session.scalar(
        select(ProfileMembership.profile_id).where(ProfileMembership.ad_id == ad_id)
    )
    record_event(
        session,
        access.event(
            "ad.consulted", f"ad:{ad_id}", cases=[case.number], justification=justification
        ),
    )
    return AdView(
        ad_id=ad.id,
        case=case.number,
        site=ad.site.key,
        url=ad.url,
        captured_at=ad.captured_at,
        posted_at=ad.posted_at,
        city=ad.city,
        title=ad.title,
        text=ad.text,
        phones=tuple((link.phone.e164, link.raw) for link in ad.phone_links),
        images=tuple(
            {
                "position": image.position,
                "sha256": image.blob_sha256,
                "phash": image.phash,
                "width": image.width,
                "height": image.height,
            }
            for image in ad.images
        ),
        profile_id=profile_id,
        legal_basis=ad.legal_basis,
        expires_at=ad.expires_at,
        minimisation=dict(ad.minimisation or {}),
        raw_sha256=ad.raw_sha256,
    )


def search_ads(
    session: Session,
    access: AccessContext,
    *,
    phone: str | None = None,
    text: str | None = None,
    city: str | None = None,
    case_number: str | None = None,
    default_region: str,
    master_key: bytes | None,
    indicator_model: IndicatorModel,
    limit: int = 100,
) -> list[AdHit]:
    """Ads of the user's cases by phone (any written form), text and/or city; audited with
    the search keys. Pseudonymised numbers are found through the case's own key."""
    justification = require_justification(access, "a search of ads")
    if not any((phone, text, city)):
        raise SearchNotAllowed("give at least one search key: --phone, --text or --city")
    if text:
        check_text_search(text, indicator_model)
    ids, numbers = readable_cases(session, access, case_number)
    if ids is not None and not ids:
        raise AccessDenied(f"{access.user} is not a member of any open case; nothing to search")
    query = (
        select(
            Ad.id,
            Case.number,
            Site.key,
            Ad.city,
            Ad.captured_at,
            Ad.title,
            ProfileMembership.profile_id,
        )
        .join(Case, Case.id == Ad.case_id)
        .join(Site, Site.id == Ad.site_id)
        .outerjoin(ProfileMembership, ProfileMembership.ad_id == Ad.id)
        .order_by(Ad.captured_at.desc(), Ad.id.desc())
        .limit(limit)
    )
    if ids is not None:
        query = query.where(Ad.case_id.in_(ids))
    normalised = None
    if phone:
        normalised = normalise_phone(phone, default_region)
        if normalised is None:
            raise SearchNotAllowed(f"{phone!r} is not a phone number adwatch can read")
        forms = [normalised]
        if master_key is not None:
            for case_id, number in session.execute(select(Case.id, Case.number)).all():
                if ids is None or case_id in ids:
                    forms.append(pseudonymise_phone(case_key(master_key, number), normalised))
        query = query.where(
            Ad.id.in_(
                select(AdPhone.ad_id)
                .join(Phone, Phone.id == AdPhone.phone_id)
                .where(Phone.e164.in_(forms))
            )
        )
    if text:
        pattern = f"%{text.strip().lower()}%"
        query = query.where(
            or_(func.lower(Ad.title).like(pattern), func.lower(Ad.text).like(pattern))
        )
    if city:
        query = query.where(func.lower(Ad.city) == city.strip().lower())
    hits = [AdHit(*row) for row in session.execute(query).all()]
    record_event(
        session,
        access.event(
            "ads.searched",
            "ads",
            properties={
                "phone": normalised,
                "text": text,
                "city": city,
                "case": case_number,
                "hits": len(hits),
            },
            cases=numbers,
            justification=justification,
        ),
    )
    return hits
