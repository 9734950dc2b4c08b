"""Typed errors of the crawler."""

from __future__ import annotations


class SiteProfileError(Exception):
    """A site profile file is missing or invalid; the message names the file and field."""


class CrawlFailed(Exception):
    """The crawl worker process ended abnormally."""
