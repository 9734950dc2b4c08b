"""The item the spider yields and the pipelines refine."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FetchedImage:
    """An image URL of an ad and what fetching and checking it gave."""

    url: str
    body: bytes | None = None
    phash: str | None = None
    phash_variants: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None


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
