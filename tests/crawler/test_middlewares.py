"""adwatch's downloader middlewares, URL joining and problem kinds, on real Scrapy
requests and responses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
)
from scrapy.http import HtmlResponse, Response
from scrapy.robotstxt import ProtegoRobotParser
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.internet.error import TCPTimedOutError
from twisted.python.failure import Failure

from adwatch.services.demo import write_demo_profile
from crawler.context import RunReport
from crawler.errors import SiteProfileError
from crawler.middlewares import (
    AllowlistMiddleware,
    OwnOriginCookiesMiddleware,
    PageDirectivesMiddleware,
    PassiveOnlyMiddleware,
    RedirectLoop,
    RedirectMiddleware,
    RequestRefused,
    RobotsForbidden,
    RobotsTxtMiddleware,
    failure_kind,
    image_problem_kind,
    is_allowed,
    problem_counts,
    refused_hosts,
)
from crawler.scrapy_settings import build_scrapy_settings
from crawler.site_profile import SiteProfile, get_site_profile
from crawler.urls import join_url, refused_base_href

ALLOWED = frozenset({"http://127.0.0.1:8765"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8765/ads?page=1", True),
        ("http://127.0.0.1:8766/ads", False),  # another port is another site
        ("https://127.0.0.1:8765/ads", False),  # another scheme too
        ("http://partner.invalid/ads", False),
        ("http://127.0.0.1:8765@evil.invalid/", False),  # userinfo trick
        ("http://127.0.0.1:99999999/", False),  # unparsable port
        ("data:text/html,hello", False),
    ],
)
def test_is_allowed(url: str, allowed: bool) -> None:
    assert is_allowed(url, ALLOWED) is allowed


def test_allowlist_refuses_even_with_dont_filter_and_counts() -> None:
    crawler = get_crawler(settings_dict={"ADWATCH_ALLOWED_ORIGINS": ["http://127.0.0.1:8765"]})
    middleware = AllowlistMiddleware.from_crawler(crawler)
    middleware.process_request(Request("http://127.0.0.1:8765/ad/1"))  # no refusal
    with pytest.raises(IgnoreRequest):
        middleware.process_request(Request("http://partner.invalid/", dont_filter=True))
    assert crawler.stats.get_value("adwatch/requests_refused") == 1


def test_empty_allowlist_refuses_everything() -> None:
    middleware = AllowlistMiddleware.from_crawler(get_crawler(settings_dict={}))
    with pytest.raises(IgnoreRequest):
        middleware.process_request(Request("http://127.0.0.1:8765/"))


@pytest.mark.parametrize(
    "request_",
    [
        Request("http://127.0.0.1:8765/contact", method="POST"),
        Request("http://127.0.0.1:8765/q", method="GET", body=b"a=1"),
        Request("http://127.0.0.1:8765/", headers={"Authorization": "Basic eDp5"}),
    ],
)
def test_passive_only_refuses_active_requests(request_: Request) -> None:
    middleware = PassiveOnlyMiddleware.from_crawler(get_crawler(settings_dict={}))
    with pytest.raises(IgnoreRequest):
        middleware.process_request(request_)


def test_passive_only_lets_get_and_head_through() -> None:
    middleware = PassiveOnlyMiddleware.from_crawler(get_crawler(settings_dict={}))
    middleware.process_request(Request("http://127.0.0.1:8765/"))  # no refusal
    middleware.process_request(Request("http://127.0.0.1:8765/", method="HEAD"))


# --- robots.txt, redirects, page directives, cookies: Scrapy's parts in adwatch's versions ---


class _ReportingSpider(Spider):
    """A spider with the one part of a run's context the middlewares report to."""

    name = "reporting"

    def __init__(self) -> None:
        super().__init__()
        self.context = SimpleNamespace(report=RunReport())


def _crawler(**settings: Any) -> tuple[Crawler, RunReport]:
    crawler = get_crawler(settings_dict={"ADWATCH_ALLOWED_ORIGINS": [SITE], **settings})
    spider = _ReportingSpider()
    crawler.spider = spider
    report: RunReport = spider.context.report
    return crawler, report


SITE = "http://127.0.0.1:8765"
OFF = "http://127.0.0.1:9999"


def test_robots_refusals_are_told_apart_from_other_refusals() -> None:
    crawler, _ = _crawler(ROBOTSTXT_OBEY=True)
    middleware = RobotsTxtMiddleware.from_crawler(crawler)
    parser = ProtegoRobotParser.from_crawler(crawler, b"User-agent: *\nDisallow: /private/\n")
    middleware.process_request_2(parser, Request(f"{SITE}/ad/1"))  # allowed: no exception
    with pytest.raises(RobotsForbidden):
        middleware.process_request_2(parser, Request(f"{SITE}/private/x"))


def _redirect(middleware: RedirectMiddleware, request: Request, location: str) -> Request:
    response = Response(request.url, status=302, headers={"Location": location})
    result = middleware.process_response(request, response)
    assert isinstance(result, Request)
    return result


def test_a_redirect_loop_is_caught_not_silently_dropped() -> None:
    middleware = RedirectMiddleware.from_crawler(_crawler(REDIRECT_MAX_TIMES=10)[0])
    to_b = _redirect(middleware, Request(f"{SITE}/a"), "/b")
    assert not to_b.dont_filter
    # Back to /a once (an age gate sending the crawler back): let through the dupe filter.
    back = _redirect(middleware, to_b, "/a")
    assert back.url == f"{SITE}/a" and back.dont_filter
    again = _redirect(middleware, back, "/b")
    with pytest.raises(RedirectLoop, match="redirect loop"):
        _redirect(middleware, again, "/a")


def test_a_redirect_chain_longer_than_the_limit_is_a_loop_too() -> None:
    middleware = RedirectMiddleware.from_crawler(_crawler(REDIRECT_MAX_TIMES=3)[0])
    request = Request(f"{SITE}/0")
    for step in range(1, 4):
        request = _redirect(middleware, request, f"/{step}")
    with pytest.raises(RedirectLoop, match="more than 3 redirects"):
        _redirect(middleware, request, "/4")


def _page(url: str, head: str) -> HtmlResponse:
    body = f"<html><head>{head}</head><body><article>ad</article></body></html>"
    return HtmlResponse(url, body=body.encode(), encoding="utf-8")


def test_an_off_list_base_href_and_meta_refresh_are_reported_and_the_page_is_kept() -> None:
    crawler, report = _crawler()
    middleware = PageDirectivesMiddleware.from_crawler(crawler)
    page = _page(
        f"{SITE}/ad/1",
        f'<base href="{OFF}/"><meta http-equiv="refresh" content="0; url={OFF}/elsewhere">',
    )
    assert middleware.process_response(Request(page.url), page) is page
    assert [(p["kind"], p["url"]) for p in report.problems] == [
        ("refused", f"{OFF}/"),
        ("refused", f"{OFF}/elsewhere"),
    ]
    assert report.requests_refused == 2
    # On the page's own origin both are the site's business: nothing to report.
    own = _page(
        f"{SITE}/ad/2", '<base href="/sub/"><meta http-equiv="refresh" content="5; url=/ads">'
    )
    assert middleware.process_response(Request(own.url), own) is own
    assert len(report.problems) == 2


def test_links_resolve_against_the_page_when_the_base_href_is_off_list() -> None:
    hostile = _page(f"{SITE}/ad/1", f'<base href="{OFF}/">')
    assert refused_base_href(hostile) == f"{OFF}/"
    assert join_url(hostile, " /images/1.jpg ") == f"{SITE}/images/1.jpg"
    assert join_url(hostile, "2.jpg") == f"{SITE}/ad/2.jpg"
    assert join_url(hostile, "  ") is None
    own = _page(f"{SITE}/ad/1", '<base href="/media/">')
    assert refused_base_href(own) is None
    assert join_url(own, "1.jpg") == f"{SITE}/media/1.jpg"


def test_cookies_are_off_unless_the_profile_turns_them_on() -> None:
    with pytest.raises(NotConfigured):
        OwnOriginCookiesMiddleware.from_crawler(_crawler(COOKIES_ENABLED=False)[0])


def test_cookies_stay_with_the_origin_that_set_them() -> None:
    image_host = "http://127.0.0.1:8766"  # allowlisted too, on another port of the host
    crawler, _ = _crawler(COOKIES_ENABLED=True, ADWATCH_ALLOWED_ORIGINS=[SITE, image_host])
    middleware = OwnOriginCookiesMiddleware.from_crawler(crawler)
    gate = Request(f"{SITE}/age-gate")
    middleware.process_request(gate)
    middleware.process_response(
        gate, Response(gate.url, headers={"Set-Cookie": "age_ok=1; Path=/"})
    )
    back = Request(f"{SITE}/ad/1")
    middleware.process_request(back)
    assert back.headers.get("Cookie") == b"age_ok=1"
    # Browsers' cookies ignore ports; adwatch's do not: nothing for the image host ...
    image = Request(f"{image_host}/1.jpg")
    middleware.process_request(image)
    assert "Cookie" not in image.headers
    # ... nor for an off-list origin, even one that brings its own Cookie header ...
    off = Request(f"{OFF}/x", headers={"Cookie": "smuggled=1"})
    middleware.process_request(off)
    assert "Cookie" not in off.headers
    # ... and an off-list response's cookie is not kept.
    middleware.process_response(off, Response(off.url, headers={"Set-Cookie": "t=1; Path=/"}))
    later = Request(f"{SITE}/ad/2")
    middleware.process_request(later)
    assert later.headers.get("Cookie") == b"age_ok=1"


# --- problem kinds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RequestRefused("allowlist"), None),  # reported where it was refused
        (RobotsForbidden("robots"), "robots"),
        (RedirectLoop("loop"), "redirect_loop"),
        (HttpError(Response(f"{SITE}/x", status=503), "503"), "http_error"),
        (IgnoreRequest("someone else's filter"), "refused"),
        (DownloadCancelledError("max size"), "too_large"),
        (DownloadTimeoutError("30 s"), "timeout"),
        (TCPTimedOutError(), "timeout"),  # type: ignore[no-untyped-call]
        (DownloadConnectionRefusedError("refused"), "unreachable"),
        (CannotResolveHostError("no such host"), "unreachable"),
        (ValueError("a bug"), "download_error"),
    ],
)
def test_failure_kinds(error: Exception, kind: str | None) -> None:
    assert failure_kind(Failure(error)) == kind  # type: ignore[no-untyped-call]


def test_an_image_the_site_does_not_deliver_is_unavailable_other_kinds_stay() -> None:
    assert image_problem_kind("http_error") == "image_unavailable"
    assert image_problem_kind("unreachable") == "image_unavailable"
    assert image_problem_kind("too_large") == "too_large"
    assert image_problem_kind("refused") == "refused"


def test_the_audit_gets_counts_by_kind_and_refused_hosts_without_paths() -> None:
    problems = [
        {"kind": "refused", "url": f"{OFF}/ad/secret-title?q=phone", "message": "m"},
        {"kind": "refused", "url": "dns:publicsuffix.org", "message": "m"},
        {"kind": "refused", "url": "tcp://[::1]:5432", "message": "m"},
        {"kind": "refused", "url": "https://user:pw@partner.invalid/x", "message": "m"},
        {"kind": "robots", "url": f"{SITE}/private/x", "message": "m"},
        {"kind": "robots", "url": f"{SITE}/private/y", "message": "m"},
        {"kind": "page_limit", "url": "", "message": "m"},
    ]
    assert problem_counts(problems) == {"page_limit": 1, "refused": 4, "robots": 2}
    assert refused_hosts(problems) == [
        "127.0.0.1:9999",
        "[::1]:5432",
        "dns:publicsuffix.org",
        "partner.invalid:443",
    ]


# --- settings from the profile --------------------------------------------------------------


def _profile(tmp_path: Path, extra: str = "") -> SiteProfile:
    path = write_demo_profile(tmp_path, SITE)
    path.write_text(path.read_text() + extra)
    return get_site_profile("demo", tmp_path)


def test_user_agent_and_cookies_come_from_the_profile(tmp_path: Path) -> None:
    default = build_scrapy_settings(
        _profile(tmp_path), max_pages=1, log_file=tmp_path / "l", log_level="INFO", version="9.9"
    )
    assert default["USER_AGENT"] == "adwatch/9.9"
    assert default["COOKIES_ENABLED"] is False
    assert default["METAREFRESH_ENABLED"] is False
    own = build_scrapy_settings(
        _profile(tmp_path, "cookies: true\nuser_agent: 'PoliceCrawler/1 (+https://x.invalid)'\n"),
        max_pages=1,
        log_file=tmp_path / "l",
        log_level="INFO",
        version="9.9",
    )
    assert own["USER_AGENT"] == "PoliceCrawler/1 (+https://x.invalid)"
    assert own["COOKIES_ENABLED"] is True


def test_a_user_agent_cannot_smuggle_headers(tmp_path: Path) -> None:
    with pytest.raises(SiteProfileError, match="user_agent"):
        _profile(tmp_path, 'user_agent: "adwatch\\r\\nCookie: x=1"\n')
