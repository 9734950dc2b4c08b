"""Typed refusals of the legal policy layer; the CLI and web map them in one place each.

Every ``PolicyError`` raised on behalf of a person is written to the audit log as a
refusal by the front door that caught it (``legal_policy.refusals``); ``case`` names the
case it concerned, when there is one, so that the refusal is found under that case.
"""

from __future__ import annotations


class PolicyError(Exception):
    """The law, as configured, does not allow this action."""

    def __init__(self, message: str, *, case: str | None = None) -> None:
        super().__init__(message)
        self.case = case


class AuthorisationNotFound(PolicyError):
    """No authorisation with this id is registered."""


class AuthorisationNotYetValid(PolicyError):
    """The authorisation's validity period has not begun."""


class AuthorisationExpired(PolicyError):
    """The authorisation's validity period has ended."""


class AuthorisationRevoked(PolicyError):
    """The authorisation was revoked."""


class CollectionPaused(PolicyError):
    """The systematic-collection monitor paused crawls under this authorisation."""


class PurposeNotAllowed(PolicyError):
    """The purpose is not on the closed list (criminal investigation only)."""


class SiteNotAuthorised(PolicyError):
    """The authorisation does not name this site."""


class SiteProfileChanged(PolicyError):
    """The site profile's bytes or origins differ from what the authorisation pinned."""


class RunLimitReached(PolicyError):
    """The authorisation's limit on crawl runs per day is used up."""


class UnknownLegalBasis(PolicyError):
    """The legal basis is not in the catalogue."""


class InvalidAuthorisation(PolicyError):
    """An authorisation being registered is incomplete or inconsistent."""


class JustificationRequired(PolicyError):
    """Consulting or exporting personal data needs a recorded justification."""


class IdentityRequired(PolicyError):
    """The command acts on personal data or the registry but names no user."""


class UnknownUser(PolicyError):
    """The user named is not in the registry."""


class UserDisabled(PolicyError):
    """The user was disabled and may no longer act."""


class AccessDenied(PolicyError):
    """The user's role or case membership does not allow this."""


class UnknownCase(PolicyError):
    """The case number is not in the registry."""


class CaseClosed(PolicyError):
    """The case was closed; nothing more is collected or read under it."""


class InvalidRegistryChange(PolicyError):
    """A change to users, cases, memberships or combinations is not valid."""


class InvalidRetention(PolicyError):
    """A retention period or purge request is not valid."""


class InvalidAssessment(PolicyError):
    """A data-subject category change is not valid."""


class SearchNotAllowed(PolicyError):
    """A search key the law does not allow on its own (nationality, origin)."""


class CatalogueError(Exception):
    """The legal-basis catalogue file is invalid."""
