"""Decisions about authorisations: pure functions over plain records.

An authorisation pins, for every site it names, the SHA-256 of the site profile a legal
officer reviewed and the origins that profile allowed; a crawl under a profile that has
changed since is refused until the pin is amended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from legal_policy.catalogue import ALLOWED_PURPOSES, LegalBasisCatalogue
from legal_policy.errors import (
    AuthorisationExpired,
    AuthorisationNotYetValid,
    AuthorisationRevoked,
    CaseClosed,
    CollectionPaused,
    InvalidAuthorisation,
    PurposeNotAllowed,
    RunLimitReached,
    SiteNotAuthorised,
    SiteProfileChanged,
)

# Why a running crawl is stopped, as recorded in the run's ``stop_reason``.
STOP_REVOKED = "authorisation revoked"
STOP_EXPIRED = "authorisation expired"
STOP_PAUSED = "paused for systematic-collection review"
STOP_CASE_CLOSED = "case closed"


class Standing(Protocol):
    """Where an authorisation stands at a moment: what decides whether a crawl may go on
    (its full ``AuthorisationTerms``, or the few columns a crawl reads at every ad)."""

    @property
    def valid_until(self) -> datetime: ...

    @property
    def revoked_at(self) -> datetime | None: ...

    @property
    def paused_at(self) -> datetime | None: ...

    @property
    def case_closed_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class SitePin:
    """A site as a profile describes it: its key, the profile's hash and its origins."""

    key: str
    profile_sha256: str
    allowed_origins: frozenset[str]


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
    sites: tuple[SitePin, ...]
    max_pages_per_run: int
    max_runs_per_day: int
    revoked_at: datetime | None = None
    paused_at: datetime | None = None
    case_closed_at: datetime | None = None

    @property
    def site_keys(self) -> frozenset[str]:
        """Keys of the sites the authorisation names."""
        return frozenset(pin.key for pin in self.sites)

    def pin_of(self, site_key: str) -> SitePin | None:
        """The pin of one named site."""
        return next((pin for pin in self.sites if pin.key == site_key), None)


def validate_new_authorisation(
    terms: AuthorisationTerms, catalogue: LegalBasisCatalogue, now: datetime
) -> None:
    """Refuse an authorisation that is incomplete, inconsistent, already over, or has a
    forbidden purpose."""
    check_purpose(terms.purpose, case=terms.case_number)
    catalogue.get(terms.legal_basis)
    for field_name in ("case_number", "order_reference", "officer", "dpia_reference"):
        if not str(getattr(terms, field_name)).strip():
            raise InvalidAuthorisation(
                f"{field_name.replace('_', ' ')} must not be empty", case=terms.case_number
            )
    if terms.valid_from.tzinfo is None or terms.valid_until.tzinfo is None:
        raise InvalidAuthorisation("validity times must carry a time zone", case=terms.case_number)
    if terms.valid_until <= terms.valid_from:
        raise InvalidAuthorisation("valid until must be after valid from", case=terms.case_number)
    if terms.valid_until <= now:
        raise InvalidAuthorisation(
            f"the validity window ends in the past ({terms.valid_until.isoformat()}); "
            "an authorisation can only be registered for a period still to come",
            case=terms.case_number,
        )
    if not terms.sites:
        raise InvalidAuthorisation(
            "an authorisation must name at least one site", case=terms.case_number
        )
    for pin in terms.sites:
        if not pin.allowed_origins:
            raise InvalidAuthorisation(f"site {pin.key!r} allows no origin", case=terms.case_number)
    if terms.max_pages_per_run < 1 or terms.max_runs_per_day < 1:
        raise InvalidAuthorisation("page and run limits must be at least 1", case=terms.case_number)


def check_purpose(purpose: str, *, case: str | None = None) -> None:
    """Refuse any purpose but criminal investigation."""
    if purpose not in ALLOWED_PURPOSES:
        allowed = ", ".join(sorted(ALLOWED_PURPOSES))
        raise PurposeNotAllowed(
            f"purpose {purpose!r} is not allowed; adwatch may only be used for: {allowed}",
            case=case,
        )


def check_crawl_allowed(
    terms: AuthorisationTerms, site: SitePin, now: datetime, runs_started_today: int
) -> None:
    """Refuse a crawl run the authorisation does not cover; return None when it may start.

    ``site`` is the site as its profile reads now; it must match what was authorised.
    """
    case = terms.case_number
    reason = stop_reason(terms, now)
    if reason == STOP_REVOKED:
        assert terms.revoked_at is not None
        raise AuthorisationRevoked(
            f"authorisation {terms.id} was revoked at {terms.revoked_at.isoformat()}", case=case
        )
    check_purpose(terms.purpose, case=case)
    if reason == STOP_CASE_CLOSED:
        raise CaseClosed(f"case {case} is closed; nothing more is collected for it", case=case)
    if now < terms.valid_from:
        raise AuthorisationNotYetValid(
            f"authorisation {terms.id} is valid from {terms.valid_from.isoformat()}", case=case
        )
    if reason == STOP_EXPIRED:
        raise AuthorisationExpired(
            f"authorisation {terms.id} expired at {terms.valid_until.isoformat()}", case=case
        )
    if reason == STOP_PAUSED:
        raise CollectionPaused(
            f"crawls under authorisation {terms.id} are paused until a legal officer reviews "
            "the systematic-collection monitor (adwatch authorisation review)",
            case=case,
        )
    pin = terms.pin_of(site.key)
    if pin is None:
        named = ", ".join(sorted(terms.site_keys))
        raise SiteNotAuthorised(
            f"authorisation {terms.id} does not cover site {site.key!r} (it names: {named})",
            case=case,
        )
    check_site_unchanged(terms, pin, site)
    if runs_started_today >= terms.max_runs_per_day:
        raise RunLimitReached(
            f"authorisation {terms.id} allows {terms.max_runs_per_day} runs per day; "
            f"{runs_started_today} already started today",
            case=case,
        )


def check_site_unchanged(terms: AuthorisationTerms, pin: SitePin, site: SitePin) -> None:
    """Refuse a site profile whose bytes or origins differ from the reviewed ones."""
    changes = []
    if site.profile_sha256 != pin.profile_sha256:
        changes.append(
            f"profile SHA-256 {site.profile_sha256[:12]}… instead of the reviewed "
            f"{pin.profile_sha256[:12]}…"
        )
    if site.allowed_origins != pin.allowed_origins:
        added = sorted(site.allowed_origins - pin.allowed_origins)
        removed = sorted(pin.allowed_origins - site.allowed_origins)
        changes.append(f"origins added {added or '[]'}, removed {removed or '[]'}")
    if changes:
        raise SiteProfileChanged(
            f"site profile {site.key!r} changed since authorisation {terms.id} reviewed it "
            f"({'; '.join(changes)}); a legal officer must review it: adwatch authorisation "
            f"amend {terms.id} --site {site.key} --reason …",
            case=terms.case_number,
        )


def stop_reason(terms: Standing, now: datetime) -> str | None:
    """Why a crawl under these terms must not go on at ``now``; None while it may."""
    if terms.revoked_at is not None and terms.revoked_at <= now:
        return STOP_REVOKED
    if terms.case_closed_at is not None and terms.case_closed_at <= now:
        return STOP_CASE_CLOSED
    if now >= terms.valid_until:
        return STOP_EXPIRED
    if terms.paused_at is not None and terms.paused_at <= now:
        return STOP_PAUSED
    return None
