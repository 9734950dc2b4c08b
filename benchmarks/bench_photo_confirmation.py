"""Single-photo matches by pHash distance: how often they join the same photo and how often
two different photos, with and without confirmation by the independent dHash.

Two photo collections without people in them:

- ``synthetic``: the benchmark corpus's abstract pictures (``benchmarks.corpus``), each
  original and its re-posts (recompressed, resized, watermarked, bordered, mirrored,
  cropped);
- ``skimage``: scikit-image's bundled sample photos that show no person (a cat, coins,
  coffee, a rocket, gravel, grass, brick, the moon, a retina, …), each whole and cut into
  nine tiles that are photos of their own (tiles of one texture are the hard case: different
  photos that look alike), under crops, flips, borders, strips cut off, rescaling and
  JPEG recompression.

Every pair of images within ``--max-distance`` pHash bits is found with the engine's own
index and counted by distance: *same* (copies of one photo) or *different*. For each
distance the table gives how many different-photo pairs are within it (false matches of a
single-photo link) and how many of each kind the dHash of the same pairing confirms at
each threshold. The rule in ``matching.photos`` was chosen from this table.

Run: ``.venv/bin/python -m benchmarks.bench_photo_confirmation`` (scikit-image comes with
the ``bench`` extra: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import io
import itertools
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from benchmarks.corpus import TRANSFORMS, _image_spec, render_image
from matching.hamming_index import HammingIndex
from matching.images import DEFAULT_RADIUS, describe_image
from matching.photos import (
    CONFIRM_DHASH,
    CONFIRM_FROM,
    HASHES_PER_USE,
    fingerprint_rows,
    photo_pairing,
)
from matching.records import ImageFingerprint

# scikit-image's bundled samples without a person in them (``astronaut``, ``camera`` and
# the face sets are left out on purpose, and ``color.png``, a test chart, not a photo).
SKIMAGE_PHOTOS = (
    "brick.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "microaneurysms.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
DHASH_THRESHOLDS = (6, 8, 10, 12, 14, 16, 20)
assert CONFIRM_DHASH in DHASH_THRESHOLDS


@dataclass(frozen=True, slots=True)
class Copy:
    """One image file: which photo it shows and how it was made."""

    photo: str
    transform: str
    fingerprint: ImageFingerprint


def _jpeg(picture: Image.Image, quality: int = 88) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _crop(
    picture: Image.Image, left: float, top: float, right: float, bottom: float
) -> Image.Image:
    width, height = picture.size
    return picture.crop(
        (
            round(width * left),
            round(height * top),
            round(width * (1 - right)),
            round(height * (1 - bottom)),
        )
    )


def _with_caption(picture: Image.Image) -> Image.Image:
    out = picture.convert("RGB").copy()
    ImageDraw.Draw(out).rectangle(
        (0, int(out.height * 0.9), out.width, out.height), fill=(20, 20, 20)
    )
    return out


REPOSTS: tuple[tuple[str, Callable[[Image.Image], bytes]], ...] = (
    ("original", lambda p: _jpeg(p)),
    ("recompressed q35", lambda p: _jpeg(p, 35)),
    ("resized 60%", lambda p: _jpeg(p.resize((round(p.width * 0.6), round(p.height * 0.6))))),
    ("mirrored", lambda p: _jpeg(ImageOps.mirror(p))),
    ("cropped 6%", lambda p: _jpeg(_crop(p, 0.06, 0.06, 0.06, 0.06))),
    ("mirrored + cropped 5%", lambda p: _jpeg(ImageOps.mirror(_crop(p, 0.05, 0.05, 0.05, 0.05)))),
    ("bottom 8% cut", lambda p: _jpeg(_crop(p, 0, 0, 0, 0.08))),
    (
        "border 5%",
        lambda p: _jpeg(
            ImageOps.expand(p.convert("RGB"), round(p.width * 0.05), fill=(250, 250, 250))
        ),
    ),
    ("caption strip", lambda p: _jpeg(_with_caption(p))),
    ("brighter 20%", lambda p: _jpeg(ImageEnhance.Brightness(p.convert("RGB")).enhance(1.2))),
)


def _skimage_photos() -> Iterator[tuple[str, Image.Image]]:
    """Each sample whole and a 3x3 grid of its tiles: photos of their own that do not
    overlap (each tile is a third of the photo's width: far beyond a re-poster's crop)."""
    folder = resources.files("skimage") / "data"
    for name in SKIMAGE_PHOTOS:
        with Image.open(io.BytesIO((folder / name).read_bytes())) as opened:
            picture = opened.convert("RGB")
        yield name, picture
        for i, j in itertools.product(range(3), range(3)):
            yield f"{name} t{i}{j}", _crop(picture, j / 3, i / 3, (2 - j) / 3, (2 - i) / 3)


def skimage_copies() -> list[Copy]:
    """Every photo of the scikit-image set under every re-post."""
    copies = []
    for photo, picture in _skimage_photos():
        if min(picture.size) < 64:
            continue
        for transform, make in REPOSTS:
            fingerprint = describe_image(make(picture)).fingerprint
            copies.append(Copy(photo, transform, fingerprint))
    return copies


def synthetic_copies(photos: int, seed: int = 7) -> list[Copy]:
    """The corpus's abstract pictures, each original and its re-posts."""
    copies = []
    for base in range(photos):
        for transform in range(len(TRANSFORMS)):
            spec = _image_spec(seed, base, transform, n_stock=0)
            fingerprint = describe_image(render_image(spec)).fingerprint
            copies.append(Copy(spec.photo, spec.transform, fingerprint))
    return copies


def near_pairs(copies: list[Copy], max_distance: int) -> Iterator[tuple[int, int]]:
    """Index pairs whose pHash pairing is within ``max_distance`` (the engine's index)."""
    rows = fingerprint_rows([c.fingerprint for c in copies])
    every = HammingIndex()
    every.add(np.repeat(np.arange(len(copies)), HASHES_PER_USE), rows.reshape(-1))
    originals = HammingIndex()
    originals.add(np.arange(len(copies)), rows[:, 0])
    seen: set[tuple[int, int]] = set()
    found_every = every.range_search(rows[:, 0], max_distance)
    found_originals = originals.range_search(rows[:, 1:].reshape(-1), max_distance)
    for query in range(len(copies)):
        for key, _ in found_every.hits(query):
            if key != query:
                seen.add((min(key, query), max(key, query)))
    for query in range(len(found_originals)):
        owner = query // (HASHES_PER_USE - 1)
        for key, _ in found_originals.hits(query):
            if key != owner:
                seen.add((min(key, owner), max(key, owner)))
    return iter(sorted(seen))


def tally(copies: list[Copy], max_distance: int) -> dict[tuple[str, int], Counter[str]]:
    """Per (kind, pHash distance): pair count and dHash-confirmed counts per threshold."""
    table: dict[tuple[str, int], Counter[str]] = {}
    for a, b in near_pairs(copies, max_distance):
        distance, second = photo_pairing(copies[a].fingerprint, copies[b].fingerprint)
        if distance > max_distance:
            continue
        kind = "same" if copies[a].photo == copies[b].photo else "different"
        counts = table.setdefault((kind, distance), Counter())
        counts["pairs"] += 1
        for threshold in DHASH_THRESHOLDS:
            if second is not None and second <= threshold:
                counts[f"d{threshold}"] += 1
    return table


def report(name: str, copies: list[Copy], table: dict[tuple[str, int], Counter[str]]) -> None:
    """Print one collection's table in Markdown."""
    photos = len({c.photo for c in copies})
    total = len(copies)
    print(f"\n### {name}: {photos} photos, {total} images, {total * (total - 1) // 2:,} pairs\n")
    heads = " | ".join(f"dHash ≤ {t}" for t in DHASH_THRESHOLDS)
    print(f"| pHash distance | kind | pairs | {heads} |")
    print("|---|---|---|" + "---|" * len(DHASH_THRESHOLDS))
    distances = sorted({d for _, d in table})
    for distance in distances:
        for kind in ("same", "different"):
            counts = table.get((kind, distance))
            if not counts:
                continue
            cells = " | ".join(str(counts[f"d{t}"]) for t in DHASH_THRESHOLDS)
            print(f"| {distance} | {kind} | {counts['pairs']} | {cells} |")
    print(
        f"\nSingle-photo links within the radius ({DEFAULT_RADIUS}), without confirmation and "
        f"with the rule (from {CONFIRM_FROM} bits the dHash must be within {CONFIRM_DHASH}):\n"
    )
    print("| pHash distance | same-photo pairs | linked with the rule | different-photo pairs "
          "(false links without confirmation) | false links with the rule |")  # fmt: skip
    print("|---|---|---|---|---|")
    totals: Counter[str] = Counter()
    for distance in [d for d in distances if d <= DEFAULT_RADIUS]:
        same = table.get(("same", distance), Counter())
        different = table.get(("different", distance), Counter())
        confirmed = f"d{CONFIRM_DHASH}" if distance >= CONFIRM_FROM else "pairs"
        row = (same["pairs"], same[confirmed], different["pairs"], different[confirmed])
        totals.update(dict(zip(("same", "kept", "different", "false"), row, strict=True)))
        print(f"| {distance} | " + " | ".join(map(str, row)) + " |")
    print(
        f"| all | {totals['same']} | {totals['kept']} | {totals['different']} | {totals['false']} |"
    )


def main(argv: list[str] | None = None) -> None:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic-photos", type=int, default=1500)
    parser.add_argument("--max-distance", type=int, default=12)
    parser.add_argument("--skip-skimage", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    collections: list[tuple[str, Callable[[], list[Copy]]]] = [
        ("synthetic", lambda: synthetic_copies(args.synthetic_photos)),
    ]
    if not args.skip_skimage:
        collections.append(("skimage", skimage_copies))
    for name, make in collections:
        started = time.perf_counter()
        copies = make()
        table = tally(copies, args.max_distance)
        report(name, copies, table)
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
