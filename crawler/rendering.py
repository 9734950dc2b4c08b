"""JavaScript rendering with scrapy-playwright and Debian's Chromium, inside the allowlist.

Only pages of a profile with ``render_javascript: true`` are rendered; images and
robots.txt are fetched plainly. The browser's own traffic does not pass Scrapy's
downloader middlewares, so every sub-request of a rendered page (scripts, trackers, fonts,
fetch/XHR) is checked again here against the run's allowlist and aborted — and counted —
when it leaves it, or when it is anything but GET or HEAD.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Request as BrowserRequest
from scrapy_playwright.page import PageMethod

from crawler.context import RunReport
from crawler.items import RENDERED_META
from crawler.middlewares import is_allowed
from crawler.netguard import abort_off_allowlist
from crawler.site_profile import SiteProfile

# Chromium as the machines run it: no sandbox (root in containers), no GPU, and
# none of Chrome's own background traffic (updates, sync, field trials).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--dns-prefetch-disable",
    "--no-pings",
)
# How long a rendered page may take to show its ad.
RENDER_TIMEOUT_MS = 15_000


class BrowserRequestGuard:
    """Decides, for each request the browser makes, whether it is aborted (True)."""

    def __init__(self, allowed_origins: frozenset[str], report: RunReport) -> None:
        self.allowed_origins = allowed_origins
        self.report = report
        self.aborted = 0

    def __call__(self, request: BrowserRequest) -> bool:
        method = request.method.upper()
        if method not in ("GET", "HEAD"):
            reason = f"browser {method} request refused: adwatch only reads"
        elif not is_allowed(request.url, self.allowed_origins):
            reason = f"browser {request.resource_type} request outside the allowlist refused"
        elif abort_off_allowlist(request):
            reason = f"browser {request.resource_type} request refused by the network guard"
        else:
            return False
        self.aborted += 1
        self.report.requests_refused += 1
        self.report.add_problem("refused", request.url, reason)
        return True


def rendering_settings(
    profile: SiteProfile, chromium_path: str, guard: BrowserRequestGuard
) -> dict[str, Any]:
    """Scrapy settings that render the profile's pages in headless Chromium."""
    handler = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
    return {
        "DOWNLOAD_HANDLERS": {"http": handler, "https": handler},
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {
            "executable_path": chromium_path,
            "headless": True,
            "args": list(CHROMIUM_ARGS),
        },
        # One browser context, a bounded number of pages: memory stays flat.
        "PLAYWRIGHT_MAX_CONTEXTS": 1,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": profile.config.concurrent_requests,
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": RENDER_TIMEOUT_MS,
        "PLAYWRIGHT_ABORT_REQUEST": guard,
        # No service workers: their fetches would escape the page's request routing.
        "PLAYWRIGHT_CONTEXTS": {"default": {"service_workers": "block"}},
    }


def render_meta(profile: SiteProfile, *, ad_page: bool) -> dict[str, Any]:
    """Request meta that renders a page; ad pages wait until their ad is on the page."""
    meta: dict[str, Any] = {RENDERED_META: True}
    if ad_page:
        meta["playwright_page_methods"] = [
            PageMethod(
                "wait_for_selector",
                wait_selector(profile),
                state="attached",
                timeout=RENDER_TIMEOUT_MS,
            )
        ]
    return meta


def wait_selector(profile: SiteProfile) -> str:
    """The element whose arrival shows the ad is rendered: the container (its title when
    the title is a CSS selector inside it)."""
    fields = profile.config.fields
    container = fields.container
    title = getattr(fields.title, "css", None) if not isinstance(fields.title, str) else None
    title = fields.title if isinstance(fields.title, str) else title
    if title:
        element = title.split("::", 1)[0].strip()
        if element:
            return f"{container} {element}"
    return container
