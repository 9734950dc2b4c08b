"""The ``adwatch match`` benchmark runs end to end on a tiny corpus and reports sane figures.

No timing is asserted: only that every figure is there, in range, and consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_match import (
    baseline_labels,
    extracted_features,
    impure_profiles,
    measure_quality,
    parse_args,
    run,
    write_corpus,
)
from benchmarks.metrics import evaluate_linkage


def test_the_benchmark_reports_speed_quality_and_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures_path = tmp_path / "figures.json"
    sizes = ["--ads", "40", "--quality-ads", "80", "--workers", "1", "--repeat", "1"]
    args = parse_args([*sizes, "--explain", "2", "--json", str(figures_path)])
    figures = run(args)

    printed = capsys.readouterr().out
    for heading in ("machine:", "speed:", "quality on 80 ads", "impure profiles:", "missed"):
        assert heading in printed
    assert json.loads(figures_path.read_text(encoding="utf-8")) == figures

    (speed,) = figures["speed"]
    assert speed["exit_code"] == 0
    assert speed["ads"] == 40 and speed["workers"] == 1
    assert speed["distinct_images"] <= speed["images"]
    assert speed["seconds"] > 0 and speed["ads_per_second"] == pytest.approx(40 / speed["seconds"])

    quality = figures["quality"]
    assert set(quality) == {
        "adwatch match",
        "baseline: any shared phone",
        "baseline: phone or pHash",
    }
    for report in quality.values():
        assert report["ads"] == 80
        assert report["correct_pairs"] <= min(report["true_pairs"], report["predicted_pairs"])
        assert 0 <= report["impure_profiles"] <= report["profiles"]
        for name in ("pairwise", "bcubed"):
            for measure in ("precision", "recall", "f1"):
                assert 0.0 <= report[f"{name}_{measure}"] <= 1.0
    assert figures["skipped_ads"] == 0


def test_baselines_and_diagnosis_on_a_written_corpus(tmp_path: Path) -> None:
    ads, ads_path = write_corpus(120, 3, tmp_path)
    features = extracted_features(ads, tmp_path)
    truth = [ad.advertiser_id for ad in ads]
    phone_only = evaluate_linkage(truth, baseline_labels(features, with_photos=False))
    with_photos = evaluate_linkage(truth, baseline_labels(features, with_photos=True))
    # Adding photo links only ever merges components.
    assert with_photos.profiles <= phone_only.profiles
    assert with_photos.pairwise_recall >= phone_only.pairwise_recall

    result = measure_quality(ads, ads_path, 1, baselines=False, explain=True)
    assert set(result.reports) == {"adwatch match"}
    assert set(result.profile_of) == {ad.ad_id for ad in ads}
    assert len(result.features) == len(ads)
    impure = impure_profiles(ads, result)
    assert len(impure) == result.reports["adwatch match"].impure_profiles
    for _, advertisers, _ in impure:
        assert len(advertisers) >= 2
