"""Distributed runs: with Redis, `adwatch worker` processes join a running crawl and share
its frontier, duplicate filter and page budget; every ad is captured once (both databases,
the real Redis on 127.0.0.1:6379)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from crawler.errors import InvalidRun
from crawler.run_control import RunOutcome, join_run
from storage.models import Ad, CrawlRun, WarcFile
from tests.conftest import People
from tests.crawler.test_warc import all_records, checker_passes, sha256_of, warc_paths
from tests.support import authorise, crawl, slow_down

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def shared(settings: Settings) -> Settings:
    """The test's settings with the real Redis."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Redis on 127.0.0.1:6379 is unreachable: {exc}")
        pytest.skip("Redis on 127.0.0.1:6379 is not reachable")
    return settings.model_copy(update={"redis_url": REDIS_URL})


@pytest.fixture
def server(shared: Settings) -> Iterator[DemoServer]:
    with running_demo_server(port=0, seed=14, n_ads=30) as server:
        point_demo_profile_at(shared, server.base_url)
        slow_down(shared, 0.25)
        yield server


def _run_with_a_second_worker(
    shared: Settings, session_factory: sessionmaker[Session], people: People, max_pages: int
) -> tuple[RunOutcome, RunOutcome, int]:
    authorisation_id = authorise(shared, session_factory, people.legal, max_pages=max_pages)
    first: list[RunOutcome] = []
    thread = threading.Thread(
        target=lambda: first.append(
            crawl(shared, session_factory, people.investigator, authorisation_id)[0].run
        )
    )
    thread.start()
    deadline = time.monotonic() + 60
    while True:
        with session_factory() as session:
            run = session.scalar(select(CrawlRun).where(CrawlRun.status == "running"))
            if run is not None and run.pages_fetched > 0:
                break
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.2)
    pages_of_second: list[int] = []
    second = join_run(
        shared.crawler_config(),
        session_factory,
        people.investigator,
        run.id,
        on_progress=lambda e: pages_of_second.append(1) if e.get("event") == "page" else None,
    )
    thread.join(timeout=120)
    assert first, "the run's own worker did not finish"
    return first[0], second, len(pages_of_second)


def test_two_workers_share_one_run_and_capture_every_ad_once(
    shared: Settings, session_factory: sessionmaker[Session], people: People, server: DemoServer
) -> None:
    outcome, _, second_pages = _run_with_a_second_worker(
        shared, session_factory, people, max_pages=500
    )
    assert outcome.status == "finished", outcome.problems
    assert second_pages > 0, "the second worker took no page"
    assert outcome.pages_fetched > second_pages  # both workers' pages are on the record
    expected = len(server.content.static_ads)
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == expected
        urls = session.scalars(select(Ad.url)).all()
        assert len(set(urls)) == expected  # none captured twice
    assert outcome.ads_captured == expected
    # Every ad page was requested once across both workers (the shared duplicate filter).
    ad_requests = [n for path, n in server.hits.items() if path.startswith("/ad/")]
    assert ad_requests and max(ad_requests) == 1
    # Each worker wrote and closed its own WARC file; the joining worker did not take the
    # live worker's open file for a killed one's.
    with session_factory() as session:
        files = session.scalars(select(WarcFile)).all()
        stored = set(session.scalars(select(Ad.id)))
    assert len(files) == 2
    assert all(f.closed_at and f.sha256 == sha256_of(shared.data_dir / f.path) for f in files)
    assert checker_passes(warc_paths(shared))
    assert {r.ad for r in all_records(shared) if r.type == "metadata"} == stored


def test_the_page_budget_is_the_runs_not_each_workers(
    shared: Settings, session_factory: sessionmaker[Session], people: People, server: DemoServer
) -> None:
    outcome, _, second_pages = _run_with_a_second_worker(
        shared, session_factory, people, max_pages=12
    )
    assert second_pages > 0
    assert outcome.pages_fetched <= 12
    pages_served = sum(n for path, n in server.hits.items() if path.startswith(("/ad/", "/ads")))
    assert pages_served <= 12


def test_joining_needs_redis_and_a_running_run(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    with pytest.raises(InvalidRun, match="ADWATCH_REDIS_URL"):
        join_run(settings.crawler_config(), session_factory, people.investigator, 1)
