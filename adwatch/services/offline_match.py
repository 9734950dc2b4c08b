"""``adwatch match``: the matching engine over a JSON-lines export, with no database.

Input: one JSON object per line with ``ad_id`` (a string), ``site``, ``url``, ``city``,
``posted_at`` (ISO 8601; a time without an offset is local time in the given zone, as ad
sites show it), ``title``, ``text`` and ``images`` (paths relative to the input file's
folder; symbolic links inside it are followed, ``..`` and absolute paths refused), and
optionally ``phones`` (the numbers a site lists in its own field, in the order shown; they
come before the numbers found in title and text). A bad line — invalid JSON, a missing or
mistyped field, an image that cannot be read or is not an image, a decompression bomb —
is reported with its line number and skipped; the run goes on. When no line could be
read, ``NothingToLink`` is raised and the output is not written.

Output: one JSON object per linked ad with ``ad_id``, ``profile_id``, ``profile_size`` and
its evidence, written to a temporary file and renamed into place at the end (an earlier
output survives a failed run). The output may not be the input.

The input is read twice and never held whole: the first pass checks every line and keeps
per ad its numbers, image fingerprints and sentence keys (for the boilerplate model, which
must see the whole export); the second links the lines ``_PASS_CHUNK`` at a time as parts
of one batch. An input that changes between the passes is refused.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path, PurePosixPath
from typing import Any, Final
from zoneinfo import ZoneInfo

from matching.engine import MatchConfig, MatchingEngine
from matching.features import ad_sentences, build_features, owner_of, phones_of
from matching.images import ImageRejected, fingerprint_image
from matching.phones import hub_phones, normalise_phone
from matching.records import AdFeatures, AdInput, ImageFingerprint
from matching.text import BoilerplateModel, sentence_key

REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "ad_id": (str,),
    "site": (str,),
    "url": (str,),
    "city": (str, type(None)),
    "posted_at": (str, type(None)),
    "title": (str,),
    "text": (str,),
    "images": (list,),
}
OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {"phones": (list,)}
# Where naive ``posted_at`` values are read when the caller names no zone.
DEFAULT_TIMEZONE: Final = "Europe/Amsterdam"
# A run that skipped more than this share of its lines is flagged, not reported as usual.
REJECTED_WARNING_SHARE: Final = 0.1
# A phone pseudonym as adwatch stores it under a basis that pseudonymises numbers.
_PSEUDONYM = re.compile(r"p:[0-9a-f]{18}")
# Ad photos are a few MB at most; a larger file is refused before it is read.
MAX_IMAGE_BYTES = 30 * 1024 * 1024
# Below this many distinct image files, starting worker processes costs more than it saves.
_MIN_PARALLEL_IMAGES = 64

ProgressCallback = Callable[[str, int, int], None]


class MatchInputError(ValueError):
    """The input as a whole cannot be read (missing file, not a file, output equal to it)."""


class NothingToLink(MatchInputError):
    """No line of the input could be read; the output was not written. ``outcome`` holds
    the skipped lines and why."""

    def __init__(self, message: str, outcome: OfflineMatchOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


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
    # ``posted_at`` values without an offset, read as local time in ``timezone``.
    naive_times: int = 0
    timezone: str = DEFAULT_TIMEZONE

    @property
    def ads_per_second(self) -> float:
        """End-to-end throughput."""
        return self.ads_linked / self.seconds if self.seconds else 0.0

    @property
    def skipped_share(self) -> float:
        """Share of the non-empty lines that were skipped."""
        return len(self.problems) / self.lines_read if self.lines_read else 0.0

    @property
    def mostly_skipped(self) -> bool:
        """More lines were skipped than ``REJECTED_WARNING_SHARE`` allows for a normal run."""
        return self.skipped_share > REJECTED_WARNING_SHARE


@dataclass(frozen=True, slots=True)
class _ParsedLine:
    line: int
    ad: dict[str, Any]
    image_paths: tuple[Path, ...]
    posted_at: datetime | None
    naive_time: bool
    phones: tuple[str, ...] | None


def match_jsonl(
    input_path: Path,
    output_path: Path,
    *,
    default_region: str = "NL",
    timezone: tzinfo | None = None,
    config: MatchConfig | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> OfflineMatchOutcome:
    """Link the ads of a JSON-lines export into candidate profiles; write one line per ad.

    ``timezone`` is where a ``posted_at`` without an offset is read (default
    ``DEFAULT_TIMEZONE``). Raises ``MatchInputError`` when the input cannot be read or the
    output is the input, and ``NothingToLink`` when no line could be read.
    """
    started = time.perf_counter()
    if not input_path.is_file():
        raise MatchInputError(f"input file {input_path} does not exist or is not a file")
    if _same_file(input_path, output_path):
        raise MatchInputError(
            f"the output {output_path} is the input file: choose another output path"
        )
    zone = timezone or ZoneInfo(DEFAULT_TIMEZONE)
    outcome = OfflineMatchOutcome(timezone=str(zone))
    before = _file_state(input_path)

    # Pass 1: check every line; keep per ad only what the second pass cannot redo cheaply
    # (its numbers, image paths and sentence keys), never its text.
    kept: list[_Pass1Ad] = []
    seen_ids: set[str] = set()
    for number, line in _numbered_lines(input_path):
        outcome.lines_read += 1
        try:
            entry = _parse_line(line, input_path.parent, number, zone, default_region)
        except ValueError as exc:
            outcome.problems.append(LineProblem(number, _ad_id_of(line), str(exc)))
            continue
        ad_id = entry.ad["ad_id"]
        if ad_id in seen_ids:
            outcome.problems.append(LineProblem(number, ad_id, f"duplicate ad_id {ad_id!r}"))
            continue
        seen_ids.add(ad_id)
        ad = _ad_input(entry, ())
        found = phones_of(ad, default_region)
        # The listed numbers first, then those in title and text (as the crawler reads a
        # page's phone field before the text).
        phones = tuple(dict.fromkeys(entry.phones + found)) if entry.phones is not None else found
        kept.append(_Pass1Ad(number, ad_id, entry.image_paths, entry.naive_time, phones, _keys(ad)))
    del seen_ids

    accepted: dict[int, tuple[_Pass1Ad, tuple[ImageFingerprint, ...]]] = {}
    for entry, images in zip(kept, _fingerprint_all(kept, workers, on_progress), strict=True):
        if isinstance(images, str):
            outcome.problems.append(LineProblem(entry.line, entry.ad_id, images))
            continue
        outcome.images_hashed += len(images)
        outcome.naive_times += entry.naive_time
        accepted[entry.line] = (entry, images)
    del kept
    outcome.problems.sort(key=lambda p: p.line)
    if not accepted:
        outcome.seconds = time.perf_counter() - started
        read = f"{outcome.lines_read} skipped" if outcome.lines_read else "it holds no ads"
        raise NothingToLink(
            f"no line of {input_path} could be read ({read}); {output_path} was not written",
            outcome,
        )

    # Boilerplate is a property of the whole export: the model sees every ad before any
    # ad's text is reduced (as ``build_features`` does for one batch).
    engine = MatchingEngine(config)
    hubs = hub_phones(
        (entry.phones for entry, _ in accepted.values()), engine.config.phone_hub_degree
    )
    boilerplate = BoilerplateModel()
    for entry, images in accepted.values():
        owner = owner_of(_ad_input_shell(entry, images), entry.phones, hubs)
        boilerplate.observe(owner, entry.sentence_keys)

    # Pass 2: read the lines again, a chunk at a time, and link them as parts of one batch.
    def parts() -> Iterator[list[AdFeatures]]:
        chunk: list[AdInput] = []
        known: dict[str, tuple[str, ...]] = {}
        for number, line in _numbered_lines(input_path):
            if number not in accepted:
                continue
            entry, images = accepted[number]
            try:
                parsed = _parse_line(line, input_path.parent, number, zone, default_region)
            except ValueError as exc:
                raise MatchInputError(f"{input_path} changed while it was read: {exc}") from exc
            ad = _ad_input(parsed, images)
            if ad.ad_id != entry.ad_id:
                raise MatchInputError(f"{input_path} changed while it was read (line {number})")
            chunk.append(ad)
            known[ad.ad_id] = entry.phones
            if len(chunk) >= _PASS_CHUNK:
                yield _features(chunk, known)
                chunk, known = [], {}
        if chunk:
            yield _features(chunk, known)

    def _features(chunk: list[AdInput], known: dict[str, tuple[str, ...]]) -> list[AdFeatures]:
        return build_features(
            chunk,
            default_region=default_region,
            known_phones=known,
            boilerplate=boilerplate,
            hub_degree=engine.config.phone_hub_degree,
            known_hubs=hubs,
        )

    if on_progress:
        on_progress("linking", 0, len(accepted))
    result = engine.add_parts(parts())
    if _file_state(input_path) != before:
        raise MatchInputError(f"{input_path} changed while it was read; nothing was written")
    if on_progress:
        on_progress("linking", len(accepted), len(accepted))
    sizes = {pid: len(members) for pid, members in engine.profiles().items()}
    position = {entry.ad_id: line for line, (entry, _) in accepted.items()}
    records = (
        {
            "ad_id": membership.ad_id,
            "profile_id": membership.profile_id,
            "profile_size": sizes[membership.profile_id],
            "evidence": [item.as_dict() for item in membership.evidence],
            "linkage_version": engine.config.version,
        }
        for membership in sorted(result.memberships, key=lambda m: position[m.ad_id])
    )
    _write_atomically(output_path, records)
    outcome.ads_linked = len(result.memberships)
    outcome.profiles = len(sizes)
    outcome.multi_ad_profiles = sum(1 for size in sizes.values() if size > 1)
    outcome.seconds = time.perf_counter() - started
    return outcome


# Lines linked per part in the second pass: only one part's texts are held at once.
_PASS_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class _Pass1Ad:
    """What the first pass keeps of a good line (no text)."""

    line: int
    ad_id: str
    image_paths: tuple[Path, ...]
    naive_time: bool
    phones: tuple[str, ...]
    sentence_keys: tuple[int, ...]


def _keys(ad: AdInput) -> tuple[int, ...]:
    """The sentence keys of an ad, as ``build_features`` splits it."""
    return tuple(sentence_key(s) for s in ad_sentences(ad))


def _ad_input_shell(entry: _Pass1Ad, images: tuple[ImageFingerprint, ...]) -> AdInput:
    """Enough of an ad for ``owner_of`` (its id and images)."""
    return AdInput(entry.ad_id, "", "", None, None, "", "", images)


def _file_state(path: Path) -> tuple[int, int, int]:
    """Size, modification time and inode: an input rewritten between passes is noticed."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _same_file(input_path: Path, output_path: Path) -> bool:
    """Whether writing the output would replace the input (same path, link or alias)."""
    try:
        return output_path.exists() and os.path.samefile(input_path, output_path)
    except OSError:
        return False


def _write_atomically(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write JSON lines next to ``path`` and rename into place: a failure midway leaves
    any earlier output as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with temporary.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
    return str(ad_id) if isinstance(ad_id, str | int) and not isinstance(ad_id, bool) else None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "true or false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip


def _check_types(value: dict[str, Any]) -> None:
    for name in REQUIRED_FIELDS:
        if name not in value:
            raise ValueError(f"missing field {name!r}")
    for name, types in {**REQUIRED_FIELDS, **OPTIONAL_FIELDS}.items():
        if name not in value:
            continue
        if not isinstance(value[name], types) or isinstance(value[name], bool):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            got = _type_name(value[name])
            hint = f' (write "{value[name]}")' if name == "ad_id" and got == "a number" else ""
            raise ValueError(f"field {name!r} must be {expected}, not {got}{hint}")


def _posted_at(raw: str | None, zone: tzinfo) -> tuple[datetime | None, bool]:
    """The time and whether it had no offset (then it is local time in ``zone``)."""
    if raw is None:
        return None, False
    try:
        posted = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"posted_at {raw!r} is not ISO 8601") from exc
    if posted.tzinfo is None:
        return posted.replace(tzinfo=zone), True
    return posted, False


def _listed_phones(items: list[Any], default_region: str) -> tuple[str, ...]:
    phones = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"phones[{number}] must be a non-empty string")
        if _PSEUDONYM.fullmatch(item.strip()):
            phones.append(item.strip())  # a pseudonym adwatch stored: compared as it is
            continue
        e164 = normalise_phone(item, default_region)
        if e164 is None:
            # The value is not echoed: it may be personal data.
            raise ValueError(f"phones[{number}] is not a valid phone number")
        phones.append(e164)
    return tuple(dict.fromkeys(phones))


def _image_paths(items: list[Any], base: Path) -> tuple[Path, ...]:
    paths = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError("images must be a list of relative paths")
        relative = PurePosixPath(item)
        # Judged by the path as written: a symbolic link inside the folder (an images
        # folder kept elsewhere) is followed; a path that climbs out of it is not.
        if relative.is_absolute() or os.path.normpath(item).startswith(".."):
            raise ValueError(f"image path {item!r} is not inside the input's folder")
        paths.append(Path(os.path.normpath(base / relative)))
    return tuple(paths)


def _parse_line(
    line: str, base: Path, number: int, zone: tzinfo, default_region: str
) -> _ParsedLine:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise ValueError("a line must hold one JSON object")
    _check_types(value)
    if not value["ad_id"].strip():
        raise ValueError("field 'ad_id' is empty")
    posted, naive = _posted_at(value["posted_at"], zone)
    phones = _listed_phones(value["phones"], default_region) if "phones" in value else None
    return _ParsedLine(number, value, _image_paths(value["images"], base), posted, naive, phones)


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
    entries: Sequence[_Pass1Ad], workers: int | None, on_progress: ProgressCallback | None
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


def _ad_input(entry: _ParsedLine, images: tuple[ImageFingerprint, ...]) -> AdInput:
    ad = entry.ad
    return AdInput(
        ad_id=ad["ad_id"],
        site=ad["site"],
        url=ad["url"],
        city=ad["city"],
        posted_at=entry.posted_at,
        title=ad["title"],
        text=ad["text"],
        images=images,
    )
