"""Downloader middlewares that keep the crawler inside its authorisation."""

from __future__ import annotations

from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured

from crawler.site_profile import origin_of


def is_allowed(url: str, allowed_origins: frozenset[str]) -> bool:
    """True only for URLs on an allowlisted origin; deny by default."""
    try:
        return origin_of(url) in allowed_origins
    except ValueError:  # unparsable port and the like
        return False


class AllowlistMiddleware:
    """Refuse every request outside the authorised sites' origins.

    Unlike Scrapy's OffsiteMiddleware it denies when the list is empty and ignores
    ``dont_filter``; redirects come back through here as new requests and are checked too.
    """

    def __init__(self, crawler: Crawler, allowed_origins: frozenset[str]) -> None:
        self.crawler = crawler
        self.allowed_origins = allowed_origins

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AllowlistMiddleware:
        origins = crawler.settings.getlist("ADWATCH_ALLOWED_ORIGINS")
        # An empty allowlist still builds the middleware: it then refuses everything.
        return cls(crawler, frozenset(origin_of(o) for o in origins))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if is_allowed(request.url, self.allowed_origins):
            return
        _refuse(self.crawler, request, "not on the authorisation's allowlist")


class PassiveOnlyMiddleware:
    """Only GET and HEAD, no request bodies, no credentials: adwatch reads, never acts."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PassiveOnlyMiddleware:
        if not crawler.settings.getbool("ADWATCH_PASSIVE_ONLY", True):
            raise NotConfigured("passive-only collection disabled")
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.method not in ("GET", "HEAD"):
            _refuse(self.crawler, request, f"method {request.method} is not passive")
        if request.body:
            _refuse(self.crawler, request, "requests with a body are not passive")
        if b"Authorization" in request.headers:
            _refuse(self.crawler, request, "credentials are never sent")


class PageBudgetMiddleware:
    """Stop sending page requests once the authorisation's pages-per-run budget is spent.

    Counted when a request leaves, not when a response arrives, so requests already in
    flight can never push a run past its limit (Scrapy's CLOSESPIDER_PAGECOUNT can).
    Images of captured ads and robots.txt are not pages and do not count.
    """

    def __init__(self, crawler: Crawler, budget: int) -> None:
        self.crawler = crawler
        self.budget = budget
        self.sent = 0
        self.exhausted_reported = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageBudgetMiddleware:
        budget = crawler.settings.getint("ADWATCH_MAX_PAGES", 0)
        if budget <= 0:
            raise NotConfigured("no page budget")
        return cls(crawler, budget)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.meta.get("adwatch_image") or _is_robots_txt(request):
            return
        if self.sent < self.budget:
            self.sent += 1
            return
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("adwatch/over_page_budget")
        report = getattr(getattr(self.crawler.spider, "context", None), "report", None)
        if report is not None and not self.exhausted_reported:
            report.add_problem(
                "page_limit",
                request.url,
                f"stopped at the authorisation's limit of {self.budget} pages per run",
            )
        self.exhausted_reported = True
        raise IgnoreRequest(f"adwatch page budget of {self.budget} spent: {request.url}")


def _is_robots_txt(request: Request) -> bool:
    return bool(request.meta.get("dont_obey_robotstxt")) and request.url.endswith("/robots.txt")


def _refuse(crawler: Crawler, request: Request, reason: str) -> Any:
    assert crawler.stats is not None
    crawler.stats.inc_value("adwatch/requests_refused")
    spider = crawler.spider
    report = getattr(getattr(spider, "context", None), "report", None)
    if report is not None:
        report.requests_refused += 1
        report.add_problem("refused", request.url, reason)
    raise IgnoreRequest(f"adwatch refused {request.url}: {reason}")
