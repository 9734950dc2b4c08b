"""Splink against the engine on a small corpus: the comparison runs and its figures are sane.

No timing is asserted. The comparison is skipped when the optional ``splink`` is missing;
the message that tells how to install it is checked either way.
"""

from __future__ import annotations

import math

import pytest

import benchmarks.bench_splink as bench
from benchmarks.bench_splink import Comparison, compare, main, render


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    pytest.importorskip("splink")
    pytest.importorskip("duckdb")
    # A small u sample keeps the test quick; quality is not what is asserted here.
    return compare(200, seed=3, thresholds=(0.5, 0.95), u_pairs=2e4, explain=True)


def test_both_methods_report_sane_figures(comparison: Comparison) -> None:
    methods = [r.method for r in comparison.results]
    assert methods[0] == "engine"
    assert {"splink p>=0.5", "splink p>=0.95"} <= set(methods)
    advertisers = comparison.results[0].quality.advertisers
    for result in comparison.results:
        quality = result.quality
        assert quality.ads == 200
        assert quality.advertisers == advertisers
        assert 1 <= quality.profiles <= 200
        for value in (
            quality.pairwise_precision,
            quality.pairwise_recall,
            quality.pairwise_f1,
            quality.bcubed_precision,
            quality.bcubed_recall,
            quality.bcubed_f1,
        ):
            assert 0.0 <= value <= 1.0
            assert not math.isnan(value)
        assert 0 <= quality.merged_profiles <= quality.impure_profiles <= quality.profiles
        assert quality.correct_pairs <= min(quality.true_pairs, quality.predicted_pairs)
        assert result.prepare_seconds >= 0
        assert result.link_seconds >= 0
    # Both link something: a method that links nothing scores recall 0.
    assert comparison.results[0].quality.pairwise_f1 > 0.8
    assert max(r.quality.pairwise_recall for r in comparison.results[1:]) > 0.3
    assert comparison.splink_pairs > 0


def test_notes_and_explanations(comparison: Comparison) -> None:
    notes = " ".join(r.note for r in comparison.results)
    assert "a priori" in notes
    assert "best F1" in notes
    assert comparison.waterfalls[0].startswith("Trained model")
    assert all("total" in w for w in comparison.waterfalls[1:])
    table = render([comparison])
    assert "engine" in table
    assert "splink p>=0.95" in table


def test_without_splink_the_benchmark_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "splink_available", lambda: False)
    assert main(["--ads", "10"]) == 2
    assert "pip install splink" in capsys.readouterr().err
