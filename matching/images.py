"""Perceptual fingerprints of ad photos, decoded defensively from untrusted bytes.

``describe_image`` decodes untrusted bytes defensively and returns the photo's 64-bit pHash
plus the pHashes of a few transformed copies (``VARIANTS``), so that a re-post that was
mirrored or cropped still lands within ``DEFAULT_RADIUS`` bits of one of them.
``matching.hamming_index`` finds such near hashes among millions.

Measured on synthetic images (``benchmarks/bench_image_index.py``); the numbers that chose
the variants and the radius are quoted next to them below.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, cast

import imagehash
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from matching.records import ImageFingerprint

# Hashes within this many bits (of 64) are the same photo. Synthetic benchmark, 400 images
# (79,800 unrelated pairs, each compared through all variants): no unrelated pair within 8
# bits, 1 within 10, the closest at 10. Every covered transformation (see VARIANTS) stays
# within 8 for at least 95 % of re-posts; radius 10 would add only partial recall on
# uncovered ones (one-sided crops, 3° rotation) while a random 64-bit pair falls within 10
# bits 33 times as often as within 8 (9.6e-9 against 2.9e-10). A pHash sets exactly 32 of
# its 64 bits (it thresholds at the median), so pHashes differ in an even number of bits:
# radius 9 finds nothing more than 8 but probes ~5x more buckets in the index.
DEFAULT_RADIUS: Final = 8

# Larger images are refused before their pixels are decoded (ad sites serve a few MP).
MAX_PIXELS: Final = 40_000_000
# Below this side the photo carries less detail than the 32x32 grid pHash samples.
MIN_SIDE: Final = 32
# pHash reads a 32x32 Lanczos thumbnail; the six pHashes of a photo cost six such resizes of
# the full picture. Box-averaging it once to this short side first (JPEGs are decoded at
# 1/2, 1/4 or 1/8 scale when they are large) leaves a pHash within 2 bits of the full-size
# one and the recall and unrelated-pair figures below unchanged within ±0.02. Mean time
# per image, full size -> shrunk: 320x400 JPEG (``benchmarks/corpus.py``) 2.9 -> 1.2 ms;
# 0.8 MP JPEG 12.9 -> 2.0 ms; 0.8 MP PNG 20.5 -> 9.3 ms (PNG decoding is most of the rest).
HASH_SIDE: Final = 128
# EXIF orientation tag; values 5-8 store the photo turned a quarter.
_ORIENTATION: Final = 0x0112
_QUARTER_TURNS: Final = (5, 6, 7, 8)
# Web photo formats only: every other decoder is attack surface without a use here. (JPEG
# covers multi-picture JPEGs too.) Their plugins are imported below so that the names are
# registered before Image.open looks them up.
ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
_PLUGINS: Final = (BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin)

# The transformed copies hashed into ``ImageFingerprint.variants``, in this order. With the
# phash alone, crops fail (median 10 bits at 5 % per side, 18 at 10 %) and mirroring is ~32
# bits away. Recall at radius 8 on 100 synthetic images of ``bench_image_index.py`` (share
# of re-posts matched; crops per side, "bottom8" = bottom 8 % cut off, border 8 % white):
#   set (variants)                     crop3 crop6 crop8 crop12 mirror+crop6 bottom8 top8 border8
#   mirror                             0.90  0.23  0.06  0.00   0.36         0.33    0.32  0.02
#   + centre 90 %, 80 %                0.99  1.00  0.99  0.94   0.36         0.41    0.40  0.93
#   + mirrored centre 90 %             0.99  1.00  0.99  0.94   1.00         0.41    0.40  0.93
#   + top 90 % (bottom strip cut off)  0.99  1.00  0.99  0.94   1.00         1.00    0.54  0.93
# (Hashing at full size gave the same figures within ±0.02.) An earlier image set also had
# a mirrored 80 % crop lift only mirror+crop12 (0.09 to 0.96), a 95 %/85 % pair only border8
# (to 1.00) and bottom8 (to 0.54); each variant costs one more stored hash per photo (index
# memory and time grow with it). No set brought an unrelated pair within 8 bits.
# Cutting off a bottom strip is how a re-poster removes another site's caption or
# watermark, hence the one one-sided crop.
VARIANTS: Final = ("mirror", "centre 90%", "centre 80%", "mirrored centre 90%", "top 90%")

_DECODE_ERRORS: Final = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
)


class ImageRejected(ValueError):
    """The bytes are not an image this module will decode and hash."""


@dataclass(frozen=True, slots=True)
class ImageDescription:
    """A decoded photo's fingerprint and its size in pixels as displayed (EXIF rotation applied)."""

    fingerprint: ImageFingerprint
    width: int
    height: int


def describe_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageDescription:
    """Decode untrusted image bytes and fingerprint them; ``ImageRejected`` if unfit or unsafe."""
    gray, width, height = _decode(data, max_pixels)
    # A single-band image has (min, max) extrema.
    low, high = cast(tuple[int, int], gray.getextrema())
    if high - low < 8:
        # Blank placeholders all hash alike and would link unrelated ads.
        raise ImageRejected("image is blank (nearly one colour), nothing to compare")
    copies = [make(gray) for make in _VARIANT_MAKERS]
    fingerprint = ImageFingerprint(
        phash=_phash(gray),
        variants=tuple(map(_phash, copies)),
        dhashes=(_dhash(gray), *map(_dhash, copies)),
    )
    return ImageDescription(fingerprint, width, height)


def fingerprint_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> ImageFingerprint:
    """Fingerprint of untrusted image bytes (``describe_image`` without the size)."""
    return describe_image(data, max_pixels=max_pixels).fingerprint


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


def image_distance(a: ImageFingerprint, b: ImageFingerprint) -> int:
    """Smallest distance from either photo's pHash to the other's pHash or variants."""
    return min(
        min(hamming(a.phash, other) for other in (b.phash, *b.variants)),
        min(hamming(b.phash, other) for other in a.variants) if a.variants else 64,
    )


@contextmanager
def open_untrusted(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """Open untrusted image bytes for decoding: web formats only, within the size limits,
    verified, with decompression bombs refused; every decoding error inside the ``with``
    block (``load()`` included) becomes ``ImageRejected``."""
    if not data:
        raise ImageRejected("image is empty (0 bytes)")
    try:
        # Not thread-safe before Python 3.14: the filter is process-wide while it is set.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as probe:
                _check_size(probe, max_pixels)
                probe.verify()
            # verify() leaves the decoder unusable; decode from a fresh parse.
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                _check_size(image, max_pixels)
                yield image
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected(
            f"not a recognised image (accepted formats: {', '.join(ACCEPTED_FORMATS)})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"image refused as a decompression bomb: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected(f"image is damaged or truncated: {exc}") from None


def _decode(data: bytes, max_pixels: int) -> tuple[Image.Image, int, int]:
    """The photo upright, in greyscale, shrunk to ``HASH_SIDE``; its size as displayed."""
    with open_untrusted(data, max_pixels=max_pixels) as image:
        width, height = image.size
        # JPEG only: decode the luma alone, scaled down by 2, 4 or 8 in the IDCT, while
        # the short side stays at least 2 * HASH_SIDE. A no-op elsewhere.
        image.draft("L", (2 * HASH_SIDE, 2 * HASH_SIDE))
        image.load()
        # Read after load(): a PNG may carry its EXIF after the pixels.
        if image.getexif().get(_ORIENTATION, 1) in _QUARTER_TURNS:
            width, height = height, width
        ImageOps.exif_transpose(image, in_place=True)
        # Palette, alpha, CMYK and 16-bit modes reach greyscale through RGB.
        upright = image if image.mode in ("RGB", "L") else image.convert("RGB")
        return _shrink(upright.convert("L")), width, height


def _shrink(gray: Image.Image) -> Image.Image:
    """Box-average down to ``HASH_SIDE`` on the short side (smaller images are kept)."""
    width, height = gray.size
    short = min(width, height)
    if short <= HASH_SIDE:
        return gray
    size = (max(1, round(width * HASH_SIDE / short)), max(1, round(height * HASH_SIDE / short)))
    return gray.resize(size, Image.Resampling.BOX)


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            f"image declares {width}x{height} pixels, over the {max_pixels:,} pixel limit"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(f"image is {width}x{height} pixels, below {MIN_SIDE} on a side")


def _phash(image: Image.Image) -> int:
    return int(str(imagehash.phash(image)), 16)


def _dhash(image: Image.Image) -> int:
    """The 64-bit difference hash: signs of horizontal gradients on a 9x8 thumbnail (built
    from other features of the pixels than the pHash's low DCT frequencies, so its errors
    are largely independent). imagehash's Lanczos resize straight from the ``HASH_SIDE``
    image doubled the time to fingerprint a photo (six copies); box-averaged to 36x32
    first, it costs a quarter as much and tells different photos apart at least as well
    (``bench_photo_confirmation.py``: 38 false links left on the hard set against 43)."""
    return int(str(imagehash.dhash(image.resize((36, 32), Image.Resampling.BOX))), 16)


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    """Cut the given fractions off each side (at least one pixel is kept)."""
    width, height = image.size
    x0, y0 = round(width * left), round(height * top)
    x1 = max(x0 + 1, round(width * (1 - right)))
    y1 = max(y0 + 1, round(height * (1 - bottom)))
    return image.crop((x0, y0, x1, y1))


_VARIANT_MAKERS: Final[tuple[Callable[[Image.Image], Image.Image], ...]] = (
    ImageOps.mirror,
    lambda im: _crop(im, 0.05, 0.05, 0.05, 0.05),
    lambda im: _crop(im, 0.10, 0.10, 0.10, 0.10),
    lambda im: ImageOps.mirror(_crop(im, 0.05, 0.05, 0.05, 0.05)),
    lambda im: _crop(im, 0.0, 0.0, 0.0, 0.10),
)
assert len(_VARIANT_MAKERS) == len(VARIANTS)
