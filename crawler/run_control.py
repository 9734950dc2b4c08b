"""Starting crawl runs: policy check, run record, worker subprocess, progress, outcome.

A run's record tells the truth whatever happens to its processes: the worker writes its
counts as it goes; when it dies (killed, crashed) the run ends ``failed`` with the signal
and the counts of what it really stored; Ctrl-C ends it ``interrupted`` after the worker
has stopped cleanly; a run stopped because its authorisation ended is ``stopped``. A run
that failed or was interrupted can be resumed: everything it stored is recognised and
not stored twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crawler.config import CrawlerConfig
from crawler.errors import CrawlFailed, InvalidRun
from crawler.middlewares import problem_counts, refused_hosts
from crawler.site_profile import get_site_profile
from crawler.worker import software_version
from legal_policy.access import AccessContext
from legal_policy.audit_log import record_event
from legal_policy.authorisation import check_crawl_allowed, stop_reason
from legal_policy.authorisation_store import get_authorisation, terms_of, upsert_site
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.checkpoints import CheckpointError, append_checkpoint_if_new
from legal_policy.monitor import apply_monitor
from legal_policy.registry import case_ref
from legal_policy.roles import Permission
from storage.models import Ad, AdImage, CrawlRun
from storage.types import utcnow

ProgressCallback = Callable[[dict[str, Any]], None]

# Runs that may be resumed: they ended without finishing their work.
RESUMABLE = ("failed", "interrupted")
# How long the worker gets to stop cleanly after Ctrl-C before it is terminated.
INTERRUPT_GRACE_SECONDS = 30


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a crawl run did."""

    run_id: int
    status: str
    stop_reason: str | None
    pages_fetched: int
    ads_captured: int
    ads_unchanged: int
    images_stored: int
    requests_refused: int
    problems: tuple[dict[str, str], ...]
    log_file: str
    ads_below_threshold: int = 0


def start_crawl_run(
    config: CrawlerConfig,
    session_factory: sessionmaker[Session],
    access: AccessContext,
    *,
    authorisation_id: int,
    site_key: str,
    catalogue: LegalBasisCatalogue,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
    resume_run_id: int | None = None,
) -> RunOutcome:
    """Run one crawl under an authorisation, as an investigator of its case.

    Refusals raise a ``PolicyError`` (the front door audits them). The site profile must be
    the one the authorisation pinned; the systematic-collection monitor may pause the
    authorisation first. ``catalogue`` carries the legal officers' retention periods.
    ``resume_run_id`` continues a failed or interrupted run of the same authorisation and
    site instead of starting a new one.
    """
    now = now or utcnow()
    profile = get_site_profile(site_key, config.site_profiles_dir)
    with session_factory.begin() as session:
        authorisation = get_authorisation(session, authorisation_id)
        access.require(Permission.START_CRAWL, case_ref(authorisation.case))
        # Committed on its own: a pause is recorded even though this crawl is then refused.
        apply_monitor(session, authorisation, catalogue.monitor, now)
    with session_factory.begin() as session:
        authorisation = get_authorisation(session, authorisation_id)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        runs_today = session.scalar(
            select(func.count(CrawlRun.id)).where(
                CrawlRun.authorisation_id == authorisation_id,
                CrawlRun.started_at >= day_start,
                CrawlRun.started_at < day_start + timedelta(days=1),
            )
        )
        site_ref = profile.site_ref()
        # A resumed run is the same run: it does not count against the day's runs again.
        already = (runs_today or 0) - (1 if resume_run_id is not None else 0)
        check_crawl_allowed(terms_of(authorisation), site_ref.pin(), now, max(already, 0))
        site = upsert_site(session, site_ref)
        case_number = authorisation.case_number
        if resume_run_id is not None:
            run = _resumable(session, resume_run_id, authorisation_id, site.id, case_number)
            run.status, run.finished_at, run.stop_reason = "running", None, None
            run.profile_sha256 = profile.sha256
            action = "crawl.resumed"
        else:
            run = CrawlRun(
                authorisation_id=authorisation_id,
                site_id=site.id,
                started_by=access.user,
                started_at=now,
                software_version=software_version(),
                profile_sha256=profile.sha256,
            )
            session.add(run)
            action = "crawl.started"
        session.flush()
        run_id = run.id
        record_event(
            session,
            access.event(
                action,
                f"crawl_run:{run_id}",
                properties={
                    "authorisation_id": authorisation_id,
                    "site": site_key,
                    "profile_sha256": profile.sha256,
                    "allowed_origins": sorted(profile.allowed_origins()),
                    "max_pages": authorisation.max_pages_per_run,
                    "legal_basis": authorisation.legal_basis,
                    "catalogue_sha256": catalogue.digest,
                },
                cases=[case_number],
            ),
        )
    ending = _run_worker_process(config, run_id, on_progress)
    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        if ending.failure is not None or run.status == "running":
            _record_failure(session, run, ending)
        record_event(
            session,
            access.event(
                "crawl.finished",
                f"crawl_run:{run_id}",
                cases=[case_number],
                properties={
                    "status": run.status,
                    "stop_reason": run.stop_reason,
                    "pages_fetched": run.pages_fetched,
                    "ads_captured": run.ads_captured,
                    "ads_unchanged": run.ads_unchanged,
                    "images_stored": run.images_stored,
                    "requests_refused": run.requests_refused,
                    "ads_below_threshold": run.ads_below_threshold,
                    "problems": len(run.problems),
                    # Every dropped request by kind, and the hosts refused (no paths).
                    "problems_by_kind": problem_counts(run.problems),
                    "refused_hosts": refused_hosts(run.problems),
                },
            ),
        )
        outcome = _outcome_of(run, config)
    problems = list(outcome.problems)
    # Anchor the run's entries outside the database (after the commit: never a head that
    # could still roll back).
    with session_factory() as session:
        try:
            append_checkpoint_if_new(
                session, config.audit_checkpoint_file, f"crawl run {run_id} ended"
            )
        except (CheckpointError, OSError) as exc:
            problems.append({"kind": "audit_checkpoint", "url": "", "message": str(exc)})
    # Only a worker that got nothing done is an error; one killed mid-run is a failed run
    # that ``--resume`` continues.
    if (
        outcome.status == "failed"
        and outcome.pages_fetched == 0
        and outcome.ads_captured == 0
        and ending.failure
    ):
        raise CrawlFailed(f"crawl run {run_id} failed: {ending.failure}")
    return RunOutcome(**{**_fields(outcome), "problems": tuple(problems)})


def join_run(
    config: CrawlerConfig,
    session_factory: sessionmaker[Session],
    access: AccessContext,
    run_id: int,
    *,
    on_progress: ProgressCallback | None = None,
) -> RunOutcome:
    """Add a worker to a running crawl run (distributed mode): it takes pages from the
    run's shared frontier in Redis until the run has none left.

    Refused without Redis (a run then has one worker), for a run that is not running, and
    when the run's authorisation no longer allows crawling. The run's own crawl records its
    outcome; this returns the run as it stands when this worker is done.
    """
    if not config.redis_url:
        raise InvalidRun(
            "a worker can only join a run whose frontier is shared: set ADWATCH_REDIS_URL "
            "(the same Redis as the run's)"
        )
    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            raise InvalidRun(f"no crawl run {run_id}")
        authorisation = get_authorisation(session, run.authorisation_id)
        case_number = authorisation.case_number
        access.require(Permission.START_CRAWL, case_ref(authorisation.case))
        if run.status != "running":
            raise InvalidRun(f"crawl run {run_id} is {run.status}, not running", case=case_number)
        reason = stop_reason(terms_of(authorisation), utcnow())
        if reason is not None:
            raise InvalidRun(f"crawl run {run_id} cannot be joined: {reason}", case=case_number)
        record_event(
            session,
            access.event("crawl.joined", f"crawl_run:{run_id}", cases=[case_number]),
        )
    ending = _run_worker_process(config, run_id, on_progress, log_suffix=f".join-{os.getpid()}")
    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id, with_for_update=True)
        assert run is not None
        if ending.failure is not None:
            run.problems = [
                *run.problems,
                {"kind": "worker_failed", "url": "", "message": ending.failure},
            ]
        return _outcome_of(run, config)


def _fields(outcome: RunOutcome) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in RunOutcome.__dataclass_fields__}


def _resumable(
    session: Session, run_id: int, authorisation_id: int, site_id: int, case: str
) -> CrawlRun:
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise InvalidRun(f"no crawl run {run_id}", case=case)
    if run.authorisation_id != authorisation_id or run.site_id != site_id:
        raise InvalidRun(
            f"crawl run {run_id} ran under authorisation {run.authorisation_id} on another "
            "site; resume it with its own --authorisation and --site",
            case=case,
        )
    if run.status not in RESUMABLE:
        raise InvalidRun(
            f"crawl run {run_id} is {run.status}; only a failed or interrupted run can be resumed",
            case=case,
        )
    return run


@dataclass(frozen=True, slots=True)
class _WorkerEnding:
    """How the worker process ended: None for a clean exit, or what went wrong."""

    failure: str | None
    interrupted: bool


def _record_failure(session: Session, run: CrawlRun, ending: _WorkerEnding) -> None:
    """The worker did not finish its own record: count what it really stored."""
    run.status = "failed"
    run.finished_at = run.finished_at or utcnow()
    run.ads_captured = int(
        session.scalar(select(func.count(Ad.id)).where(Ad.run_id == run.id)) or 0
    )
    run.images_stored = int(
        session.scalar(
            select(func.count(AdImage.id))
            .join(Ad, Ad.id == AdImage.ad_id)
            .where(Ad.run_id == run.id, AdImage.blob_sha256.is_not(None))
        )
        or 0
    )
    # The last count flush may predate the kill; every stored ad was at least one page.
    run.pages_fetched = max(run.pages_fetched, run.ads_captured)
    run.problems = [
        *run.problems,
        {"kind": "worker_failed", "url": "", "message": ending.failure or "no output"},
    ]


def _outcome_of(run: CrawlRun, config: CrawlerConfig) -> RunOutcome:
    return RunOutcome(
        run_id=run.id,
        status=run.status,
        stop_reason=run.stop_reason,
        pages_fetched=run.pages_fetched,
        ads_captured=run.ads_captured,
        ads_unchanged=run.ads_unchanged,
        images_stored=run.images_stored,
        requests_refused=run.requests_refused,
        problems=tuple(run.problems),
        log_file=str(config.log_dir / f"run-{run.id}.log"),
        ads_below_threshold=run.ads_below_threshold,
    )


def _run_worker_process(
    config: CrawlerConfig,
    run_id: int,
    on_progress: ProgressCallback | None,
    *,
    log_suffix: str = "",
) -> _WorkerEnding:
    config.log_dir.mkdir(parents=True, exist_ok=True)
    # stderr to a file, not a pipe: a chatty library must never block the worker.
    stderr_path = config.log_dir / f"run-{run_id}.worker{log_suffix}.log"
    command = [sys.executable, "-m", "crawler.worker", "--run-id", str(run_id)]
    if log_suffix:  # a worker that joins a running run
        command += ["--log-suffix", log_suffix, "--joined"]
    interrupted = False
    with (
        stderr_path.open("w", encoding="utf-8") as stderr_file,
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            bufsize=1,
            # Its own session: a terminal's Ctrl-C reaches adwatch only, which passes on
            # exactly one SIGINT (Scrapy stops cleanly on the first, hard on the second).
            start_new_session=True,
        ) as process,
    ):
        assert process.stdin is not None and process.stdout is not None
        # The configuration (database URL included) goes by stdin, never by argv.
        process.stdin.write(config.to_json() + "\n")
        process.stdin.close()
        while True:
            try:
                _follow(process, on_progress)
                break
            except KeyboardInterrupt:
                if interrupted:  # a second Ctrl-C: stop waiting for a clean stop
                    process.terminate()
                    continue
                interrupted = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGINT)
        try:
            returncode = process.wait(timeout=INTERRUPT_GRACE_SECONDS if interrupted else None)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait()
    stderr = stderr_path.read_text(encoding="utf-8", errors="replace").strip()[-2000:]
    if returncode == 0:
        return _WorkerEnding(None, interrupted)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return _WorkerEnding(f"the worker was killed by {name}", interrupted)
    return _WorkerEnding(f"the worker exited with code {returncode}: {stderr}", interrupted)


def _follow(process: subprocess.Popen[str], on_progress: ProgressCallback | None) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a library printed to stdout; progress lines are JSON only
        if on_progress is not None and isinstance(event, dict):
            on_progress(event)
