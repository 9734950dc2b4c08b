"""The one spider: its behaviour comes from the site profile, not from code per site."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.context import CrawlContext
from crawler.items import AdCapture, FetchedImage


def _joined_text(response: Response, selector: str | None, scope: Any) -> str | None:
    if not selector:
        return None
    parts = [p.strip() for p in scope.css(selector).getall()]
    text = " ".join(p for p in parts if p)
    return text or None


class AdSpider(Spider):
    """Walks list pages, follows ad links and captures each ad page with its images."""

    name = "adwatch-ads"

    def __init__(self, context: CrawlContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        config = context.profile.config
        self.links = config.links
        self.fields = config.fields
        self._ad_path = re.compile(config.links.ad_path_pattern)
        self._list_path = re.compile(config.links.list_path_pattern)
        fields = config.fields
        # Where each captured field sits in a page, for cutting it out of the raw page.
        self._field_selectors: dict[str, tuple[str, ...]] = {
            name: (f"{fields.container} {selector}",)
            for name, selector in (
                ("title", fields.title),
                ("text", fields.text),
                ("city", fields.city),
                ("posted_at", fields.posted_at),
                ("phones", fields.phone),
                ("images", fields.images),
            )
            if selector
        }

    async def start(self) -> AsyncIterator[Request]:
        base = self.context.profile.config.base_url
        for path in self.context.profile.config.start_paths:
            yield Request(urljoin(base, path), callback=self.parse_list, errback=self.on_error)

    def parse_list(self, response: Response) -> Iterator[Request]:
        """Follow ad links and the next list page, when they match the profile's rules."""
        self._count_page(response)
        for href in response.css(self.links.ad_links).getall():
            url = response.urljoin(href)
            if self._ad_path.search(urlsplit(url).path):
                yield Request(url, callback=self.parse_ad, errback=self.on_error)
        if self.links.next_page:
            href = response.css(self.links.next_page).get()
            if href:
                url = response.urljoin(href)
                if self._list_path.search(urlsplit(url).path):
                    yield Request(url, callback=self.parse_list, errback=self.on_error)

    def parse_ad(self, response: Response) -> Iterator[Any]:
        """Extract an ad's fields, then fetch its images one after another."""
        self._count_page(response)
        third_party = tuple(self.context.profile.config.third_party)
        for selector in third_party:
            # Other people's words (reviews, comments) never reach the ad's fields.
            response.css(selector).drop()
        container = response.css(self.fields.container)
        title = _joined_text(response, self.fields.title, container) if container else None
        if not container or not title:
            self.context.report.add_problem(
                "malformed_page",
                response.url,
                f"no ad found (selector {self.fields.container!r} / {self.fields.title!r} "
                "matched nothing); page skipped",
            )
            return
        capture = AdCapture(
            url=response.url,
            raw_body=response.body,
            title=title,
            text=_joined_text(response, self.fields.text, container) or "",
            city=_joined_text(response, self.fields.city, container),
            posted_at_raw=_joined_text(response, self.fields.posted_at, container),
            phone_text=_joined_text(response, self.fields.phone, container),
            page_encoding=getattr(response, "encoding", None),
            field_selectors=self._field_selectors,
            third_party_selectors=third_party,
        )
        image_urls: list[str] = []
        if self.fields.images:
            for src in container.css(self.fields.images).getall():
                url = response.urljoin(src)
                if url not in image_urls:
                    image_urls.append(url)
        capture.images = [FetchedImage(url=u) for u in image_urls]
        yield from self._next_image_or_item(capture, 0)

    def _next_image_or_item(self, capture: AdCapture, index: int) -> Iterator[Any]:
        if index >= len(capture.images):
            yield capture
            return
        # dont_filter: the same photo often appears in several ads and must be fetched
        # for each; the allowlist middleware ignores this flag anyway.
        yield Request(
            capture.images[index].url,
            callback=self.parse_image,
            errback=self.image_failed,
            cb_kwargs={"capture": capture, "index": index},
            meta={"adwatch_image": True},
            dont_filter=True,
        )

    def parse_image(self, response: Response, capture: AdCapture, index: int) -> Iterator[Any]:
        """Keep the image bytes; the pipelines check whether they are an image."""
        capture.images[index].body = response.body
        yield from self._next_image_or_item(capture, index + 1)

    def image_failed(self, failure: Failure) -> Iterator[Any]:
        """An image that cannot be fetched is reported; the ad is still kept."""
        request = failure.request  # type: ignore[attr-defined]
        capture: AdCapture = request.cb_kwargs["capture"]
        index: int = request.cb_kwargs["index"]
        if not _refused(failure):  # refusals are reported by the middleware
            self.context.report.add_problem("image_unavailable", request.url, _describe(failure))
        yield from self._next_image_or_item(capture, index + 1)

    def on_error(self, failure: Failure) -> None:
        """Report a page that could not be fetched; the run goes on."""
        request = failure.request  # type: ignore[attr-defined]
        kind = "http_error" if failure.check(HttpError) else "unreachable"
        if _refused(failure):
            return  # refused by a middleware, which reported it
        self.context.report.add_problem(kind, request.url, _describe(failure))

    def _count_page(self, response: Response) -> None:
        self.context.report.pages_fetched += 1
        self.context.progress.emit(
            "page",
            pages=self.context.report.pages_fetched,
            max_pages=self.context.max_pages,
            ads=self.context.report.ads_captured,
        )


def _refused(failure: Failure) -> bool:
    # HttpError is an IgnoreRequest too, but it is the site's answer, not our refusal.
    return bool(failure.check(IgnoreRequest)) and not failure.check(HttpError)


def _describe(failure: Failure) -> str:
    if failure.check(HttpError):
        return f"HTTP {failure.value.response.status}"  # type: ignore[attr-defined]
    value = failure.value
    return f"{type(value).__name__}: {value}".strip()
