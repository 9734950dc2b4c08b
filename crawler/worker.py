"""The crawl worker: one crawl run in its own process.

Twisted's reactor cannot be restarted, so every run is a fresh ``python -m crawler.worker``
started by ``crawler.run_control``. Its configuration arrives as JSON on standard input
(never on the command line); progress goes to stdout as JSON lines; Scrapy's log goes to
the run's log file. The run's record is written as the run goes (``crawler.keeper``), so a
killed worker leaves the truth behind.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import uuid
from concurrent.futures.process import BrokenProcessPool
from importlib.metadata import PackageNotFoundError, version

from scrapy.crawler import CrawlerProcess
from twisted.python.failure import Failure

from crawler.config import CrawlerConfig
from crawler.context import CrawlContext, PipelineWorkers, ProgressStream, RunReport
from crawler.distributed import redis_settings, settled, wait_for_other_workers
from crawler.indicator_model import load_indicator_model
from crawler.netguard import (
    NetGuard,
    install_guard,
    network_event,
    network_policy,
    report_refusals,
)
from crawler.recrawl import Validators, mark_seen
from crawler.rendering import BrowserRequestGuard, rendering_settings
from crawler.scrapy_settings import build_scrapy_settings
from crawler.site_profile import get_site_profile
from crawler.spiders.ad_spider import AdSpider
from crawler.store import StoreSpec, close_store, open_store
from legal_policy.audit_log import record_event
from legal_policy.catalogue import load_catalogue
from legal_policy.pseudonyms import case_key, load_or_create_key
from legal_policy.retention import effective_catalogue
from storage.blobstore import BlobStore
from storage.db import make_engine, make_session_factory
from storage.models import CrawlRun
from storage.types import utcnow

# Scrapy's finish reason after a SIGINT: the run was interrupted, not finished.
_SHUTDOWN = "shutdown"


def software_version() -> str:
    """The installed adwatch version."""
    try:
        return version("adwatch")
    except PackageNotFoundError:
        return "0+unknown"


def run_worker(
    run_id: int, config: CrawlerConfig, log_suffix: str = "", *, joined: bool = False
) -> int:
    """Crawl for an already recorded run and write its outcome back; returns an exit code.

    A worker that ``joined`` a run (distributed mode) adds its counts and problems to the
    run's record; the run's own worker waits for it and sets the run's status.
    """
    progress = ProgressStream(sys.stdout)
    # Before any socket: the database (and Redis) now, the site's origins once known.
    guard = install_guard(
        network_policy(database_url=config.database_url, redis_url=config.redis_url)
    )
    guard.learn_allowed_names()
    # Forked now, before any thread of this process exists (``PipelineWorkers``).
    workers = PipelineWorkers()
    workers.start()
    try:
        return _run(run_id, config, log_suffix, joined, guard, progress, workers)
    finally:
        workers.shutdown()


def _run(
    run_id: int,
    config: CrawlerConfig,
    log_suffix: str,
    joined: bool,
    guard: NetGuard,
    progress: ProgressStream,
    workers: PipelineWorkers,
) -> int:
    engine = make_engine(config.database_url, sync_every_commit=False)
    session_factory = make_session_factory(engine)
    with session_factory() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            print(f"no crawl run {run_id}", file=sys.stderr)
            return 2
        site_key = run.site.key
        authorisation = run.authorisation
        site_id, authorisation_id = run.site_id, run.authorisation_id
        case_id, case_number = authorisation.case_id, authorisation.case_number
        legal_basis = authorisation.legal_basis
        expected_profile_sha = run.profile_sha256
        max_pages = authorisation.max_pages_per_run
        catalogue = effective_catalogue(session, load_catalogue(config.legal_catalogue))
        indicator_model = load_indicator_model()
        threshold = authorisation.indicator_threshold
        indicator_threshold = indicator_model.threshold if threshold is None else threshold
        # A resumed run (or a joined worker) goes on counting from where it was.
        report = RunReport.continuing(run)
    profile = get_site_profile(site_key, config.site_profiles_dir)
    # The page budget middleware applies the authorisation's limit and the profile's cap
    # (the lower wins, and says which); progress shows the lower of the two.
    authorised_pages = max_pages
    if profile.config.links.page_cap is not None:
        max_pages = min(max_pages, profile.config.links.page_cap)
    if profile.sha256 != expected_profile_sha:
        print("site profile changed since the run was registered", file=sys.stderr)
        return 2
    guard.admit_origins(profile.allowed_origins())
    report_refusals(guard, report)
    workers.store_now(
        open_store,
        StoreSpec(
            config=config,
            run_id=run_id,
            site_id=site_id,
            authorisation_id=authorisation_id,
            case_id=case_id,
            legal_basis=legal_basis,
            catalogue=catalogue,
        ),
    )
    context = CrawlContext(
        run_id=run_id,
        site_id=site_id,
        authorisation_id=authorisation_id,
        case_id=case_id,
        case_number=case_number,
        legal_basis=legal_basis,
        field_rules=catalogue.get(legal_basis).fields,
        catalogue=catalogue,
        pseudonym_key=case_key(load_or_create_key(config.secret_key_file), case_number),
        indicator_model=indicator_model,
        indicator_threshold=indicator_threshold,
        profile=profile,
        max_pages=max_pages,
        session_factory=session_factory,
        blob_store=BlobStore(config.blob_dir),
        default_phone_region=config.default_phone_region,
        progress=progress,
        config=config,
        workers=workers,
        report=report,
        validators=Validators(session_factory, case_id),
    )
    config.log_dir.mkdir(parents=True, exist_ok=True)
    extras = []
    worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    if config.redis_url:
        # Several workers share the run: frontier, duplicate filter and page budget.
        extras.append(redis_settings(config.database_url, run_id, config.redis_url, worker_id))
    if profile.config.render_javascript:
        browser_guard = BrowserRequestGuard(profile.allowed_origins(), report)
        extras.append(rendering_settings(profile, str(config.chromium_path), browser_guard))
    process = CrawlerProcess(
        build_scrapy_settings(
            profile,
            max_pages=authorised_pages,
            log_file=config.log_dir / f"run-{run_id}{log_suffix}.log",
            log_level=config.log_level,
            version=software_version(),
            extras=extras,
        ),
        install_root_handler=True,
    )
    # Pillow logs EXIF values (GPS included) at DEBUG while it parses a photo.
    logging.getLogger("PIL").setLevel(logging.INFO)
    crawler = process.create_crawler(AdSpider)
    crawl_errors: list[str] = []

    def record_crawl_error(failure: Failure) -> None:
        # Scrapy only logs a crawl that dies (a component that fails to load, say);
        # the run must end as failed, not as an empty success.
        failure.printTraceback(file=sys.stderr)
        crawl_errors.append(f"{failure.type.__name__}: {failure.getErrorMessage()}")

    progress.emit("started", run=run_id, pid=os.getpid())
    process.crawl(crawler, context=context).addErrback(record_crawl_error)
    try:
        process.start()
    finally:
        # Every store sent is done once the spider closed; the evidence is closed too.
        # If the store process died, the run stopped and said so (PIPELINE_PROCESS_GONE).
        with contextlib.suppress(BrokenProcessPool):
            workers.store_now(close_store)
    stats = crawler.stats.get_stats() if crawler.stats else {}
    finish_reason = str(stats.get("finish_reason", "unknown"))
    for message in crawl_errors:
        report.add_problem("crawler_error", "", message)
    if report.ads_not_stored:
        report.add_problem(
            "not_stored",
            "",
            f"{report.ads_not_stored} ads extracted after the run had to stop "
            f"({context.stop_reason}) were not stored",
        )
    engine.dispose()
    if config.redis_url and not joined:
        # The run's outcome counts what the other workers stored too.
        for worker in wait_for_other_workers(
            config.redis_url, config.database_url, run_id, worker_id
        ):
            report.add_problem(
                "worker_failed", "", f"worker {worker} did not write its last counts in time"
            )
    # The run's record and its audit entry are synced at commit (with all stored before).
    engine = make_engine(config.database_url)
    with make_session_factory(engine).begin() as session:
        mark_seen(session, report.seen_again)
        run = session.get(CrawlRun, run_id, with_for_update=True)
        assert run is not None
        if joined:
            report.write_to(run)
        else:
            _record_ending(run, report, crawl_errors, context.stop_reason, finish_reason)
        record_event(
            session, network_event(guard, run_id=run_id, actor=run.started_by, case=case_number)
        )
    if config.redis_url:
        settled(config.redis_url, config.database_url, run_id, worker_id)
    progress.emit(
        "finished",
        finish_reason=finish_reason,
        pages=report.pages_fetched,
        stop_reason=context.stop_reason,
    )
    engine.dispose()
    return 1 if crawl_errors else 0


def _record_ending(
    run: CrawlRun,
    report: RunReport,
    crawl_errors: list[str],
    stop_reason: str | None,
    finish_reason: str,
) -> None:
    """The run's status, end time and last counts, written by the run's own worker."""
    run.finished_at = utcnow()
    if crawl_errors:
        run.status = "failed"
    elif stop_reason is not None:
        run.status, run.stop_reason = "stopped", stop_reason
    elif finish_reason == _SHUTDOWN:
        run.status, run.stop_reason = "interrupted", "interrupted by the user (Ctrl-C)"
    else:
        run.status = "finished"
    report.write_to(run)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m crawler.worker``; the configuration comes on stdin."""
    parser = argparse.ArgumentParser(description="adwatch crawl worker (started by adwatch)")
    parser.add_argument("--run-id", type=int, required=True)
    # A worker that joins a run logs beside the run's own worker, not over it.
    parser.add_argument("--log-suffix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--joined", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = CrawlerConfig.from_json(sys.stdin.readline())
    return run_worker(args.run_id, config, args.log_suffix, joined=args.joined)


if __name__ == "__main__":
    sys.exit(main())
