"""Two crawls at the same time lose nothing and never crash (both databases): the same site
for two cases, and the same case twice."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from storage.models import Ad, Phone, ProfileMembership
from tests.conftest import People
from tests.support import authorise, crawl

BAD_KINDS = {"crawler_error", "worker_failed", "audit_checkpoint"}


@pytest.fixture
def site(settings: Settings) -> Iterator[int]:
    with running_demo_server(port=0, seed=9, n_ads=30) as server:
        point_demo_profile_at(settings, server.base_url)
        yield len(server.content.static_ads)


def _both(jobs: list) -> list:  # type: ignore[type-arg]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return [future.result() for future in [pool.submit(job) for job in jobs]]


def test_two_cases_crawling_one_site_at_once_each_get_every_ad(
    settings: Settings, session_factory: sessionmaker[Session], people: People, site: int
) -> None:
    first = authorise(settings, session_factory, people.legal, case="CASE-1")
    second = authorise(settings, session_factory, people.legal, case="CASE-2")
    outcomes = _both(
        [
            lambda: crawl(settings, session_factory, people.investigator, first)[0],
            lambda: crawl(settings, session_factory, people("other-investigator"), second)[0],
        ]
    )
    for outcome in outcomes:
        assert outcome.run.status == "finished"
        assert not {p["kind"] for p in outcome.run.problems} & BAD_KINDS, outcome.run.problems
        assert outcome.run.ads_captured == site
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == 2 * site
        assert session.scalar(select(func.count(ProfileMembership.id))) == 2 * site
        numbers = session.scalars(select(Phone.e164)).all()
        assert len(numbers) == len(set(numbers))  # one row per number, never two


def test_the_same_case_crawled_twice_at_once_stores_each_ad_once(
    settings: Settings, session_factory: sessionmaker[Session], people: People, site: int
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    outcomes = _both(
        [
            lambda: crawl(settings, session_factory, people.investigator, authorisation_id)[0],
            lambda: crawl(settings, session_factory, people.investigator, authorisation_id)[0],
        ]
    )
    for outcome in outcomes:
        assert outcome.run.status == "finished"
        assert not {p["kind"] for p in outcome.run.problems} & BAD_KINDS, outcome.run.problems
    assert sum(o.run.ads_captured for o in outcomes) == site
    assert sum(o.run.ads_captured + o.run.ads_unchanged for o in outcomes) == 2 * site
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == site
        assert session.scalar(select(func.count(ProfileMembership.id))) == site
