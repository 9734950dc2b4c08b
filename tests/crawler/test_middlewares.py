"""The allowlist and passive-only middlewares, on real Scrapy requests."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.test import get_crawler

from crawler.middlewares import AllowlistMiddleware, PassiveOnlyMiddleware, is_allowed

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
    assert middleware.process_request(Request("http://127.0.0.1:8765/ad/1")) is None
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
    assert middleware.process_request(Request("http://127.0.0.1:8765/")) is None
    assert middleware.process_request(Request("http://127.0.0.1:8765/", method="HEAD")) is None
