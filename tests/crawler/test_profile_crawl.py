"""A new site from a profile file alone: real crawls of the demo site's JSON-LD style on
loopback with the bundled ``demo-jsonld`` profile; assertions read the stored rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.content import AGENCY_PHONE_DISPLAY, AGENCY_PHONE_E164, HELP_DESK_PHONE_E164
from adwatch.demo.jsonld_site import JsonLdSite, city_slug
from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.settings import Settings
from storage.models import Ad
from tests.conftest import People
from tests.support import authorise, crawl

SITE = "demo-jsonld"
SEED = 5
N_ADS = 14
BUNDLED_URL = "http://127.0.0.1:8766"


def write_profile(settings: Settings, base_url: str, page_cap: int | None = None) -> None:
    """The bundled profile pointed at ``base_url`` (and with another page cap), as a local
    profile: the text is the bundled file's, so everything else stays as shipped."""
    text = (resources.files("crawler") / "site_profiles" / f"{SITE}.yaml").read_text("utf-8")
    assert BUNDLED_URL in text and "page_cap: 300" in text
    text = text.replace(BUNDLED_URL, base_url)
    if page_cap is not None:
        text = text.replace("page_cap: 300", f"page_cap: {page_cap}")
    directory = settings.resolved_site_profiles_dir
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{SITE}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def jsonld_server(settings: Settings) -> Iterator[DemoServer]:
    """The JSON-LD style of the demo site on a free loopback port, profile pointed at it."""
    with running_demo_server(port=0, seed=SEED, n_ads=N_ADS, style="jsonld") as server:
        write_profile(settings, server.base_url)
        yield server


def site_of(server: DemoServer) -> JsonLdSite:
    assert server.jsonld_site is not None
    return server.jsonld_site


def test_crawl_captures_every_ad_with_exactly_its_own_fields(
    settings: Settings,
    session_factory: sessionmaker[Session],
    jsonld_server: DemoServer,
    people: People,
) -> None:
    site = site_of(jsonld_server)
    authorisation_id = authorise(settings, session_factory, people.legal, site=SITE)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id, SITE)
    crawled_by = datetime.now(UTC)

    assert outcome.run.status == "finished"
    assert outcome.run.ads_captured == len(site.ads) == N_ADS
    with session_factory() as session:
        ads = {ad.url.rsplit("/", 1)[-1]: ad for ad in session.scalars(select(Ad))}
        assert set(ads) == set(site.ads_by_id)
        for ad_id, stored in ads.items():
            truth = site.ads_by_id[ad_id]
            assert stored.title == truth.title  # from the page's own Product, not a related one
            assert stored.text == " ".join(truth.text.split("\n\n"))
            assert stored.city == truth.city  # not "Groningen · Dating ·"
            # "3 uur geleden" counted back from the capture: the truth, to the seconds the
            # crawl took since the site started; older ads to the minute, Amsterdam time.
            assert stored.posted_at is not None and stored.posted_at.utcoffset() == timedelta(0)
            late = stored.posted_at - site.posted_at(truth)
            assert timedelta(0) <= late <= crawled_by - site.started_at + timedelta(seconds=1)
            phones = {link.phone.e164 for link in stored.phone_links}
            # The help desk's number is no ad's phone; a booking office the ad itself
            # prints is one of its numbers (the matcher treats it as a hub).
            office = {AGENCY_PHONE_E164} if AGENCY_PHONE_DISPLAY in truth.text else set()
            assert phones == {truth.phone_e164} | office
            assert HELP_DESK_PHONE_E164 not in phones
            images = [image.url.rsplit("/", 1)[-1] for image in stored.images]
            assert images == list(truth.image_names)  # no related ad's thumbnail
            for other in site.related(truth):
                if other.title != truth.title and other.title not in truth.text:
                    assert other.title not in stored.text
    # The site's list pages are not in its sitemap: they were found from the home page.
    hits = jsonld_server.hits
    regions = {city_slug(ad.city) for ad in site.ads}
    assert all(hits[f"/regio/{slug}"] >= 1 for slug in regions)
    assert hits["/nieuw"] >= 1 and hits["/sitemap-advertenties.xml"] == 1


def test_sitemap_entries_off_the_allowlist_are_refused_reported_and_never_requested(
    settings: Settings,
    session_factory: sessionmaker[Session],
    jsonld_server: DemoServer,
    people: People,
) -> None:
    site = site_of(jsonld_server)
    authorisation_id = authorise(settings, session_factory, people.legal, site=SITE)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id, SITE)

    refused = {p["url"]: p["message"] for p in outcome.run.problems if p["kind"] == "refused"}
    partner_index = "http://partner.invalid/sitemap.xml"
    assert set(refused) == {*site.off_list_urls(), partner_index}
    assert all(m == "sitemap entry outside the allowlist; not requested" for m in refused.values())
    assert outcome.run.requests_refused == len(refused)
    # The same server under another name would have answered: it was never asked.
    assert jsonld_server.hits["/advertentie/archief-1"] == 0
    # Nothing else went wrong: no unreadable field, no failed page.
    assert {p["kind"] for p in outcome.run.problems} == {"refused"}


def page_hits(server: DemoServer) -> int:
    """Pages the site served (images and robots.txt are not pages)."""
    return sum(
        count
        for path, count in server.hits.items()
        if not path.startswith("/media/") and path != "/robots.txt"
    )


def test_the_profiles_page_cap_lowers_the_authorisations_limit(
    settings: Settings,
    session_factory: sessionmaker[Session],
    jsonld_server: DemoServer,
    people: People,
) -> None:
    write_profile(settings, jsonld_server.base_url, page_cap=6)
    authorisation_id = authorise(settings, session_factory, people.legal, site=SITE)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id, SITE)

    assert outcome.run.pages_fetched <= 6 and page_hits(jsonld_server) <= 6
    assert outcome.run.ads_captured < N_ADS
    limits = [p["message"] for p in outcome.run.problems if p["kind"] == "page_limit"]
    assert limits == ["stopped at the site profile's page cap of 6 pages per run"]


def test_the_page_cap_never_raises_the_authorisations_limit(
    settings: Settings,
    session_factory: sessionmaker[Session],
    jsonld_server: DemoServer,
    people: People,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal, site=SITE, max_pages=4)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id, SITE)

    assert outcome.run.pages_fetched <= 4 and page_hits(jsonld_server) <= 4
    limits = [p["message"] for p in outcome.run.problems if p["kind"] == "page_limit"]
    assert len(limits) == 1 and re.fullmatch(r".*authorisation's limit of 4 pages.*", limits[0])
