"""Abstract synthetic pictures (colour fields and shapes, never a person) and the ways
re-posters change them: crop, mirror, rescale, border, watermark, recompress.

A picture depends only on its key, through ``random.Random(key)``, whose string seeds hash
with SHA-512: the same key gives the same pixels on every run and platform (for a given
Pillow version).
"""

from __future__ import annotations

import io
import random
from typing import Final

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

__all__ = [
    "CROP_FRACTION",
    "PICTURE_SIZE",
    "abstract_picture",
    "add_border",
    "crop_sides",
    "decode",
    "jpeg_bytes",
    "mirror",
    "rescale",
    "watermark",
]

PICTURE_SIZE: Final = (320, 400)
# How much of each side a re-poster usually trims: the matcher's "centre 90%" variant.
CROP_FRACTION: Final = 0.05


def abstract_picture(key: str) -> Image.Image:
    """An RGB picture of :data:`PICTURE_SIZE`: a smooth random colour field, translucent
    shapes and soft noise, drawn from ``key`` alone.

    The colour field is a few random pixels upsampled, so the low frequencies that a pHash
    reads differ from picture to picture (median 32 bits apart, as for random hashes).
    """
    rng = random.Random(key)
    width, height = PICTURE_SIZE
    grid = (rng.randint(3, 5), rng.randint(3, 6))
    picture = Image.frombytes("RGB", grid, rng.randbytes(grid[0] * grid[1] * 3))
    picture = picture.resize(PICTURE_SIZE, Image.Resampling.BICUBIC).convert("RGBA")
    overlay = Image.new("RGBA", PICTURE_SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(4, 8)):
        fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256), rng.randint(120, 220))
        x0, y0 = rng.randrange(-40, width), rng.randrange(-40, height)
        x1, y1 = x0 + rng.randint(40, 200), y0 + rng.randint(40, 220)
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            corners = [(rng.randrange(width), rng.randrange(height)) for _ in range(5)]
            draw.polygon(corners, fill=fill)
    picture = Image.alpha_composite(picture, overlay).convert("RGB")
    noise = Image.frombytes("L", (80, 100), rng.randbytes(80 * 100))
    noise = noise.resize(PICTURE_SIZE, Image.Resampling.BILINEAR)
    picture = Image.blend(picture, Image.merge("RGB", (noise, noise, noise)), 0.12)
    return picture.filter(ImageFilter.GaussianBlur(0.7))


def crop_sides(picture: Image.Image, fraction: float) -> Image.Image:
    """``picture`` with ``fraction`` of its width and height cut from each side."""
    width, height = picture.size
    dx, dy = round(width * fraction), round(height * fraction)
    return picture.crop((dx, dy, width - dx, height - dy))


def mirror(picture: Image.Image) -> Image.Image:
    """``picture`` flipped left to right."""
    return ImageOps.mirror(picture)


def rescale(picture: Image.Image, factor: float) -> Image.Image:
    """``picture`` resized by ``factor`` on both sides."""
    size = (round(picture.width * factor), round(picture.height * factor))
    return picture.resize(size, Image.Resampling.LANCZOS)


def add_border(picture: Image.Image, fraction: float) -> Image.Image:
    """``picture`` framed in near-white, ``fraction`` of its width and height on each side."""
    size = (round(picture.width * fraction), round(picture.height * fraction))
    return ImageOps.expand(picture, size, fill=(250, 250, 250))


def watermark(picture: Image.Image, text: str = "SAMPLE") -> Image.Image:
    """``picture`` with ``text`` written translucently across its lower part."""
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    font = ImageFont.load_default(size=max(12, picture.height // 14))
    position = (picture.width // 3, int(picture.height * 0.82))
    ImageDraw.Draw(layer).text(position, text, fill=(255, 255, 255, 150), font=font)
    return Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB")


def jpeg_bytes(
    picture: Image.Image,
    quality: int,
    *,
    optimize: bool = False,
    exif: bytes = b"",
    comment: bytes = b"",
) -> bytes:
    """``picture`` saved as JPEG at ``quality``, with the given metadata if any."""
    options: dict[str, object] = {"quality": quality, "optimize": optimize}
    if exif:
        options["exif"] = exif
    if comment:
        options["comment"] = comment
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    """The picture in ``data``, fully loaded (a copy is made from what was published)."""
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture
