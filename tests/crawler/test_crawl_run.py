"""Crawl runs against the synthetic demo site on loopback; assertions read the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.content import DemoSiteContent, generate_demo_content
from adwatch.demo.site import running_demo_site
from adwatch.services.crawling import crawl_and_link
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from crawler.site_profile import get_site_profile
from legal_policy.audit_log import verify_stored_chain
from legal_policy.authorisation_store import NewAuthorisation, SiteRef, register_authorisation
from legal_policy.catalogue import load_catalogue
from legal_policy.errors import AuthorisationExpired, SiteNotAuthorised
from storage.blobstore import BlobStore
from storage.models import (
    Ad,
    AdImage,
    AuditEntry,
    Authorisation,
    CrawlRun,
    ProfileMembership,
)

SEED = 11
N_ADS = 24


@dataclass
class DemoSite:
    base_url: str
    content: DemoSiteContent


@pytest.fixture
def demo_site(settings: Settings) -> Iterator[DemoSite]:
    """The demo site with faults, on a free loopback port, with the profile pointed at it."""
    with running_demo_site(port=0, seed=SEED, n_ads=N_ADS, faults=True) as base_url:
        point_demo_profile_at(settings, base_url)
        yield DemoSite(base_url, generate_demo_content(seed=SEED, n_ads=N_ADS, faults=True))


def authorise(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    site: str = "demo",
    valid_until: datetime | None = None,
    max_pages: int = 200,
) -> int:
    profile = get_site_profile(site, settings.resolved_site_profiles_dir)
    now = datetime.now(UTC)
    with session_factory.begin() as session:
        row = register_authorisation(
            session,
            NewAuthorisation(
                case_number="TEST-1",
                legal_basis="wpg-9",
                order_reference="ORDER-T1",
                purpose="criminal_investigation",
                officer="test officer",
                dpia_reference="DPIA-T1",
                valid_from=now - timedelta(hours=1),
                valid_until=valid_until or now + timedelta(days=1),
                sites=(
                    SiteRef(
                        profile.key, profile.config.name, profile.config.base_url, profile.sha256
                    ),
                ),
                max_pages_per_run=max_pages,
            ),
            "legal officer",
            load_catalogue(),
        )
        return row.id


def crawl(settings: Settings, session_factory: sessionmaker[Session], authorisation_id: int):  # type: ignore[no-untyped-def]
    events: list[dict[str, object]] = []
    outcome = crawl_and_link(
        settings,
        session_factory,
        authorisation_id=authorisation_id,
        site_key="demo",
        actor="investigator",
        on_progress=events.append,
    )
    return outcome, events


def test_crawl_captures_demo_ads_reports_faults_and_links_shared_phones(
    settings: Settings, session_factory: sessionmaker[Session], demo_site: DemoSite
) -> None:
    authorisation_id = authorise(settings, session_factory)
    outcome, events = crawl(settings, session_factory, authorisation_id)

    static_ads = [a for a in demo_site.content.ads if not a.requires_js]
    expected = {a.ad_id: a for a in static_ads if a.ad_id not in ("f-malformed", "f-error")}
    assert outcome.run.status == "finished"
    assert outcome.run.ads_captured == len(expected)
    assert any(e["event"] == "page" for e in events) and events[-1]["event"] == "finished"

    kinds = {(p["kind"], p["url"].rsplit("/", 1)[-1]) for p in outcome.run.problems}
    assert ("malformed_page", "f-malformed") in kinds
    assert ("http_error", "f-error") in kinds
    assert any(kind == "bad_image" for kind, _ in kinds)

    blobs = BlobStore(settings.blob_dir)
    with session_factory() as session:
        ads = session.scalars(select(Ad)).all()
        by_demo_id = {ad.url.rsplit("/", 1)[-1]: ad for ad in ads}
        assert set(by_demo_id) == set(expected)
        for demo_id, ad in by_demo_id.items():
            truth = expected[demo_id]
            assert ad.title == truth.title
            assert ad.city == truth.city
            assert ad.posted_at == truth.posted_at
            assert truth.phone_e164 in {link.phone.e164 for link in ad.phone_links}
            assert blobs.get(ad.raw_sha256)  # raw page stored and intact
            for image in ad.images:
                assert len(blobs.get(image.blob_sha256)) > 0
                assert len(image.phash) == 16
        # The ad whose image is not an image is kept, without that image.
        assert "f-badimage" in by_demo_id
        profile_of = {
            m.ad.url.rsplit("/", 1)[-1]: m.profile_id
            for m in session.scalars(select(ProfileMembership))
        }
        assert set(profile_of) == set(expected)
        for a in expected.values():
            for b in expected.values():
                if a.phone_e164 == b.phone_e164:
                    assert profile_of[a.ad_id] == profile_of[b.ad_id]
        shared = [
            a
            for a in expected.values()
            if sum(b.phone_e164 == a.phone_e164 for b in expected.values()) > 1
        ]
        assert shared, "the demo must have ads that share a phone"
        membership = session.scalar(
            select(ProfileMembership).where(
                ProfileMembership.ad_id == by_demo_id[shared[0].ad_id].id
            )
        )
        assert membership is not None
        assert (
            any(e["kind"] == "phone" for e in membership.evidence)
            or len([x for x in profile_of.values() if x == membership.profile_id]) == 1
        )
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        assert actions[:2] == ["authorisation.registered", "crawl.started"]
        assert "crawl.finished" in actions and "profiles.linked" in actions
        assert verify_stored_chain(session).ok


def test_recrawl_of_unchanged_site_stores_nothing_new(
    settings: Settings, session_factory: sessionmaker[Session], demo_site: DemoSite
) -> None:
    authorisation_id = authorise(settings, session_factory)
    first, _ = crawl(settings, session_factory, authorisation_id)
    second, _ = crawl(settings, session_factory, authorisation_id)
    assert second.run.ads_captured == 0
    assert second.run.ads_unchanged == first.run.ads_captured
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == first.run.ads_captured
        assert session.scalar(select(func.count(ProfileMembership.id))) == first.run.ads_captured


def test_unreachable_site_is_reported_and_stored_ads_survive(
    settings: Settings, session_factory: sessionmaker[Session], demo_site: DemoSite
) -> None:
    authorisation_id = authorise(settings, session_factory)
    first, _ = crawl(settings, session_factory, authorisation_id)
    # The site goes away: point the profile at a port where nothing listens.
    with running_demo_site(port=0, seed=SEED, n_ads=2) as gone_url:
        pass
    point_demo_profile_at(settings, gone_url)
    authorisation_id = authorise(settings, session_factory)
    second, _ = crawl(settings, session_factory, authorisation_id)
    assert second.run.status == "finished"
    assert second.run.ads_captured == 0
    assert any(p["kind"] == "unreachable" for p in second.run.problems)
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == first.run.ads_captured
        assert session.scalar(select(func.count(AdImage.id))) == first.run.images_stored


def test_page_limit_of_the_authorisation_stops_the_run(
    settings: Settings, session_factory: sessionmaker[Session], demo_site: DemoSite
) -> None:
    authorisation_id = authorise(settings, session_factory, max_pages=3)
    outcome, _ = crawl(settings, session_factory, authorisation_id)
    assert outcome.run.pages_fetched == 3  # robots.txt is not a page of the run
    assert any(p["kind"] == "page_limit" for p in outcome.run.problems)


def test_refused_crawls_are_audited_and_store_nothing(
    settings: Settings, session_factory: sessionmaker[Session], demo_site: DemoSite
) -> None:
    authorisation_id = authorise(settings, session_factory)
    # A second, valid site profile that the authorisation does not name.
    other = (settings.resolved_site_profiles_dir / "demo.yaml").read_text()
    other = other.replace("key: demo", "key: other")
    (settings.resolved_site_profiles_dir / "other.yaml").write_text(other)
    with pytest.raises(SiteNotAuthorised):
        crawl_and_link(
            settings,
            session_factory,
            authorisation_id=authorisation_id,
            site_key="other",
            actor="investigator",
        )
    with session_factory.begin() as session:
        row = session.get(Authorisation, authorisation_id)
        assert row is not None
        row.valid_until = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(AuthorisationExpired):
        crawl(settings, session_factory, authorisation_id)
    with session_factory() as session:
        assert session.scalar(select(func.count(CrawlRun.id))) == 0
        assert session.scalar(select(func.count(Ad.id))) == 0
        refusals = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "crawl.refused")
        ).all()
        assert len(refusals) == 2
        assert verify_stored_chain(session).ok
