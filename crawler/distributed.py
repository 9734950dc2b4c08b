"""One run, several workers: the frontier and duplicate filter live in Redis (scrapy-redis).

scrapy-redis shares the request queue and the duplicate filter. What it lacks for adwatch
is added here: one page budget for the whole run (the authorisation's, not one per
worker), and a run that ends only when every worker is idle and the queue is empty (a
worker that finds the queue empty for a moment must not leave while another is still
enqueuing ad pages). The last worker out clears the run's keys.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from twisted.internet import task

HEARTBEAT_SECONDS = 2.0
# A worker whose heartbeat is older than this is gone (killed): it no longer holds the run.
HEARTBEAT_TTL_SECONDS = 10
# How long the run's own worker waits for the others to write their last counts.
SETTLE_SECONDS = 60


def run_key(database_url: str, run_id: int) -> str:
    """The prefix of a run's keys in Redis: per database, since several adwatch
    deployments (or test databases) may share one Redis."""
    database = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return f"adwatch:{database}:run:{run_id}"


def redis_settings(
    database_url: str, run_id: int, redis_url: str, worker_id: str
) -> dict[str, Any]:
    """Scrapy settings that put the run's frontier and duplicate filter in Redis, with one
    page budget for all its workers and a coordinator that keeps them until all are idle."""
    key = run_key(database_url, run_id)
    return {
        "ADWATCH_WORKER_ID": worker_id,
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.FifoQueue",
        "SCHEDULER_QUEUE_KEY": f"{key}:requests",
        "SCHEDULER_DUPEFILTER_KEY": f"{key}:dupefilter",
        # Kept while other workers still use them; the last worker out clears them.
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": redis_url,
        "ADWATCH_RUN_KEY": key,
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.middlewares.PageBudgetMiddleware": None,
            "crawler.distributed.SharedPageBudgetMiddleware": 70,
        },
        "EXTENSIONS": {"crawler.distributed.RunCoordinator": 0},
    }


def _client(crawler: Crawler) -> redis.Redis:
    url = crawler.settings.get("REDIS_URL")
    if not url:
        raise NotConfigured("no Redis")
    return redis.Redis.from_url(url)


class SharedPageBudgetMiddleware:
    """The authorisation's pages-per-run budget counted across all workers of the run.

    Counted when a request leaves (an INCR in Redis), so requests in flight on several
    workers can never push the run past its limit. Images and robots.txt do not count.
    """

    def __init__(self, crawler: Crawler, client: redis.Redis, key: str, budget: int) -> None:
        self.crawler = crawler
        self.client = client
        self.key = key
        self.budget = budget
        self.reported = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPageBudgetMiddleware:
        budget = crawler.settings.getint("ADWATCH_MAX_PAGES", 0)
        key = crawler.settings.get("ADWATCH_RUN_KEY")
        if budget <= 0 or not key:
            raise NotConfigured("no shared page budget")
        return cls(crawler, _client(crawler), f"{key}:pages", budget)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.meta.get("adwatch_image") or request.url.endswith("/robots.txt"):
            return
        if int(self.client.incr(self.key)) <= self.budget:
            return
        report = getattr(getattr(self.crawler.spider, "context", None), "report", None)
        if report is not None and not self.reported:
            report.add_problem(
                "page_limit",
                request.url,
                f"stopped at the authorisation's limit of {self.budget} pages per run",
            )
        self.reported = True
        raise IgnoreRequest(f"adwatch page budget of {self.budget} spent: {request.url}")


class RunCoordinator:
    """Keeps a worker in the run while any worker is busy or the queue holds requests."""

    def __init__(self, crawler: Crawler, client: redis.Redis, key: str) -> None:
        self.crawler = crawler
        self.client = client
        self.key = key
        self.worker = crawler.settings.get("ADWATCH_WORKER_ID") or uuid.uuid4().hex
        self.loop: task.LoopingCall | None = None
        self.last_out = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunCoordinator:
        key = crawler.settings.get("ADWATCH_RUN_KEY")
        if not key:
            raise NotConfigured("not a shared run")
        coordinator = cls(crawler, _client(crawler), key)
        crawler.signals.connect(coordinator.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(coordinator.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(
            coordinator.request_reached, signal=signals.request_reached_downloader
        )
        crawler.signals.connect(coordinator.spider_closed, signal=signals.spider_closed)
        return coordinator

    # --- membership --------------------------------------------------------------------

    def spider_opened(self, spider: Spider) -> None:
        self.client.sadd(f"{self.key}:workers", self.worker)
        self._beat()
        self.loop = task.LoopingCall(self._beat)
        self.loop.start(HEARTBEAT_SECONDS, now=False)

    def _beat(self) -> None:
        self.client.set(f"{self.key}:alive:{self.worker}", "1", ex=HEARTBEAT_TTL_SECONDS)
        # Until it has written its last counts (``settled``); a killed worker's expires.
        self.client.set(_settling_key(self.key, self.worker), "1", ex=HEARTBEAT_TTL_SECONDS)

    def live_workers(self) -> set[str]:
        """Workers of the run whose heartbeat is fresh (a killed one drops out)."""
        members = {m.decode() for m in self.client.smembers(f"{self.key}:workers")}
        alive = {m for m in members if self.client.exists(f"{self.key}:alive:{m}")}
        for gone in members - alive:
            self.client.srem(f"{self.key}:workers", gone)
        return alive

    # --- when to stop ------------------------------------------------------------------

    def request_reached(self, request: Request, spider: Spider) -> None:
        self.client.srem(f"{self.key}:idle", self.worker)

    def spider_idle(self, spider: Spider) -> None:
        context = getattr(spider, "context", None)
        if context is not None and context.stop_reason is not None:
            return  # the run must stop (authorisation ended): leave now
        self.client.sadd(f"{self.key}:idle", self.worker)
        queued = int(self.client.llen(f"{self.key}:requests"))
        idle = {m.decode() for m in self.client.smembers(f"{self.key}:idle")}
        if queued or self.live_workers() - idle:
            raise DontCloseSpider("another worker of the run is still busy")

    def spider_closed(self, spider: Spider) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.client.srem(f"{self.key}:workers", self.worker)
        self.client.srem(f"{self.key}:idle", self.worker)
        self.client.delete(f"{self.key}:alive:{self.worker}")
        # Its last counts are written after the crawl stops: the run's own worker waits.
        self.client.set(_settling_key(self.key, self.worker), "1", ex=SETTLE_SECONDS)
        if not self.live_workers():
            self.last_out = True
            suffixes = ("requests", "dupefilter", "pages", "idle", "workers")
            self.client.delete(*(f"{self.key}:{suffix}" for suffix in suffixes))


def _settling_key(key: str, worker: str) -> str:
    return f"{key}:settling:{worker}"


def settled(redis_url: str, database_url: str, run_id: int, worker_id: str) -> None:
    """This worker's last counts are on the run's record."""
    client = redis.Redis.from_url(redis_url)
    client.delete(_settling_key(run_key(database_url, run_id), worker_id))


def wait_for_other_workers(
    redis_url: str,
    database_url: str,
    run_id: int,
    worker_id: str,
    *,
    timeout: float = SETTLE_SECONDS,
) -> list[str]:
    """Wait until every other worker of the run has written its last counts, so that the
    run's outcome counts all of them; returns the workers still unsettled at the timeout
    (killed ones drop out when their heartbeat expires)."""
    client = redis.Redis.from_url(redis_url)
    pattern = _settling_key(run_key(database_url, run_id), "*")
    own = _settling_key(run_key(database_url, run_id), worker_id).encode()
    deadline = time.monotonic() + timeout
    while True:
        others = [k for k in client.scan_iter(match=pattern) if k != own]
        if not others or time.monotonic() >= deadline:
            return [k.decode().rsplit(":", 1)[-1] for k in others]
        time.sleep(0.2)
