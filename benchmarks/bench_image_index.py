"""Hamming-radius search speed and perceptual-hash robustness to re-posting.

Run: ``.venv/bin/python benchmarks/bench_image_index.py [--n 1000000] [--radius 8]``.

Part 1 indexes ``--n`` random 64-bit hashes (4 per key, like a photo's pHash and variants)
with planted near neighbours, and times ``matching.hamming_index.HammingIndex`` against numpy
brute force and two plain faiss indexes. Part 2 draws synthetic pictures with PIL
(gradients, shapes, text, noise; no people), re-posts them under common transformations
and reports how far each re-post lands from its original, with and without the variants,
and how close unrelated pictures come. Seeds are fixed.
"""

from __future__ import annotations

import argparse
import io
import itertools
import platform
import random
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from matching.hamming_index import HammingIndex
from matching.images import (
    DEFAULT_RADIUS,
    VARIANTS,
    fingerprint_image,
    hamming,
    image_distance,
)
from matching.records import ImageFingerprint

U64 = npt.NDArray[np.uint64]


def rss_mib() -> float:
    """Resident memory now (Linux), or NaN elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * 4096 / 2**20


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds."""
    array = np.asarray(samples) * 1e3
    return float(np.median(array)), float(np.percentile(array, 95))


def plant_queries(stored: U64, count: int, radius: int, rng: np.random.Generator) -> U64:
    """Half near stored hashes (0..radius+2 bits flipped), half uniformly random."""
    queries = rng.integers(0, 2**64, size=count, dtype=np.uint64)
    near = rng.choice(len(stored), size=count // 2, replace=False)
    for row, position in enumerate(near):
        value = int(stored[position])
        for bit in rng.choice(64, size=int(rng.integers(0, radius + 3)), replace=False):
            value ^= 1 << int(bit)
        queries[row] = value
    return queries


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def time_flat(stored: U64, queries: U64, radius: int) -> str:
    """Brute force inside faiss, with its default threads and with one."""
    flat = faiss.IndexBinaryFlat(64)
    flat.add(stored.view(np.uint8).reshape(-1, 8))
    codes = queries.view(np.uint8).reshape(-1, 8)
    threads = faiss.omp_get_max_threads()
    medians = []
    for count in (threads, 1):
        faiss.omp_set_num_threads(count)
        times = [
            timed(partial(flat.range_search, codes[i : i + 1], radius + 1))
            for i in range(len(codes))
        ]
        medians.append(f"median {percentiles(times)[0]:.3f} ms ({count} thread{'s' * (count > 1)})")
    faiss.omp_set_num_threads(threads)
    return ", ".join(medians)


def time_multihash(stored: U64, queries: U64, radius: int) -> str:
    """faiss's own multi-index hashing (one shared store, candidates deduplicated in a set)."""
    # It reads 8 bytes at each chunk's byte offset: pad so that the last code is not overrun.
    padded = np.zeros((len(stored) + 1, 8), dtype=np.uint8)
    padded[:-1] = stored.view(np.uint8).reshape(-1, 8)
    multi = faiss.IndexBinaryMultiHash(64, 3, 21)
    multi.nflip = radius // 3
    build = timed(lambda: multi.add(padded[:-1]))
    codes = np.zeros((len(queries) + 1, 8), dtype=np.uint8)
    codes[:-1] = queries.view(np.uint8).reshape(-1, 8)
    times = [
        timed(partial(multi.range_search, codes[i : i + 1], radius + 1))
        for i in range(len(queries))
    ]
    median, p95 = percentiles(times)
    return f"median {median:.3f} ms, p95 {p95:.3f} ms (build {build:.2f} s)"


def bench_index(args: argparse.Namespace, rows: list[tuple[str, str]]) -> None:
    rng = np.random.default_rng(11)
    radius = args.radius
    stored = rng.integers(0, 2**64, size=args.n, dtype=np.uint64)
    keys = np.arange(args.n, dtype=np.int64) // 4
    queries = plant_queries(stored, args.queries, radius, rng)

    before = rss_mib()
    index = HammingIndex()

    def build_index() -> None:
        index.add(keys, stored)
        index.range_search(stored[:1], radius)  # the sorted tables are built on first search

    build = timed(build_index)
    rows.append(("HammingIndex build", f"{build:.2f} s, +{rss_mib() - before:.0f} MiB resident"))

    latencies = [timed(partial(index.query, int(q), radius)) for q in queries]
    median, p95 = percentiles(latencies)
    rows.append(("HammingIndex single query", f"median {median:.3f} ms, p95 {p95:.3f} ms"))

    brute_queries = queries[: args.brute_queries]
    brute: list[float] = []
    for q in brute_queries:
        started = time.perf_counter()
        hits = np.flatnonzero(np.bitwise_count(stored ^ q) <= radius)
        brute.append(time.perf_counter() - started)
        # Spot check of exactness against the scan.
        assert sorted(set(keys[hits].tolist())) == sorted(k for k, _ in index.query(int(q), radius))
    median, p95 = percentiles(brute)
    rows.append(("numpy brute force single query", f"median {median:.3f} ms, p95 {p95:.3f} ms"))

    rows.append(
        (
            "faiss IndexBinaryFlat single query",
            time_flat(stored, queries[: args.brute_queries], radius),
        )
    )
    rows.append(
        (
            "faiss IndexBinaryMultiHash(3x21) query",
            time_multihash(stored, queries[: args.brute_queries], radius),
        )
    )

    batch = plant_queries(stored, args.batch, radius, rng)
    elapsed = timed(lambda: index.range_search(batch, radius))
    per_100k = elapsed * 100_000 / args.batch
    rows.append(
        (
            f"HammingIndex batched ({args.batch:,} queries)",
            f"{elapsed:.2f} s = {per_100k:.2f} s per 100k queries, "
            f"{elapsed / args.batch * 1e3:.4f} ms/query",
        )
    )


# --- robustness ----------------------------------------------------------------------------


def synthetic_image(seed: int) -> Image.Image:
    """A busy, photo-like picture: gradient, overlapping shapes, text, blur and noise."""
    rng = random.Random(seed)
    width, height = rng.choice([640, 800, 1024]), rng.choice([640, 768, 960, 1200])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = xx * np.cos(angle) + yy * np.sin(angle)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    start = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    end = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    image = Image.fromarray((start + ramp[..., None] * (end - start)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(4, 10)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x0, y0 = rng.randrange(-width // 4, width), rng.randrange(-height // 4, height)
        x1, y1 = (
            x0 + rng.randrange(width // 10, width // 2),
            y0 + rng.randrange(height // 10, height // 2),
        )
        shape = rng.choice(["ellipse", "rectangle", "polygon"])
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            corners = [
                (rng.randrange(width), rng.randrange(height)) for _ in range(rng.randint(3, 6))
            ]
            draw.polygon(corners, fill=colour)
    font = ImageFont.load_default(size=max(16, height // 20))
    for _ in range(rng.randint(0, 3)):
        words = "".join(rng.choice("abcdefghij ") for _ in range(12))
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.text(
            (rng.randrange(width // 2), rng.randrange(height - 20)), words, fill=colour, font=font
        )
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 3)))
    noise = np.random.default_rng(seed).normal(0, rng.uniform(2, 12), (height, width, 1))
    return Image.fromarray((np.asarray(image) + noise).clip(0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        options.setdefault("compress_level", 1)
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    width, height = image.size
    box = (
        round(width * left),
        round(height * top),
        round(width * (1 - right)),
        round(height * (1 - bottom)),
    )
    return image.crop(box)


def watermark(image: Image.Image) -> Image.Image:
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    font = ImageFont.load_default(size=max(14, image.height // 25))
    position = (int(image.width * 0.62), int(image.height * 0.9))
    ImageDraw.Draw(layer).text(position, "www.example.net", fill=(255, 255, 255, 170), font=font)
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def border(image: Image.Image, fraction: float) -> Image.Image:
    size = (round(image.width * fraction), round(image.height * fraction))
    return ImageOps.expand(image, size, fill=(255, 255, 255))


Repost = Callable[[Image.Image], bytes]
# (name, covered by the chosen variants at DEFAULT_RADIUS, transformation)
REPOSTS: list[tuple[str, bool, Repost]] = [
    ("resize 50%", True, lambda im: encode(im.resize((im.width // 2, im.height // 2)))),
    ("JPEG quality 30", True, lambda im: encode(im, "JPEG", quality=30)),
    ("greyscale", True, lambda im: encode(ImageOps.grayscale(im))),
    ("brightness +20", True, lambda im: encode(Image.eval(im, lambda v: min(255, v + 20)))),
    ("watermark bottom right", True, lambda im: encode(watermark(im))),
    ("border 5%", True, lambda im: encode(border(im, 0.05))),
    (
        "border 8% black",
        False,
        lambda im: encode(ImageOps.expand(im, (im.width // 12, im.height // 12))),
    ),
    ("mirror", True, lambda im: encode(ImageOps.mirror(im))),
    ("crop 3%/side", True, lambda im: encode(crop(im, 0.03, 0.03, 0.03, 0.03))),
    ("crop 5%/side", True, lambda im: encode(crop(im, 0.05, 0.05, 0.05, 0.05))),
    ("crop 7.5%/side", True, lambda im: encode(crop(im, 0.075, 0.075, 0.075, 0.075))),
    ("crop 10%/side", True, lambda im: encode(crop(im, 0.1, 0.1, 0.1, 0.1))),
    ("uneven crop 4/6/5/3%", True, lambda im: encode(crop(im, 0.04, 0.06, 0.05, 0.03))),
    (
        "mirror + crop 5%",
        True,
        lambda im: encode(ImageOps.mirror(crop(im, 0.05, 0.05, 0.05, 0.05))),
    ),
    ("bottom 8% cut off", True, lambda im: encode(crop(im, 0, 0, 0, 0.08))),
    (
        "crop 4% + watermark + JPEG 50",
        True,
        lambda im: encode(watermark(crop(im, 0.04, 0.04, 0.04, 0.04)), "JPEG", quality=50),
    ),
    ("crop 12%/side", False, lambda im: encode(crop(im, 0.12, 0.12, 0.12, 0.12))),
    ("crop 15%/side", False, lambda im: encode(crop(im, 0.15, 0.15, 0.15, 0.15))),
    ("mirror + crop 10%", False, lambda im: encode(ImageOps.mirror(crop(im, 0.1, 0.1, 0.1, 0.1)))),
    ("top 8% cut off", False, lambda im: encode(crop(im, 0, 0.08, 0, 0))),
    ("left 10% cut off", False, lambda im: encode(crop(im, 0.1, 0, 0, 0))),
    ("rotate 3°", False, lambda im: encode(im.rotate(3, Image.Resampling.BICUBIC))),
]


def phash_only(fingerprint: ImageFingerprint) -> ImageFingerprint:
    return ImageFingerprint(fingerprint.phash)


def bench_robustness(args: argparse.Namespace, radius: int) -> list[list[str]]:
    count = max(args.images, args.unrelated)
    pictures = [synthetic_image(seed) for seed in range(count)]
    encoded = [encode(picture) for picture in pictures]
    started = time.perf_counter()
    originals = [fingerprint_image(data) for data in encoded]
    per_image = (time.perf_counter() - started) / count * 1e3
    pixels = np.mean([picture.width * picture.height for picture in pictures]) / 1e6
    table = [["re-post", "covered", "median", "max", f"≤{radius}", f"≤{radius} pHash only"]]
    for name, covered, repost in REPOSTS:
        with_variants, plain = [], []
        for original, picture in zip(originals, pictures[: args.images], strict=False):
            copy = fingerprint_image(repost(picture))
            with_variants.append(image_distance(original, copy))
            plain.append(hamming(original.phash, copy.phash))
        within = np.mean(np.asarray(with_variants) <= radius)
        table.append(
            [
                name,
                "yes" if covered else "no",
                f"{np.median(with_variants):.0f}",
                str(max(with_variants)),
                f"{within:.2f}",
                f"{np.mean(np.asarray(plain) <= radius):.2f}",
            ]
        )
    pairs = list(itertools.combinations(originals, 2))
    unrelated = [image_distance(a, b) for a, b in pairs]
    unrelated_plain = [hamming(a.phash, b.phash) for a, b in pairs]
    table.append(
        [
            f"unrelated pairs ({len(pairs):,})",
            "-",
            f"min {min(unrelated)}",
            f"≤{radius + 2}: {sum(d <= radius + 2 for d in unrelated)}",
            f"{sum(d <= radius for d in unrelated)} pairs",
            f"{sum(d <= radius for d in unrelated_plain)} pairs (min {min(unrelated_plain)})",
        ]
    )
    table.append(
        ["fingerprint (PNG)", "-", f"{per_image:.1f} ms/image", f"{pixels:.2f} MP avg", "", ""]
    )
    return table


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="hashes in the index")
    parser.add_argument("--radius", type=int, default=DEFAULT_RADIUS)
    parser.add_argument("--queries", type=int, default=2_000, help="single queries timed")
    parser.add_argument("--brute-queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100_000, help="queries in the batched run")
    parser.add_argument("--images", type=int, default=60, help="pictures re-posted")
    parser.add_argument("--unrelated", type=int, default=200, help="pictures compared pairwise")
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()

    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, faiss {faiss.__version__}, "
        f"numpy {np.__version__}, faiss threads {faiss.omp_get_max_threads()}"
    )
    print(f"variants: {', '.join(VARIANTS)}; radius {args.radius}\n")
    index_rows: list[tuple[str, str]] = []
    bench_index(args, index_rows)
    print_table([["index of " + f"{args.n:,} hashes", "result"], *map(list, index_rows)])
    if not args.skip_images:
        print()
        print_table(bench_robustness(args, args.radius))


if __name__ == "__main__":
    main()
