"""``adwatch match``: the matching engine over a JSON-lines export, with no database.

Input: one JSON object per line with ``ad_id``, ``site``, ``url``, ``city``,
``posted_at`` (ISO 8601), ``title``, ``text`` and ``images`` (paths relative to the input
file). A bad line — invalid JSON, a missing or mistyped field, an image that cannot be
read or is not an image, a decompression bomb — is reported with its line number and
skipped; the run goes on. Output: one JSON object per linked ad with ``ad_id``,
``profile_id``, ``profile_size`` and its evidence.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from matching.engine import MatchConfig, MatchingEngine
from matching.features import build_features
from matching.images import ImageRejected, fingerprint_image
from matching.records import AdInput, ImageFingerprint

REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "ad_id": (str, int),
    "site": (str,),
    "url": (str,),
    "city": (str, type(None)),
    "posted_at": (str, type(None)),
    "title": (str,),
    "text": (str,),
    "images": (list,),
}
# Ad photos are a few MB at most; a larger file is refused before it is read.
MAX_IMAGE_BYTES = 30 * 1024 * 1024
# Below this many distinct image files, starting worker processes costs more than it saves.
_MIN_PARALLEL_IMAGES = 64

ProgressCallback = Callable[[str, int, int], None]


class MatchInputError(ValueError):
    """The input as a whole cannot be read (missing file, not a file)."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A skipped input line and why."""

    line: int
    ad_id: str | None
    message: str


@dataclass(slots=True)
class OfflineMatchOutcome:
    """What ``match_jsonl`` read, skipped and produced."""

    lines_read: int = 0
    ads_linked: int = 0
    images_hashed: int = 0
    profiles: int = 0
    multi_ad_profiles: int = 0
    seconds: float = 0.0
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def ads_per_second(self) -> float:
        """End-to-end throughput."""
        return self.ads_linked / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class _ParsedLine:
    line: int
    ad: dict[str, Any]
    image_paths: tuple[Path, ...]


def match_jsonl(
    input_path: Path,
    output_path: Path,
    *,
    default_region: str = "NL",
    config: MatchConfig | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> OfflineMatchOutcome:
    """Link the ads of a JSON-lines export into candidate profiles; write one line per ad."""
    started = time.perf_counter()
    if not input_path.is_file():
        raise MatchInputError(f"input file {input_path} does not exist or is not a file")
    outcome = OfflineMatchOutcome()
    parsed: list[_ParsedLine] = []
    seen_ids: set[str] = set()
    for number, line in _numbered_lines(input_path):
        outcome.lines_read += 1
        try:
            entry = _parse_line(line, input_path.parent, number)
        except ValueError as exc:
            outcome.problems.append(LineProblem(number, _ad_id_of(line), str(exc)))
            continue
        ad_id = str(entry.ad["ad_id"])
        if ad_id in seen_ids:
            outcome.problems.append(LineProblem(number, ad_id, f"duplicate ad_id {ad_id!r}"))
            continue
        seen_ids.add(ad_id)
        parsed.append(entry)

    ads: list[AdInput] = []
    for entry, images in zip(parsed, _fingerprint_all(parsed, workers, on_progress), strict=True):
        if isinstance(images, str):
            outcome.problems.append(LineProblem(entry.line, str(entry.ad["ad_id"]), images))
            continue
        outcome.images_hashed += len(images)
        ads.append(_ad_input(entry.ad, images))
    outcome.problems.sort(key=lambda p: p.line)

    features = build_features(ads, default_region=default_region)
    engine = MatchingEngine(config)
    if on_progress:
        on_progress("linking", 0, len(features))
    result = engine.add(features)
    if on_progress:
        on_progress("linking", len(features), len(features))
    sizes = {pid: len(members) for pid, members in engine.profiles().items()}
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf-8") as out:
        position = {ad.ad_id: i for i, ad in enumerate(ads)}
        for membership in sorted(result.memberships, key=lambda m: position[m.ad_id]):
            record = {
                "ad_id": membership.ad_id,
                "profile_id": membership.profile_id,
                "profile_size": sizes[membership.profile_id],
                "evidence": [item.as_dict() for item in membership.evidence],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    outcome.ads_linked = len(result.memberships)
    outcome.profiles = len(sizes)
    outcome.multi_ad_profiles = sum(1 for size in sizes.values() if size > 1)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield number, line


def _ad_id_of(line: str) -> str | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    ad_id = value.get("ad_id") if isinstance(value, dict) else None
    return str(ad_id) if isinstance(ad_id, str | int) else None


def _parse_line(line: str, base: Path, number: int) -> _ParsedLine:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise ValueError("a line must hold one JSON object")
    for name, types in REQUIRED_FIELDS.items():
        if name not in value:
            raise ValueError(f"missing field {name!r}")
        if not isinstance(value[name], types) or isinstance(value[name], bool):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"field {name!r} must be {expected}")
    if value["posted_at"] is not None:
        try:
            posted = datetime.fromisoformat(value["posted_at"])
        except ValueError as exc:
            raise ValueError(f"posted_at {value['posted_at']!r} is not ISO 8601") from exc
        if posted.tzinfo is None:
            raise ValueError(f"posted_at {value['posted_at']!r} has no time zone")
    paths = []
    root = base.resolve()
    for item in value["images"]:
        if not isinstance(item, str) or not item:
            raise ValueError("images must be a list of relative paths")
        path = (base / item).resolve()
        if Path(item).is_absolute() or not path.is_relative_to(root):
            raise ValueError(f"image path {item!r} is not inside the input's folder")
        paths.append(path)
    return _ParsedLine(number, value, tuple(paths))


def _fingerprint_file(path: Path) -> ImageFingerprint:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageRejected(f"image {path.name} cannot be read: {exc.strerror}") from exc
    if size > MAX_IMAGE_BYTES:
        raise ImageRejected(f"image {path.name} is {size} bytes, over the {MAX_IMAGE_BYTES} limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRejected(f"image {path.name} cannot be read: {exc.strerror}") from exc
    try:
        return fingerprint_image(data)
    except ImageRejected as exc:
        raise ImageRejected(f"image {path.name}: {exc}") from exc


def _fingerprint_path(path: Path) -> ImageFingerprint | str:
    try:
        return _fingerprint_file(path)
    except ImageRejected as exc:
        return str(exc)


def _fingerprint_all(
    entries: Sequence[_ParsedLine], workers: int | None, on_progress: ProgressCallback | None
) -> list[tuple[ImageFingerprint, ...] | str]:
    """Each ad's image fingerprints, or why one of its images was refused.

    A file shared by several ads (re-posts often reuse the very same photo file) is read and
    hashed once; the distinct files are hashed in worker processes when there are enough.
    """
    paths = list(dict.fromkeys(path for entry in entries for path in entry.image_paths))
    hashed = dict(zip(paths, _hash_paths(paths, workers, on_progress), strict=True))
    results: list[tuple[ImageFingerprint, ...] | str] = []
    for entry in entries:
        found = [hashed[path] for path in entry.image_paths]
        refused = [item for item in found if isinstance(item, str)]
        fingerprints = tuple(item for item in found if not isinstance(item, str))
        results.append(refused[0] if refused else fingerprints)
    return results


def _hash_paths(
    paths: list[Path], workers: int | None, on_progress: ProgressCallback | None
) -> Iterator[ImageFingerprint | str]:
    total = len(paths)
    workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if workers <= 1 or total < _MIN_PARALLEL_IMAGES:
        results: Iterable[ImageFingerprint | str] = map(_fingerprint_path, paths)
        yield from _reporting(results, total, on_progress)
        return
    # Chunks big enough to amortise the inter-process round trips, small enough that the
    # workers finish together.
    chunksize = max(1, min(64, total // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from _reporting(
            pool.map(_fingerprint_path, paths, chunksize=chunksize), total, on_progress
        )


def _reporting(
    results: Iterable[ImageFingerprint | str], total: int, on_progress: ProgressCallback | None
) -> Iterator[ImageFingerprint | str]:
    for done, result in enumerate(results, start=1):
        if on_progress and (done % 100 == 0 or done == total):
            on_progress("hashing images", done, total)
        yield result


def _ad_input(ad: dict[str, Any], images: tuple[ImageFingerprint, ...]) -> AdInput:
    posted = ad["posted_at"]
    return AdInput(
        ad_id=str(ad["ad_id"]),
        site=ad["site"],
        url=ad["url"],
        city=ad["city"],
        posted_at=datetime.fromisoformat(posted) if posted else None,
        title=ad["title"],
        text=ad["text"],
        images=images,
    )
