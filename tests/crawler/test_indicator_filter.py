"""The indicator filter: ads below the authorisation's threshold leave nothing behind but a
count — no row, no blob, no log line, not even their images fetched (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.content import DemoSiteContent
from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from crawler.indicator_model import load_indicator_model
from matching.indicators import score_ad
from storage.models import Ad, AdImage
from tests.conftest import People
from tests.support import authorise, crawl, files_under

SEED = 7


@pytest.fixture
def server(settings: Settings) -> Iterator[DemoServer]:
    with running_demo_server(port=0, seed=SEED, n_ads=30) as server:
        point_demo_profile_at(settings, server.base_url)
        yield server


def _split(content: DemoSiteContent, threshold: float) -> tuple[list, list]:  # type: ignore[type-arg]
    model = load_indicator_model()
    kept, left = [], []
    for ad in content.static_ads:
        (kept if score_ad(model, ad.title, ad.text).score >= threshold else left).append(ad)
    return kept, left


def test_ads_below_the_models_threshold_leave_only_a_count(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    server: DemoServer,
) -> None:
    model = load_indicator_model()
    kept, left = _split(server.content, model.threshold)
    assert kept and left, "the demo site has ads on both sides of the threshold"
    authorisation_id = authorise(settings, session_factory, people.legal, indicator_threshold=None)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.ads_captured == len(kept)
    assert outcome.run.ads_below_threshold == len(left)
    with session_factory() as session:
        urls = set(session.scalars(select(Ad.url)))
        assert {u.rsplit("/", 1)[-1] for u in urls} == {ad.ad_id for ad in kept}
        assert all(
            score is not None and score >= model.threshold
            for score in session.scalars(select(Ad.indicator_score))
        )
        stored_images = session.scalar(select(func.count(AdImage.id)))
    assert stored_images == sum(len(ad.image_names) for ad in kept)
    # Nothing of a left-behind ad anywhere: not its URL, title or number in any file.
    kept_numbers = {ad.phone_e164 for ad in kept}
    for path in files_under(settings.data_dir):
        data = path.read_bytes()
        for ad in left:
            assert f"/ad/{ad.ad_id}".encode() not in data, (ad.ad_id, path)
            assert ad.title.encode() not in data, (ad.ad_id, path)
            if ad.phone_e164 not in kept_numbers:
                assert ad.phone_e164.encode() not in data, (ad.ad_id, path)


def test_a_threshold_of_zero_keeps_every_ad_and_a_high_one_none(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    server: DemoServer,
) -> None:
    everything = authorise(settings, session_factory, people.legal, indicator_threshold=0.0)
    outcome, _ = crawl(settings, session_factory, people.investigator, everything)
    assert outcome.run.ads_captured == len(server.content.static_ads)
    assert outcome.run.ads_below_threshold == 0
    nothing = authorise(
        settings, session_factory, people.legal, case="CASE-2", indicator_threshold=9.0
    )
    outcome, _ = crawl(settings, session_factory, people("other-investigator"), nothing)
    assert outcome.run.ads_captured == 0
    assert outcome.run.ads_below_threshold == len(server.content.static_ads)
