"""Item pipelines: check images → find phones → minimise → snapshot and store.

Each stage is a small Scrapy component built through ``from_crawler``; the run's shared
context (database, blob store, legal basis, report) comes from the spider, never from a
global. Minimisation runs before anything is written: the store stage sees only what the
legal basis lets adwatch keep.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crawler.context import CrawlContext
from crawler.guard import request_stop
from crawler.items import AdCapture, FoundPhone
from crawler.recrawl import Fetched, mark_seen, remember
from crawler.warc import ad_stored, exchange_only
from legal_policy.authorisation import stop_reason
from legal_policy.authorisation_store import standing_of
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
from legal_policy.retention import BlobHold, ad_expiry, hold_blobs
from matching.images import ImageDescription, ImageRejected, describe_image
from matching.phones import extract_phones
from storage.models import Ad, AdImage, AdPhone, Phone
from storage.types import utcnow
from storage.upsert import insert_all_if_absent


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
    """Decode each image safely and hash its pixels; drop what is not an image."""

    async def process_item(self, item: AdCapture) -> AdCapture:
        fresh = [
            image
            for image in item.images
            # adwatch's own bytes (``stored``) were checked and hashed when first kept.
            if image.body is not None and not image.stored
        ]
        described = await self.context.threads.compute(
            _describe_all, [image.body for image in fresh]
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
        item.minimised, item.minimisation, left_out = await context.threads.compute(
            self._minimise, captured
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

    def _minimise(
        self, captured: CapturedAd
    ) -> tuple[MinimisedAd, MinimisationRecord, list[tuple[str, str]]]:
        """The minimised ad, its record, and the images left out (URL and reason)."""
        context = self.context

        def minimise(ad: CapturedAd) -> tuple[MinimisedAd, MinimisationRecord]:
            return minimise_ad(
                context.field_rules,
                ad,
                pseudonym_key=context.pseudonym_key,
                default_region=context.default_phone_region,
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
    """Write the minimised page and images to the blob store, and the ad to the database,
    with its case, legal basis and expiry; nothing once the authorisation has ended."""

    async def process_item(self, item: AdCapture) -> AdCapture:
        context = self.context
        ad_data = item.minimised
        assert ad_data is not None and item.minimisation is not None
        content_sha256 = _content_fingerprint(ad_data)
        now = utcnow()
        try:
            stored = await context.threads.write(self._store, item, ad_data, content_sha256, now)
        except _AuthorisationEnded as ended:
            context.report.ads_not_stored += 1
            request_stop(self.crawler, context, ended.reason)
            raise DropItem(f"{ended.reason}: not stored") from None
        except IntegrityError:
            # Another run of the same case stored this very version a moment ago (the
            # unique key, not a race we lose silently): it is unchanged for this run.
            existing = await context.threads.write(self._existing, ad_data.url, content_sha256)
            if existing is None:
                raise
            context.report.ads_unchanged += 1
            raise DropItem(f"unchanged since ad {existing} (stored by another run)") from None
        if isinstance(stored, int):
            context.report.ads_unchanged += 1
            raise DropItem(f"unchanged since ad {stored}")
        ad_id, expires_at = stored
        # The evidence (WARC) of what was kept, only now that it is kept.
        await self.crawler.signals.send_catch_log_async(
            ad_stored, item=item, ad_id=ad_id, captured_at=now, expires_at=expires_at
        )
        context.report.ads_captured += 1
        context.report.images_stored += sum(1 for image in ad_data.images if image.data)
        context.progress.emit(
            "ad",
            pages=context.report.pages_fetched,
            max_pages=context.max_pages,
            ads=context.report.ads_captured,
        )
        return item

    def _existing(self, url: str, content_sha256: str) -> int | None:
        with self.context.session_factory() as session:
            return self._existing_in(session, url, content_sha256)

    def _existing_in(self, session: Session, url: str, content_sha256: str) -> int | None:
        context = self.context
        return session.scalar(
            select(Ad.id).where(
                Ad.case_id == context.case_id,
                Ad.site_id == context.site_id,
                Ad.url == url,
                Ad.content_sha256 == content_sha256,
            )
        )

    def _store(
        self, item: AdCapture, ad_data: MinimisedAd, content_sha256: str, now: datetime
    ) -> int | tuple[int, datetime]:
        """Store the ad; returns the id of the same version stored before, if there is one
        (then nothing but "seen again" and the validators are written), else the new ad's
        id and expiry. Runs on the writer thread: it touches nothing of the reactor's."""
        context = self.context
        assert item.minimisation is not None
        with context.session_factory.begin() as session:
            standing = standing_of(session, context.authorisation_id)
            reason = stop_reason(standing, now)
            if reason is not None:
                raise _AuthorisationEnded(reason)
            expires_at = ad_expiry(context.catalogue, standing, now)
            existing = self._existing_in(session, ad_data.url, content_sha256)
            if existing is not None:
                # Seen again; the validators now describe this answer of the site.
                mark_seen(session, [existing])
                remember(
                    session,
                    context.case_id,
                    [Fetched(ad_data.url, item.response)],
                    ad_id=existing,
                    expires_at=expires_at,
                )
                return existing
            held: list[BlobHold] = []

            def keep_blob(data: bytes, kind: str) -> str:
                sha256 = context.blob_store.put(data)
                held.append(BlobHold(sha256, kind, len(data)))
                return sha256

            ad = Ad(
                site_id=context.site_id,
                run_id=context.run_id,
                authorisation_id=context.authorisation_id,
                case_id=context.case_id,
                legal_basis=context.legal_basis,
                expires_at=expires_at,
                url=ad_data.url,
                captured_at=now,
                title=ad_data.title,
                text=ad_data.text,
                city=ad_data.city,
                posted_at=ad_data.posted_at,
                raw_sha256=keep_blob(ad_data.raw_page, "page") if ad_data.raw_page else None,
                content_sha256=content_sha256,
                minimisation=item.minimisation.as_dict(),
                indicator_score=item.indicator_score,
            )
            for position, image in enumerate(ad_data.images):
                ad.images.append(
                    AdImage(
                        position=position,
                        url=image.url,
                        blob_sha256=keep_blob(image.data, "image") if image.data else None,
                        phash=f"{image.phash:016x}",
                        phash_variants=[f"{v:016x}" for v in image.variants],
                        width=image.width,
                        height=image.height,
                    )
                )
            hold_blobs(
                session,
                held,
                case_id=context.case_id,
                legal_basis=context.legal_basis,
                expires_at=expires_at,
            )
            if ad_data.phones:
                # Another run may add the same number at this moment: insert-if-absent.
                insert_all_if_absent(
                    session,
                    Phone,
                    [{"e164": found.e164, "region": found.region} for found in ad_data.phones],
                    ["e164"],
                )
                phone_ids = {
                    e164: phone_id
                    for e164, phone_id in session.execute(
                        select(Phone.e164, Phone.id).where(
                            Phone.e164.in_([found.e164 for found in ad_data.phones])
                        )
                    )
                }
                for found in ad_data.phones:
                    ad.phone_links.append(
                        AdPhone(phone_id=phone_ids[found.e164], raw=found.raw[:200])
                    )
            session.add(ad)
            session.flush()
            # What the site said about the page and each kept image, for the next recrawl.
            responses = {image.url: image.response for image in item.images}
            remember(
                session,
                context.case_id,
                [
                    Fetched(ad.url, item.response),
                    *(
                        Fetched(image.url, responses.get(image.url), image.blob_sha256)
                        for image in ad.images
                        if image.blob_sha256 is not None
                    ),
                ],
                ad_id=ad.id,
                expires_at=expires_at,
            )
            return ad.id, expires_at


class _AuthorisationEnded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _content_fingerprint(ad: MinimisedAd) -> str:
    # Over what is kept, so that the fingerprint reveals nothing of what was not. Pages
    # carry changing chrome (dates, counters); a new version is a change of the ad.
    payload = {
        "title": ad.title,
        "text": ad.text,
        "city": ad.city,
        "posted_at": ad.posted_at.astimezone(UTC).isoformat() if ad.posted_at else None,
        "phones": sorted(p.e164 for p in ad.phones),
        "images": [
            [f"{i.phash:016x}", hashlib.sha256(i.data).hexdigest() if i.data else None]
            for i in ad.images
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
