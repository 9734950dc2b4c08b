"""Crawl runs against the synthetic demo site on loopback; assertions read the database."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.content import DEMO_CAMERA, DemoSiteContent, generate_demo_content
from adwatch.demo.site import running_demo_site
from adwatch.services.crawling import CrawlAndLinkOutcome
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from crawler.context import ADS_IN_FLIGHT
from crawler.scrapy_settings import build_scrapy_settings
from crawler.site_profile import get_site_profile
from legal_policy.audit_log import verify_stored_chain
from legal_policy.errors import (
    AccessDenied,
    AuthorisationExpired,
    SiteNotAuthorised,
    SiteProfileChanged,
)
from storage.blobstore import BlobStore
from storage.models import (
    Ad,
    AdImage,
    AuditEntry,
    Authorisation,
    CrawlRun,
    ProfileMembership,
    StoredBlob,
)
from tests.conftest import People
from tests.support import authorise, crawl

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


def test_crawl_captures_demo_ads_reports_faults_and_links_shared_phones(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    outcome, events = crawl(settings, session_factory, people.investigator, authorisation_id)

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
            assert ad.case_id is not None and ad.legal_basis == "wpg-9"
            assert ad.expires_at > ad.captured_at
            assert ad.raw_sha256 is not None
            page = blobs.get(ad.raw_sha256)  # raw page stored and intact...
            assert truth.title.encode() in page
            assert b'class="reviews"' not in page  # ...without the reviews of others
            for review in demo_site.content.reviews.get(demo_id, ()):
                assert review.text.encode() not in page
            for image in ad.images:
                assert image.blob_sha256 is not None
                stored = blobs.get(image.blob_sha256)
                assert DEMO_CAMERA.encode() not in stored  # camera metadata stripped
                assert not PILImage.open(io.BytesIO(stored)).getexif()
                assert len(image.phash) == 16
        held = {(b.sha256, b.kind) for b in session.scalars(select(StoredBlob))}
        for ad in ads:
            assert (ad.raw_sha256, "page") in held
            assert all((i.blob_sha256, "image") in held for i in ad.images)
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
        assert actions.index("authorisation.registered") < actions.index("crawl.started")
        assert "crawl.finished" in actions and "profiles.linked" in actions
        assert verify_stored_chain(session).ok


def test_recrawl_of_unchanged_site_stores_nothing_new_and_logs_no_content(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    first, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    second, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert second.run.ads_captured == 0
    assert second.run.ads_unchanged == first.run.ads_captured
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == first.run.ads_captured
        assert session.scalar(select(func.count(ProfileMembership.id))) == first.run.ads_captured
    # Scrapy would log every unchanged item whole; the run logs name URLs and reasons only.
    log = Path(first.run.log_file).read_text(encoding="utf-8")
    log += Path(second.run.log_file).read_text(encoding="utf-8")
    for ad in demo_site.content.static_ads[:5]:
        assert ad.title not in log
        assert ad.text.split("\n")[0] not in log
        assert ad.phone_display not in log and ad.phone_e164 not in log
    assert "JFIF" not in log and "<html" not in log


def test_unreachable_site_is_reported_and_stored_ads_survive(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    first, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    # The site goes away: point the profile at a port where nothing listens.
    with running_demo_site(port=0, seed=SEED, n_ads=2) as gone_url:
        pass
    point_demo_profile_at(settings, gone_url)
    authorisation_id = authorise(settings, session_factory, people.legal)
    second, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert second.run.status == "finished"
    assert second.run.ads_captured == 0
    assert any(p["kind"] == "unreachable" for p in second.run.problems)
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == first.run.ads_captured
        assert session.scalar(select(func.count(AdImage.id))) == first.run.images_stored


def test_ads_the_store_cannot_write_are_named_on_the_run_and_stored_ads_survive(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    first, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    # The disk goes bad under the blob store: its directory is no longer a directory.
    blobs = settings.data_dir / "blobs"
    moved = blobs.rename(blobs.with_name("blobs.kept"))
    blobs.write_text("not a directory")
    authorisation_id = authorise(settings, session_factory, people.legal, case="CASE-2")
    second, _ = crawl(settings, session_factory, people("other-investigator"), authorisation_id)
    assert second.run.ads_captured == 0
    lost = [p for p in second.run.problems if p["kind"] == "ad_not_stored"]
    # Every ad is named, by URL and the error's kind only.
    assert len(lost) == first.run.ads_captured
    assert all(p["message"].startswith("the ad could not be processed (") for p in lost)
    with session_factory() as session:
        assert session.scalar(select(func.count(Ad.id))) == first.run.ads_captured
        assert session.scalar(select(func.count(StoredBlob.sha256))) > 0
    blobs.unlink()
    moved.rename(blobs)
    assert all(BlobStore(blobs).exists(sha) for sha in _blob_hashes(session_factory))


def test_more_failing_ads_than_may_wait_in_the_pipeline_still_end_the_run(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    # Every ad that leaves the pipelines, stored or not, makes room for the next one: with
    # a store that fails from the start and more ads than may be in flight, a slot that
    # was not given back would stall the run at ADS_IN_FLIGHT ads.
    n_ads = ADS_IN_FLIGHT + 20
    with running_demo_site(port=0, seed=SEED, n_ads=n_ads) as base_url:
        point_demo_profile_at(settings, base_url)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "blobs").write_text("not a directory")
        authorisation_id = authorise(settings, session_factory, people.legal)
        ended: list[CrawlAndLinkOutcome] = []
        runner = threading.Thread(
            target=lambda: ended.append(
                crawl(settings, session_factory, people.investigator, authorisation_id)[0]
            ),
            daemon=True,
        )
        runner.start()
        runner.join(timeout=180)
        assert ended, "the run stalled: ads that left the pipelines did not make room"
        outcome = ended[0]
    static_ads = [a for a in generate_demo_content(seed=SEED, n_ads=n_ads).ads if not a.requires_js]
    assert len(static_ads) > ADS_IN_FLIGHT
    assert outcome.run.status == "finished"
    assert outcome.run.ads_captured == 0
    lost = [p for p in outcome.run.problems if p["kind"] == "ad_not_stored"]
    assert len(lost) == len(static_ads)


def test_page_limit_of_the_authorisation_stops_the_run(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal, max_pages=3)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    # Three page requests leave (robots.txt is not a page); which ones depends on the
    # order of the list page's links, and the fault site's HTTP 500 page, when it is one
    # of them, is not a fetched page.
    assert 2 <= outcome.run.pages_fetched <= 3, outcome.run.problems
    assert any(p["kind"] == "page_limit" for p in outcome.run.problems)


def test_a_profile_with_autothrottle_crawls_every_ad_with_scrapys_autothrottle_on(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    profile = settings.resolved_site_profiles_dir / "demo.yaml"
    with profile.open("a", encoding="utf-8") as out:
        out.write("autothrottle: {start_delay_seconds: 0.05, max_delay_seconds: 0.5}\n")
    authorisation_id = authorise(settings, session_factory, people.legal)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.status == "finished", outcome.run.problems
    expected = [a for a in demo_site.content.ads if not a.requires_js and a.ad_id != "f-error"]
    assert outcome.run.ads_captured >= len(expected) - 1  # the malformed page is no ad
    # What the worker handed Scrapy for this profile.
    scrapy_settings = build_scrapy_settings(
        get_site_profile("demo", settings.resolved_site_profiles_dir),
        max_pages=10,
        log_file=Path(outcome.run.log_file),
        log_level="INFO",
        version="test",
    )
    assert scrapy_settings["AUTOTHROTTLE_ENABLED"] is True
    assert scrapy_settings["AUTOTHROTTLE_START_DELAY"] == 0.05
    assert scrapy_settings["AUTOTHROTTLE_MAX_DELAY"] == 0.5
    assert scrapy_settings["AUTOTHROTTLE_TARGET_CONCURRENCY"] == 1.0


def test_refused_crawls_store_nothing(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    # A second, valid site profile that the authorisation does not name.
    other = (settings.resolved_site_profiles_dir / "demo.yaml").read_text()
    other = other.replace("key: demo", "key: other")
    (settings.resolved_site_profiles_dir / "other.yaml").write_text(other)
    with pytest.raises(SiteNotAuthorised):
        crawl(settings, session_factory, people.investigator, authorisation_id, site="other")
    # An analyst of the case, and an investigator of another case, may not crawl.
    with pytest.raises(AccessDenied):
        crawl(settings, session_factory, people.analyst, authorisation_id)
    with pytest.raises(AccessDenied, match="not a member of case CASE-1"):
        crawl(settings, session_factory, people("other-investigator"), authorisation_id)
    with session_factory.begin() as session:
        row = session.get(Authorisation, authorisation_id)
        assert row is not None
        row.valid_until = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(AuthorisationExpired):
        crawl(settings, session_factory, people.investigator, authorisation_id)
    with session_factory() as session:
        assert session.scalar(select(func.count(CrawlRun.id))) == 0
        assert session.scalar(select(func.count(Ad.id))) == 0
        assert verify_stored_chain(session).ok


def test_a_site_profile_edited_after_authorisation_is_refused_until_amended(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    profile_file = settings.resolved_site_profiles_dir / "demo.yaml"
    original = profile_file.read_text()
    # The attack of the issue: the same key, another host.
    profile_file.write_text(original.replace("127.0.0.1", "localhost"))
    with pytest.raises(SiteProfileChanged, match="origins added"):
        crawl(settings, session_factory, people.investigator, authorisation_id)
    # A harmless-looking edit (a comment) changes the reviewed bytes too.
    profile_file.write_text(original + "\n# tuned\n")
    with pytest.raises(SiteProfileChanged, match="profile SHA-256"):
        crawl(settings, session_factory, people.investigator, authorisation_id)
    with session_factory() as session:
        assert session.scalar(select(func.count(CrawlRun.id))) == 0
    # After a legal officer's review the edited profile is allowed.
    from crawler.site_profile import get_site_profile
    from legal_policy.authorisation_store import amend_site

    with session_factory.begin() as session:
        amend_site(
            session,
            people.legal,
            authorisation_id,
            get_site_profile("demo", settings.resolved_site_profiles_dir).site_ref(),
            "profile comment reviewed",
        )
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.status == "finished" and outcome.run.ads_captured > 0


def test_revoking_the_authorisation_stops_a_running_crawl_within_seconds(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    from legal_policy.authorisation_store import revoke_authorisation
    from tests.support import catalogue_of

    with running_demo_site(port=0, seed=SEED, n_ads=60) as base_url:
        point_demo_profile_at(settings, base_url)
        profile_file = settings.resolved_site_profiles_dir / "demo.yaml"
        # A polite crawl: one request at a time, 0.4 s apart (about 40 s for the whole site).
        profile_file.write_text(
            profile_file.read_text()
            .replace("download_delay_seconds: 0", "download_delay_seconds: 0.4")
            .replace("concurrent_requests: 4", "concurrent_requests: 1")
        )
        authorisation_id = authorise(settings, session_factory, people.legal)
        revoked_at: list[float] = []

        def revoke_after_some_ads(event: dict[str, object]) -> None:
            if event.get("event") == "ad" and event.get("ads") == 3 and not revoked_at:
                with session_factory.begin() as session:
                    revoke_authorisation(
                        session,
                        people.legal,
                        authorisation_id,
                        "order withdrawn",
                        catalogue_of(settings, session_factory),
                    )
                revoked_at.append(time.monotonic())

        from adwatch.services.crawling import crawl_and_link

        outcome = crawl_and_link(
            settings.crawler_config(),
            session_factory,
            people.investigator,
            authorisation_id=authorisation_id,
            site_key="demo",
            catalogue=catalogue_of(settings, session_factory),
            on_progress=revoke_after_some_ads,
        )
        ended = time.monotonic()
    assert revoked_at, "the crawl ended before it could be revoked"
    assert outcome.run.status == "stopped"
    assert outcome.run.stop_reason == "authorisation revoked"
    assert ended - revoked_at[0] < 10
    assert 3 <= outcome.run.ads_captured < 40
    with session_factory() as session:
        run = session.get(CrawlRun, outcome.run.run_id)
        assert run is not None and run.status == "stopped"
        revoked = session.get(Authorisation, authorisation_id)
        assert revoked is not None and revoked.revoked_at is not None
        late = session.scalar(select(func.count(Ad.id)).where(Ad.captured_at > revoked.revoked_at))
        assert late == 0  # nothing stored after the revocation
        assert session.scalar(select(func.count(Ad.id))) == outcome.run.ads_captured


def test_two_cases_crawling_one_site_each_keep_their_own_copies(
    settings: Settings,
    session_factory: sessionmaker[Session],
    demo_site: DemoSite,
    people: People,
) -> None:
    first = authorise(settings, session_factory, people.legal, case="CASE-1")
    second = authorise(settings, session_factory, people.legal, case="CASE-2")
    one, _ = crawl(settings, session_factory, people.investigator, first)
    two, _ = crawl(settings, session_factory, people("other-investigator"), second)
    assert one.run.ads_captured == two.run.ads_captured > 0
    assert two.run.ads_unchanged == 0
    with session_factory() as session:
        per_case = dict(
            session.execute(select(Ad.case_id, func.count(Ad.id)).group_by(Ad.case_id)).all()
        )
        assert sorted(per_case.values()) == [one.run.ads_captured] * 2
        # Content-addressed: one file per image, held by each case.
        holds = session.execute(
            select(StoredBlob.sha256, func.count(StoredBlob.case_id))
            .where(StoredBlob.kind == "image")
            .group_by(StoredBlob.sha256)
        ).all()
        assert holds and all(count == 2 for _, count in holds)


def _blob_hashes(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(StoredBlob.sha256)))
