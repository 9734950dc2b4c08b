"""Keep the run's record true while it runs, and stop an orphaned worker.

Every ``ADWATCH_KEEPER_SECONDS`` the counts and problems so far are written to the run's
row, so that a worker killed with SIGKILL leaves counts that match what it stored. When
the adwatch process that started the run goes away (killed, or its terminal closed), the
worker stops itself: a crawl nobody watches must not go on.
"""

from __future__ import annotations

import os
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task
from twisted.python.failure import Failure

from crawler.context import CrawlContext
from crawler.guard import request_stop
from crawler.recrawl import mark_seen
from storage.models import CrawlRun

PARENT_GONE = "the adwatch process that started the run is gone"


class RunKeeper:
    """Writes the run's counts as it goes and watches the parent process."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.parent = os.getppid()
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunKeeper:
        interval = crawler.settings.getfloat("ADWATCH_KEEPER_SECONDS", 0)
        if interval <= 0:
            raise NotConfigured("no run keeper interval")
        keeper = cls(crawler, interval)
        crawler.signals.connect(keeper.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(keeper.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(keeper.item_error, signal=signals.item_error)
        crawler.signals.connect(keeper.spider_error, signal=signals.spider_error)
        return keeper

    def item_error(self, item: Any, response: Any, spider: Spider, failure: Failure) -> None:
        """An ad the pipelines failed on is lost to this run: say so on the run's record
        (the error's kind only: a message might quote the ad)."""
        context: CrawlContext = spider.context  # type: ignore[attr-defined]
        context.report.add_problem(
            "ad_not_stored",
            str(getattr(item, "url", "") or ""),
            f"the ad could not be processed ({_kind(failure)}); see the run's log",
        )

    def spider_error(self, failure: Failure, response: Any, spider: Spider) -> None:
        """A page the spider failed to read: said on the run's record, by kind only."""
        context: CrawlContext = spider.context  # type: ignore[attr-defined]
        context.report.add_problem(
            "page_not_read",
            str(getattr(response, "url", "") or ""),
            f"the page could not be read ({failure.type.__name__}); see the run's log",
        )

    def spider_opened(self, spider: Spider) -> None:
        self.loop = task.LoopingCall(self.tick, spider)
        self.loop.start(self.interval, now=False)

    def spider_closed(self, spider: Spider) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def tick(self, spider: Spider) -> None:
        context: CrawlContext = spider.context  # type: ignore[attr-defined]
        if os.getppid() != self.parent:
            request_stop(self.crawler, context, PARENT_GONE)
        self.flush(context)

    @staticmethod
    def flush(context: CrawlContext) -> None:
        """Write the counts and problems so far onto the run's row."""
        seen, context.report.seen_again = context.report.seen_again, []
        with context.session_factory.begin() as session:
            mark_seen(session, seen)
            run = session.get(CrawlRun, context.run_id, with_for_update=True)
            if run is not None:
                context.report.write_to(run)
        context.report.settled()


def _kind(failure: Failure) -> str:
    # The store process sends back only the kind of what failed there (``StoreFailed``).
    kind = getattr(failure.value, "kind", None)
    return kind if isinstance(kind, str) else failure.type.__name__
