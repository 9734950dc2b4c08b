"""Turning a link found on a page into an absolute URL."""

from __future__ import annotations

from scrapy.http import Response


def join_url(response: Response, href: str) -> str | None:
    """The absolute URL of ``href`` on ``response``'s page, or None when there is none."""
    href = href.strip()
    if not href:
        return None
    return str(response.urljoin(href))
