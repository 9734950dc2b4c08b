"""Image fingerprints survive re-posting, hostile bytes are refused.

All images are drawn here with PIL (gradients, shapes, text, noise); none shows a person.

Re-post transformations covered (within ``DEFAULT_RADIUS``): identical bytes, resize to
50 %, JPEG quality 30, a 5 % border, a small corner watermark, mirroring, centre crops of
4-10 % per side, mirroring plus a 5 % crop, a bottom strip of up to 10 % cut off, EXIF
rotation. Not covered (the benchmark reports their recall): centre crops beyond ~12 % per
side, mirroring plus crops beyond ~8 %, strips cut off the top or the sides, rotation by a
few degrees. Crops of exactly the variants' proportions would be trivially matched, so the
crops below use other proportions as well.
"""

from __future__ import annotations

import io
import itertools
import random
import struct
import zlib
from collections.abc import Callable

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from matching import images
from matching.images import (
    DEFAULT_RADIUS,
    VARIANTS,
    ImageRejected,
    describe_image,
    fingerprint_image,
    hamming,
    image_distance,
)
from matching.records import ImageFingerprint

# --- synthetic pictures ------------------------------------------------------------------


def synthetic_image(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A busy, photo-like picture: gradient, overlapping shapes, text, blur and noise."""
    rng = random.Random(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xx * np.cos(angle) + yy * np.sin(angle)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    start = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    end = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    pixels = start + ramp[..., None] * (end - start)
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(4, 9)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x0, y0 = rng.randrange(-width // 4, width), rng.randrange(-height // 4, height)
        box = (
            x0,
            y0,
            x0 + rng.randrange(width // 8, width // 2),
            y0 + rng.randrange(height // 8, height // 2),
        )
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    font = ImageFont.load_default(size=height // 14)
    draw.text((width // 10, height // 3), f"no. {seed:04d}", fill=(250, 250, 250), font=font)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2)))
    noise = np.random.default_rng(seed).normal(0, 6, (height, width, 1))
    return Image.fromarray((np.asarray(image) + noise).clip(0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    width, height = image.size
    return image.crop(
        (
            round(width * left),
            round(height * top),
            round(width * (1 - right)),
            round(height * (1 - bottom)),
        )
    )


def watermark(image: Image.Image) -> Image.Image:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    font = ImageFont.load_default(size=image.height // 20)
    ImageDraw.Draw(layer).text(
        (int(image.width * 0.6), int(image.height * 0.9)),
        "www.example.net",
        fill=(255, 255, 255, 180),
        font=font,
    )
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that declares a huge size (the pixels are never there)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


SEEDS = range(6)
ORIGINALS = {seed: synthetic_image(seed) for seed in SEEDS}
FINGERPRINTS = {seed: fingerprint_image(encode(image)) for seed, image in ORIGINALS.items()}

REPOSTS: dict[str, Callable[[Image.Image], bytes]] = {
    "resize 50%": lambda im: encode(
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    ),
    "JPEG quality 30": lambda im: encode(im, "JPEG", quality=30),
    "border 5%": lambda im: encode(
        ImageOps.expand(im, (im.width // 20, im.height // 20), fill="white")
    ),
    "watermark": lambda im: encode(watermark(im)),
    "mirror": lambda im: encode(ImageOps.mirror(im)),
    "crop 4%/side": lambda im: encode(crop(im, 0.04, 0.04, 0.04, 0.04)),
    "crop 5%/side": lambda im: encode(crop(im, 0.05, 0.05, 0.05, 0.05)),
    "crop 7%/side": lambda im: encode(crop(im, 0.07, 0.07, 0.07, 0.07)),
    "crop 10%/side": lambda im: encode(crop(im, 0.10, 0.10, 0.10, 0.10)),
    "uneven crop 3-6%": lambda im: encode(crop(im, 0.03, 0.06, 0.05, 0.04)),
    "mirror + crop 5%": lambda im: encode(ImageOps.mirror(crop(im, 0.05, 0.05, 0.05, 0.05))),
    "bottom 8% cut": lambda im: encode(crop(im, 0, 0, 0, 0.08)),
    "crop 5% + JPEG 50": lambda im: encode(crop(im, 0.05, 0.05, 0.05, 0.05), "JPEG", quality=50),
}


# --- fingerprints ------------------------------------------------------------------------


def test_same_image_is_distance_zero() -> None:
    original = ORIGINALS[0]
    again = fingerprint_image(encode(original, "BMP"))
    assert again == FINGERPRINTS[0]
    assert image_distance(FINGERPRINTS[0], again) == 0
    assert len(again.variants) == len(VARIANTS)
    assert all(0 <= value < 2**64 for value in (again.phash, *again.variants))


@pytest.mark.parametrize("name", REPOSTS)
def test_reposts_stay_within_radius(name: str) -> None:
    distances = {
        seed: image_distance(FINGERPRINTS[seed], fingerprint_image(REPOSTS[name](image)))
        for seed, image in ORIGINALS.items()
    }
    assert max(distances.values()) <= DEFAULT_RADIUS, distances


def test_mirror_needs_the_variants() -> None:
    """Without its variants a mirrored re-post would be far away: they do the work."""
    for seed, image in ORIGINALS.items():
        mirrored = fingerprint_image(encode(ImageOps.mirror(image)))
        assert hamming(FINGERPRINTS[seed].phash, mirrored.phash) > DEFAULT_RADIUS
        assert image_distance(FINGERPRINTS[seed], mirrored) <= DEFAULT_RADIUS


def test_unrelated_images_are_beyond_radius() -> None:
    pictures = [FINGERPRINTS[seed] for seed in SEEDS] + [
        fingerprint_image(encode(synthetic_image(seed, (360, 480)))) for seed in range(100, 110)
    ]
    closest = min(image_distance(a, b) for a, b in itertools.combinations(pictures, 2))
    assert closest > DEFAULT_RADIUS


def test_image_distance_is_symmetric_and_uses_both_sides() -> None:
    a = ImageFingerprint(phash=0, variants=(0b1111,))
    b = ImageFingerprint(phash=0b1111_0000_0000, variants=())
    assert image_distance(a, b) == image_distance(b, a) == 4
    assert image_distance(ImageFingerprint(5), ImageFingerprint(5)) == 0


def test_hamming_counts_differing_bits() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(0b1010, 0b0110) == 2


def test_description_gives_size_as_displayed() -> None:
    upright = ORIGINALS[1]
    described = describe_image(encode(upright, "JPEG", quality=90))
    assert (described.width, described.height) == upright.size
    # Stored sideways with an EXIF "rotate 90° clockwise" tag, as phone cameras do.
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif)
    rotated = describe_image(sideways)
    assert (rotated.width, rotated.height) == upright.size
    assert image_distance(rotated.fingerprint, described.fingerprint) <= 2


def test_large_photos_are_shrunk_before_hashing_with_their_size_kept() -> None:
    """A big JPEG is decoded at reduced scale; it hashes like its small PNG copy."""
    large = synthetic_image(4, (2400, 1800))
    small = large.resize((480, 360), Image.Resampling.LANCZOS)
    described = describe_image(encode(large, "JPEG", quality=90))
    assert (described.width, described.height) == (2400, 1800)
    assert image_distance(described.fingerprint, fingerprint_image(encode(small))) <= 2
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned a quarter: "rotate 90° counter-clockwise" to display
    sideways = encode(large.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=90, exif=exif)
    rotated = describe_image(sideways)
    assert (rotated.width, rotated.height) == (2400, 1800)
    assert image_distance(rotated.fingerprint, described.fingerprint) <= 2


def test_shrinking_first_keeps_the_full_size_phash() -> None:
    """Hashing the photo shrunk to ``HASH_SIDE`` moves its pHash by a bit or two at most;
    a photo already that small is hashed as it is."""
    for seed, image in ORIGINALS.items():
        assert min(image.size) > images.HASH_SIDE
        full_size = int(str(imagehash.phash(image.convert("L"))), 16)
        assert hamming(FINGERPRINTS[seed].phash, full_size) <= 2
    small = synthetic_image(7, (images.HASH_SIDE + 40, images.HASH_SIDE))
    as_is = int(str(imagehash.phash(small.convert("L"))), 16)
    assert fingerprint_image(encode(small)).phash == as_is


def test_modes_are_normalised() -> None:
    image = ORIGINALS[2]
    for converted in (
        image.convert("P"),
        image.convert("RGBA"),
        image.convert("L"),
        image.convert("CMYK"),
    ):
        fmt = "JPEG" if converted.mode == "CMYK" else "PNG"
        assert (
            image_distance(fingerprint_image(encode(converted, fmt)), FINGERPRINTS[2])
            <= DEFAULT_RADIUS
        )


# --- hostile input -----------------------------------------------------------------------

GOOD_PNG = encode(ORIGINALS[3])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (random.Random(1).randbytes(5000), "not a recognised image"),
        (b"Name,Phone\nAnna,0612345678\n" * 20, "not a recognised image"),
        (GOOD_PNG[: len(GOOD_PNG) // 2], "damaged or truncated"),
        (GOOD_PNG[:60], "damaged or truncated"),
        (encode(ORIGINALS[3], "TIFF"), "not a recognised image"),
        (png_header(50_000, 50_000), "decompression bomb"),
        (png_header(10_000, 10_000), "decompression bomb"),
        (png_header(7_000, 7_000), "over the 40,000,000 pixel limit"),
        (encode(Image.new("RGB", (20, 400), "red")), "below 32 on a side"),
        (encode(Image.new("RGB", (400, 300), (40, 90, 200))), "blank"),
    ],
    ids=[
        "empty",
        "random bytes",
        "text file",
        "truncated PNG",
        "PNG header only",
        "TIFF not accepted",
        "bomb 50000x50000",
        "bomb 10000x10000",
        "over max_pixels",
        "too small",
        "single colour",
    ],
)
def test_bad_input_is_rejected_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(ImageRejected, match=message):
        describe_image(data)


SMALL_JPEG = encode(synthetic_image(9, (96, 64)), "JPEG", quality=85)
SMALL_PNG = encode(synthetic_image(9, (96, 64)))


@settings(max_examples=150, deadline=None)
@given(
    source=st.sampled_from([SMALL_JPEG, SMALL_PNG]),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=8)), max_size=6),
    cut=st.integers(16, 10**6),
)
def test_damaged_files_are_hashed_or_rejected_never_crash(
    source: bytes, edits: list[tuple[int, bytes]], cut: int
) -> None:
    data = bytearray(source[:cut])
    for position, patch in edits:
        position %= len(data)
        data[position : position + len(patch)] = patch
    try:
        fingerprint = fingerprint_image(bytes(data))
    except ImageRejected as exc:
        assert str(exc)
    else:
        assert 0 <= fingerprint.phash < 2**64


def test_max_pixels_is_a_parameter() -> None:
    with pytest.raises(ImageRejected, match="over the 100,000 pixel limit"):
        fingerprint_image(GOOD_PNG, max_pixels=100_000)
    assert issubclass(ImageRejected, ValueError)
