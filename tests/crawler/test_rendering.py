"""JavaScript-only ads are captured by rendering their pages in Debian's Chromium, and the
browser's own requests off the allowlist (a third party's tracker, a POST beacon) are
refused and counted (both databases)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from storage.models import Ad
from tests.conftest import People
from tests.support import authorise, crawl

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is missing (make test installs it)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture
def server(settings: Settings) -> Iterator[DemoServer]:
    with running_demo_server(port=0, seed=12, n_ads=32) as server:
        point_demo_profile_at(settings, server.base_url)
        yield server


def test_javascript_only_ads_are_captured_and_the_browser_stays_on_the_allowlist(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    server: DemoServer,
    chromium: Path,
) -> None:
    js_ads = server.content.js_ads
    assert js_ads, "the demo site has JavaScript-only ads"
    authorisation_id = authorise(settings, session_factory, people.legal, site="demo-js")
    outcome, _ = crawl(
        settings, session_factory, people.investigator, authorisation_id, site="demo-js"
    )
    run = outcome.run
    assert run.status == "finished", run.problems
    assert run.ads_captured == len(js_ads), run.problems
    with session_factory() as session:
        stored = {ad.url.rsplit("/", 1)[-1]: ad for ad in session.scalars(select(Ad))}
        for truth in js_ads:
            ad = stored[truth.ad_id]
            assert ad.title == truth.title and ad.city == truth.city
            assert ad.posted_at == truth.posted_at
            assert len(ad.images) == len(truth.image_names)
    # The tracker script and the POST beacon of every rendered ad page were refused.
    refused = [p for p in run.problems if p["kind"] == "refused"]
    assert any("tracker.js" in p["url"] for p in refused)
    assert any("beacon" in p["url"] and "POST" in p["message"] for p in refused)
    assert all("partner.invalid" in p["url"] for p in refused)


def test_a_rendered_page_is_kept_as_a_resource_record_of_the_rendered_dom(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    server: DemoServer,
    chromium: Path,
) -> None:
    from warcio.archiveiterator import ArchiveIterator

    authorisation_id = authorise(settings, session_factory, people.legal, site="demo-js")
    outcome, _ = crawl(
        settings, session_factory, people.investigator, authorisation_id, site="demo-js"
    )
    rendered: dict[str, bytes] = {}
    for path in sorted((settings.data_dir / "warc").glob("*.warc.gz")):
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_headers.get_header("WARC-Adwatch-Rendered-DOM") is not None:
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    rendered[uri.rsplit("/", 1)[-1]] = record.content_stream().read()
    assert outcome.run.ads_captured == len(server.content.js_ads)
    for truth in server.content.js_ads:
        # The DOM as the browser built it holds the ad the raw HTML does not.
        assert truth.title.encode() in rendered[truth.ad_id]
        assert b'class="reviews"' not in rendered[truth.ad_id]
