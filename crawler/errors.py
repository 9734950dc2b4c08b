"""Typed errors of the crawler."""

from __future__ import annotations

from legal_policy.errors import PolicyError


class SiteProfileError(Exception):
    """A site profile file is missing or invalid; the message names the file and field."""


class UnknownSite(SiteProfileError, PolicyError):
    """No site profile has this key: a person asked for a site nothing describes (audited
    as a refusal like every other ``PolicyError``)."""


class CrawlFailed(Exception):
    """The crawl worker process ended abnormally."""


class InvalidRun(PolicyError):
    """A run cannot be resumed or shown as asked (unknown, finished, another site)."""
