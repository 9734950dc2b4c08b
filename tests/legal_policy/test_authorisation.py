"""Which crawls an authorisation allows, and which authorisations may be registered."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from legal_policy.authorisation import (
    STOP_CASE_CLOSED,
    STOP_EXPIRED,
    STOP_PAUSED,
    STOP_REVOKED,
    AuthorisationTerms,
    SitePin,
    check_crawl_allowed,
    stop_reason,
    validate_new_authorisation,
)
from legal_policy.catalogue import CatalogueError, load_catalogue, parse_catalogue
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
    UnknownLegalBasis,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEMO = SitePin("demo", "a" * 64, frozenset({"http://127.0.0.1:8765"}))
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
    sites=(DEMO,),
    max_pages_per_run=100,
    max_runs_per_day=2,
)


def test_valid_authorisation_allows_its_site_as_pinned() -> None:
    check_crawl_allowed(TERMS, DEMO, NOW, runs_started_today=0)


@pytest.mark.parametrize(
    ("terms", "site", "runs", "error"),
    [
        (replace(TERMS, valid_until=NOW), DEMO, 0, AuthorisationExpired),
        (replace(TERMS, valid_from=NOW + timedelta(hours=1)), DEMO, 0, AuthorisationNotYetValid),
        (replace(TERMS, revoked_at=NOW - timedelta(minutes=1)), DEMO, 0, AuthorisationRevoked),
        (replace(TERMS, purpose="administrative_inspection"), DEMO, 0, PurposeNotAllowed),
        (replace(TERMS, paused_at=NOW - timedelta(hours=1)), DEMO, 0, CollectionPaused),
        (replace(TERMS, case_closed_at=NOW - timedelta(days=1)), DEMO, 0, CaseClosed),
        (TERMS, replace(DEMO, key="other-site"), 0, SiteNotAuthorised),
        (TERMS, replace(DEMO, profile_sha256="b" * 64), 0, SiteProfileChanged),
        (
            TERMS,
            replace(DEMO, allowed_origins=frozenset({"http://elsewhere.example:80"})),
            0,
            SiteProfileChanged,
        ),
        (TERMS, DEMO, 2, RunLimitReached),
    ],
)
def test_crawl_refused(
    terms: AuthorisationTerms, site: SitePin, runs: int, error: type[Exception]
) -> None:
    with pytest.raises(error) as refused:
        check_crawl_allowed(terms, site, NOW, runs_started_today=runs)
    assert refused.value.case == "CASE-1"  # type: ignore[attr-defined]


def test_a_changed_profile_names_what_changed_and_how_to_review_it() -> None:
    moved = SitePin("demo", "b" * 64, frozenset({"http://elsewhere.example:80"}))
    with pytest.raises(SiteProfileChanged, match=r"elsewhere\.example") as refused:
        check_crawl_allowed(TERMS, moved, NOW, runs_started_today=0)
    assert "adwatch authorisation amend 1 --site demo" in str(refused.value)


def test_stop_reasons_of_a_running_crawl() -> None:
    assert stop_reason(TERMS, NOW) is None
    assert stop_reason(replace(TERMS, revoked_at=NOW), NOW) == STOP_REVOKED
    assert stop_reason(TERMS, TERMS.valid_until) == STOP_EXPIRED
    assert stop_reason(replace(TERMS, paused_at=NOW), NOW) == STOP_PAUSED
    assert stop_reason(replace(TERMS, case_closed_at=NOW), NOW) == STOP_CASE_CLOSED
    # A revocation in the future does not stop anything yet.
    assert stop_reason(replace(TERMS, revoked_at=NOW + timedelta(hours=1)), NOW) is None


def test_registration_validates_terms() -> None:
    catalogue = load_catalogue()
    validate_new_authorisation(TERMS, catalogue, NOW)
    with pytest.raises(UnknownLegalBasis):
        validate_new_authorisation(replace(TERMS, legal_basis="gdpr-6"), catalogue, NOW)
    with pytest.raises(PurposeNotAllowed):
        validate_new_authorisation(replace(TERMS, purpose="municipal_disclosure"), catalogue, NOW)
    with pytest.raises(InvalidAuthorisation):
        validate_new_authorisation(replace(TERMS, valid_until=TERMS.valid_from), catalogue, NOW)
    with pytest.raises(InvalidAuthorisation):
        validate_new_authorisation(replace(TERMS, sites=()), catalogue, NOW)
    with pytest.raises(InvalidAuthorisation):
        validate_new_authorisation(replace(TERMS, dpia_reference="  "), catalogue, NOW)
    with pytest.raises(InvalidAuthorisation, match="allows no origin"):
        validate_new_authorisation(
            replace(TERMS, sites=(replace(DEMO, allowed_origins=frozenset()),)), catalogue, NOW
        )


def test_a_validity_window_that_ends_in_the_past_is_refused() -> None:
    past = replace(TERMS, valid_from=NOW - timedelta(days=30), valid_until=NOW - timedelta(days=1))
    with pytest.raises(InvalidAuthorisation, match="ends in the past"):
        validate_new_authorisation(past, load_catalogue(), NOW)


CATALOGUE_HEAD = """
systematic_collection:
  {days_running: 28, ads_kept: 2000, distinct_profiles: 500, cross_site_links: 50,
   pause_crawls_when_crossed: false}
legal_bases:
"""


def test_catalogue_errors_name_source_and_field() -> None:
    with pytest.raises(CatalogueError, match=r"mine.yaml: legal_bases.0.retention.days"):
        parse_catalogue(
            CATALOGUE_HEAD + "  - {code: x, title: y, fields: {}, "
            "retention: {days: -1, counted_from: capture, max_days: 10}}\n",
            "mine.yaml",
        )
    with pytest.raises(CatalogueError, match="not valid YAML"):
        parse_catalogue("legal_bases: [", "broken.yaml")
    with pytest.raises(CatalogueError, match="over the legal maximum"):
        parse_catalogue(
            CATALOGUE_HEAD + "  - {code: x, title: y, fields: {}, "
            "retention: {days: 200, counted_from: capture, max_days: 182}}\n",
            "mine.yaml",
        )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("{city: mask}", "'mask' is not possible for this field"),
        ("{phones: mask}", "'mask' is not possible for this field"),
        ("{colour: keep}", "unknown field"),
        ("{phones: pseudonymise}", "needs title: mask or drop"),
        ("{phones: drop, title: mask, text: mask}", "raw_page: keep needs title: keep"),
        ("{text: mask, raw_page: keep}", "raw_page: keep needs text: keep"),
        ("{title: hide}", "is not a rule"),
    ],
)
def test_field_rules_that_make_no_sense_or_defeat_each_other_are_refused(
    fields: str, message: str
) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(
            CATALOGUE_HEAD + f"  - {{code: x, title: y, fields: {fields}, "
            "retention: {days: 1, counted_from: capture, max_days: 10}}\n",
            "mine.yaml",
        )


def test_bundled_catalogue_loads_with_rules_retention_and_monitor() -> None:
    catalogue = load_catalogue()
    wpg9 = catalogue.get("wpg-9")
    assert wpg9.retention.days == 182 and wpg9.retention.counted_from.value == "authorisation_end"
    assert wpg9.fields.raw_page.value == "keep"
    assert catalogue.get("wpg-10").fields.phones.value == "pseudonymise"
    assert catalogue.get("wpg-8").retention.counted_from.value == "capture"
    assert catalogue.monitor.ads_kept > 0
    assert len(catalogue.digest) == 64
