"""Splink (Fellegi–Sunter on DuckDB, in process) against the hand-written ``MatchingEngine``.

Run: ``.venv/bin/python -m benchmarks.bench_splink [--ads 2000,10000] [--seed 7]
[--thresholds 0.2,0.5,0.8,0.9,0.95,0.99,0.999] [--a-priori 0.95] [--threads 1]
[--memory-limit 4GB] [--u-pairs 2e6] [--explain]``
from the repository root. Needs the optional ``splink`` extra
(``.venv/bin/pip install -e ".[splink]"``).

Both methods link the same seeded, labelled feature-level corpus
(``benchmarks.corpus.generate_features``: help-desk numbers in many ads, stock photos,
mirrored and cropped re-posts, paraphrased texts, advertisers with several phones) and are
scored with ``benchmarks.metrics.evaluate_linkage`` against the advertisers.

* **engine**: ``MatchingEngine().add(features)`` in one batch (rules: shared phone or photo
  links outright, hubs never link, text joins with support).
* **splink**: a Fellegi–Sunter model with four comparisons, trained without labels (u by
  random sampling, m by EM on two blocking rules, the prior from a deterministic rule),
  then ``predict`` and ``cluster_pairwise_predictions_at_threshold``:

  - *phones*: array intersection, graded by how common the shared number is (the share of
    ads printing it, as Splink's term-frequency tables compute it: at most 0.1 %, 0.5 %,
    2 %, or more). Splink's own TF adjustment works on one value per record, not on the
    element two arrays share (splink issue #2006), so the frequency enters as levels whose
    m and u EM learns: a help-desk number ends up weighing little.
  - *images*: smallest Hamming distance between one ad's pHashes and the other's pHashes
    or variants (mirror, centre crops), ``bit_count(xor(a, b))`` over DuckDB lists.
  - *text*: Jaccard of word-bigram sets of the distinctive text.
  - *city*: exact match with Splink's native term-frequency adjustment (a match on a big
    city weighs less than one on a small town). The engine does not use the city.

  Blocking: the exploded phone array, 16-bit bands of the photo hashes (pHash, mirror,
  centre 90 %), and MinHash LSH bands (20 × 4) of the distinctive text.

Splink is clustered at several match probabilities; the table shows each, and marks the
one chosen before looking at labels (``--a-priori``) and the best pairwise F1 in
hindsight. Times are wall clock on this machine; DuckDB runs on ``--threads`` threads
(the engine is single-threaded Python, apart from rapidfuzz's text verification).
``--explain`` prints Splink's waterfall (the weight each comparison adds, term-frequency
adjustment included) for a few pairs, as text.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from adwatch.synthetic.places import CITY_NAMES
from benchmarks.corpus import CorpusConfig, FeatureColumns, generate_features
from benchmarks.metrics import QualityReport, evaluate_linkage, format_table
from matching.engine import MatchingEngine
from matching.records import AdFeatures
from matching.text import EMPTY_SLOT, signatures_to_array, text_signatures

INSTALL_HINT = "splink is not installed: `.venv/bin/pip install splink` (optional extra)"

# Phone levels: the largest share of ads printing the shared number, per level.
PHONE_TF_BANDS = (0.001, 0.005, 0.02)
IMAGE_RADII = (4, 8)  # Hamming distance levels, out of 64 bits
TEXT_JACCARD = (0.7, 0.5, 0.3, 0.15)
IMAGE_BAND_BITS = 16
TEXT_BANDS, TEXT_ROWS = 20, 4
DEFAULT_THRESHOLDS = (0.2, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
A_PRIORI_THRESHOLD = 0.95


def splink_available() -> bool:
    """Whether ``splink`` (and its DuckDB backend) can be imported."""
    try:
        import duckdb  # noqa: F401
        import splink  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One method on one corpus: quality and wall-clock seconds per stage."""

    method: str
    quality: QualityReport
    prepare_seconds: float
    link_seconds: float
    note: str = ""
    detail: str = ""

    @property
    def total_seconds(self) -> float:
        return self.prepare_seconds + self.link_seconds


@dataclass(slots=True)
class Comparison:
    """Everything one corpus size gave: rows to print and waterfalls to explain."""

    ads: int
    results: list[MethodResult] = field(default_factory=list)
    waterfalls: list[str] = field(default_factory=list)
    splink_pairs: int = 0


# --- engine --------------------------------------------------------------------------------


def engine_features(corpus: FeatureColumns) -> list[AdFeatures]:
    """``AdFeatures`` of every ad, with MinHash signatures of the distinctive text."""
    features = list(corpus.iter_ad_features())
    signatures = text_signatures([f.distinctive_text for f in features])
    return [
        dataclasses.replace(f, text_signature=s) for f, s in zip(features, signatures, strict=True)
    ]


def run_engine(corpus: FeatureColumns) -> MethodResult:
    started = time.perf_counter()
    features = engine_features(corpus)
    prepared = time.perf_counter()
    engine = MatchingEngine()
    engine.add(features)
    linked = time.perf_counter()
    profile_of = {ad: pid for pid, members in engine.profiles().items() for ad in members}
    predicted = np.fromiter((profile_of[f.ad_id] for f in features), np.int64, len(features))
    return MethodResult(
        "engine",
        evaluate_linkage(corpus.labels, predicted),
        prepared - started,
        linked - prepared,
    )


# --- splink input --------------------------------------------------------------------------


def _shingles(text: str) -> list[int]:
    words = text.split()
    grams = {" ".join(words[k : k + 2]) for k in range(len(words) - 1)} if len(words) > 1 else set()
    return sorted(zlib.crc32(g.encode()) for g in grams)


def _text_band_keys(texts: Sequence[str]) -> list[list[int] | None]:
    """Per ad the LSH band keys (band index in the high bits) of its MinHash signature."""
    sigs = signatures_to_array(text_signatures(list(texts)))
    keys: list[list[int] | None] = []
    weights = np.uint64(0x9E3779B97F4A7C15)
    for row in sigs:
        if row[0] == EMPTY_SLOT and (row[:4] == EMPTY_SLOT).all():
            keys.append(None)
            continue
        bands = row[: TEXT_BANDS * TEXT_ROWS].reshape(TEXT_BANDS, TEXT_ROWS).astype(np.uint64)
        mixed = np.zeros(TEXT_BANDS, np.uint64)
        for r in range(TEXT_ROWS):
            mixed = (mixed ^ bands[:, r]) * weights
        low = (mixed >> np.uint64(40)).astype(np.int64)  # 24 bits
        keys.append([(b << 24) | int(v) for b, v in enumerate(low.tolist())])
    return keys


def _image_band_keys(hashes: Sequence[int]) -> list[int]:
    mask = (1 << IMAGE_BAND_BITS) - 1
    bands = 64 // IMAGE_BAND_BITS
    return sorted(
        {
            (b << IMAGE_BAND_BITS) | ((h >> (IMAGE_BAND_BITS * b)) & mask)
            for h in hashes
            for b in range(bands)
        }
    )


def splink_table(corpus: FeatureColumns) -> dict[str, list[Any]]:
    """The corpus as Splink's input: one row per ad, list columns for phones and photos."""
    n = len(corpus)
    phones = [corpus.phones(i) for i in range(n)]
    counts = Counter(p for ad in phones for p in set(ad))
    texts = [corpus.distinctive_text(i) for i in range(n)]
    columns: dict[str, list[Any]] = {
        "unique_id": list(range(n)),
        "phones": [],
        "phone_tf": [],
        "phone_first": [],
        "city": [CITY_NAMES[int(c)] for c in corpus.city],
        "img": [],
        "img_all": [],
        "img_keys": [],
        "img_key0": [],
        "shingles": [],
        "text_keys": _text_band_keys(texts),
    }
    for i in range(n):
        ad_phones = list(dict.fromkeys(phones[i]))
        columns["phones"].append(ad_phones or None)
        columns["phone_tf"].append([counts[p] / n for p in ad_phones] or None)
        columns["phone_first"].append(ad_phones[0] if ad_phones else None)
        images = corpus.images(i)
        if images:
            columns["img"].append([im.phash for im in images])
            columns["img_all"].append([h for im in images for h in (im.phash, *im.variants)])
            # pHash, mirror and centre 90 %: a mirrored or cropped re-post's pHash is one
            # of the original's, so one equal band of these finds the pair.
            keys = _image_band_keys([h for im in images for h in (im.phash, *im.variants[:2])])
            columns["img_keys"].append(keys)
            columns["img_key0"].append(
                (images[0].phash >> (64 - IMAGE_BAND_BITS)) & ((1 << IMAGE_BAND_BITS) - 1)
            )
        else:
            for name in ("img", "img_all", "img_keys", "img_key0"):
                columns[name].append(None)
        shingles = _shingles(texts[i])
        columns["shingles"].append(shingles or None)
    columns["text_key0"] = [k[0] if k else None for k in columns["text_keys"]]
    return columns


# --- splink model --------------------------------------------------------------------------


def _min_distance(left: str, right_all: str) -> str:
    return (
        f"list_min(list_transform({left}, lambda a: list_min(list_transform({right_all}, "
        "lambda b: bit_count(xor(a, b))))))"
    )


# The leading references name the columns outside lambdas, where Splink looks for them.
IMAGE_DISTANCE = (
    "img_all_l IS NOT NULL AND img_all_r IS NOT NULL AND "
    f"least({_min_distance('img_l', 'img_all_r')}, {_min_distance('img_r', 'img_all_l')})"
)
# Share of ads printing the rarest number two ads share (NULL when they share none).
SHARED_PHONE_TF = (
    "phone_tf_l IS NOT NULL AND "
    "list_min(list_filter(phone_tf_l, lambda t, i: list_contains(phones_r, phones_l[i])))"
)
TEXT_JACCARD_SQL = (
    "len(list_intersect(shingles_l, shingles_r))::DOUBLE"
    " / len(list_distinct(list_concat(shingles_l, shingles_r)))"
)


def level_labels() -> dict[str, list[str]]:
    """Human labels of each comparison's non-null levels, most similar first."""
    return {
        "phones": [f"shares a number printed in <= {b:.1%} of ads" for b in PHONE_TF_BANDS]
        + ["shares only a common number", "no shared number"],
        "images": [f"a photo within {r} bits" for r in IMAGE_RADII] + ["no similar photo"],
        "text": [f"bigram Jaccard >= {t}" for t in TEXT_JACCARD] + ["texts differ"],
        "city": ["same city", "other city"],
    }


def splink_settings(*, retain_matching_columns: bool = False) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    phone_levels = [
        cll.CustomLevel("phones_l IS NULL OR phones_r IS NULL").configure(is_null_level=True),
        *(
            cll.CustomLevel(f"{SHARED_PHONE_TF} <= {band}", f"shared number in <= {band:.1%}")
            for band in PHONE_TF_BANDS
        ),
        cll.CustomLevel("list_has_any(phones_l, phones_r)", "shared common number"),
        cll.ElseLevel(),
    ]
    image_levels = [
        cll.CustomLevel("img_l IS NULL OR img_r IS NULL").configure(is_null_level=True),
        *(
            cll.CustomLevel(f"{IMAGE_DISTANCE} <= {r}", f"photo within {r} bits")
            for r in IMAGE_RADII
        ),
        cll.ElseLevel(),
    ]
    text_levels = [
        cll.CustomLevel("shingles_l IS NULL OR shingles_r IS NULL").configure(is_null_level=True),
        *(cll.CustomLevel(f"{TEXT_JACCARD_SQL} >= {t}", f"Jaccard >= {t}") for t in TEXT_JACCARD),
        cll.ElseLevel(),
    ]
    rules = [
        block_on("phones", arrays_to_explode=["phones"]),
        block_on("img_keys", arrays_to_explode=["img_keys"]),
        block_on("text_keys", arrays_to_explode=["text_keys"]),
    ]
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.CustomComparison(phone_levels, "phones"),
            cl.CustomComparison(image_levels, "images"),
            cl.CustomComparison(text_levels, "text"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=True,
        # The comparison levels (gamma) come with the matching columns, lists included:
        # kept only for the waterfalls, as they cost memory per candidate pair.
        retain_matching_columns=retain_matching_columns,
    )


@dataclass(slots=True)
class SplinkRun:
    labels_by_threshold: dict[float, npt.NDArray[np.int64]]
    prepare_seconds: float
    train_seconds: float
    predict_seconds: float
    cluster_seconds: dict[float, float]
    pairs: int
    waterfalls: list[str]


def run_splink(
    corpus: FeatureColumns,
    thresholds: Sequence[float],
    *,
    threads: int = 1,
    memory_limit: str = "4GB",
    seed: int = 7,
    u_pairs: float = 2e6,
    explain: bool = False,
) -> SplinkRun:
    import duckdb
    import pyarrow as pa
    from splink import DuckDBAPI, Linker, block_on

    started = time.perf_counter()
    types = {
        "unique_id": pa.int64(),
        "phones": pa.list_(pa.string()),
        "phone_tf": pa.list_(pa.float64()),
        "phone_first": pa.string(),
        "city": pa.string(),
        "img": pa.list_(pa.uint64()),
        "img_all": pa.list_(pa.uint64()),
        "img_keys": pa.list_(pa.int64()),
        "img_key0": pa.int64(),
        "shingles": pa.list_(pa.int64()),
        "text_keys": pa.list_(pa.int64()),
        "text_key0": pa.int64(),
    }
    columns = splink_table(corpus)
    table = pa.table({name: pa.array(columns[name], type=kind) for name, kind in types.items()})
    connection = duckdb.connect()
    connection.execute(f"SET threads = {int(threads)}")
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    db_api = DuckDBAPI(connection=connection)
    frame = db_api.register(table, table_name="ads")
    prepared = time.perf_counter()

    linker = Linker(frame, splink_settings(retain_matching_columns=explain), log_level=None)
    training = linker.training
    # Prior: ads printing the same first number, assumed to find 60 % of true pairs.
    training.estimate_probability_two_random_records_match([block_on("phone_first")], recall=0.6)
    training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=seed)
    # m of images, text, city from ads sharing a number; m of phones from text buckets.
    training.estimate_parameters_using_expectation_maximisation(block_on("phone_first"))
    training.estimate_parameters_using_expectation_maximisation(block_on("text_key0"))
    trained = time.perf_counter()

    # Every candidate pair is kept (the waterfalls want the unlinked ones too).
    predictions = linker.inference.predict()
    predicted = time.perf_counter()
    pairs = int(
        connection.execute(f"select count(*) from {predictions.physical_name}").fetchall()[0][0]
    )

    labels: dict[float, npt.NDArray[np.int64]] = {}
    cluster_seconds: dict[float, float] = {}
    for threshold in thresholds:
        begin = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=threshold
        )
        rows = connection.execute(
            f"select unique_id, cluster_id from {clusters.physical_name}"
        ).fetchall()
        cluster_seconds[threshold] = time.perf_counter() - begin
        ids = np.empty(len(corpus), dtype=object)
        for unique_id, cluster_id in rows:
            ids[int(unique_id)] = cluster_id
        labels[threshold] = np.unique(ids.astype(str), return_inverse=True)[1].astype(np.int64)

    waterfalls = []
    if explain:
        waterfalls = [
            model_summary(linker),
            *_explain(connection, predictions.physical_name, corpus),
        ]
    return SplinkRun(
        labels,
        prepared - started,
        trained - prepared,
        predicted - trained,
        cluster_seconds,
        pairs,
        waterfalls,
    )


def model_summary(linker: Any) -> str:
    """The trained model: m, u and weight (bits) of every level, and the prior."""
    model = linker.misc.save_model_to_json()
    prior = model["probability_two_random_records_match"]
    lines = [f"Trained model (prior {prior:.3g} = {math.log2(prior / (1 - prior)):+.2f} bits)"]
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            bits = f"{math.log2(m / u):+6.2f}" if m and u else "   n/a"
            tf = "  + term-frequency adjustment" if level.get("tf_adjustment_column") else ""
            label = str(level.get("label_for_charts", ""))[:42]
            lines.append(
                f"    {comparison['output_column_name']:<8} {label:<42} "
                f"m {m or 0:.4f}  u {u or 0:.6f}  {bits}{tf}"
            )
    return "\n".join(lines)


def _waterfall(row: dict[str, Any], title: str) -> str:
    """A text waterfall: prior, then each comparison's level and weight, then the total."""
    names = level_labels()
    weight = 0.0
    lines = [title]
    # Splink keeps each comparison's weight (``mw_``, in bits); the prior is the rest.
    parts = []
    for name, labels in names.items():
        gamma = int(row[f"gamma_{name}"])
        label = "null (not compared)" if gamma < 0 else labels[len(labels) - 1 - gamma]
        bits = float(row[f"mw_{name}"] or 0.0)
        tf_bits = float(row.get(f"mw_tf_adj_{name}") or 0.0)
        parts.append((name, label, bits, tf_bits))
        weight += bits + tf_bits
    prior = float(row["match_weight"]) - weight
    lines.append(f"    {'prior':<8} {'':<44} {prior:+7.2f}")
    for name, label, bits, tf_bits in parts:
        tf_text = f"  (term-frequency adj. {tf_bits:+.2f})" if tf_bits else ""
        lines.append(f"    {name:<8} {label:<44} {bits + tf_bits:+7.2f}{tf_text}")
    lines.append(
        f"    {'total':<8} {'match weight, probability':<44} {row['match_weight']:+7.2f}"
        f"  p = {row['match_probability']:.4f}"
    )
    return "\n".join(lines)


def _explain(connection: Any, table: str, corpus: FeatureColumns) -> list[str]:
    """Waterfalls for a help-desk pair, a stock-photo pair and a true pair on text alone."""
    truth = corpus.labels
    cases = [
        (
            "sharing only a common (help-desk) number",
            "gamma_phones = 1 AND gamma_images <= 0 AND gamma_text <= 1",
        ),
        (
            "a close photo but different numbers and texts",
            "gamma_images >= 1 AND gamma_phones = 0 AND gamma_text <= 1",
        ),
        (
            "a rare shared number, different photos and texts",
            "gamma_phones >= 3 AND gamma_images = 0 AND gamma_text <= 1",
        ),
    ]
    out = []
    for title, condition in cases:
        cursor = connection.execute(
            f"select * from {table} where {condition} order by match_weight desc limit 1"
        )
        columns = [d[0] for d in cursor.description]
        found = cursor.fetchall()
        if not found:
            continue
        row = dict(zip(columns, found[0], strict=True))
        same = truth[int(row["unique_id_l"])] == truth[int(row["unique_id_r"])]
        head = (
            f"Two ads with {title}, the highest-weighted such pair: ads {row['unique_id_l']} "
            f"and {row['unique_id_r']} ({'same' if same else 'different'} advertiser)"
        )
        out.append(_waterfall(row, head))
    return out


# --- the comparison ------------------------------------------------------------------------


def compare(
    n_ads: int,
    *,
    seed: int = 7,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    a_priori: float = A_PRIORI_THRESHOLD,
    threads: int = 1,
    memory_limit: str = "4GB",
    u_pairs: float = 2e6,
    explain: bool = False,
) -> Comparison:
    """Engine and Splink on one seeded corpus of ``n_ads`` ads."""
    thresholds = sorted({*thresholds, a_priori})
    corpus = generate_features(CorpusConfig(n_ads=n_ads, seed=seed))
    comparison = Comparison(ads=n_ads)
    comparison.results.append(run_engine(corpus))

    run = run_splink(
        corpus,
        thresholds,
        threads=threads,
        memory_limit=memory_limit,
        seed=seed,
        u_pairs=u_pairs,
        explain=explain,
    )
    comparison.splink_pairs = run.pairs
    comparison.waterfalls = run.waterfalls
    link = run.train_seconds + run.predict_seconds
    reports = {t: evaluate_linkage(corpus.labels, run.labels_by_threshold[t]) for t in thresholds}
    best = max(thresholds, key=lambda t: (reports[t].pairwise_f1, t))
    for t in thresholds:
        notes = [n for n, flag in (("a priori", t == a_priori), ("best F1", t == best)) if flag]
        comparison.results.append(
            MethodResult(
                f"splink p>={t:g}",
                reports[t],
                run.prepare_seconds,
                link + run.cluster_seconds[t],
                ", ".join(notes),
                f"train {run.train_seconds:.1f} s, predict {run.predict_seconds:.1f} s, "
                f"cluster {run.cluster_seconds[t]:.2f} s",
            )
        )
    return comparison


def render(comparisons: Sequence[Comparison]) -> str:
    """The quality table (every method and threshold), then wall time per method."""
    quality: dict[str, QualityReport] = {}
    timing = []
    for comparison in comparisons:
        timed: set[str] = set()
        for result in comparison.results:
            name = f"{comparison.ads:,} {result.method}" + (
                f" [{result.note}]" if result.note else ""
            )
            quality[name] = result.quality
            method = result.method.split()[0]
            if method in timed:  # Splink's thresholds differ only in clustering time
                continue
            timed.add(method)
            timing.append(
                f"{comparison.ads:>9,} {method:<7} prepare {result.prepare_seconds:6.1f} s  "
                f"link {result.link_seconds:6.1f} s  total {result.total_seconds:6.1f} s"
                + (f"  ({result.detail})" if result.detail else "")
            )
    return (
        format_table(quality)
        + "\n\nwall time (splink link = train + predict + cluster at one threshold)\n"
        + "\n".join(timing)
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ads", default="2000,10000", help="comma-separated corpus sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--thresholds",
        default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS),
        help="match probabilities to cluster Splink's predictions at",
    )
    parser.add_argument(
        "--a-priori",
        type=float,
        default=A_PRIORI_THRESHOLD,
        help="the threshold one would pick without labels (marked in the table)",
    )
    parser.add_argument("--threads", type=int, default=1, help="DuckDB threads")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory limit")
    parser.add_argument("--u-pairs", type=float, default=2e6, help="pairs sampled for u")
    parser.add_argument("--explain", action="store_true", help="print Splink waterfalls")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not splink_available():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    sizes = [int(s.replace("_", "")) for s in args.ads.split(",") if s.strip()]
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    comparisons = []
    for n_ads in sizes:
        comparison = compare(
            n_ads,
            seed=args.seed,
            thresholds=thresholds,
            a_priori=args.a_priori,
            threads=args.threads,
            memory_limit=args.memory_limit,
            u_pairs=args.u_pairs,
            explain=args.explain,
        )
        comparisons.append(comparison)
        print(
            f"{n_ads:,} ads: splink scored {comparison.splink_pairs:,} candidate pairs", flush=True
        )
        for text in comparison.waterfalls:
            print(text, flush=True)
    print(render(comparisons))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
