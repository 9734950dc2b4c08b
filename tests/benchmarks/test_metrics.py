"""Linkage metrics: hand-checked cases, the empty-ratio convention, brute-force agreement."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.metrics import QualityReport, evaluate_linkage, format_table


def brute_force(truth: list[int], predicted: list[int]) -> dict[str, float]:
    """Pairwise and B-cubed by enumerating pairs and ads (the definitions, slowly)."""
    n = len(truth)
    pairs = list(itertools.combinations(range(n), 2))
    same_true = {(i, j) for i, j in pairs if truth[i] == truth[j]}
    same_predicted = {(i, j) for i, j in pairs if predicted[i] == predicted[j]}
    correct = len(same_true & same_predicted)
    precision = correct / len(same_predicted) if same_predicted else 1.0
    recall = correct / len(same_true) if same_true else 1.0
    b_precision = b_recall = 0.0
    for i in range(n):
        cluster = [j for j in range(n) if predicted[j] == predicted[i]]
        advertiser = [j for j in range(n) if truth[j] == truth[i]]
        both = [j for j in cluster if truth[j] == truth[i]]
        b_precision += len(both) / len(cluster)
        b_recall += len(both) / len(advertiser)
    return {
        "correct_pairs": correct,
        "true_pairs": len(same_true),
        "predicted_pairs": len(same_predicted),
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "bcubed_precision": b_precision / n if n else 1.0,
        "bcubed_recall": b_recall / n if n else 1.0,
    }


def test_perfect_clustering_scores_one_everywhere() -> None:
    report = evaluate_linkage(["a", "a", "b", "c", "c", "c"], [7, 7, 3, 9, 9, 9])
    assert report.pairwise_precision == report.pairwise_recall == report.pairwise_f1 == 1.0
    assert report.bcubed_precision == report.bcubed_recall == report.bcubed_f1 == 1.0
    assert (report.impure_profiles, report.merged_profiles) == (0, 0)
    assert (report.ads, report.advertisers, report.profiles) == (6, 3, 3)


def test_all_in_one_profile() -> None:
    report = evaluate_linkage(["a", "a", "b", "b", "b"], [0] * 5)
    # True pairs 1 + 3 = 4, predicted C(5, 2) = 10, all true pairs found.
    assert (report.true_pairs, report.predicted_pairs, report.correct_pairs) == (4, 10, 4)
    assert report.pairwise_precision == pytest.approx(0.4)
    assert report.pairwise_recall == 1.0
    assert report.pairwise_f1 == pytest.approx(2 * 0.4 / 1.4)
    # B-cubed precision: (2·2/5 + 3·3/5) / 5 = 13/25.
    assert report.bcubed_precision == pytest.approx(13 / 25)
    assert report.bcubed_recall == 1.0
    assert (report.impure_profiles, report.merged_profiles) == (1, 1)


def test_all_singletons_predicted_uses_the_empty_ratio_convention() -> None:
    report = evaluate_linkage(["a", "a", "b", "b", "b"], [0, 1, 2, 3, 4])
    # No predicted pair: precision 0/0 is 1.0 by convention, recall 0/4, F1 0.
    assert report.predicted_pairs == 0
    assert report.pairwise_precision == 1.0
    assert report.pairwise_recall == 0.0
    assert report.pairwise_f1 == 0.0
    assert report.bcubed_precision == 1.0
    assert report.bcubed_recall == pytest.approx((2 * 1 / 2 + 3 * 1 / 3) / 5)


def test_singleton_truth() -> None:
    # Nothing to find: recall 0/0 is 1.0; precision depends on what was claimed.
    alone = evaluate_linkage([1, 2, 3], [1, 2, 3])
    assert (alone.pairwise_precision, alone.pairwise_recall, alone.pairwise_f1) == (1.0, 1.0, 1.0)
    merged = evaluate_linkage([1, 2, 3], [0, 0, 0])
    assert (merged.pairwise_precision, merged.pairwise_recall, merged.pairwise_f1) == (
        0.0,
        1.0,
        0.0,
    )
    assert (merged.impure_profiles, merged.merged_profiles) == (1, 0)


def test_empty_input_scores_one() -> None:
    report = evaluate_linkage([], [])
    assert (report.ads, report.advertisers, report.profiles) == (0, 0, 0)
    assert report.pairwise_f1 == report.bcubed_f1 == 1.0


def test_impure_versus_merged_profiles() -> None:
    truth = ["a", "a", "b", "c", "c", "d", "d", "e"]
    # Profile 0: a, a + stray b (impure, not merged); profile 1: c, c, d, d (merged);
    # profile 2: e alone.
    predicted = [0, 0, 0, 1, 1, 1, 1, 2]
    report = evaluate_linkage(truth, predicted)
    assert report.impure_profiles == 2
    assert report.merged_profiles == 1


def test_label_types_do_not_matter() -> None:
    truth = ["x", "y", "x", "z", "y"]
    predicted = [5, 5, 5, 2, 2]
    as_strings = evaluate_linkage(truth, [str(p) for p in predicted])
    as_arrays = evaluate_linkage(np.array([0, 1, 0, 2, 1]), np.array(predicted, dtype=np.int32))
    assert as_strings == as_arrays == evaluate_linkage(truth, predicted)


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="2 true labels but 3"):
        evaluate_linkage([1, 2], [1, 2, 3])


labelings = st.integers(0, 24).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
    )
)


@settings(max_examples=300, deadline=None)
@given(labelings)
def test_contingency_counts_equal_brute_force(pair: tuple[list[int], list[int]]) -> None:
    truth, predicted = pair
    report = evaluate_linkage(truth, predicted)
    expected = brute_force(truth, predicted)
    for name, value in expected.items():
        assert getattr(report, name) == pytest.approx(value), name
    p, r = report.pairwise_precision, report.pairwise_recall
    assert report.pairwise_f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    # Swapping truth and prediction swaps precision and recall.
    swapped = evaluate_linkage(predicted, truth)
    assert swapped.pairwise_precision == pytest.approx(report.pairwise_recall)
    assert swapped.bcubed_precision == pytest.approx(report.bcubed_recall)


def test_a_million_ads_take_seconds_not_pairs() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 50_000, 1_000_000)
    started = time.perf_counter()
    report = evaluate_linkage(truth, np.zeros(1_000_000, np.int64))
    assert time.perf_counter() - started < 10
    assert report.predicted_pairs == math.comb(1_000_000, 2)
    assert report.pairwise_recall == 1.0


def test_format_table_aligns_one_row_per_run() -> None:
    reports: dict[str, QualityReport] = {
        "perfect": evaluate_linkage([1, 1, 2], [1, 1, 2]),
        "all in one profile": evaluate_linkage([1, 1, 2], [0, 0, 0]),
    }
    table = format_table(reports).splitlines()
    assert len(table) == 4
    assert table[0].split()[:4] == ["run", "ads", "advertisers", "profiles"]
    assert table[2].startswith("perfect ")
    assert table[3].startswith("all in one profile")
    assert "1.0000" in table[2] and "0.3333" in table[3]
    assert len({len(line) for line in table[1:]}) == 1  # aligned columns
