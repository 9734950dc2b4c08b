"""The crawler benchmark runs end to end on a tiny demo site and reports consistent figures.

No timing is asserted: only that every figure is there, counts agree between the bare
spider, the pipeline and the site, and the recrawl asks instead of fetching.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from adwatch.demo.content import generate_demo_content
from benchmarks.bench_crawl import (
    MemorySample,
    memory_profile,
    parse_args,
    run,
    site_size_for,
    worker_rss,
)

SEED = 5
ADS = 24


def _chromium_missing() -> bool:
    return not Path("/usr/bin/chromium").exists() and shutil.which("chromium") is None


@pytest.mark.slow
def test_the_benchmark_crawls_a_tiny_site_and_reports_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures_path = tmp_path / "figures.json"
    argv = ["--ads", str(ADS), "--rendered-ads", "3", "--recrawl-ads", "12", "--seed", str(SEED)]
    argv += ["--concurrency", "4", "--rendered-concurrency", "2", "--json", str(figures_path)]
    if _chromium_missing():
        argv.append("--skip-rendered")
    figures = run(parse_args(argv))

    printed = capsys.readouterr().out
    for heading in ("machine:", "load average before:", "bare Scrapy spider", "recrawl"):
        assert heading in printed
    assert json.loads(figures_path.read_text(encoding="utf-8")) == figures

    # The bare spider and the pipeline fetched the same pages of the same site.
    content = generate_demo_content(seed=SEED, n_ads=site_size_for(ADS, javascript=False))
    assert len(content.static_ads) == ADS
    list_pages = -(-ADS // 10)
    throughput = figures["throughput"]
    assert throughput["bare"]["pages"] == throughput["pipeline_pages"] == ADS + list_pages
    assert throughput["bare"]["traffic"]["ad_pages"] == ADS
    assert throughput["bare"]["images"] == sum(len(ad.image_names) for ad in content.static_ads)
    assert throughput["ratio"] > 0 and throughput["crawl_ratio"] > 0
    assert figures["memory_static"]["peak"] > 0

    # The second crawl of the unchanged site costs a fraction of the first.
    recrawl = figures["recrawl"]
    assert recrawl["ads"] == 12
    assert 0 < recrawl["second_bytes"] < recrawl["first_bytes"]

    if "--skip-rendered" not in argv:
        rendered = figures["rendered"]
        assert rendered["pages"] == 3 + 1  # three ad pages and their list page
        assert rendered["pages_per_second"] > 0
        assert figures["memory_rendered"]["peak"] > figures["memory_rendered_worker"]["peak"]


def test_site_sizes_give_the_asked_number_of_ads() -> None:
    for ads in (1, 7, 8, 100, 1000):
        static = generate_demo_content(seed=SEED, n_ads=site_size_for(ads, javascript=False))
        assert len(static.static_ads) == ads
    scripted = generate_demo_content(seed=SEED, n_ads=site_size_for(9, javascript=True))
    assert len(scripted.js_ads) == 9


def _samples(rss: Sequence[float], pages: Sequence[int]) -> list[MemorySample]:
    return [
        MemorySample(
            seconds=i * 0.5, pages=p, worker_mib=r, tree_mib=r, tree_pss_mib=r, processes=1
        )
        for i, (r, p) in enumerate(zip(rss, pages, strict=True))
    ]


def test_memory_profile_tells_flat_from_growing() -> None:
    pages = [0, 1, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
    flat = memory_profile(
        _samples([50, 190, 200, 201, 199, 200, 202, 200, 201, 200, 199, 150], pages), 1000
    )
    assert flat is not None and flat.flat
    # The last sample, after the last page (teardown), is left out; the first page is the start.
    assert (flat.start, flat.at_10, flat.at_100, flat.peak) == (190, 200, 199, 202)

    growing = [190, 200, 230, 260, 290, 320, 350, 380, 410, 440, 470, 480]
    profile = memory_profile(_samples(growing, pages), 1000, worker_rss)
    assert profile is not None and not profile.flat
    assert profile.at_50 == 350 and round(profile.mib_per_1000_pages) == 300

    assert memory_profile(_samples([50], [0]), 1000) is None
