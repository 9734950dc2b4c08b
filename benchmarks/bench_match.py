"""``adwatch match`` end to end: throughput, and linkage quality on a hard labelled corpus.

Run: ``.venv/bin/python -m benchmarks.bench_match [--ads 1000] [--quality-ads 3000]
[--seed 7] [--workers N] [--explain 5]`` from the repository root.

Speed: ``--ads`` synthetic ads and their JPEG photos (``benchmarks.corpus``) are written to
a temporary folder, then the ``adwatch match`` console script runs on them in a fresh
process; the wall-clock time covers interpreter start, reading, image hashing, phone and
text features, linking and writing. Writing the corpus is not timed.

Quality: the same for ``--quality-ads`` ads (in process, ``match_jsonl``), scored against
the corpus's advertisers with ``benchmarks.metrics.evaluate_linkage``, beside two naive
rules on the same extracted phones and photos for calibration: "any shared phone" (help
desks included) and "shared phone or pHash within the radius" (plain pHash, no variants).
``--explain`` prints the impure profiles and the missed links by the hard case behind them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL

from adwatch.services.offline_match import OfflineMatchOutcome, match_jsonl
from benchmarks.corpus import (
    HELP_DESK_PHONES,
    CorpusConfig,
    LabelledAd,
    generate_ads,
    write_jsonl_corpus,
)
from benchmarks.metrics import QualityReport, align_table, evaluate_linkage, format_table
from matching.features import build_features
from matching.hamming_index import HammingIndex
from matching.images import DEFAULT_RADIUS, fingerprint_image, image_distance
from matching.records import AdFeatures, ImageFingerprint
from matching.text import TEXT_MATCH_THRESHOLD, text_similarity

# The targets for ``adwatch match``.
TARGET_ADS_PER_SECOND = 100.0
TARGET_PRECISION = 0.99
TARGET_RECALL = 0.95


@dataclass(frozen=True, slots=True)
class SpeedResult:
    """One timed run of the ``adwatch match`` command."""

    ads: int
    images: int
    distinct_images: int
    workers: int
    seconds: float
    exit_code: int

    @property
    def ads_per_second(self) -> float:
        """End-to-end throughput, process start included."""
        return self.ads / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class QualityResult:
    """Scores of the matcher and the baselines on one corpus, with the matcher's output."""

    reports: dict[str, QualityReport]
    outcome: OfflineMatchOutcome
    profile_of: dict[str, str]
    # The matcher's features of each ad, in corpus order (for the diagnosis).
    features: list[AdFeatures] = field(default_factory=list)


# --- corpus and runs ---------------------------------------------------------------------


def write_corpus(n_ads: int, seed: int, directory: Path) -> tuple[list[LabelledAd], Path]:
    """Generate and write ``n_ads`` labelled ads; return them and the ``ads.jsonl`` path."""
    ads = generate_ads(CorpusConfig(n_ads=n_ads, seed=seed))
    return ads, write_jsonl_corpus(ads, directory)


def adwatch_command() -> list[str]:
    """The ``adwatch`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("adwatch")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from adwatch.cli import main; main()"]


def default_workers() -> int:
    """What ``adwatch match`` uses when not told (one per core, at most 4)."""
    return min(os.cpu_count() or 1, 4)


def time_cli(ads: Sequence[LabelledAd], ads_path: Path, workers: int) -> SpeedResult:
    """Run ``adwatch match`` in a fresh process and time it from launch to exit."""
    output = ads_path.with_name("profiles.jsonl")
    command = [*adwatch_command(), "match", "--input", str(ads_path), "--output", str(output)]
    command += ["--workers", str(workers)]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        print(finished.stdout, finished.stderr, sep="\n", file=sys.stderr)
    return SpeedResult(
        ads=len(ads),
        images=sum(len(ad.images) for ad in ads),
        distinct_images=len({spec.image_id for ad in ads for spec in ad.images}),
        workers=workers,
        seconds=seconds,
        exit_code=finished.returncode,
    )


def read_profiles(path: Path) -> dict[str, str]:
    """``ad_id`` → profile id, from ``profiles.jsonl``."""
    profile_of: dict[str, str] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            profile_of[row["ad_id"]] = str(row["profile_id"])
    return profile_of


def predicted_labels(ads: Sequence[LabelledAd], profile_of: dict[str, str]) -> list[str]:
    """Each ad's profile; an ad the matcher skipped counts as a profile of its own."""
    return [profile_of.get(ad.ad_id, f"skipped:{ad.ad_id}") for ad in ads]


# --- baselines ---------------------------------------------------------------------------


class _Components:
    """Union-find over ad positions."""

    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[item] != root:
            self._parent[item], item = root, self._parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        self._parent[self.find(a)] = self.find(b)

    def union_groups(self, groups: Iterable[Sequence[int]]) -> None:
        for group in groups:
            for other in group[1:]:
                self.union(group[0], other)

    def labels(self) -> list[int]:
        return [self.find(item) for item in range(len(self._parent))]


def extracted_features(ads: Sequence[LabelledAd], directory: Path) -> list[AdFeatures]:
    """The matcher's features of the written corpus (photos hashed once per file)."""
    cache: dict[str, ImageFingerprint] = {}
    inputs = []
    for ad in ads:
        for spec in ad.images:
            if spec.image_id not in cache:
                data = (directory / "images" / spec.filename).read_bytes()
                cache[spec.image_id] = fingerprint_image(data)
        inputs.append(ad.to_ad_input([cache[spec.image_id] for spec in ad.images]))
    return build_features(inputs)


def shared_phone_groups(phones: Sequence[tuple[str, ...]]) -> list[list[int]]:
    """Positions of the ads printing each number."""
    holders: dict[str, list[int]] = collections.defaultdict(list)
    for position, numbers in enumerate(phones):
        for number in set(numbers):
            holders[number].append(position)
    return list(holders.values())


def phash_pairs(photos: Sequence[tuple[ImageFingerprint, ...]], radius: int) -> list[list[int]]:
    """Pairs of ads with photos whose plain pHashes are within ``radius`` bits."""
    keys = [position for position, prints in enumerate(photos) for _ in prints]
    hashes = [fingerprint.phash for prints in photos for fingerprint in prints]
    index = HammingIndex()
    index.add(keys, hashes)
    pairs: list[list[int]] = []
    for key, hits in zip(keys, index.query_many(hashes, radius), strict=True):
        pairs.extend([key, other] for other, _ in hits if other != key)
    return pairs


def baseline_labels(features: Sequence[AdFeatures], *, with_photos: bool) -> list[int]:
    """Components of "shared phone" links, plus "pHash within radius" links if asked."""
    components = _Components(len(features))
    components.union_groups(shared_phone_groups([f.phones for f in features]))
    if with_photos:
        components.union_groups(phash_pairs([f.images for f in features], DEFAULT_RADIUS))
    return components.labels()


def measure_quality(
    ads: Sequence[LabelledAd],
    ads_path: Path,
    workers: int,
    *,
    baselines: bool = True,
    explain: bool = False,
) -> QualityResult:
    """Run ``match_jsonl`` on the written corpus and score it (and the baselines)."""
    output = ads_path.with_name("profiles.jsonl")
    outcome = match_jsonl(ads_path, output, workers=workers)
    profile_of = read_profiles(output)
    truth: list[Hashable] = [ad.advertiser_id for ad in ads]
    reports = {"adwatch match": evaluate_linkage(truth, predicted_labels(ads, profile_of))}
    features = extracted_features(ads, ads_path.parent) if baselines or explain else []
    if baselines:
        reports["baseline: any shared phone"] = evaluate_linkage(
            truth, baseline_labels(features, with_photos=False)
        )
        reports["baseline: phone or pHash"] = evaluate_linkage(
            truth, baseline_labels(features, with_photos=True)
        )
    return QualityResult(reports, outcome, profile_of, features)


# --- diagnosis ---------------------------------------------------------------------------


def link_cases(
    ad: LabelledAd, other: LabelledAd, features: AdFeatures, other_features: AdFeatures
) -> list[str]:
    """The direct reasons two ads could be linked, each named by its hard case."""
    cases = []
    for phone in sorted(set(features.phones) & set(other_features.phones)):
        if phone in HELP_DESK_PHONES:
            cases.append("phone: site help desk")
        elif phone in ad.phones and phone in other.phones:
            cases.append("phone: same advertiser number in both (corpus bug?)")
        else:
            cases.append("phone: extracted number not in the truth")
    for i, mine in enumerate(features.images):
        for j, theirs in enumerate(other_features.images):
            if image_distance(mine, theirs) > DEFAULT_RADIUS:
                continue
            spec, other_spec = ad.images[i], other.images[j]
            copies = " / ".join(sorted((spec.transform, other_spec.transform)))
            if spec.photo == other_spec.photo and spec.is_stock:
                cases.append(f"image: same stock photo ({copies})")
            elif spec.photo == other_spec.photo:
                cases.append(f"image: same photo ({copies})")
            else:
                cases.append("image: different photos within radius")
    score = text_similarity(
        features.distinctive_text, other_features.distinctive_text, TEXT_MATCH_THRESHOLD
    )
    if features.distinctive_text and score >= TEXT_MATCH_THRESHOLD:
        if ad.agency is not None and ad.agency == other.agency:
            cases.append("text: same agency boilerplate")
        else:
            cases.append("text: similar distinctive text")
    return sorted(set(cases))


def impure_profiles(
    ads: Sequence[LabelledAd], result: QualityResult
) -> list[tuple[str, list[tuple[str, int]], collections.Counter[str]]]:
    """Impure profiles, largest first: id, (advertiser, ads), cross-advertiser link cases.

    The cases count the pairs of ads of different advertisers inside the profile that are
    directly linkable (a shared phone, a photo within the radius, similar distinctive text);
    hub rules are not applied, so a case may be one the matcher rightly set aside.
    """
    features = dict(zip((ad.ad_id for ad in ads), result.features, strict=True))
    members: dict[str, list[LabelledAd]] = collections.defaultdict(list)
    for ad in ads:
        if ad.ad_id in result.profile_of:
            members[result.profile_of[ad.ad_id]].append(ad)
    found = []
    for profile, group in members.items():
        advertisers = collections.Counter(ad.advertiser_id for ad in group)
        if len(advertisers) < 2:
            continue
        cases: collections.Counter[str] = collections.Counter()
        for i, ad in enumerate(group):
            for other in group[i + 1 :]:
                if other.advertiser_id != ad.advertiser_id:
                    found_cases = link_cases(ad, other, features[ad.ad_id], features[other.ad_id])
                    cases.update(found_cases or ["nothing direct"])
        found.append((profile, advertisers.most_common(), cases))
    found.sort(key=lambda entry: -sum(count for _, count in entry[1]))
    return found


def missed_link_causes(
    ads: Sequence[LabelledAd], result: QualityResult
) -> collections.Counter[str]:
    """Missed true pairs (same advertiser, different profiles) by what the two ads share."""
    causes: collections.Counter[str] = collections.Counter()
    groups: dict[str, list[LabelledAd]] = collections.defaultdict(list)
    for ad in ads:
        groups[ad.advertiser_id].append(ad)
    for group in groups.values():
        for i, ad in enumerate(group):
            for other in group[i + 1 :]:
                if result.profile_of.get(ad.ad_id) == result.profile_of.get(other.ad_id):
                    continue
                causes[_missed_case(ad, other)] += 1
    return causes


def _missed_case(ad: LabelledAd, other: LabelledAd) -> str:
    shared_phone = set(ad.phones) & set(other.phones)
    shared_photo = {s.photo for s in ad.images} & {s.photo for s in other.images}
    own_photo = {p for p in shared_photo if not p.startswith("stock-")}
    if shared_phone:
        forms = {
            form
            for one in (ad, other)
            for phone, form in zip(one.phones, one.phone_forms, strict=True)
            if phone in shared_phone
        }
        return f"share a phone (written {', '.join(sorted(forms))})"
    if own_photo:
        kinds = {s.transform for one in (ad, other) for s in one.images if s.photo in own_photo}
        return f"no shared phone; share a photo ({', '.join(sorted(kinds))})"
    reasons = []
    if not ad.phones or not other.phones:
        reasons.append("one has no phone")
    elif ad.person_id != other.person_id:
        reasons.append("different persons/phones")
    else:
        reasons.append("different phones")
    if ad.city != other.city:
        reasons.append("different cities")
    return "no shared phone or photo: " + ", ".join(reasons)


# --- report ------------------------------------------------------------------------------


def machine() -> str:
    """One line naming the machine and the libraries that set the speed."""
    return (
        f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Pillow {PIL.__version__}, numpy {np.__version__}"
    )


def speed_table(runs: Sequence[SpeedResult]) -> str:
    """Plain table of the timed command runs."""
    header = ["run", "ads", "images (distinct)", "workers", "seconds", "ads/s", "exit"]
    rows = [
        [
            f"adwatch match #{number}",
            f"{run.ads:,}",
            f"{run.images:,} ({run.distinct_images:,})",
            str(run.workers),
            f"{run.seconds:.2f}",
            f"{run.ads_per_second:.0f}",
            str(run.exit_code),
        ]
        for number, run in enumerate(runs, start=1)
    ]
    return align_table(header, rows)


def explain(ads: Sequence[LabelledAd], result: QualityResult, count: int) -> str:
    """The impure profiles and the missed links, by hard case."""
    impure = impure_profiles(ads, result)
    lines = [f"impure profiles: {len(impure)}"]
    totals: collections.Counter[str] = collections.Counter()
    for _, _, cases in impure:
        totals.update(cases)
    if totals:
        lines.append("  cross-advertiser ad pairs inside them, by direct link:")
    for case, number in totals.most_common():
        lines.append(f"  {number:7,d}  {case}")
    for profile, advertisers, cases in impure[:count]:
        mix = ", ".join(f"{adv} x{n}" for adv, n in advertisers[:6])
        more = f" (+{len(advertisers) - 6} more)" if len(advertisers) > 6 else ""
        joins = "; ".join(
            f"{case} x{n}" for case, n in cases.most_common() if case != "nothing direct"
        )
        lines.append(
            f"  profile {profile}: {mix}{more}; pairs linkable by {joins or 'nothing direct'}"
        )
    missed = missed_link_causes(ads, result)
    lines.append(f"missed true pairs: {sum(missed.values()):,}")
    for cause, number in missed.most_common(count * 2):
        lines.append(f"  {number:7,d}  {cause}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; print the tables and return the figures."""
    workers = args.workers or default_workers()
    figures: dict[str, Any] = {"machine": machine(), "seed": args.seed, "workers": workers}
    print(f"machine: {figures['machine']}")
    root = Path(tempfile.mkdtemp(prefix="bench-match-"))
    try:
        if args.ads:
            ads, ads_path = write_corpus(args.ads, args.seed, root / "speed")
            runs = [time_cli(ads, ads_path, workers) for _ in range(args.repeat)]
            figures["speed"] = [
                {
                    "ads": r.ads,
                    "images": r.images,
                    "distinct_images": r.distinct_images,
                    "workers": r.workers,
                    "seconds": r.seconds,
                    "ads_per_second": r.ads_per_second,
                    "exit_code": r.exit_code,
                }
                for r in runs
            ]
            print(
                f"\nspeed: adwatch match on {args.ads:,} ads, end to end (target "
                f"{TARGET_ADS_PER_SECOND:.0f} ads/s)"
            )
            print(speed_table(runs))
        if args.quality_ads:
            ads, ads_path = write_corpus(args.quality_ads, args.seed, root / "quality")
            result = measure_quality(
                ads,
                ads_path,
                workers,
                baselines=not args.no_baselines,
                explain=bool(args.explain),
            )
            figures["quality"] = {
                name: {name_: getattr(report, name_) for name_ in QualityReport.__slots__}
                for name, report in result.reports.items()
            }
            figures["skipped_ads"] = len(result.outcome.problems)
            print(
                f"\nquality on {args.quality_ads:,} ads (seed {args.seed}; targets pairwise "
                f"P >= {TARGET_PRECISION}, R >= {TARGET_RECALL}, impure 0; "
                f"{len(result.outcome.problems)} lines skipped)"
            )
            print(format_table(result.reports))
            if args.explain:
                print()
                print(explain(ads, result, args.explain))
    finally:
        if args.keep:
            print(f"\ncorpora kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ads", type=int, default=1000, help="ads in the timed corpus (0: skip)")
    parser.add_argument(
        "--quality-ads", type=int, default=3000, help="ads in the labelled corpus (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workers", type=int, default=0, help="hashing processes (0: as adwatch, one per core)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of the command")
    parser.add_argument(
        "--explain", type=int, default=5, help="impure profiles to show (0: no diagnosis)"
    )
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    run(parse_args(argv))


if __name__ == "__main__":
    main()
