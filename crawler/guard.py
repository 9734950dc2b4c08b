"""Stop a running crawl within seconds when its authorisation no longer allows it.

The legal officer's revocation, the end of the validity period, a pause by the
systematic-collection monitor or the closing of the case must not wait for the run to
finish. ``AuthorisationGuard`` re-reads the authorisation every ``ADWATCH_RECHECK_SECONDS``
and closes the spider with the reason; ``StopGuardMiddleware`` lets no request leave once
that happened, and the store pipeline re-checks inside the transaction of every ad, so
nothing is stored after the authorisation ended.
"""

from __future__ import annotations

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.context import CrawlContext
from legal_policy.authorisation import stop_reason
from legal_policy.authorisation_store import standing_of
from storage.types import utcnow


def current_stop_reason(context: CrawlContext) -> str | None:
    """Why the run's authorisation no longer allows crawling, read from the database now."""
    with context.session_factory() as session:
        return stop_reason(standing_of(session, context.authorisation_id), utcnow())


def request_stop(crawler: Crawler, context: CrawlContext, reason: str) -> None:
    """Record why the run stops and close the spider (once)."""
    if context.stop_reason is not None:
        return
    context.stop_reason = reason
    context.progress.emit("stopping", reason=reason)
    if crawler.engine is not None and crawler.engine.spider is not None:
        deferred_from_coro(crawler.engine.close_spider_async(reason="adwatch_stopped"))


class AuthorisationGuard:
    """Re-checks the run's authorisation on a timer and stops the run when it ended."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AuthorisationGuard:
        interval = crawler.settings.getfloat("ADWATCH_RECHECK_SECONDS", 0)
        if interval <= 0:
            raise NotConfigured("no authorisation re-check interval")
        guard = cls(crawler, interval)
        crawler.signals.connect(guard.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(guard.spider_closed, signal=signals.spider_closed)
        return guard

    def spider_opened(self, spider: Spider) -> None:
        self.loop = task.LoopingCall(self.check, spider)
        self.loop.start(self.interval, now=False)

    def spider_closed(self, spider: Spider) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def check(self, spider: Spider) -> None:
        context: CrawlContext = spider.context  # type: ignore[attr-defined]
        if context.stop_reason is not None:
            return
        reason = current_stop_reason(context)
        if reason is not None:
            request_stop(self.crawler, context, reason)


class StopGuardMiddleware:
    """Once a stop is decided, no further request leaves (in-flight ones are not stored)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StopGuardMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        context = getattr(self.crawler.spider, "context", None)
        if context is not None and context.stop_reason is not None:
            raise IgnoreRequest(f"run stopping ({context.stop_reason}): {request.url}")
