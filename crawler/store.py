"""The store stage: an ad's rows, blobs and WARC records, written in a process of its own.

Storing is mostly Python (SQLAlchemy's unit of work, warcio's records). On the worker's
reactor thread, or on a thread beside it, it fought the reactor for the GIL and set the
pace of the whole crawl; in a process of its own it has a core of its own. The worker
forks that process before it starts any thread (``crawler.context.PipelineWorkers``) and
hands it a ``StoreSpec``; the pipelines send it one minimised ad at a time, in order, and
get back what happened to it. Only what minimisation kept ever reaches this process.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import CrawlerConfig
from crawler.context import CrawlContext
from crawler.items import Exchange
from crawler.recrawl import Fetched, mark_seen, remember
from crawler.warc import (
    MAX_FILE_BYTES,
    RunWarcWriter,
    StoredAd,
    settings_sha256,
    warcinfo_fields,
)
from legal_policy.authorisation import stop_reason
from legal_policy.authorisation_store import standing_of
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.minimisation import MinimisationRecord, MinimisedAd
from legal_policy.retention import BlobHold, ad_expiry, hold_blobs
from storage.blobstore import BlobStore
from storage.db import make_engine, make_session_factory
from storage.models import Ad, AdImage, AdPhone, Phone
from storage.upsert import insert_all_if_absent


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """What the store process needs to know of the run: plain data, sent once."""

    config: CrawlerConfig
    run_id: int
    site_id: int
    authorisation_id: int
    case_id: int
    legal_basis: str
    catalogue: LegalBasisCatalogue


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One minimised ad to store, with the HTTP exchanges (no bodies) of its page and
    images, for the recrawl's validators and the evidence records."""

    minimised: MinimisedAd
    minimisation: MinimisationRecord
    indicator_score: float | None
    captured_at: datetime
    page: Exchange | None
    images: dict[str, Exchange] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stored:
    """A new ad (or a new version of one) was stored; ``evidence_error`` names what went
    wrong writing its WARC records, if anything did."""

    ad_id: int
    expires_at: datetime
    images_stored: int
    evidence_error: str | None = None


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The same version was stored before (by this case, or a moment ago by another run);
    only "seen again" and the validators were written."""

    ad_id: int
    by_another_run: bool = False


@dataclass(frozen=True, slots=True)
class NotStored:
    """The authorisation no longer allows storing (``reason`` says why)."""

    reason: str


StoreOutcome = Stored | Unchanged | NotStored


class StoreFailed(Exception):
    """Storing an ad failed in the store process; ``kind`` is the error's class name.

    Only the kind crosses the process boundary: messages of database errors may quote
    the ad's content.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)  # the only argument: pickled and rebuilt with it
        self.kind = kind

    def __str__(self) -> str:
        return f"the store process failed ({self.kind})"


class AdStore:
    """The store process's own state: its engine, the blob store and the WARC writer."""

    def __init__(self, spec: StoreSpec) -> None:
        self.spec = spec
        # Many small stores: SQLite syncs the WAL at checkpoints (``make_engine``); the
        # run's record and audit entry come from engines that sync every commit.
        self.engine: Engine = make_engine(spec.config.database_url, sync_every_commit=False)
        self.session_factory: sessionmaker[Session] = make_session_factory(self.engine)
        self.blob_store = BlobStore(spec.config.blob_dir)
        self.evidence: RunWarcWriter | None = None

    def open_evidence(self, info: dict[str, str], max_file_bytes: int) -> list[tuple[str, str]]:
        """Build the run's WARC writer and close what a killed worker of this run left
        open; returns the problems found (kind, message)."""
        spec = self.spec
        self.evidence = RunWarcWriter(
            session_factory=self.session_factory,
            data_dir=spec.config.data_dir,
            warc_dir=spec.config.warc_dir,
            run_id=spec.run_id,
            case_id=spec.case_id,
            info=info,
            max_file_bytes=max_file_bytes,
        )
        try:
            self.evidence.recover_unfinished()
            missing = self.evidence.ads_without_records()
        except Exception as exc:
            # This run's new files do not depend on the old ones; the next resume retries.
            return [("evidence_not_closed", f"an earlier WARC file was not closed: {_kind(exc)}")]
        if not missing:
            return []
        return [
            (
                "evidence_missing",
                f"{len(missing)} ads stored before the worker was killed have no WARC records "
                f"(ads {', '.join(map(str, missing))})",
            )
        ]

    def close_evidence(self) -> None:
        """Close the open WARC file (its SHA-256 is recorded)."""
        if self.evidence is not None:
            self.evidence.close()

    def store(self, request: StoreRequest) -> StoreOutcome:
        """Store the ad and write its evidence; what happened to it comes back."""
        content_sha256 = content_fingerprint(request.minimised)
        try:
            stored = self._store(request, content_sha256)
        except _AuthorisationEnded as ended:
            return NotStored(ended.reason)
        except IntegrityError:
            # Another run of the same case stored this very version a moment ago (the
            # unique key, not a race we lose silently): it is unchanged for this run.
            with self.session_factory() as session:
                existing = self._existing(session, request.minimised.url, content_sha256)
            if existing is None:
                raise
            return Unchanged(existing, by_another_run=True)
        if isinstance(stored, Unchanged):
            return stored
        return Stored(
            ad_id=stored.ad_id,
            expires_at=stored.expires_at,
            images_stored=stored.images_stored,
            evidence_error=self._record(request, stored),
        )

    def _record(self, request: StoreRequest, stored: Stored) -> str | None:
        """The evidence (WARC) of what was kept, only now that it is kept; the error's kind
        when it could not be written (the ad is stored but unproven)."""
        try:
            if self.evidence is None:
                raise RuntimeError("no WARC writer (the spider did not open)")
            self.evidence.write_ad(
                StoredAd(
                    ad_id=stored.ad_id,
                    captured_at=request.captured_at,
                    expires_at=stored.expires_at,
                    ad=request.minimised,
                    minimisation=request.minimisation,
                    page=request.page,
                    images=request.images,
                )
            )
        except Exception as exc:
            return _kind(exc)
        return None

    def _existing(self, session: Session, url: str, content_sha256: str) -> int | None:
        spec = self.spec
        return session.scalar(
            select(Ad.id).where(
                Ad.case_id == spec.case_id,
                Ad.site_id == spec.site_id,
                Ad.url == url,
                Ad.content_sha256 == content_sha256,
            )
        )

    def _store(self, request: StoreRequest, content_sha256: str) -> Stored | Unchanged:
        """Store the ad in one transaction; the same version stored before is only seen
        again (and its validators refreshed)."""
        spec = self.spec
        ad_data, now = request.minimised, request.captured_at
        with self.session_factory.begin() as session:
            standing = standing_of(session, spec.authorisation_id)
            reason = stop_reason(standing, now)
            if reason is not None:
                raise _AuthorisationEnded(reason)
            expires_at = ad_expiry(spec.catalogue, standing, now)
            existing = self._existing(session, ad_data.url, content_sha256)
            if existing is not None:
                # Seen again; the validators now describe this answer of the site.
                mark_seen(session, [existing])
                remember(
                    session,
                    spec.case_id,
                    [Fetched(ad_data.url, request.page)],
                    ad_id=existing,
                    expires_at=expires_at,
                )
                return Unchanged(existing)
            held: list[BlobHold] = []

            def keep_blob(data: bytes, kind: str) -> str:
                sha256 = self.blob_store.put(data)
                held.append(BlobHold(sha256, kind, len(data)))
                return sha256

            ad = Ad(
                site_id=spec.site_id,
                run_id=spec.run_id,
                authorisation_id=spec.authorisation_id,
                case_id=spec.case_id,
                legal_basis=spec.legal_basis,
                expires_at=expires_at,
                url=ad_data.url,
                captured_at=now,
                title=ad_data.title,
                text=ad_data.text,
                city=ad_data.city,
                posted_at=ad_data.posted_at,
                raw_sha256=keep_blob(ad_data.raw_page, "page") if ad_data.raw_page else None,
                content_sha256=content_sha256,
                minimisation=request.minimisation.as_dict(),
                indicator_score=request.indicator_score,
            )
            for position, image in enumerate(ad_data.images):
                ad.images.append(
                    AdImage(
                        position=position,
                        url=image.url,
                        blob_sha256=keep_blob(image.data, "image") if image.data else None,
                        phash=f"{image.phash:016x}",
                        phash_variants=[f"{v:016x}" for v in image.variants],
                        dhashes=[f"{v:016x}" for v in image.dhashes] or None,
                        width=image.width,
                        height=image.height,
                    )
                )
            hold_blobs(
                session,
                held,
                case_id=spec.case_id,
                legal_basis=spec.legal_basis,
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
                for position, found in enumerate(ad_data.phones):
                    ad.phone_links.append(
                        AdPhone(
                            phone_id=phone_ids[found.e164], raw=found.raw[:200], position=position
                        )
                    )
            session.add(ad)
            session.flush()
            # What the site said about the page and each kept image, for the next recrawl.
            remember(
                session,
                spec.case_id,
                [
                    Fetched(ad.url, request.page),
                    *(
                        Fetched(image.url, request.images.get(image.url), image.blob_sha256)
                        for image in ad.images
                        if image.blob_sha256 is not None
                    ),
                ],
                ad_id=ad.id,
                expires_at=expires_at,
            )
            return Stored(
                ad_id=ad.id,
                expires_at=expires_at,
                images_stored=sum(1 for image in ad_data.images if image.data),
            )

    def dispose(self) -> None:
        """Let go of the database connections."""
        self.engine.dispose()


class _AuthorisationEnded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def content_fingerprint(ad: MinimisedAd) -> str:
    """SHA-256 over what is kept of an ad (so it reveals nothing of what was not). Pages
    carry changing chrome (dates, counters); a new version is a change of the ad."""
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


def _kind(error: BaseException) -> str:
    return type(error).__name__


# --- run in the store process (``PipelineWorkers.store``) ---------------------------------

# The one ``AdStore`` of a store process, set by ``open_store``; each run's worker forks
# its own store process, so this is never shared between runs.
_process_store: AdStore | None = None


def open_store(spec: StoreSpec) -> None:
    """Set up this store process for the run (the first call it gets)."""
    global _process_store
    _process_store = AdStore(spec)


def _store_of_process() -> AdStore:
    if _process_store is None:
        raise RuntimeError("the store process was not opened (open_store)")
    return _process_store


def open_evidence(info: dict[str, str], max_file_bytes: int) -> list[tuple[str, str]]:
    """``AdStore.open_evidence`` of this process's store."""
    return _store_of_process().open_evidence(info, max_file_bytes)


def store_ad(request: StoreRequest) -> StoreOutcome:
    """``AdStore.store`` of this process's store; any failure comes back as a
    ``StoreFailed`` that names only the error's kind."""
    try:
        return _store_of_process().store(request)
    except Exception as exc:
        raise StoreFailed(_kind(exc)) from None


def close_store() -> None:
    """Close the open WARC file (its SHA-256 is recorded) and the database connections
    (the last call it gets)."""
    store = _store_of_process()
    try:
        store.close_evidence()
    finally:
        store.dispose()


class WarcEvidence:
    """Scrapy extension: opens the run's WARC evidence in the store process when the
    spider opens (with what the run's settings say); the worker's ``close_store`` closes
    it, after every store sent.

    The file size limit is ``ADWATCH_WARC_MAX_FILE_BYTES`` (default ``MAX_FILE_BYTES``).
    """

    def __init__(self, crawler: Crawler, max_file_bytes: int) -> None:
        self.crawler = crawler
        self.max_file_bytes = max_file_bytes

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcEvidence:
        """Connect to the spider's opening."""
        limit = crawler.settings.getint("ADWATCH_WARC_MAX_FILE_BYTES", MAX_FILE_BYTES)
        if limit <= 0:
            raise ValueError("ADWATCH_WARC_MAX_FILE_BYTES must be positive")
        extension = cls(crawler, limit)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        return extension

    async def spider_opened(self, spider: Spider) -> None:
        """Build the run's writer and close what a killed worker of this run left open."""
        context: CrawlContext = spider.context  # type: ignore[attr-defined]
        info = warcinfo_fields(
            context,
            software=self.crawler.settings.get("ADWATCH_SOFTWARE_VERSION", "0+unknown"),
            settings_digest=settings_sha256(self.crawler.settings),
        )
        problems = await context.workers.store(open_evidence, info, self.max_file_bytes)
        for kind, message in problems:
            context.report.add_problem(kind, "", message)
