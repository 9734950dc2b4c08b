"""Plain records that go into and come out of the matcher (no I/O, no project imports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ImageFingerprint:
    """Perceptual hashes of one image.

    ``phash`` is the 64-bit pHash of the image as published; ``variants`` are pHashes of
    transformed copies of it (its mirror image, centre crops) so that a re-post that was
    mirrored or cropped lands near one of them. ``dhashes`` are the 64-bit difference
    hashes of the image and of the same copies, in the same order (``1 + len(variants)``;
    empty when unknown): an independent second fingerprint that confirms a pHash match
    near the radius. Hashes are unsigned 64-bit integers.
    """

    phash: int
    variants: tuple[int, ...] = ()
    dhashes: tuple[int, ...] = ()


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
    ``text_signature`` is the MinHash signature of its shingles, packed as little-endian
    uint32 values (``b""`` when the distinctive text is too short to compare).
    """

    ad_id: str
    site: str
    city: str | None
    posted_at: datetime | None
    phones: tuple[str, ...]
    images: tuple[ImageFingerprint, ...]
    distinctive_text: str
    text_signature: bytes
    # Share of the ad's text (characters of its distinct sentences) that is distinctive:
    # low when the ad is mostly an agency's or a site's template.
    distinctive_share: float = 1.0
