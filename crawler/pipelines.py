"""Item pipelines: check images → find phones → minimise → snapshot and store.

Each stage is a small Scrapy component built through ``from_crawler``; the run's shared
context (database, blob store, legal basis, report) comes from the spider, never from a
global. Minimisation runs before anything is written: the store stage sees only what the
legal basis lets adwatch keep.
"""

from __future__ import annotations

from collections.abc import Awaitable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any, TypeVar

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawler.context import CrawlContext
from crawler.guard import request_stop
from crawler.items import AdCapture, Exchange, FoundPhone
from crawler.store import NotStored, StoreRequest, Unchanged, store_ad
from crawler.warc import EVIDENCE_FAILED, exchange_only
from legal_policy.field_rules import FieldRules
from legal_policy.minimisation import (
    CapturedAd,
    CapturedImage,
    CapturedPhone,
    ImageNotReencodable,
    MinimisationRecord,
    MinimisedAd,
    minimise_ad,
    strip_image_metadata,
)
from matching.images import ImageDescription, ImageRejected, describe_image
from matching.phones import extract_phones
from storage.types import utcnow

# The stop reason when a pipeline process is gone (killed, or out of memory).
PIPELINE_PROCESS_GONE = "a pipeline process of the run stopped"

_T = TypeVar("_T")


class _ContextPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return cls(crawler)

    @property
    def context(self) -> CrawlContext:
        spider = self.crawler.spider
        assert spider is not None
        context: CrawlContext = spider.context  # type: ignore[attr-defined]
        return context

    async def in_process(self, call: Awaitable[_T]) -> _T:
        """Wait for a call to a pipeline process; if that process is gone, the run stops
        (nothing more could be stored) and the ad is dropped."""
        try:
            return await call
        except BrokenProcessPool:
            request_stop(self.crawler, self.context, PIPELINE_PROCESS_GONE)
            raise DropItem(f"{PIPELINE_PROCESS_GONE}: not stored") from None


class ImageCheckPipeline(_ContextPipeline):
    """Decode each image safely and hash its pixels; drop what is not an image."""

    async def process_item(self, item: AdCapture) -> AdCapture:
        fresh = [
            image
            for image in item.images
            # adwatch's own bytes (``stored``) were checked and hashed when first kept.
            if image.body is not None and not image.stored
        ]
        described = await self.in_process(
            self.context.workers.compute(_describe_all, [image.body for image in fresh])
        )
        verdicts = dict(zip(map(id, fresh), described, strict=True))
        kept = []
        for image in item.images:
            if image.body is None:
                continue
            verdict = verdicts.get(id(image))
            if isinstance(verdict, ImageRejected):
                self.context.report.add_problem("bad_image", image.url, str(verdict))
                continue
            if verdict is not None:
                image.phash = f"{verdict.fingerprint.phash:016x}"
                image.phash_variants = [f"{v:016x}" for v in verdict.fingerprint.variants]
                image.dhashes = [f"{v:016x}" for v in verdict.fingerprint.dhashes]
                image.width, image.height = verdict.width, verdict.height
            kept.append(image)
        item.images = kept
        return item


def _describe_all(bodies: list[bytes]) -> list[ImageDescription | ImageRejected]:
    described: list[ImageDescription | ImageRejected] = []
    for body in bodies:
        try:
            described.append(describe_image(body))
        except ImageRejected as exc:
            described.append(exc)
    return described


class PhoneExtractionPipeline(_ContextPipeline):
    """Find phone numbers in the phone field, title and text; keep raw and E.164 forms."""

    def process_item(self, item: AdCapture) -> AdCapture:
        seen: dict[str, FoundPhone] = {}
        for source in (item.phone_text, item.title, item.text):
            if not source:
                continue
            for mention in extract_phones(source, self.context.default_phone_region):
                seen.setdefault(mention.e164, FoundPhone(mention.e164, mention.region, mention.raw))
        item.phones = list(seen.values())
        return item


class MinimisePipeline(_ContextPipeline):
    """Apply the legal basis's field rules; afterwards the item holds only what may be kept
    (the page and image bytes as fetched are let go here)."""

    async def process_item(self, item: AdCapture) -> AdCapture:
        context = self.context
        # Extraction read the posted time with the profile's date formats; what it could
        # not read is reported here, once per ad (field names and reasons, no content).
        for problem in item.field_problems:
            context.report.add_problem("bad_field", item.url, f"{problem}; not kept")
        captured = CapturedAd(
            url=item.url,
            title=item.title,
            text=item.text,
            city=item.city,
            posted_at=item.posted_at,
            phones=tuple(CapturedPhone(p.e164, p.region, p.raw) for p in item.phones),
            images=tuple(
                CapturedImage(
                    url=image.url,
                    data=image.body or b"",
                    phash=int(image.phash or "0", 16),
                    variants=tuple(int(v, 16) for v in image.phash_variants),
                    dhashes=tuple(int(v, 16) for v in image.dhashes),
                    width=image.width or 0,
                    height=image.height or 0,
                    stored=image.stored,
                )
                for image in item.images
            ),
            raw_page=item.raw_body,
            page_encoding=item.page_encoding,
            field_selectors=item.field_selectors,
            third_party_selectors=item.third_party_selectors,
        )
        item.minimised, item.minimisation, left_out = await self.in_process(
            context.workers.compute(
                minimise_capture,
                context.field_rules,
                captured,
                context.pseudonym_key,
                context.default_phone_region,
            )
        )
        for url, reason in left_out:
            context.report.add_problem("bad_image", url, f"not kept: {reason}")
        # Nothing captured but not kept may travel further down the pipeline (the images
        # stay as URLs with their HTTP exchange, for validators and evidence records).
        item.raw_body = b""
        item.title = item.text = ""
        item.city = item.phone_text = item.posted_at_raw = None
        # The exchanges keep their status and headers, not the bytes as fetched.
        item.response = exchange_only(item.response)
        for image in item.images:
            image.body = None
            image.response = exchange_only(image.response)
        item.phones = []
        return item


def minimise_capture(
    field_rules: FieldRules, captured: CapturedAd, pseudonym_key: bytes, default_region: str
) -> tuple[MinimisedAd, MinimisationRecord, list[tuple[str, str]]]:
    """The minimised ad, its record, and the images left out (URL and reason); runs in
    the compute process."""

    def minimise(ad: CapturedAd) -> tuple[MinimisedAd, MinimisationRecord]:
        return minimise_ad(
            field_rules, ad, pseudonym_key=pseudonym_key, default_region=default_region
        )

    try:
        return (*minimise(captured), [])
    except ImageNotReencodable:
        # Rare: the image passed the safety check but cannot be re-encoded. It is left
        # out (never stored with its metadata); the ad goes on without it.
        images, left_out = [], []
        for image in captured.images:
            try:
                strip_image_metadata(image.data)
            except ImageNotReencodable as exc:
                left_out.append((image.url, str(exc)))
                continue
            images.append(image)
        return (*minimise(replace(captured, images=tuple(images))), left_out)


class SnapshotStorePipeline(_ContextPipeline):
    """Send the minimised ad to the store process (``crawler.store``): page and images to
    the blob store, the ad to the database with its case, legal basis and expiry, its
    evidence to the run's WARC; nothing once the authorisation has ended."""

    async def process_item(self, item: AdCapture) -> AdCapture:
        context = self.context
        assert item.minimised is not None and item.minimisation is not None
        request = StoreRequest(
            minimised=item.minimised,
            minimisation=item.minimisation,
            indicator_score=item.indicator_score,
            captured_at=utcnow(),
            page=item.response if isinstance(item.response, Exchange) else None,
            images={
                image.url: image.response
                for image in item.images
                if isinstance(image.response, Exchange)
            },
        )
        outcome = await self.in_process(context.workers.store(store_ad, request))
        if isinstance(outcome, NotStored):
            context.report.ads_not_stored += 1
            request_stop(self.crawler, context, outcome.reason)
            raise DropItem(f"{outcome.reason}: not stored")
        if isinstance(outcome, Unchanged):
            context.report.ads_unchanged += 1
            by = " (stored by another run)" if outcome.by_another_run else ""
            raise DropItem(f"unchanged since ad {outcome.ad_id}{by}")
        if outcome.evidence_error is not None:
            # Whatever went wrong (disk, database or a bug), the ad is stored but unproven:
            # say so, by kind only, and collect no more.
            context.report.add_problem(
                "evidence_not_written",
                item.url,
                f"WARC records not written: {outcome.evidence_error}",
            )
            request_stop(self.crawler, context, EVIDENCE_FAILED)
        context.report.ads_captured += 1
        context.report.images_stored += outcome.images_stored
        context.progress.emit(
            "ad",
            pages=context.report.pages_fetched,
            max_pages=context.max_pages,
            ads=context.report.ads_captured,
        )
        return item
