"""Downloader middlewares that keep the crawler inside its authorisation, and the problem
kinds of the requests they (and Scrapy) drop.

Every request that does not lead to a page or an image ends up in the run's problems,
by kind:

============== ==================================================================
kind           why the request was dropped
============== ==================================================================
refused        not on the allowlist (a link, a redirect, an image host, a
               ``<base href>`` or ``<meta refresh>`` target), not passive, or
               refused by the network guard; reported where it was refused
robots         the site's robots.txt disallows it (when the profile obeys it)
too_large      the response exceeded ``DOWNLOAD_MAXSIZE``
redirect_loop  a redirect chain came back to a URL twice, or was too long
timeout        no complete answer within ``DOWNLOAD_TIMEOUT`` (after retrying)
http_error     the site answered with a non-2xx status (after retrying 5xx)
unreachable    connection refused or lost, or the name did not resolve
page_limit     the authorisation's pages-per-run budget is spent (reported once)
download_error anything else (named by its exception type): a bug to look into
============== ==================================================================

An image keeps the ad: a failed image is reported by the same kinds, except that an HTTP
error or an unreachable image host is ``image_unavailable`` (and an image that is not
an image is ``bad_image``, from the pipeline).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware as ScrapyRedirectMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.response import get_meta_refresh
from tldextract import TLDExtract
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost, TCPTimedOutError
from twisted.internet.error import TimeoutError as TxTimeoutError
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed

from crawler.netguard import REFUSAL_MARK, active_guard
from crawler.site_profile import origin_of
from crawler.urls import refused_base_href

# --- dropped requests -------------------------------------------------------------------


class RequestRefused(IgnoreRequest):
    """Dropped by one of adwatch's own middlewares, which reported it already."""


class RobotsForbidden(IgnoreRequest):
    """The site's robots.txt disallows the request."""


class RedirectLoop(IgnoreRequest):
    """A redirect chain that comes back on itself, or never ends."""


def failure_kind(failure: Failure) -> str | None:
    """The problem kind of a request that failed, or None when it is reported already."""
    if _is(failure, RequestRefused):
        return None
    if _is(failure, RobotsForbidden):
        return "robots"
    if _is(failure, RedirectLoop):
        return "redirect_loop"
    if _is(failure, HttpError):
        return "http_error"
    if _is(failure, IgnoreRequest):
        return "refused"  # another component's filter (Scrapy's offsite middleware)
    if _refused_by_guard(failure):
        return None  # the network guard refused its socket and reported that
    # Only DOWNLOAD_MAXSIZE cancels a download here (StopDownload is not used).
    if _is(failure, DownloadCancelledError, CancelledError):
        return "too_large"
    if _is(failure, DownloadTimeoutError, TxTimeoutError, TCPTimedOutError):
        return "timeout"
    if _is(
        failure,
        DownloadConnectionRefusedError,
        CannotResolveHostError,
        DownloadFailedError,
        ResponseDataLossError,
        ConnectError,
        ConnectionLost,
        ConnectionDone,
        ResponseFailed,
        OSError,
    ):
        return "unreachable"
    return "download_error"


def _refused_by_guard(failure: Failure) -> bool:
    # Twisted's resolver and connector re-wrap the guard's exceptions (its message lost);
    # but a request the guard's policy does not permit never had a socket of its own.
    guard = active_guard()
    request = getattr(failure, "request", None)
    if REFUSAL_MARK in failure.getErrorMessage():
        return True
    return guard is not None and request is not None and not guard.policy.permits_url(request.url)


def _is(failure: Failure, *kinds: type[BaseException]) -> bool:
    return failure.check(*kinds) is not None  # type: ignore[no-untyped-call]


# An image the site does not deliver leaves the ad without it: one kind for both causes.
_IMAGE_KINDS = {"http_error": "image_unavailable", "unreachable": "image_unavailable"}


def image_problem_kind(kind: str) -> str:
    """The problem kind of a failed image request, from its request kind."""
    return _IMAGE_KINDS.get(kind, kind)


def problem_counts(problems: Iterable[Mapping[str, str]]) -> dict[str, int]:
    """How many problems of each kind a run had (for the audit log)."""
    return dict(sorted(Counter(p["kind"] for p in problems).items()))


def refused_hosts(problems: Iterable[Mapping[str, str]]) -> list[str]:
    """Hosts (with port) the run refused to contact: no path, no query, no content."""
    return sorted({_host_of(p["url"]) for p in problems if p["kind"] == "refused" and p["url"]})


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("dns", "unix"):
        return f"{parts.scheme}:{parts.path}"
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def is_allowed(url: str, allowed_origins: frozenset[str]) -> bool:
    """True only for URLs on an allowlisted origin; deny by default."""
    try:
        return origin_of(url) in allowed_origins
    except ValueError:  # unparsable port and the like
        return False


def _allowed_origins(crawler: Crawler) -> frozenset[str]:
    return frozenset(origin_of(o) for o in crawler.settings.getlist("ADWATCH_ALLOWED_ORIGINS"))


def report_refused(crawler: Crawler, url: str, reason: str) -> None:
    """Count and report something adwatch refused to contact (the run goes on)."""
    assert crawler.stats is not None
    crawler.stats.inc_value("adwatch/requests_refused")
    report = getattr(getattr(crawler.spider, "context", None), "report", None)
    if report is not None:
        report.requests_refused += 1
        report.add_problem("refused", url, reason)


def _refuse(crawler: Crawler, request: Request, reason: str) -> Any:
    redirects: Sequence[str] = request.meta.get("redirect_urls", ())
    if redirects:
        reason = f"{reason} (redirected from {redirects[-1]})"
    report_refused(crawler, request.url, reason)
    raise RequestRefused(f"adwatch refused {request.url}: {reason}")


# --- middlewares ------------------------------------------------------------------------


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
        # An empty allowlist still builds the middleware: it then refuses everything.
        return cls(crawler, _allowed_origins(crawler))

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
    Images of captured ads and robots.txt are not pages and do not count. A site profile's
    ``links.page_cap`` lowers the budget, never raises it.
    """

    def __init__(
        self, crawler: Crawler, budget: int, limit: str = "the authorisation's limit"
    ) -> None:
        self.crawler = crawler
        self.budget = budget
        self.limit = limit
        self.sent = 0
        self.exhausted_reported = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageBudgetMiddleware:
        budget = crawler.settings.getint("ADWATCH_MAX_PAGES", 0)
        # The spider (built before the downloader) carries the run's profile.
        profile = getattr(getattr(crawler.spider, "context", None), "profile", None)
        cap = profile.config.links.page_cap if profile is not None else None
        if cap is not None and (budget <= 0 or cap < budget):
            return cls(crawler, cap, "the site profile's page cap")
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
                f"stopped at {self.limit} of {self.budget} pages per run",
            )
        self.exhausted_reported = True
        # The one page_limit problem stands for every request dropped after it.
        raise RequestRefused(f"adwatch page budget of {self.budget} spent: {request.url}")


def _is_robots_txt(request: Request) -> bool:
    return bool(request.meta.get("dont_obey_robotstxt")) and request.url.endswith("/robots.txt")


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with a refusal the errbacks can tell apart.

    Scrapy raises a bare ``IgnoreRequest``, indistinguishable from any other filter; the run
    must report robots.txt refusals as such.
    """

    def process_request_2(self, rp: Any, request: Request) -> None:
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            raise RobotsForbidden(f"forbidden by robots.txt: {request.url}") from exc


class RedirectMiddleware(ScrapyRedirectMiddleware):
    """Scrapy's redirects, with loops caught and reported instead of silently dropped.

    Scrapy's duplicate filter swallows the second request of a loop (A → B → A) without
    calling any errback, and a chain of new URLs runs until ``REDIRECT_MAX_TIMES``. Here a
    chain may come back to a URL once — an age gate that sets a cookie and sends the
    crawler back (let through the duplicate filter) — and a second return, or a chain
    longer than the limit, fails with ``RedirectLoop``. Off-list targets are refused by
    the allowlist, which every redirected request passes again.
    """

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", ()), request.url]
        returns = chain.count(redirected.url)
        if returns >= 2:
            raise RedirectLoop(
                f"redirect loop: {redirected.url} again after {len(chain)} redirects "
                f"(from {chain[0]})"
            )
        try:
            result: Request = super()._redirect(redirected, request, reason)
        except IgnoreRequest as exc:
            raise RedirectLoop(
                f"more than {self.max_redirect_times} redirects (from {chain[0]})"
            ) from exc
        if returns:
            result.dont_filter = True
        return result


class PageDirectivesMiddleware:
    """Report a page's ``<base href>`` and ``<meta http-equiv=refresh>`` that point off-list.

    Takes the place of Scrapy's MetaRefreshMiddleware, which replaces the page by its
    refresh target: an ad page with a refresh lost its own content. Here the page always
    reaches the spider; a refresh target is never requested (the profile's link rules
    decide what is followed) and an off-list one is reported as refused. An off-list
    ``<base href>`` is ignored by ``crawler.urls.join_url`` and reported here, once per page.
    """

    def __init__(self, crawler: Crawler, allowed_origins: frozenset[str]) -> None:
        self.crawler = crawler
        self.allowed_origins = allowed_origins

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageDirectivesMiddleware:
        return cls(crawler, _allowed_origins(crawler))

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if not isinstance(response, HtmlResponse):
            return response
        base = refused_base_href(response)
        if base is not None:
            report_refused(
                self.crawler,
                base,
                f"<base href> of {response.url} points to another origin; its links were "
                "resolved against the page itself",
            )
        _interval, target = get_meta_refresh(response, ignore_tags=("script", "noscript"))
        if target and not is_allowed(target, self.allowed_origins):
            report_refused(
                self.crawler,
                target,
                f"meta refresh of {response.url} points off the allowlist; not followed, "
                "the page is kept",
            )
        return response


class OwnOriginCookiesMiddleware(CookiesMiddleware):
    """Cookies for a site that needs them (an age gate), kept per origin and never sent on.

    On only when the site profile says ``cookies: true``. Each allowlisted origin has a jar
    of its own (browsers' cookies ignore ports; these do not), a request to any other
    origin carries no cookie, and a response from one stores none. Scrapy's own middleware
    asks tldextract for the public-suffix list, which downloads it on first use; this one
    uses the snapshot bundled with tldextract, with no cache and no download.
    """

    def __init__(self, debug: bool, allowed_origins: frozenset[str]) -> None:
        super().__init__(debug)
        self.allowed_origins = allowed_origins
        self.split_domain = TLDExtract(
            cache_dir=None, suffix_list_urls=(), include_psl_private_domains=True
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OwnOriginCookiesMiddleware:
        if not crawler.settings.getbool("COOKIES_ENABLED"):
            raise NotConfigured("cookies are off for this site")
        middleware = cls(crawler.settings.getbool("COOKIES_DEBUG"), _allowed_origins(crawler))
        middleware.crawler = crawler
        return middleware

    def _jar_key(self, request: Request) -> str | None:
        try:
            origin = origin_of(request.url)
        except ValueError:
            return None
        return origin if origin in self.allowed_origins else None

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        request.headers.pop("Cookie", None)
        key = self._jar_key(request)
        if key is None or request.meta.get("dont_merge_cookies", False):
            return None
        jar = self.jars[key]
        self._process_cookies(self._get_request_cookies(jar, request), jar=jar, request=request)
        jar.add_cookie_header(request)
        self._debug_cookie(request)
        return None

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        key = self._jar_key(request)
        if key is None or request.meta.get("dont_merge_cookies", False):
            return response
        jar = self.jars[key]
        self._process_cookies(jar.make_cookies(response, request), jar=jar, request=request)
        self._debug_set_cookie(response)
        return response

    def _process_cookies(self, cookies: Iterable[Any], *, jar: Any, request: Request) -> None:
        # Scrapy's version with the offline public-suffix lookup: a cookie for a public
        # suffix ("co.uk") is only accepted as a host-only cookie of that very host.
        hostname = urlsplit(request.url).hostname
        if hostname is None:
            return
        request_domain = hostname.lower()
        for cookie in cookies:
            cookie_domain = cookie.domain.removeprefix(".")
            if cookie_domain and not self.split_domain(cookie_domain).domain:
                if cookie_domain != request_domain:
                    continue
                cookie.domain = request_domain
            jar.set_cookie_if_ok(cookie, request)
