"""Plain records that go into and come out of the matcher (no I/O, no project imports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ImageFingerprint:
    """Perceptual hashes of one image: 64-bit pHash of the image and of its mirror image."""

    phash: int
    phash_mirror: int


@dataclass(frozen=True, slots=True)
class AdInput:
    """One ad as the matcher receives it; images already fingerprinted by the caller."""

    ad_id: str
    site: str
    url: str
    city: str | None
    posted_at: datetime | None
    title: str
    text: str
    images: tuple[ImageFingerprint, ...] = ()


@dataclass(frozen=True, slots=True)
class AdFeatures:
    """What linkage compares, computed once per ad (and precomputed at scale).

    ``distinctive_text`` is the ad's normalised text with boilerplate sentences removed;
    ``text_signature`` is the MinHash signature of its shingles (empty when too short).
    """

    ad_id: str
    site: str
    city: str | None
    posted_at: datetime | None
    phones: tuple[str, ...]
    images: tuple[ImageFingerprint, ...]
    distinctive_text: str
    text_signature: tuple[int, ...]
