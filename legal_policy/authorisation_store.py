"""Registering, amending, reviewing, reading and revoking authorisations, with audit entries.

Only legal officers change authorisations; everyone who may see one sees only those of the
cases their role reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from legal_policy.access import AccessContext
from legal_policy.audit_log import record_event
from legal_policy.authorisation import AuthorisationTerms, SitePin, validate_new_authorisation
from legal_policy.catalogue import LegalBasisCatalogue, MonitorThresholds
from legal_policy.errors import AuthorisationNotFound, InvalidAuthorisation
from legal_policy.monitor import MonitorStatus, measure, monitor_status
from legal_policy.registry import case_ref, open_case
from legal_policy.retention import refresh_expiry
from legal_policy.roles import Permission
from storage.models import Authorisation, AuthorisationSite, Case, Site
from storage.types import utcnow
from storage.upsert import insert_if_absent


@dataclass(frozen=True, slots=True)
class SiteRef:
    """A site an authorisation names, as its site profile describes it now."""

    key: str
    name: str
    base_url: str
    profile_sha256: str
    allowed_origins: frozenset[str]

    def pin(self) -> SitePin:
        """What an authorisation pins of it."""
        return SitePin(self.key, self.profile_sha256, self.allowed_origins)


@dataclass(frozen=True, slots=True)
class NewAuthorisation:
    """What a legal officer registers."""

    case_number: str
    legal_basis: str
    order_reference: str
    purpose: str
    officer: str
    dpia_reference: str
    valid_from: datetime
    valid_until: datetime
    sites: tuple[SiteRef, ...]
    max_pages_per_run: int = 500
    max_runs_per_day: int = 4
    # Ads scoring below this are not kept; None: the indicator model's own threshold.
    indicator_threshold: float | None = None


def terms_of(row: Authorisation) -> AuthorisationTerms:
    """The policy view of a stored authorisation."""
    return AuthorisationTerms(
        id=row.id,
        case_number=row.case_number,
        legal_basis=row.legal_basis,
        order_reference=row.order_reference,
        purpose=row.purpose,
        officer=row.officer,
        dpia_reference=row.dpia_reference,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        sites=tuple(
            SitePin(pin.site.key, pin.profile_sha256, frozenset(pin.allowed_origins))
            for pin in row.site_pins
        ),
        max_pages_per_run=row.max_pages_per_run,
        max_runs_per_day=row.max_runs_per_day,
        revoked_at=row.revoked_at,
        paused_at=row.paused_at,
        case_closed_at=row.case.closed_at,
    )


def upsert_site(session: Session, ref: SiteRef) -> Site:
    """The site row for a profile, created or refreshed (name, URL, latest profile hash)."""
    # Two crawls of a new site may start at once: insert-if-absent, then refresh.
    insert_if_absent(
        session,
        Site,
        {
            "key": ref.key,
            "name": ref.name,
            "base_url": ref.base_url,
            "profile_sha256": ref.profile_sha256,
            "registered_at": utcnow(),
        },
        ["key"],
    )
    site = session.scalars(select(Site).where(Site.key == ref.key)).one()
    site.name, site.base_url, site.profile_sha256 = ref.name, ref.base_url, ref.profile_sha256
    session.flush()
    return site


def register_authorisation(
    session: Session,
    access: AccessContext,
    new: NewAuthorisation,
    catalogue: LegalBasisCatalogue,
    now: datetime | None = None,
) -> Authorisation:
    """Validate, pin and store an authorisation (legal officers), and audit it."""
    case = open_case(session, new.case_number)
    access.require(Permission.MANAGE_AUTHORISATIONS, case_ref(case))
    terms = AuthorisationTerms(
        id=0,
        case_number=case.number,
        legal_basis=new.legal_basis,
        order_reference=new.order_reference,
        purpose=new.purpose,
        officer=new.officer,
        dpia_reference=new.dpia_reference,
        valid_from=new.valid_from,
        valid_until=new.valid_until,
        sites=tuple(ref.pin() for ref in new.sites),
        max_pages_per_run=new.max_pages_per_run,
        max_runs_per_day=new.max_runs_per_day,
    )
    validate_new_authorisation(terms, catalogue, now or utcnow())
    if new.indicator_threshold is not None and not 0 <= new.indicator_threshold <= 10:
        raise InvalidAuthorisation(
            f"indicator threshold {new.indicator_threshold} is outside 0–10", case=case.number
        )
    reviewed_at = utcnow()
    row = Authorisation(
        case_id=case.id,
        case_number=case.number,
        legal_basis=new.legal_basis,
        order_reference=new.order_reference.strip(),
        purpose=new.purpose,
        officer=new.officer.strip(),
        dpia_reference=new.dpia_reference.strip(),
        valid_from=new.valid_from,
        valid_until=new.valid_until,
        max_pages_per_run=new.max_pages_per_run,
        max_runs_per_day=new.max_runs_per_day,
        indicator_threshold=new.indicator_threshold,
        registered_by=access.user,
        monitor_baseline={},
        site_pins=[
            AuthorisationSite(
                site=upsert_site(session, ref),
                profile_sha256=ref.profile_sha256,
                allowed_origins=sorted(ref.allowed_origins),
                reviewed_at=reviewed_at,
                reviewed_by=access.user,
            )
            for ref in new.sites
        ],
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        access.event(
            "authorisation.registered",
            f"authorisation:{row.id}",
            properties={
                "case_number": row.case_number,
                "legal_basis": row.legal_basis,
                "order_reference": row.order_reference,
                "purpose": row.purpose,
                "officer": row.officer,
                "dpia_reference": row.dpia_reference,
                "valid_from": row.valid_from.isoformat(),
                "valid_until": row.valid_until.isoformat(),
                "sites": {
                    ref.key: {
                        "profile_sha256": ref.profile_sha256,
                        "allowed_origins": sorted(ref.allowed_origins),
                    }
                    for ref in new.sites
                },
                "max_pages_per_run": row.max_pages_per_run,
                "max_runs_per_day": row.max_runs_per_day,
                "indicator_threshold": row.indicator_threshold,
                "catalogue_sha256": catalogue.digest,
            },
            cases=[case.number],
        ),
    )
    return row


@dataclass(frozen=True, slots=True)
class AuthorisationStanding:
    """An authorisation as a running crawl reads it before every store: may it still
    store (``stop_reason``), and under which basis until when (``ad_expiry``)."""

    legal_basis: str
    valid_until: datetime
    revoked_at: datetime | None
    paused_at: datetime | None
    case_closed_at: datetime | None


def standing_of(session: Session, authorisation_id: int) -> AuthorisationStanding:
    """The authorisation's standing now, in one small query; ``AuthorisationNotFound``."""
    row = session.execute(
        select(
            Authorisation.legal_basis,
            Authorisation.valid_until,
            Authorisation.revoked_at,
            Authorisation.paused_at,
            Case.closed_at,
        )
        .join(Case, Case.id == Authorisation.case_id)
        .where(Authorisation.id == authorisation_id)
    ).one_or_none()
    if row is None:
        raise AuthorisationNotFound(f"no authorisation with id {authorisation_id}")
    return AuthorisationStanding(*row)


def get_authorisation(session: Session, authorisation_id: int) -> Authorisation:
    """The stored authorisation, or ``AuthorisationNotFound``."""
    row = session.get(Authorisation, authorisation_id)
    if row is None:
        raise AuthorisationNotFound(f"no authorisation with id {authorisation_id}")
    return row


def visible_authorisation(
    session: Session, access: AccessContext, authorisation_id: int
) -> Authorisation:
    """An authorisation the user's role lets them see (their cases, or all)."""
    row = get_authorisation(session, authorisation_id)
    access.require(Permission.VIEW_AUTHORISATIONS, case_ref(row.case))
    return row


def list_authorisations(session: Session, access: AccessContext) -> list[Authorisation]:
    """The authorisations the user may see, oldest first."""
    cases = access.case_filter(Permission.VIEW_AUTHORISATIONS)
    query = (
        select(Authorisation)
        .options(selectinload(Authorisation.site_pins).selectinload(AuthorisationSite.site))
        .order_by(Authorisation.id)
    )
    if cases is not None:
        query = query.where(Authorisation.case_id.in_(cases))
    return list(session.scalars(query))


def revoke_authorisation(
    session: Session,
    access: AccessContext,
    authorisation_id: int,
    reason: str,
    catalogue: LegalBasisCatalogue,
) -> Authorisation:
    """Revoke from now on: future crawls are refused and running ones stop within seconds;
    the data's retention now counts from the revocation."""
    row = get_authorisation(session, authorisation_id)
    access.require(Permission.MANAGE_AUTHORISATIONS, case_ref(row.case))
    if len(reason.strip()) < 3:
        raise InvalidAuthorisation("a revocation needs a reason (--reason)", case=row.case_number)
    if row.revoked_at is not None:
        raise InvalidAuthorisation(
            f"authorisation {authorisation_id} is already revoked", case=row.case_number
        )
    row.revoked_at = utcnow()
    row.revoked_by = access.user
    session.flush()
    refresh_expiry(session, catalogue, authorisation_ids=[row.id])
    record_event(
        session,
        access.event(
            "authorisation.revoked",
            f"authorisation:{row.id}",
            justification=reason.strip(),
            cases=[row.case_number],
        ),
    )
    return row


def amend_site(
    session: Session, access: AccessContext, authorisation_id: int, ref: SiteRef, reason: str
) -> tuple[SitePin | None, SitePin]:
    """Record a legal officer's review of a site profile as it is now: the authorisation
    pins the new hash and origins (adding the site if it was not named). Returns the old
    pin (None for a new site) and the new one."""
    row = get_authorisation(session, authorisation_id)
    access.require(Permission.MANAGE_AUTHORISATIONS, case_ref(row.case))
    if len(reason.strip()) < 3:
        raise InvalidAuthorisation("an amendment needs a reason (--reason)", case=row.case_number)
    if row.revoked_at is not None:
        raise InvalidAuthorisation(
            f"authorisation {authorisation_id} is revoked; register a new one",
            case=row.case_number,
        )
    if not ref.allowed_origins:
        raise InvalidAuthorisation(f"site {ref.key!r} allows no origin", case=row.case_number)
    site = upsert_site(session, ref)
    pin = next((p for p in row.site_pins if p.site_id == site.id), None)
    old = (
        SitePin(ref.key, pin.profile_sha256, frozenset(pin.allowed_origins))
        if pin is not None
        else None
    )
    if pin is None:
        pin = AuthorisationSite(site=site, profile_sha256="", allowed_origins=[], reviewed_by="")
        row.site_pins.append(pin)
    pin.profile_sha256 = ref.profile_sha256
    pin.allowed_origins = sorted(ref.allowed_origins)
    pin.reviewed_at = utcnow()
    pin.reviewed_by = access.user
    session.flush()
    record_event(
        session,
        access.event(
            "authorisation.amended",
            f"authorisation:{row.id}",
            properties={
                "site": ref.key,
                "previous": None
                if old is None
                else {
                    "profile_sha256": old.profile_sha256,
                    "allowed_origins": sorted(old.allowed_origins),
                },
                "profile_sha256": ref.profile_sha256,
                "allowed_origins": sorted(ref.allowed_origins),
            },
            justification=reason.strip(),
            cases=[row.case_number],
        ),
    )
    return old, ref.pin()


def review_collection(
    session: Session,
    access: AccessContext,
    authorisation_id: int,
    reason: str,
    thresholds: MonitorThresholds,
    now: datetime,
) -> MonitorStatus:
    """A legal officer's review of the systematic-collection monitor: thresholds count from
    the figures as they are now, and a pause ends."""
    row = get_authorisation(session, authorisation_id)
    access.require(Permission.MANAGE_AUTHORISATIONS, case_ref(row.case))
    if len(reason.strip()) < 3:
        raise InvalidAuthorisation("a review needs a reason (--reason)", case=row.case_number)
    figures = measure(session, row.id, now)
    was_paused = row.paused_at is not None
    row.monitor_baseline = figures
    row.monitor_reviewed_at = now
    row.monitor_reviewed_by = access.user
    row.paused_at = None
    row.pause_reason = None
    session.flush()
    record_event(
        session,
        access.event(
            "authorisation.reviewed",
            f"authorisation:{row.id}",
            properties={"figures": figures, "pause_lifted": was_paused},
            justification=reason.strip(),
            cases=[row.case_number],
        ),
    )
    return monitor_status(session, row, thresholds, now)
