"""The store benchmark fills a real database, links new ads through it and reports sane
figures, on SQLite and (when it answers) PostgreSQL."""

from __future__ import annotations

import pytest

from benchmarks.bench_link_store import WARM_BATCHES, link_in_memory, measure
from benchmarks.corpus import CorpusConfig, generate_features


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_store_benchmark_links_new_ads_through_the_database(
    database: str, postgres_available: bool
) -> None:
    if database == "postgresql" and not postgres_available:
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    ads, new = 2000, 100
    corpus = generate_features(CorpusConfig(n_ads=ads + (1 + 2 * WARM_BATCHES) * new, seed=3))
    linked = link_in_memory(corpus, ads)
    assert len(linked.features) == len(linked.assessments) == len(linked.profile_of) == ads
    run = measure(database, corpus, linked, ads, new)
    assert (run.database, run.ads, run.new_ads) == (database, ads, new)
    assert len(run.held_runs) == len(run.files_runs) == WARM_BATCHES
    assert run.held_seconds in run.held_runs and run.files_seconds in run.files_runs
    assert run.fill_seconds > 0 and run.cold_seconds > 0 and run.snapshot_mib >= 0
    assert run.peak_mib > 0
