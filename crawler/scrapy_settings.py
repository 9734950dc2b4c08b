"""Scrapy settings for one run, derived from the site profile and the authorisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crawler.site_profile import SiteProfile

SOFTWARE_NAME = "adwatch"


# How often a running crawl re-reads its authorisation (revocation, expiry, pause).
RECHECK_SECONDS = 1.0
# How often a running crawl writes its counts to its record (and looks for its parent).
KEEPER_SECONDS = 2.0
# Bytes of responses waiting in the spider before Scrapy stops fetching (its default: 5 MB).
SCRAPER_ACTIVE_BYTES = 1_000_000


def build_scrapy_settings(
    profile: SiteProfile,
    *,
    max_pages: int,
    log_file: Path,
    log_level: str,
    version: str,
    recheck_seconds: float = RECHECK_SECONDS,
    extras: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Settings for a compliance-bounded crawl of one authorised site; ``extras`` (rendering,
    a shared frontier) are merged in last."""
    config = profile.config
    settings: dict[str, Any] = {
        "BOT_NAME": SOFTWARE_NAME,
        "USER_AGENT": config.user_agent or f"{SOFTWARE_NAME}/{version}",
        # Named in the warcinfo record of the run's WARC files.
        "ADWATCH_SOFTWARE_VERSION": version,
        # No control port: a compliance-bounded crawler exposes nothing to run code in it.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        # Scrapy's default is False; the site profile decides, explicitly.
        "ROBOTSTXT_OBEY": config.obey_robots_txt,
        "DOWNLOAD_DELAY": config.download_delay_seconds,
        "CONCURRENT_REQUESTS": config.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrent_requests,
        # A response yields at most one ad; Scrapy starts this many tasks per response.
        "CONCURRENT_ITEMS": 2,
        # Scrapy stops fetching when the responses waiting in the spider pass this many
        # bytes. Its 5 MB are a thousand small ad pages, each parsed, waiting for room in
        # the pipelines (``ADS_IN_FLIGHT``): the worker grew by ~100 MiB over 10,000 pages.
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": SCRAPER_ACTIVE_BYTES,
        "ADWATCH_MAX_PAGES": max_pages,
        "DOWNLOAD_TIMEOUT": 30,
        "RETRY_TIMES": 1,
        "DOWNLOAD_MAXSIZE": 32 * 1024 * 1024,
        "ADWATCH_ALLOWED_ORIGINS": sorted(profile.allowed_origins()),
        "ADWATCH_PASSIVE_ONLY": True,
        # Off unless the profile needs them (an age gate): then kept per allowlisted origin
        # by OwnOriginCookiesMiddleware, whose public-suffix list is tldextract's snapshot
        # (Scrapy's would download it).
        "COOKIES_ENABLED": config.cookies,
        # Scrapy's meta refresh replaces an ad page by its target; PageDirectivesMiddleware
        # keeps the page and reports an off-list target instead.
        "METAREFRESH_ENABLED": False,
        # Scrapy follows 20; a loop is caught sooner by adwatch's RedirectMiddleware.
        "REDIRECT_MAX_TIMES": 10,
        # Tells the network guard what the allowlisted names resolve to.
        "DNS_RESOLVER": "crawler.netguard.GuardedResolver",
        # 304 Not Modified answers a recrawl's conditional request: the spider handles it.
        "HTTPERROR_ALLOWED_CODES": [304],
        "ADWATCH_RECHECK_SECONDS": recheck_seconds,
        "ADWATCH_KEEPER_SECONDS": KEEPER_SECONDS,
        "EXTENSIONS": {
            "crawler.guard.AuthorisationGuard": 0,
            "crawler.keeper.RunKeeper": 0,
            "crawler.store.WarcEvidence": 0,
        },
        "LOG_FORMATTER": "crawler.logformatter.ContentFreeLogFormatter",
        "DOWNLOADER_MIDDLEWARES": {
            # Before robots.txt (100) and everything else: nothing leaves unchecked.
            "crawler.guard.StopGuardMiddleware": 40,
            "crawler.middlewares.AllowlistMiddleware": 50,
            "crawler.middlewares.PassiveOnlyMiddleware": 60,
            "crawler.middlewares.PageBudgetMiddleware": 70,
            # Scrapy's robots.txt, redirect and cookie middlewares in adwatch's versions
            # (refusals by kind, loops caught, cookies per origin and no suffix download);
            # no proxy from the environment (http_proxy would send every request off-list).
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.middlewares.RobotsTxtMiddleware": 100,
            "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
            "crawler.middlewares.PageDirectivesMiddleware": 580,
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
            "crawler.middlewares.RedirectMiddleware": 600,
            "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
            "crawler.middlewares.OwnOriginCookiesMiddleware": 700,
            "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
            "crawler.recrawl.ConditionalRequestMiddleware": 80,
            # Next to the downloader: the WARC-Date of a response is when it arrived.
            "crawler.warc.FetchTimeMiddleware": 950,
        },
        "ITEM_PIPELINES": {
            "crawler.pipelines.ImageCheckPipeline": 100,
            "crawler.pipelines.PhoneExtractionPipeline": 200,
            "crawler.pipelines.MinimisePipeline": 250,
            "crawler.pipelines.SnapshotStorePipeline": 300,
        },
        "LOG_FILE": str(log_file),
        "LOG_LEVEL": log_level,
        "LOG_FILE_APPEND": False,
    }
    if config.autothrottle is not None:
        throttle = config.autothrottle
        settings.update(
            {
                "AUTOTHROTTLE_ENABLED": True,
                "AUTOTHROTTLE_TARGET_CONCURRENCY": throttle.target_concurrency,
                "AUTOTHROTTLE_START_DELAY": max(
                    throttle.start_delay_seconds, config.download_delay_seconds
                ),
                "AUTOTHROTTLE_MAX_DELAY": throttle.max_delay_seconds,
            }
        )
    for extra in extras:
        for key, value in extra.items():
            current = settings.get(key)
            # Component tables (middlewares, extensions) are merged, not replaced.
            if isinstance(value, Mapping) and isinstance(current, dict):
                settings[key] = {**current, **value}
            else:
                settings[key] = value
    return settings
