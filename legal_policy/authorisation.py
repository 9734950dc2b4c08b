"""Decisions about authorisations: pure functions over plain records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from legal_policy.catalogue import ALLOWED_PURPOSES, LegalBasisCatalogue
from legal_policy.errors import (
    AuthorisationExpired,
    AuthorisationNotYetValid,
    AuthorisationRevoked,
    InvalidAuthorisation,
    PurposeNotAllowed,
    RunLimitReached,
    SiteNotAuthorised,
)


@dataclass(frozen=True, slots=True)
class AuthorisationTerms:
    """What an authorisation allows, as the policy layer sees it."""

    id: int
    case_number: str
    legal_basis: str
    order_reference: str
    purpose: str
    officer: str
    dpia_reference: str
    valid_from: datetime
    valid_until: datetime
    site_keys: frozenset[str]
    max_pages_per_run: int
    max_runs_per_day: int
    revoked_at: datetime | None = None


def validate_new_authorisation(terms: AuthorisationTerms, catalogue: LegalBasisCatalogue) -> None:
    """Refuse an authorisation that is incomplete, inconsistent or has a forbidden purpose."""
    check_purpose(terms.purpose)
    catalogue.get(terms.legal_basis)
    for field_name in ("case_number", "order_reference", "officer", "dpia_reference"):
        if not str(getattr(terms, field_name)).strip():
            raise InvalidAuthorisation(f"{field_name.replace('_', ' ')} must not be empty")
    if terms.valid_from.tzinfo is None or terms.valid_until.tzinfo is None:
        raise InvalidAuthorisation("validity times must carry a time zone")
    if terms.valid_until <= terms.valid_from:
        raise InvalidAuthorisation("valid until must be after valid from")
    if not terms.site_keys:
        raise InvalidAuthorisation("an authorisation must name at least one site")
    if terms.max_pages_per_run < 1 or terms.max_runs_per_day < 1:
        raise InvalidAuthorisation("page and run limits must be at least 1")


def check_purpose(purpose: str) -> None:
    """Refuse any purpose but criminal investigation."""
    if purpose not in ALLOWED_PURPOSES:
        allowed = ", ".join(sorted(ALLOWED_PURPOSES))
        raise PurposeNotAllowed(
            f"purpose {purpose!r} is not allowed; adwatch may only be used for: {allowed}"
        )


def check_crawl_allowed(
    terms: AuthorisationTerms, site_key: str, now: datetime, runs_started_today: int
) -> None:
    """Refuse a crawl run the authorisation does not cover; return None when it may start."""
    if terms.revoked_at is not None and terms.revoked_at <= now:
        raise AuthorisationRevoked(
            f"authorisation {terms.id} was revoked at {terms.revoked_at.isoformat()}"
        )
    check_purpose(terms.purpose)
    if now < terms.valid_from:
        raise AuthorisationNotYetValid(
            f"authorisation {terms.id} is valid from {terms.valid_from.isoformat()}"
        )
    if now >= terms.valid_until:
        raise AuthorisationExpired(
            f"authorisation {terms.id} expired at {terms.valid_until.isoformat()}"
        )
    if site_key not in terms.site_keys:
        named = ", ".join(sorted(terms.site_keys))
        raise SiteNotAuthorised(
            f"authorisation {terms.id} does not cover site {site_key!r} (it names: {named})"
        )
    if runs_started_today >= terms.max_runs_per_day:
        raise RunLimitReached(
            f"authorisation {terms.id} allows {terms.max_runs_per_day} runs per day; "
            f"{runs_started_today} already started today"
        )
