"""Typed refusals of the legal policy layer; the CLI and web map them in one place each."""

from __future__ import annotations


class PolicyError(Exception):
    """The law, as configured, does not allow this action."""


class AuthorisationNotFound(PolicyError):
    """No authorisation with this id is registered."""


class AuthorisationNotYetValid(PolicyError):
    """The authorisation's validity period has not begun."""


class AuthorisationExpired(PolicyError):
    """The authorisation's validity period has ended."""


class AuthorisationRevoked(PolicyError):
    """The authorisation was revoked."""


class PurposeNotAllowed(PolicyError):
    """The purpose is not on the closed list (criminal investigation only)."""


class SiteNotAuthorised(PolicyError):
    """The authorisation does not name this site."""


class RunLimitReached(PolicyError):
    """The authorisation's limit on crawl runs per day is used up."""


class UnknownLegalBasis(PolicyError):
    """The legal basis is not in the catalogue."""


class InvalidAuthorisation(PolicyError):
    """An authorisation being registered is incomplete or inconsistent."""


class JustificationRequired(PolicyError):
    """Consulting or exporting personal data needs a recorded justification."""


class CatalogueError(Exception):
    """The legal-basis catalogue file is invalid."""
