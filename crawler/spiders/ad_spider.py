"""The one spider: its behaviour comes from the site profile, not from code per site.

It walks: list pages to ad pages, ad pages to their images. What a page says is read by
``crawler.extraction``; requests are built in one place (``page_request`` and
``image_request``) so that rendering and politeness options apply to all of them; what
went wrong is reported by the errbacks, by kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urljoin

from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.context import CrawlContext
from crawler.extraction import AdExtractor, NotAnAd
from crawler.indicator_filter import keep_ad
from crawler.items import AdCapture
from crawler.recrawl import AD_PAGE, IMAGE, VALIDATOR
from storage.blobstore import BlobIntegrityError, BlobNotFound


class AdSpider(Spider):
    """Walks list pages, follows ad links and captures each ad page with its images."""

    name = "adwatch-ads"

    def __init__(self, context: CrawlContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        self.extractor = AdExtractor(context.profile)

    async def start(self) -> AsyncIterator[Request]:
        base = self.context.profile.config.base_url
        for path in self.context.profile.config.start_paths:
            yield self.page_request(urljoin(base, path), self.parse_list)

    # --- requests --------------------------------------------------------------------

    def page_request(
        self, url: str, callback: Callable[..., Any], *, ad_page: bool = False
    ) -> Request:
        """A request for a list or ad page (ad pages may be asked "changed since?")."""
        return Request(
            url, callback=callback, errback=self.on_error, meta={AD_PAGE: True} if ad_page else {}
        )

    def image_request(self, capture: AdCapture, index: int) -> Request:
        """A request for an ad's image (images are not pages: no page budget)."""
        # dont_filter: the same photo often appears in several ads and must be fetched
        # for each; the allowlist middleware ignores this flag anyway.
        return Request(
            capture.images[index].url,
            callback=self.parse_image,
            errback=self.image_failed,
            cb_kwargs={"capture": capture, "index": index},
            meta={IMAGE: True},
            dont_filter=True,
        )

    # --- callbacks -------------------------------------------------------------------

    def parse_list(self, response: Response) -> Iterator[Request]:
        """Follow ad links and the next list page, when they match the profile's rules."""
        self._count_page(response)
        for url in self.extractor.ad_links(response):
            yield self.page_request(url, self.parse_ad, ad_page=True)
        for url in self.extractor.next_pages(response):
            yield self.page_request(url, self.parse_list)

    def parse_ad(self, response: Response) -> Iterator[Any]:
        """Extract an ad's fields, then fetch its images one after another."""
        self._count_page(response)
        if response.status == 304:
            self._not_modified(response)
            return
        try:
            capture = self.extractor.capture(response)
        except NotAnAd as exc:
            self.context.report.add_problem("malformed_page", response.url, str(exc))
            return
        if not keep_ad(self.context, capture):
            return  # below the indicator threshold: its images are not even fetched
        capture.response = response
        yield from self._next_image_or_item(capture, 0)

    def _next_image_or_item(self, capture: AdCapture, index: int) -> Iterator[Any]:
        if index >= len(capture.images):
            yield capture
            return
        yield self.image_request(capture, index)

    def parse_image(self, response: Response, capture: AdCapture, index: int) -> Iterator[Any]:
        """Keep the image bytes; the pipelines check whether they are an image."""
        image = capture.images[index]
        image.response = response
        validator = response.meta.get(VALIDATOR)
        if response.status == 304 and validator is not None and validator.blob_sha256:
            # Unchanged since the case stored it: the stored bytes, already re-encoded.
            try:
                image.body = self.context.blob_store.get(validator.blob_sha256)
            except (BlobNotFound, BlobIntegrityError) as exc:
                self.context.report.add_problem("image_unavailable", response.url, str(exc))
                image.body = None
            else:
                image.stored = True
                image.phash = validator.phash
                image.phash_variants = list(validator.phash_variants)
                image.width, image.height = validator.width, validator.height
        else:
            image.body = response.body
        yield from self._next_image_or_item(capture, index + 1)

    def _not_modified(self, response: Response) -> None:
        """An ad page the site says is unchanged: it is recorded as seen again, no more."""
        validator = response.meta.get(VALIDATOR)
        if validator is None or validator.ad_id is None:
            self.context.report.add_problem(
                "http_error", response.url, "HTTP 304 to a request that asked nothing"
            )
            return
        self.context.report.ads_unchanged += 1
        self.context.report.seen_again.append(validator.ad_id)

    # --- errbacks --------------------------------------------------------------------

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
