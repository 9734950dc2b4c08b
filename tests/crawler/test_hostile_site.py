"""Real crawls of the hostile demo site on loopback: every path off the allowlist is tried,
none is taken, every dropped request is a problem of its kind, and the audit log says so.

The off-list host is a second loopback server that answers everything; it must receive
nothing. The proof is read from what the servers received, the stored rows, the run's
problems and the audit log's ``crawl.network`` (the worker's network guard) and
``crawl.finished`` entries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.hostile import (
    AGE_COOKIE,
    HOSTILE_VARIANTS,
    SESSION_COOKIE,
    HostileSite,
    running_hostile_site,
)
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from legal_policy.audit_log import verify_stored_chain
from storage.models import Ad, AuditEntry
from tests.conftest import People
from tests.support import authorise, crawl

pytestmark = pytest.mark.slow

_PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy")


@pytest.fixture
def hostile(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileSite]:
    """The hostile site with the demo profile pointed at it, and a proxy in the environment
    that names the off-list host (Scrapy would send every request through it)."""
    with running_hostile_site() as site:
        point_demo_profile_at(settings, site.base_url)
        for name in _PROXY_VARIABLES:
            monkeypatch.setenv(name, site.offlist_url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        yield site


def _audit(session_factory: sessionmaker[Session], action: str) -> dict[str, Any]:
    with session_factory() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
        assert len(entries) == 1, f"expected one {action} entry, found {len(entries)}"
        return dict(entries[0].properties)


def _stored_ads(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """Ads stored, by hostile page id, with how many images each kept."""
    with session_factory() as session:
        return {
            ad.url.rsplit("/", 1)[-1]: sum(i.blob_sha256 is not None for i in ad.images)
            for ad in session.scalars(select(Ad))
        }


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def test_no_path_leaves_the_allowlist_and_every_drop_is_reported_by_kind(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    hostile: HostileSite,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    run = outcome.run

    # The off-list host got nothing: no link, redirect, image, base, refresh, script,
    # iframe, form, stylesheet, pixel, proxy or cookie reached it.
    assert hostile.offlist_requests == []
    assert run.status == "finished"

    # The run went on: every healthy ad is kept with its own images, whatever its page tried.
    stored = _stored_ads(session_factory)
    expected_kept = {v.ad_id: v.images_kept for v in HOSTILE_VARIANTS if v.kept}
    assert stored == expected_kept

    # Every dropped request is a problem of its kind, exactly once.
    kinds = Counter(p["kind"] for p in run.problems)
    expected = Counter(kind for v in HOSTILE_VARIANTS for kind in v.problems)
    assert kinds == expected
    offlist = f"127.0.0.1:{_port(hostile.offlist_url)}"
    for problem in run.problems:
        if problem["kind"] == "refused":
            assert urlsplit(problem["url"]).netloc == offlist, problem
    by_kind = {p["kind"]: p["url"] for p in run.problems if p["kind"] != "refused"}
    assert by_kind["robots"].endswith("/ad/h-robots")
    assert by_kind["too_large"].endswith("/ad/h-too-large")
    assert by_kind["http_error"].endswith("/ad/h-gone")
    assert by_kind["image_unavailable"].endswith("/images/missing.jpg")
    assert by_kind["bad_image"].endswith("/images/not-an-image.jpg")
    loops = sorted(p["message"] for p in run.problems if p["kind"] == "redirect_loop")
    assert any("/ad/h-redirect-loop" in m for m in loops)
    assert any("/ad/h-age-gate" in m for m in loops)
    assert run.requests_refused == kinds["refused"]

    # Cookies are off: the cookie the site set was never sent back.
    site_requests = hostile.site_requests
    assert any(r.path == "/ad/h-cookie" for r in site_requests)
    assert all("Cookie" not in r.headers for r in site_requests)
    assert {r.headers.get("User-Agent", "").split("/")[0] for r in site_requests} == {"adwatch"}

    # The audit log: the guard saw connections to the site alone (SQLite needs none; libpq
    # connects to PostgreSQL from C, outside the guard's view) and refused nothing, because
    # nothing off-list ever got as far as a socket.
    network = _audit(session_factory, "crawl.network")
    assert network["contacted"] == [f"127.0.0.1:{_port(hostile.base_url)}"]
    assert set(network["looked_up"]) <= {"127.0.0.1"}
    assert network["refused"] == []
    finished = _audit(session_factory, "crawl.finished")
    assert finished["problems_by_kind"] == dict(sorted(expected.items()))
    assert finished["refused_hosts"] == [offlist]
    assert finished["requests_refused"] == kinds["refused"]
    with session_factory() as session:
        assert verify_stored_chain(session).ok

    # Crawled again, the same hostile pages lose nothing already kept and store nothing twice.
    again, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert again.run.status == "finished"
    assert (again.run.ads_captured, again.run.ads_unchanged) == (0, len(expected_kept))
    assert Counter(p["kind"] for p in again.run.problems) == expected
    assert _stored_ads(session_factory) == expected_kept
    assert hostile.offlist_requests == []


def test_cookies_for_an_age_gate_stay_with_the_site_and_no_suffix_list_is_fetched(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    hostile: HostileSite,
) -> None:
    # The profile names the site as ``localhost``: the guard allows that one name to be
    # looked up, and the cookie code runs the public-suffix check on a host name.
    site_url = f"http://localhost:{_port(hostile.base_url)}"
    point_demo_profile_at(settings, site_url)
    profile = settings.resolved_site_profiles_dir / "demo.yaml"
    profile.write_text(
        profile.read_text() + "cookies: true\nuser_agent: adwatch-test/1 (synthetic test crawl)\n"
    )
    authorisation_id = authorise(settings, session_factory, people.legal)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)

    assert hostile.offlist_requests == []
    stored = _stored_ads(session_factory)
    assert "h-age-gate" in stored  # the gate's cookie let the crawler back in
    expected_kept = {
        v.ad_id
        for v in HOSTILE_VARIANTS
        if (v.kept if v.kept_with_cookies is None else v.kept_with_cookies)
    }
    assert set(stored) == expected_kept
    assert not any("h-age-gate" in p["message"] for p in outcome.run.problems)

    site_requests = hostile.site_requests
    gate_returns = [r for r in site_requests if r.path == "/ad/h-age-gate"]
    assert [AGE_COOKIE in r.headers.get("Cookie", "") for r in gate_returns] == [False, True]
    # The session cookie went back to the site that set it (the ad's images come after it).
    cookie_ad = hostile.ads["h-cookie"]
    image_paths = {f"/images/{name}" for name in cookie_ad.image_names}
    assert any(
        r.path in image_paths and SESSION_COOKIE in r.headers.get("Cookie", "")
        for r in site_requests
    )
    assert {r.headers["User-Agent"] for r in site_requests} == {
        "adwatch-test/1 (synthetic test crawl)"
    }

    # Only ``localhost`` was looked up (no publicsuffix.org, no other name) and only the
    # site's address contacted; the guard refused nothing.
    network = _audit(session_factory, "crawl.network")
    assert network["refused"] == []
    assert network["looked_up"] == ["localhost"]
    assert network["contacted"] == [f"127.0.0.1:{_port(hostile.base_url)}"]


# A minimal Scrapy crawl with adwatch's settings and middlewares, run in a subprocess (the
# reactor cannot restart): each URL's request either succeeds or fails with the problem kind
# ``failure_kind`` gives it (null: already reported where it was refused).
KINDS_SCRIPT = r"""
import json, sys
from pathlib import Path
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from adwatch.services.demo import write_demo_profile
from crawler.middlewares import failure_kind
from crawler.netguard import install_guard, network_policy
from crawler.scrapy_settings import build_scrapy_settings
from crawler.site_profile import get_site_profile

job = json.loads(sys.stdin.read())
directory = Path(job["dir"])
write_demo_profile(directory, job["site"])
profile = get_site_profile("demo", directory)
guard = install_guard(network_policy(profile.allowed_origins())) if job["guard"] else None
settings = build_scrapy_settings(
    profile, max_pages=100, log_file=directory / "kinds.log", log_level="DEBUG", version="t"
)
settings.update({"EXTENSIONS": {}, "ITEM_PIPELINES": {}, **job["settings"]})
for name, order in job.get("middlewares", {}).items():
    settings["DOWNLOADER_MIDDLEWARES"][name] = order
results, messages = {}, {}


class KindSpider(Spider):
    name = "kinds"

    async def start(self):
        for url in job["urls"]:
            yield Request(url, callback=self.fetched, errback=self.failed, dont_filter=True)

    def fetched(self, response):
        results[response.meta.get("redirect_urls", [response.url])[0]] = "fetched"

    def failed(self, failure):
        request = failure.request
        first = request.meta.get("redirect_urls", [request.url])[0]
        results[first] = failure_kind(failure)
        messages[first] = f"{failure.type.__name__}: {failure.getErrorMessage()}"


process = CrawlerProcess(settings, install_root_handler=False)
process.crawl(KindSpider)
process.start()
network = guard.summary() if guard else None
print(json.dumps({"kinds": results, "messages": messages, "network": network}))
"""


def run_kinds(
    tmp_path: Path,
    site: str,
    urls: list[str],
    *,
    settings: dict[str, Any] | None = None,
    middlewares: dict[str, int | None] | None = None,
    guard: bool = False,
) -> dict[str, Any]:
    """Fetch ``urls`` with adwatch's settings for a profile of ``site``; kinds by URL."""
    job = {
        "dir": str(tmp_path),
        "site": site,
        "urls": urls,
        "settings": settings or {},
        "middlewares": middlewares or {},
        "guard": guard,
    }
    done = subprocess.run(
        [sys.executable, "-c", KINDS_SCRIPT],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_each_failure_of_a_real_download_gets_its_kind(tmp_path: Path) -> None:
    with running_hostile_site() as site:
        # A port where nothing listens, on the allowlist: unreachable, not refused.
        dead = f"http://127.0.0.1:{_free_port()}"
        urls = {
            f"{site.base_url}/ad/h-plain": "fetched",
            f"{site.base_url}/ad/h-slow": "timeout",
            f"{site.base_url}/ad/h-too-large": "too_large",  # announced in Content-Length
            f"{site.base_url}/ad/h-endless": "too_large",  # no length: cut off while streaming
            f"{site.base_url}/ad/h-gone": "http_error",
            f"{site.base_url}/ad/h-redirect-loop": "redirect_loop",
            f"{site.base_url}/ad/h-robots": "robots",
            f"{site.base_url}/ad/h-redirect-302": None,  # refused and reported by the allowlist
            f"{site.offlist_url}/ad/anything": None,
            f"{dead}/ad/x": "unreachable",
        }
        result = run_kinds(
            tmp_path,
            site.base_url,
            list(urls),
            settings={
                "DOWNLOAD_TIMEOUT": 1,
                "DOWNLOAD_MAXSIZE": 1024 * 1024,
                "RETRY_TIMES": 0,
                "ADWATCH_ALLOWED_ORIGINS": [site.base_url, dead],
            },
        )
        assert site.offlist_requests == []
    assert result["kinds"] == urls


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
