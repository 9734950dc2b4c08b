"""Recrawls that ask "changed since?" instead of fetching everything again.

For every ad page and image it kept, a case remembers what the site said about the URL
(ETag, Last-Modified) and what the URL gave (the ad version, the blob). The next run sends
those validators (``If-None-Match``, ``If-Modified-Since``): an unchanged ad page answers
304 and costs neither its body nor its images — the ad records only that it was seen
again; an unchanged image of a changed ad is taken from the blob store instead of the
site. Validators go with the ad they describe (retention, purge).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crawler.items import Exchange
from storage.models import Ad, AdImage, PageValidator
from storage.types import utcnow
from storage.upsert import upsert_all

# Request meta keys: the kind of URL, and the validator sent with it.
AD_PAGE = "adwatch_ad_page"
IMAGE = "adwatch_image"
VALIDATOR = "adwatch_validator"


@dataclass(frozen=True, slots=True)
class Validator:
    """What the case last heard from a URL, and what the URL gave then."""

    etag: str | None
    last_modified: str | None
    ad_id: int | None
    blob_sha256: str | None
    # For images: the perceptual hashes and size stored with the blob.
    phash: str | None = None
    phash_variants: tuple[str, ...] = ()
    width: int = 0
    height: int = 0
    dhashes: tuple[str, ...] = ()


class Validators:
    """The validators of one case, loaded once per run (a few hundred bytes per URL)."""

    def __init__(self, session_factory: sessionmaker[Session], case_id: int) -> None:
        self.case_id = case_id
        self._by_url: dict[str, Validator] = {}
        images: dict[str, tuple[str, tuple[str, ...], int, int, tuple[str, ...]]] = {}
        with session_factory() as session:
            for blob, phash, variants, width, height, dhashes in session.execute(
                select(
                    AdImage.blob_sha256,
                    AdImage.phash,
                    AdImage.phash_variants,
                    AdImage.width,
                    AdImage.height,
                    AdImage.dhashes,
                )
                .join(Ad, Ad.id == AdImage.ad_id)
                .where(Ad.case_id == case_id, AdImage.blob_sha256.is_not(None))
            ):
                images[blob] = (phash, tuple(variants or ()), width, height, tuple(dhashes or ()))
            for row in session.scalars(
                select(PageValidator).where(PageValidator.case_id == case_id)
            ):
                phash, variants, width, height, dhashes = images.get(
                    row.blob_sha256 or "", ("", (), 0, 0, ())
                )
                self._by_url[row.url] = Validator(
                    row.etag,
                    row.last_modified,
                    row.ad_id,
                    row.blob_sha256,
                    phash or None,
                    variants,
                    width,
                    height,
                    dhashes,
                )

    def get(self, url: str) -> Validator | None:
        """The validator of a URL, if the case has one."""
        return self._by_url.get(url)


class ConditionalRequestMiddleware:
    """Adds the case's validators to requests for ad pages and images it kept before."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConditionalRequestMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if not (request.meta.get(AD_PAGE) or request.meta.get(IMAGE)):
            return
        validators = getattr(getattr(self.crawler.spider, "context", None), "validators", None)
        found = validators.get(request.url) if validators is not None else None
        if found is None or (request.meta.get(IMAGE) and found.blob_sha256 is None):
            return  # nothing to reuse: an image kept as hashes only is fetched again
        if found.etag:
            request.headers.setdefault(b"If-None-Match", found.etag.encode("latin-1"))
        if found.last_modified:
            request.headers.setdefault(b"If-Modified-Since", found.last_modified.encode("latin-1"))
        if found.etag or found.last_modified:
            request.meta[VALIDATOR] = found


def validators_of(response: Response | Exchange | None) -> tuple[str | None, str | None]:
    """The ETag and Last-Modified a response carried."""
    if response is None:
        return None, None
    etag = response.headers.get(b"ETag")
    modified = response.headers.get(b"Last-Modified")
    return (
        etag.decode("latin-1") if etag else None,
        modified.decode("latin-1") if modified else None,
    )


_REMEMBERED = ("etag", "last_modified", "ad_id", "blob_sha256", "checked_at", "expires_at")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A URL as the site answered it, and what adwatch kept of it (an image's blob)."""

    url: str
    response: Response | Exchange | None
    blob_sha256: str | None = None


def remember(
    session: Session,
    case_id: int,
    fetched: Iterable[Fetched],
    *,
    ad_id: int,
    expires_at: datetime,
) -> None:
    """Record (or refresh) what each URL said and gave, for the next run of the case, in
    one statement. URLs whose site gave no validator are left out: nothing to ask."""
    checked_at = utcnow()
    rows = []
    for each in fetched:
        etag, modified = validators_of(each.response)
        if etag is None and modified is None:
            continue
        rows.append(
            {
                "case_id": case_id,
                "url": each.url[:2000],
                "etag": etag,
                "last_modified": modified,
                "ad_id": ad_id,
                "blob_sha256": each.blob_sha256,
                "checked_at": checked_at,
                "expires_at": expires_at,
            }
        )
    upsert_all(
        session,
        PageValidator,
        rows,
        ["case_id", "url"],
        lambda excluded: {column: getattr(excluded, column) for column in _REMEMBERED},
    )


def mark_seen(session: Session, ad_ids: list[int]) -> None:
    """Record that unchanged ads were still online now."""
    if ad_ids:
        session.execute(
            update(Ad).where(Ad.id.in_(ad_ids)).values(last_seen_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
