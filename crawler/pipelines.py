"""Item pipelines: check images → find phones → snapshot and store.

Each stage is a small Scrapy component built through ``from_crawler``; the run's shared
context (database, blob store, report) comes from the spider, never from a global.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from sqlalchemy import select

from crawler.context import CrawlContext
from crawler.items import AdCapture, FoundPhone
from matching.images import ImageRejected, describe_image
from matching.phones import extract_phones
from storage.models import Ad, AdImage, AdPhone, Phone


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


class ImageCheckPipeline(_ContextPipeline):
    """Decode each image safely and hash it perceptually; drop what is not an image."""

    def process_item(self, item: AdCapture) -> AdCapture:
        kept = []
        for image in item.images:
            if image.body is None:
                continue
            try:
                described = describe_image(image.body)
            except ImageRejected as exc:
                self.context.report.add_problem("bad_image", image.url, str(exc))
                continue
            image.phash = f"{described.fingerprint.phash:016x}"
            image.phash_variants = [f"{v:016x}" for v in described.fingerprint.variants]
            image.width, image.height = described.width, described.height
            kept.append(image)
        item.images = kept
        return item


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


class SnapshotStorePipeline(_ContextPipeline):
    """Write raw page and images to the blob store, and the ad to the database."""

    def process_item(self, item: AdCapture) -> AdCapture:
        context = self.context
        content_sha256 = _content_fingerprint(item)
        with context.session_factory.begin() as session:
            existing = session.scalar(
                select(Ad.id).where(
                    Ad.site_id == context.site_id,
                    Ad.url == item.url,
                    Ad.content_sha256 == content_sha256,
                )
            )
            if existing is not None:
                context.report.ads_unchanged += 1
                raise DropItem(f"unchanged since ad {existing}: {item.url}")
            raw_sha256 = context.blob_store.put(item.raw_body)
            ad = Ad(
                site_id=context.site_id,
                run_id=context.run_id,
                authorisation_id=context.authorisation_id,
                url=item.url,
                title=item.title,
                text=item.text,
                city=item.city,
                posted_at=self._posted_at(item),
                raw_sha256=raw_sha256,
                content_sha256=content_sha256,
            )
            for position, image in enumerate(item.images):
                assert image.body is not None and image.phash is not None
                ad.images.append(
                    AdImage(
                        position=position,
                        url=image.url,
                        blob_sha256=context.blob_store.put(image.body),
                        phash=image.phash,
                        phash_variants=image.phash_variants,
                        width=image.width or 0,
                        height=image.height or 0,
                    )
                )
            for found in item.phones:
                phone = session.scalar(select(Phone).where(Phone.e164 == found.e164))
                if phone is None:
                    phone = Phone(e164=found.e164, region=found.region)
                    session.add(phone)
                    session.flush()
                ad.phone_links.append(AdPhone(phone_id=phone.id, raw=found.raw[:200]))
            session.add(ad)
        context.report.ads_captured += 1
        context.report.images_stored += len(item.images)
        context.progress.emit(
            "ad",
            pages=context.report.pages_fetched,
            max_pages=context.max_pages,
            ads=context.report.ads_captured,
        )
        return item

    def _posted_at(self, item: AdCapture) -> datetime | None:
        if not item.posted_at_raw:
            return None
        try:
            value = datetime.fromisoformat(item.posted_at_raw)
        except ValueError:
            self.context.report.add_problem(
                "bad_field", item.url, f"posted time {item.posted_at_raw!r} is not ISO 8601"
            )
            return None
        if value.tzinfo is None:
            self.context.report.add_problem(
                "bad_field", item.url, f"posted time {item.posted_at_raw!r} has no time zone"
            )
            return None
        return value


def _content_fingerprint(item: AdCapture) -> str:
    # Pages carry changing chrome (dates, counters); a new version is a change of the ad.
    payload = {
        "title": item.title,
        "text": item.text,
        "city": item.city,
        "posted_at": item.posted_at_raw,
        "phone": item.phone_text,
        "images": [hashlib.sha256(i.body or b"").hexdigest() for i in item.images],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
