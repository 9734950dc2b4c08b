"""Turning a link found on a page into an absolute URL.

A page's ``<base href>`` decides how its relative links resolve. One that points to another
origin would send every relative link — the ad's own images included — off the allowlist,
where they are refused and lost. So a base on another origin is ignored: links resolve
against the page itself (``PageDirectivesMiddleware`` reports the ignored base).
"""

from __future__ import annotations

from urllib.parse import urljoin

from scrapy.http import Response, TextResponse
from scrapy.utils.response import get_base_url

from crawler.site_profile import origin_of


def page_base(response: Response) -> str:
    """The URL the page's relative links resolve against: its ``<base href>`` when that is
    on the page's own origin, else the page's URL."""
    if not isinstance(response, TextResponse):
        return response.url
    base = get_base_url(response)
    return base if _same_origin(base, response.url) else response.url


def refused_base_href(response: Response) -> str | None:
    """The page's ``<base href>`` when it points to another origin (and is ignored)."""
    if not isinstance(response, TextResponse):
        return None
    base = get_base_url(response)
    return None if _same_origin(base, response.url) else base


def join_url(response: Response, href: str) -> str | None:
    """The absolute URL of ``href`` on ``response``'s page, or None when there is none."""
    href = href.strip()
    if not href:
        return None
    return urljoin(page_base(response), href)


def _same_origin(url: str, page_url: str) -> bool:
    try:
        return origin_of(url) == origin_of(page_url)
    except ValueError:  # an unparsable port in the base: never follow it
        return False
