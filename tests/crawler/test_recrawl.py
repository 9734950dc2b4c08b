"""Recrawls ask "changed since?": an unchanged ad costs a 304 and nothing else, an unchanged
image of a changed ad comes from the blob store, a changed ad becomes a new version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from storage.models import Ad, AdImage, PageValidator
from tests.conftest import People
from tests.support import authorise, crawl


@pytest.fixture
def server(settings: Settings) -> Iterator[DemoServer]:
    with running_demo_server(port=0, seed=8, n_ads=24) as server:
        point_demo_profile_at(settings, server.base_url)
        yield server


def test_an_unchanged_site_costs_a_fraction_of_the_first_crawl(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    server: DemoServer,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    first, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    first_bytes, first_hits = server.bytes_sent, sum(server.hits.values())
    server.hits.clear()
    second, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    second_bytes = server.bytes_sent - first_bytes
    assert second.run.ads_captured == 0
    assert second.run.ads_unchanged == first.run.ads_captured
    # No image was asked for again; ad pages were answered 304 (no body).
    assert not [path for path in server.hits if path.startswith("/images/")]
    assert second_bytes <= 0.1 * first_bytes, (second_bytes, first_bytes, first_hits)
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == first.run.ads_captured
        assert session.scalar(select(func.count(Ad.id)).where(Ad.last_seen_at.is_not(None))) == (
            first.run.ads_captured
        )
        assert session.scalar(select(func.count()).select_from(PageValidator)) > 0


def test_a_changed_ad_is_a_new_version_and_its_unchanged_photos_are_not_fetched_again(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    server: DemoServer,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    crawl(settings, session_factory, people.investigator, authorisation_id)
    target = next(ad for ad in server.content.static_ads if ad.image_names)
    server.ads_by_id[target.ad_id] = replace(target, text=target.text + "\n\nNieuw: ook zondag.")
    server.answers.clear()
    second, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert second.run.ads_captured == 1
    # Its photos were only asked "changed since?" and answered 304, no bytes.
    photos = {(path, status) for path, status in server.answers if path.startswith("/images/")}
    assert photos and {status for _, status in photos} == {304}
    with session_factory() as session:
        versions = session.scalars(
            select(Ad).where(Ad.url.endswith(f"/ad/{target.ad_id}")).order_by(Ad.id)
        ).all()
        assert len(versions) == 2
        assert versions[1].text is not None and "ook zondag" in versions[1].text
        old = [i.blob_sha256 for i in versions[0].images]
        new = [i.blob_sha256 for i in versions[1].images]
        assert new == old and all(new)  # the same stored photos, not fetched again
        assert session.scalar(select(func.count(AdImage.id))) > 0
        assert versions[1].minimisation["counts"].get("images.reused_as_stored") == len(new)
