"""Abstract synthetic pictures: deterministic per key, distinct per key, and every kind of
re-post copy within the matcher's photo radius of its original."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from PIL import Image

from adwatch.synthetic.photos import (
    CROP_FRACTION,
    PICTURE_SIZE,
    abstract_picture,
    add_border,
    crop_sides,
    decode,
    jpeg_bytes,
    mirror,
    rescale,
    watermark,
)
from matching.images import DEFAULT_RADIUS, fingerprint_image, image_distance

COPIES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "cropped": lambda picture: crop_sides(picture, CROP_FRACTION),
    "mirrored": mirror,
    "resized to 60 %": lambda picture: rescale(picture, 0.6),
    "bordered 4 %": lambda picture: add_border(picture, 0.04),
    "watermarked": watermark,
}


def test_same_key_same_pixels_and_bytes() -> None:
    first, second = abstract_picture("7:photo-1"), abstract_picture("7:photo-1")
    assert first.size == PICTURE_SIZE and first.mode == "RGB"
    assert first.tobytes() == second.tobytes()
    assert jpeg_bytes(first, 82) == jpeg_bytes(second, 82)
    assert abstract_picture("8:photo-1").tobytes() != first.tobytes()


def test_pictures_of_different_keys_are_far_apart() -> None:
    pictures = [jpeg_bytes(abstract_picture(f"3:{n}"), 88) for n in range(24)]
    fingerprints = [fingerprint_image(data) for data in pictures]
    distances = [image_distance(a, b) for a, b in itertools.combinations(fingerprints, 2)]
    assert min(distances) > DEFAULT_RADIUS


@pytest.mark.parametrize("kind", COPIES)
def test_each_copy_stays_within_the_photo_radius(kind: str) -> None:
    for n in range(4):
        picture = abstract_picture(f"5:photo-{n}")
        original = jpeg_bytes(picture, 88)
        copy = jpeg_bytes(COPIES[kind](picture), 88)
        assert copy != original
        distance = image_distance(fingerprint_image(original), fingerprint_image(copy))
        assert distance <= DEFAULT_RADIUS, n


def test_recompressing_the_published_bytes_keeps_the_photo() -> None:
    published = jpeg_bytes(abstract_picture("5:photo-9"), 82)
    recompressed = jpeg_bytes(decode(published), 40)
    assert len(recompressed) < len(published)
    assert image_distance(fingerprint_image(published), fingerprint_image(recompressed)) <= 4


def test_transformations_change_the_size_as_named() -> None:
    picture = abstract_picture("1:size")
    width, height = PICTURE_SIZE
    assert crop_sides(picture, 0.05).size == (width - 2 * 16, height - 2 * 20)
    assert rescale(picture, 0.5).size == (width // 2, height // 2)
    assert add_border(picture, 0.05).size == (width + 2 * 16, height + 2 * 20)
    assert mirror(picture).size == watermark(picture).size == PICTURE_SIZE
    assert mirror(mirror(picture)).tobytes() == picture.tobytes()


def test_metadata_is_written_when_given() -> None:
    picture = abstract_picture("1:exif")
    exif = Image.Exif()
    exif[0x010F] = "synthetic camera"
    data = jpeg_bytes(picture, 82, exif=exif.tobytes(), comment=b"synthetic")
    decoded = decode(data)
    assert decoded.getexif()[0x010F] == "synthetic camera"
    assert decoded.info["comment"] == b"synthetic"
    assert "comment" not in decode(jpeg_bytes(picture, 82)).info
