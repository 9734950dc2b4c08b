"""What one crawl run's components share: passed to the spider, never global."""

from __future__ import annotations

import asyncio
import ctypes
import json
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
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
# Linux prctl options: the signal a process gets when its parent ends; a process's name.
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
# The pipeline processes' names (``/proc/PID/comm``, at most 15 bytes).
COMPUTE_PROCESS_NAME = "adwatch-compute"
STORE_PROCESS_NAME = "adwatch-store"


class PipelineWorkers:
    """Processes for the pipelines' heavy work, so that the reactor goes on fetching.

    ``compute``: decoding, hashing and re-encoding images and cleaning pages (pure
    functions of their arguments). ``store``: one process for the database, blob store and
    WARC files (``crawler.store``), so stores keep their order and never contend with each
    other for SQLite's write lock. On threads, this work held the GIL most of the time and
    the crawl ran at a quarter of bare Scrapy's pace on two cores; processes run beside
    the reactor.

    Both processes are forked by ``start``, which the worker calls before it starts any
    thread (forking a process with threads can copy a lock some thread holds), so they
    start in milliseconds with every module loaded and the network guard installed. A
    pipeline process ignores Ctrl-C and SIGTERM (the worker stops gracefully and still
    needs it to store what is in flight), reads nothing from the worker's standard input,
    writes nothing to its progress stream, and is killed by the kernel when the worker
    ends (Linux ``PR_SET_PDEATHSIG``).
    """

    def __init__(self, ads_in_flight: int = ADS_IN_FLIGHT) -> None:
        forking = multiprocessing.get_context("fork")
        parent = os.getpid()
        self._compute = ProcessPoolExecutor(
            1,
            mp_context=forking,
            initializer=_become_pipeline_process,
            initargs=(parent, COMPUTE_PROCESS_NAME),
        )
        self._store = ProcessPoolExecutor(
            1,
            mp_context=forking,
            initializer=_become_pipeline_process,
            initargs=(parent, STORE_PROCESS_NAME),
        )
        # Back-pressure: Scrapy keeps downloading while the pipelines fall behind (it
        # counts only the bytes of the pages being processed), so ad pages wait here,
        # before they are parsed and their images fetched, rather than pile up in the
        # processes' queues with their parsed trees and all their bytes.
        self.ads_in_flight = asyncio.Semaphore(ads_in_flight)

    def start(self) -> None:
        """Fork both processes now (call before any thread of the worker starts)."""
        for pool in (self._compute, self._store):
            pool.submit(os.getpid).result()

    async def compute(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(*args)`` in the compute process and wait for it without
        blocking; ``function`` and its arguments must pickle."""
        return await asyncio.wrap_future(self._compute.submit(function, *args))

    async def store(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(*args)`` in the store process, after every call sent before."""
        return await asyncio.wrap_future(self._store.submit(function, *args))

    def store_now(self, function: Callable[..., _T], *args: Any) -> _T:
        """``store``, waited for in the calling thread (before the reactor runs)."""
        return self._store.submit(function, *args).result()

    def shutdown(self) -> None:
        """Finish queued work and stop the processes."""
        self._compute.shutdown(wait=True)
        self._store.shutdown(wait=True)


def _become_pipeline_process(parent: int, name: str) -> None:
    """Set up a freshly forked pipeline process (see ``PipelineWorkers``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    # Its name in ``ps -o comm`` and /proc/PID/comm: which stage it is.
    libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The worker's stdout is its progress stream, read by the process that started it
    # until it closes: a pipeline process must not hold it open.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)

    # A worker killed with SIGKILL cannot stop its processes: the kernel kills them with
    # it, so nothing is stored after the worker's end (its run's counts are read then).
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the worker died before the line above
        os._exit(1)


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
    # The pipeline processes, forked at the worker's start (``PipelineWorkers.start``).
    workers: PipelineWorkers
    report: RunReport = field(default_factory=RunReport)
    # Set when the authorisation stops allowing the run ("authorisation revoked", ...).
    stop_reason: str | None = None
    # What the case heard from each URL last time (conditional requests of a recrawl).
    validators: Validators | None = None
