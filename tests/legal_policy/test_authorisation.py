"""Which crawls an authorisation allows, and which authorisations may be registered."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from legal_policy.authorisation import (
    AuthorisationTerms,
    check_crawl_allowed,
    validate_new_authorisation,
)
from legal_policy.catalogue import CatalogueError, load_catalogue, parse_catalogue
from legal_policy.errors import (
    AuthorisationExpired,
    AuthorisationNotYetValid,
    AuthorisationRevoked,
    InvalidAuthorisation,
    PurposeNotAllowed,
    RunLimitReached,
    SiteNotAuthorised,
    UnknownLegalBasis,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TERMS = AuthorisationTerms(
    id=1,
    case_number="CASE-1",
    legal_basis="wpg-9",
    order_reference="ORDER-1",
    purpose="criminal_investigation",
    officer="officer",
    dpia_reference="DPIA-1",
    valid_from=NOW - timedelta(days=1),
    valid_until=NOW + timedelta(days=1),
    site_keys=frozenset({"demo"}),
    max_pages_per_run=100,
    max_runs_per_day=2,
)


def test_valid_authorisation_allows_its_site() -> None:
    check_crawl_allowed(TERMS, "demo", NOW, runs_started_today=0)


@pytest.mark.parametrize(
    ("terms", "site", "runs", "error"),
    [
        (replace(TERMS, valid_until=NOW), "demo", 0, AuthorisationExpired),
        (replace(TERMS, valid_from=NOW + timedelta(hours=1)), "demo", 0, AuthorisationNotYetValid),
        (replace(TERMS, revoked_at=NOW - timedelta(minutes=1)), "demo", 0, AuthorisationRevoked),
        (replace(TERMS, purpose="administrative_inspection"), "demo", 0, PurposeNotAllowed),
        (TERMS, "other-site", 0, SiteNotAuthorised),
        (TERMS, "demo", 2, RunLimitReached),
    ],
)
def test_crawl_refused(
    terms: AuthorisationTerms, site: str, runs: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_crawl_allowed(terms, site, NOW, runs_started_today=runs)


def test_registration_validates_terms() -> None:
    catalogue = load_catalogue()
    validate_new_authorisation(TERMS, catalogue)
    with pytest.raises(UnknownLegalBasis):
        validate_new_authorisation(replace(TERMS, legal_basis="gdpr-6"), catalogue)
    with pytest.raises(PurposeNotAllowed):
        validate_new_authorisation(replace(TERMS, purpose="municipal_disclosure"), catalogue)
    with pytest.raises(InvalidAuthorisation):
        validate_new_authorisation(replace(TERMS, valid_until=TERMS.valid_from), catalogue)
    with pytest.raises(InvalidAuthorisation):
        validate_new_authorisation(replace(TERMS, site_keys=frozenset()), catalogue)
    with pytest.raises(InvalidAuthorisation):
        validate_new_authorisation(replace(TERMS, dpia_reference="  "), catalogue)


def test_catalogue_errors_name_source_and_field() -> None:
    with pytest.raises(CatalogueError, match=r"mine.yaml: legal_bases.0.review_days_after_end"):
        parse_catalogue(
            "legal_bases:\n  - {code: x, title: y, review_days_after_end: -1}\n", "mine.yaml"
        )
    with pytest.raises(CatalogueError, match="not valid YAML"):
        parse_catalogue("legal_bases: [", "broken.yaml")
