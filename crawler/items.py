"""The item the spider yields and the pipelines refine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.http import Response

    from legal_policy.minimisation import MinimisationRecord, MinimisedAd


@dataclass(slots=True)
class FetchedImage:
    """An image URL of an ad and what fetching and checking it gave."""

    url: str
    body: bytes | None = field(default=None, repr=False)
    phash: str | None = None
    phash_variants: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    # The HTTP exchange it came from (status, headers, request), for the evidence record.
    response: Response | None = field(default=None, repr=False)
    # True when the site said "not modified" and the bytes come from the blob store.
    stored: bool = False


@dataclass(slots=True)
class FoundPhone:
    """A phone number found in the ad: normalised and as written."""

    e164: str
    region: str
    raw: str


@dataclass(slots=True)
class AdCapture:
    """One ad page as captured: raw bytes plus extracted fields."""

    url: str
    raw_body: bytes
    title: str
    text: str
    city: str | None
    posted_at_raw: str | None
    phone_text: str | None
    images: list[FetchedImage] = field(default_factory=list)
    phones: list[FoundPhone] = field(default_factory=list)
    page_encoding: str | None = None
    # Captured field -> CSS selectors of the page elements holding it (for minimisation).
    field_selectors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    third_party_selectors: tuple[str, ...] = ()
    # Read by extraction with the profile's date formats (aware, UTC).
    posted_at: datetime | None = None
    # Fields present but unreadable as the profile says (names and reasons, no content).
    field_problems: list[str] = field(default_factory=list)
    # The ad-level indicator model's score (an assessment), set when the ad is kept.
    indicator_score: float | None = None
    # The HTTP exchange of the ad page (status, headers, request), for the evidence record.
    response: Response | None = None
    # Filled by the minimisation stage; only these reach storage.
    minimised: MinimisedAd | None = None
    minimisation: MinimisationRecord | None = None

    def __repr__(self) -> str:
        # Never the content: Scrapy and tracebacks may print an item.
        return f"AdCapture(url={self.url!r})"
