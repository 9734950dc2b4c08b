"""Registering, reading and revoking authorisations in the database, with audit entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from legal_policy.authorisation import AuthorisationTerms, validate_new_authorisation
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.errors import AuthorisationNotFound, InvalidAuthorisation
from storage.models import Authorisation, Site
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class SiteRef:
    """A site an authorisation names, as described by its site profile."""

    key: str
    name: str
    base_url: str
    profile_sha256: str


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
        site_keys=frozenset(site.key for site in row.sites),
        max_pages_per_run=row.max_pages_per_run,
        max_runs_per_day=row.max_runs_per_day,
        revoked_at=row.revoked_at,
    )


def upsert_site(session: Session, ref: SiteRef) -> Site:
    """The site row for a profile, created or refreshed (name, URL, profile hash)."""
    site = session.scalar(select(Site).where(Site.key == ref.key))
    if site is None:
        site = Site(key=ref.key, name=ref.name, base_url=ref.base_url, profile_sha256="")
        session.add(site)
    site.name, site.base_url, site.profile_sha256 = ref.name, ref.base_url, ref.profile_sha256
    session.flush()
    return site


def register_authorisation(
    session: Session, new: NewAuthorisation, actor: str, catalogue: LegalBasisCatalogue
) -> Authorisation:
    """Validate and store an authorisation, and audit it, in the caller's transaction."""
    terms = AuthorisationTerms(
        id=0,
        case_number=new.case_number,
        legal_basis=new.legal_basis,
        order_reference=new.order_reference,
        purpose=new.purpose,
        officer=new.officer,
        dpia_reference=new.dpia_reference,
        valid_from=new.valid_from,
        valid_until=new.valid_until,
        site_keys=frozenset(s.key for s in new.sites),
        max_pages_per_run=new.max_pages_per_run,
        max_runs_per_day=new.max_runs_per_day,
    )
    validate_new_authorisation(terms, catalogue)
    row = Authorisation(
        case_number=new.case_number.strip(),
        legal_basis=new.legal_basis,
        order_reference=new.order_reference.strip(),
        purpose=new.purpose,
        officer=new.officer.strip(),
        dpia_reference=new.dpia_reference.strip(),
        valid_from=new.valid_from,
        valid_until=new.valid_until,
        max_pages_per_run=new.max_pages_per_run,
        max_runs_per_day=new.max_runs_per_day,
        registered_by=actor,
        sites=[upsert_site(session, ref) for ref in new.sites],
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        AuditEvent(
            action="authorisation.registered",
            actor=actor,
            subject=f"authorisation:{row.id}",
            properties={
                "case_number": row.case_number,
                "legal_basis": row.legal_basis,
                "order_reference": row.order_reference,
                "purpose": row.purpose,
                "officer": row.officer,
                "dpia_reference": row.dpia_reference,
                "valid_from": row.valid_from.isoformat(),
                "valid_until": row.valid_until.isoformat(),
                "sites": sorted(s.key for s in new.sites),
                "max_pages_per_run": row.max_pages_per_run,
                "max_runs_per_day": row.max_runs_per_day,
            },
        ),
    )
    return row


def get_authorisation(session: Session, authorisation_id: int) -> Authorisation:
    """The stored authorisation, or ``AuthorisationNotFound``."""
    row = session.get(Authorisation, authorisation_id)
    if row is None:
        raise AuthorisationNotFound(f"no authorisation with id {authorisation_id}")
    return row


def revoke_authorisation(
    session: Session, authorisation_id: int, actor: str, reason: str
) -> Authorisation:
    """Revoke from now on; running and future crawls under it are refused."""
    if not reason.strip():
        raise InvalidAuthorisation("a revocation needs a reason")
    row = get_authorisation(session, authorisation_id)
    if row.revoked_at is not None:
        raise InvalidAuthorisation(f"authorisation {authorisation_id} is already revoked")
    row.revoked_at = utcnow()
    row.revoked_by = actor
    record_event(
        session,
        AuditEvent(
            action="authorisation.revoked",
            actor=actor,
            subject=f"authorisation:{row.id}",
            justification=reason,
        ),
    )
    return row
