"""What one crawl run's components share: passed to the spider, never global."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from crawler.config import CrawlerConfig
from crawler.recrawl import Validators
from crawler.site_profile import SiteProfile
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.field_rules import FieldRules
from matching.indicators import IndicatorModel
from storage.blobstore import BlobStore
from storage.models import CrawlRun


@dataclass(slots=True)
class RunReport:
    """Counts and problems of one run, filled by middlewares and pipelines."""

    pages_fetched: int = 0
    ads_captured: int = 0
    ads_unchanged: int = 0
    images_stored: int = 0
    requests_refused: int = 0
    # Ads below the authorisation's indicator threshold: counted, nothing else kept.
    ads_below_threshold: int = 0
    # Unchanged ads seen again (304), whose "last seen" is written with the counts.
    seen_again: list[int] = field(default_factory=list)
    # Ads extracted after the authorisation ended, and therefore not stored.
    ads_not_stored: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    # What is on the run's record already (see ``write_to``).
    written: dict[str, int] = field(default_factory=dict)
    problems_written: int = 0

    @classmethod
    def continuing(cls, run: CrawlRun) -> RunReport:
        """A report that starts from the counts and problems already on the run's record,
        none of which ``write_to`` adds again."""
        report = cls(
            **{name: getattr(run, name) or 0 for name in _COUNTS}, problems=list(run.problems)
        )
        report.settled()
        return report

    def add_problem(self, kind: str, url: str, message: str) -> None:
        """Record something that went wrong; the run goes on."""
        self.problems.append({"kind": kind, "url": url, "message": message})

    def write_to(self, run: CrawlRun) -> None:
        """Add what this worker counted since its last write to the run's record.

        Deltas, not totals: several workers of one run (Redis) add to the same record,
        and a resumed run goes on from its stored counts. Call ``settled`` once the
        transaction committed. Lock the row first (``with_for_update``).
        """
        for name in _COUNTS:
            delta = getattr(self, name) - self.written.get(name, 0)
            if delta:
                setattr(run, name, (getattr(run, name) or 0) + delta)
        new = self.problems[self.problems_written :]
        if run.logs_purged_at is not None:
            # A purge that closed the case while the run went on scrubbed its ad URLs.
            run.problems = []
        elif new:
            run.problems = [*(run.problems or []), *new]

    def settled(self) -> None:
        """Everything counted so far is on the record."""
        self.written = {name: getattr(self, name) for name in _COUNTS}
        self.problems_written = len(self.problems)


_COUNTS = (
    "pages_fetched",
    "ads_captured",
    "ads_unchanged",
    "images_stored",
    "requests_refused",
    "ads_below_threshold",
)


_T = TypeVar("_T")

# Ad pages between "being parsed" and "stored or dropped" at one time.
ADS_IN_FLIGHT = 32


class PipelineThreads:
    """Threads for the pipelines' blocking work, so that the reactor goes on fetching.

    ``compute``: decoding, hashing and re-encoding images and cleaning pages (mostly C code
    that lets go of the GIL, so it uses the second core). ``write``: one thread for the
    database, blob store and WARC files, so stores keep their order and never contend
    with each other for SQLite's write lock.
    """

    def __init__(self, compute_threads: int = 2, ads_in_flight: int = ADS_IN_FLIGHT) -> None:
        self._compute = ThreadPoolExecutor(compute_threads, thread_name_prefix="adwatch-compute")
        self._write = ThreadPoolExecutor(1, thread_name_prefix="adwatch-write")
        # Back-pressure: Scrapy keeps downloading while the pipelines fall behind (it
        # counts only the bytes of the pages being processed), so ad pages wait here,
        # before they are parsed and their images fetched, rather than pile up in the
        # threads' queues with their parsed trees and all their bytes.
        self.ads_in_flight = asyncio.Semaphore(ads_in_flight)

    async def compute(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(*args)`` on a compute thread and wait for it without blocking."""
        return await asyncio.get_running_loop().run_in_executor(self._compute, function, *args)

    async def write(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(*args)`` on the writer thread, after every write queued before."""
        return await asyncio.get_running_loop().run_in_executor(self._write, function, *args)

    def shutdown(self) -> None:
        """Finish queued work and stop the threads."""
        self._compute.shutdown(wait=True)
        self._write.shutdown(wait=True)


@dataclass(slots=True)
class ProgressStream:
    """JSON-lines progress events for the parent process (one object per line)."""

    stream: IO[str] | None

    def emit(self, event: str, **values: Any) -> None:
        """Write one event; silently does nothing when there is no stream."""
        if self.stream is None:
            return
        self.stream.write(json.dumps({"event": event, **values}) + "\n")
        self.stream.flush()


@dataclass(slots=True)
class CrawlContext:
    """Everything a run's spider and pipelines need, built by the worker's entry point."""

    run_id: int
    site_id: int
    authorisation_id: int
    case_id: int
    case_number: str
    legal_basis: str
    # The legal basis's field rules and retention (legal officers' periods applied).
    field_rules: FieldRules
    catalogue: LegalBasisCatalogue
    # Key of the case's phone pseudonyms (HMAC); never written anywhere by the crawler.
    pseudonym_key: bytes
    # The ad-level indicator model and the authorisation's threshold: ads below it are
    # not kept at all.
    indicator_model: IndicatorModel
    indicator_threshold: float
    profile: SiteProfile
    max_pages: int
    session_factory: sessionmaker[Session]
    blob_store: BlobStore
    default_phone_region: str
    progress: ProgressStream
    # Paths of the data directory (WARC evidence files go under ``config.warc_dir``).
    config: CrawlerConfig
    report: RunReport = field(default_factory=RunReport)
    # Set when the authorisation stops allowing the run ("authorisation revoked", ...).
    stop_reason: str | None = None
    # What the case heard from each URL last time (conditional requests of a recrawl).
    validators: Validators | None = None
    threads: PipelineThreads = field(default_factory=PipelineThreads)
