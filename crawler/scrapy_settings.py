"""Scrapy settings for one run, derived from the site profile and the authorisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crawler.site_profile import SiteProfile

SOFTWARE_NAME = "adwatch"


# How often a running crawl re-reads its authorisation (revocation, expiry, pause).
RECHECK_SECONDS = 1.0
# How often a running crawl writes its counts to its record (and looks for its parent).
KEEPER_SECONDS = 2.0


def build_scrapy_settings(
    profile: SiteProfile,
    *,
    max_pages: int,
    log_file: Path,
    log_level: str,
    version: str,
    recheck_seconds: float = RECHECK_SECONDS,
) -> dict[str, Any]:
    """Settings for a compliance-bounded crawl of one authorised site."""
    config = profile.config
    return {
        "BOT_NAME": SOFTWARE_NAME,
        "USER_AGENT": f"{SOFTWARE_NAME}/{version}",
        # No control port: a compliance-bounded crawler exposes nothing to run code in it.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        # Scrapy's default is False; the site profile decides, explicitly.
        "ROBOTSTXT_OBEY": config.obey_robots_txt,
        "DOWNLOAD_DELAY": config.download_delay_seconds,
        "CONCURRENT_REQUESTS": config.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrent_requests,
        "ADWATCH_MAX_PAGES": max_pages,
        "DOWNLOAD_TIMEOUT": 30,
        "RETRY_TIMES": 1,
        "DOWNLOAD_MAXSIZE": 32 * 1024 * 1024,
        "ADWATCH_ALLOWED_ORIGINS": sorted(profile.allowed_origins()),
        "ADWATCH_PASSIVE_ONLY": True,
        # Scrapy keeps and resends a site's cookies (and its cookie code looks up the public
        # suffix list); adwatch collects passively and sends none.
        "COOKIES_ENABLED": False,
        # 304 Not Modified answers a recrawl's conditional request: the spider handles it.
        "HTTPERROR_ALLOWED_CODES": [304],
        "ADWATCH_RECHECK_SECONDS": recheck_seconds,
        "ADWATCH_KEEPER_SECONDS": KEEPER_SECONDS,
        "EXTENSIONS": {"crawler.guard.AuthorisationGuard": 0, "crawler.keeper.RunKeeper": 0},
        "LOG_FORMATTER": "crawler.logformatter.ContentFreeLogFormatter",
        "DOWNLOADER_MIDDLEWARES": {
            # Before robots.txt (100) and everything else: nothing leaves unchecked.
            "crawler.guard.StopGuardMiddleware": 40,
            "crawler.middlewares.AllowlistMiddleware": 50,
            "crawler.middlewares.PassiveOnlyMiddleware": 60,
            "crawler.middlewares.PageBudgetMiddleware": 70,
            "crawler.recrawl.ConditionalRequestMiddleware": 80,
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
