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

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.context import CrawlContext
from crawler.extraction import AdExtractor, NotAnAd, NotASitemap
from crawler.indicator_filter import keep_ad
from crawler.items import AdCapture
from crawler.middlewares import RedirectLoop, failure_kind, image_problem_kind
from crawler.recrawl import AD_PAGE, IMAGE, VALIDATOR
from crawler.rendering import render_meta
from storage.blobstore import BlobIntegrityError, BlobNotFound

# Ad pages leave before list pages: ads are captured soon after they are found (ads come
# and go), and the frontier holds a list page's links, not the whole site's, when the
# pipelines are slower than the downloader.
AD_PAGE_PRIORITY = 1
# Refused sitemap entries listed one by one in a run's problems (all are counted).
SITEMAP_REFUSALS_LISTED = 100


class AdSpider(Spider):
    """Walks list pages, follows ad links and captures each ad page with its images."""

    name = "adwatch-ads"

    def __init__(self, context: CrawlContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        self.extractor = AdExtractor(context.profile)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> AdSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider._ad_done, signal=signal)
        return spider

    async def start(self) -> AsyncIterator[Request]:
        config = self.context.profile.config
        # Start pages are list pages; with discover_lists they also lead to list pages.
        on_start = self.parse_start if config.links.discover_lists else self.parse_list
        for path in config.start_paths:
            yield self.page_request(urljoin(config.base_url, path), on_start)
        if config.links.sitemap is not None:
            sitemap = urljoin(config.base_url, config.links.sitemap)
            yield self.page_request(sitemap, self.parse_sitemap)

    # --- requests --------------------------------------------------------------------

    def page_request(
        self, url: str, callback: Callable[..., Any], *, ad_page: bool = False
    ) -> Request:
        """A request for a list or ad page (ad pages may be asked "changed since?"); pages of
        a profile that needs JavaScript are rendered in Chromium."""
        meta: dict[str, Any] = {AD_PAGE: True} if ad_page else {}
        if self.context.profile.config.render_javascript:
            meta.update(render_meta(self.context.profile, ad_page=ad_page))
        return Request(
            url,
            callback=callback,
            errback=self.on_error,
            meta=meta,
            priority=AD_PAGE_PRIORITY if ad_page else 0,
        )

    def image_request(self, capture: AdCapture, index: int) -> Request:
        """A request for an ad's image (images are not pages: no page budget). It is
        downloaded inline by ``parse_ad``, never queued: a shared frontier (Redis) holds
        only pages, and an ad's images come from the worker that read the ad."""
        # dont_filter: the same photo often appears in several ads and must be fetched
        # for each; the allowlist middleware ignores this flag anyway.
        return Request(capture.images[index].url, meta={IMAGE: True}, dont_filter=True)

    # --- callbacks -------------------------------------------------------------------

    def parse_list(self, response: Response) -> Iterator[Request]:
        """Follow ad links and the next list page, when they match the profile's rules."""
        self._count_page(response)
        for url in self.extractor.ad_links(response):
            yield self.page_request(url, self.parse_ad, ad_page=True)
        for url in self.extractor.next_pages(response):
            yield self.page_request(url, self.parse_list)

    def parse_start(self, response: Response) -> Iterator[Request]:
        """A start page: read as a list page, and its links to list pages followed."""
        yield from self.parse_list(response)
        for url in self.extractor.list_links(response):
            yield self.page_request(url, self.parse_list)

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        """Ad pages, list pages and child sitemaps a sitemap lists; its entries outside the
        allowlist are refused and reported without ever being requested."""
        self._count_page(response)
        try:
            found = self.extractor.sitemap_links(response)
        except NotASitemap as exc:
            self.context.report.add_problem("malformed_page", response.url, str(exc))
            return
        report = self.context.report
        report.requests_refused += len(found.off_list)
        for url in found.off_list[:SITEMAP_REFUSALS_LISTED]:
            report.add_problem("refused", url, "sitemap entry outside the allowlist; not requested")
        if len(found.off_list) > SITEMAP_REFUSALS_LISTED:
            more = len(found.off_list) - SITEMAP_REFUSALS_LISTED
            report.add_problem(
                "refused", response.url, f"{more} more sitemap entries outside the allowlist"
            )
        for url in found.sitemaps:
            yield self.page_request(url, self.parse_sitemap)
        for url in found.lists:
            yield self.page_request(url, self.parse_list)
        for url in found.ads:
            yield self.page_request(url, self.parse_ad, ad_page=True)

    async def parse_ad(self, response: Response) -> AsyncIterator[Any]:
        """Extract an ad's fields, fetch its images one after another, yield the ad."""
        self._count_page(response)
        if response.status == 304:
            self._not_modified(response)
            return
        room = self.context.workers.ads_in_flight
        await room.acquire()  # released when the ad leaves the pipelines (``_ad_done``)
        handed_over = False
        try:
            try:
                capture = self.extractor.capture(response)
            except NotAnAd as exc:
                self.context.report.add_problem("malformed_page", response.url, str(exc))
                return
            if not keep_ad(self.context, capture):
                return  # below the indicator threshold: its images are not even fetched
            capture.response = response
            for index in range(len(capture.images)):
                if self.context.stop_reason is not None:
                    return  # the run is stopping: nothing more is fetched or stored
                await self._fetch_image(capture, index)
            handed_over = True
            yield capture
        finally:
            if not handed_over:
                room.release()

    def _ad_done(self, item: Any, **kwargs: Any) -> None:
        """An ad left the pipelines (stored, dropped or failed): room for the next one."""
        if isinstance(item, AdCapture):
            self.context.workers.ads_in_flight.release()

    async def _fetch_image(self, capture: AdCapture, index: int) -> None:
        """Download one image through the downloader middlewares (allowlist, robots,
        conditional request); a failure is reported by kind and the ad is still kept."""
        assert self.crawler.engine is not None
        request = self.image_request(capture, index)
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:
            failure = Failure(exc)
            failure.request = request  # type: ignore[attr-defined]
            kind = _problem_kind(failure, self.context)
            if kind is not None:
                self.context.report.add_problem(
                    image_problem_kind(kind), request.url, _describe(failure)
                )
            return
        if response.status >= 400:
            self.context.report.add_problem(
                "image_unavailable", response.url, f"HTTP {response.status}"
            )
            return
        self.keep_image(capture, index, response)

    def keep_image(self, capture: AdCapture, index: int, response: Response) -> None:
        """Keep the image bytes (or, when unchanged, the stored ones); the pipelines check
        whether they are an image."""
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
                image.dhashes = list(validator.dhashes)
                image.width, image.height = validator.width, validator.height
        elif response.status == 304:
            self.context.report.add_problem(
                "image_unavailable", response.url, "HTTP 304 to a request that asked nothing"
            )
        else:
            image.body = response.body

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

    def on_error(self, failure: Failure) -> None:
        """Report a page that could not be fetched, by kind; the run goes on."""
        request = failure.request  # type: ignore[attr-defined]
        kind = _problem_kind(failure, self.context)
        if kind is not None:
            self.context.report.add_problem(kind, request.url, _describe(failure))

    def _count_page(self, response: Response) -> None:
        self.context.report.pages_fetched += 1
        self.context.progress.emit(
            "page",
            pages=self.context.report.pages_fetched,
            max_pages=self.context.max_pages,
            ads=self.context.report.ads_captured,
        )


def _problem_kind(failure: Failure, context: CrawlContext) -> str | None:
    """The kind to report a failed request under, or None when it needs no report: a
    middleware or the network guard reported it already, or the run is stopping (the stop
    and its reason are the run's outcome, not a problem per request)."""
    if context.stop_reason is not None and failure.check(IgnoreRequest):
        return None
    return failure_kind(failure)


def _describe(failure: Failure) -> str:
    """What went wrong, in one line: the status, or the error and where a redirect began."""
    if failure.check(HttpError):
        return f"HTTP {failure.value.response.status}"  # type: ignore[attr-defined]
    value = failure.value
    message = f"{type(value).__name__}: {value}".strip()
    request = getattr(failure, "request", None)
    redirects = request.meta.get("redirect_urls", ()) if request is not None else ()
    if redirects and not failure.check(RedirectLoop):
        message += f" (redirected from {redirects[0]})"
    return message
