"""The scale benchmark runs end to end on a small corpus and reports sane figures."""

from __future__ import annotations

from benchmarks.bench_scale import format_runs, measure


def test_scale_benchmark_links_in_chunks_and_reports_quality() -> None:
    run = measure(3000, 50, seed=3, chunk=1000)
    assert run.ads == 3000 and run.new_ads == 50 and run.chunk == 1000
    assert run.link_seconds > 0 and run.incremental_seconds > 0 and run.peak_mib > 0
    assert 0 < run.profiles <= 3050
    # The engine's rules hold on the labelled corpus at this size.
    assert run.pairwise_precision >= 0.99 and run.pairwise_recall >= 0.9
    table = format_runs([run])
    assert "3,000" in table and "incremental: 50 new ads into 3,000" in table
