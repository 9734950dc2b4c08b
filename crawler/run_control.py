"""Starting crawl runs: policy check, run record, worker subprocess, progress, outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from crawler.errors import CrawlFailed
from crawler.site_profile import get_site_profile
from crawler.worker import software_version
from legal_policy.access import AccessContext
from legal_policy.audit_log import record_event
from legal_policy.authorisation import check_crawl_allowed
from legal_policy.authorisation_store import get_authorisation, terms_of, upsert_site
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.checkpoints import CheckpointError, append_checkpoint_if_new
from legal_policy.monitor import apply_monitor
from legal_policy.registry import case_ref
from legal_policy.roles import Permission
from storage.models import CrawlRun
from storage.types import utcnow

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a finished crawl run did."""

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


def start_crawl_run(
    settings: Settings,
    session_factory: sessionmaker[Session],
    access: AccessContext,
    *,
    authorisation_id: int,
    site_key: str,
    catalogue: LegalBasisCatalogue,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> RunOutcome:
    """Run one crawl under an authorisation, as an investigator of its case.

    Refusals raise a ``PolicyError`` (the front door audits them). The site profile must be
    the one the authorisation pinned; the systematic-collection monitor may pause the
    authorisation first. ``catalogue`` carries the legal officers' retention periods.
    """
    now = now or utcnow()
    profile = get_site_profile(site_key, settings.resolved_site_profiles_dir)
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
        check_crawl_allowed(terms_of(authorisation), site_ref.pin(), now, runs_today or 0)
        site = upsert_site(session, site_ref)
        run = CrawlRun(
            authorisation_id=authorisation_id,
            site_id=site.id,
            started_by=access.user,
            started_at=now,
            software_version=software_version(),
            profile_sha256=profile.sha256,
        )
        session.add(run)
        session.flush()
        run_id = run.id
        case_number = authorisation.case_number
        record_event(
            session,
            access.event(
                "crawl.started",
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
    returncode, stderr_tail = _run_worker_process(settings, run_id, on_progress)
    with session_factory.begin() as session:
        run = session.get(CrawlRun, run_id)
        assert run is not None
        if returncode != 0 or run.status not in ("finished", "stopped"):
            run.status = "failed"
            run.finished_at = run.finished_at or utcnow()
            run.problems = [
                *run.problems,
                {"kind": "worker_failed", "url": "", "message": stderr_tail or "no output"},
            ]
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
                    "problems": len(run.problems),
                },
            ),
        )
        outcome = RunOutcome(
            run_id=run_id,
            status=run.status,
            stop_reason=run.stop_reason,
            pages_fetched=run.pages_fetched,
            ads_captured=run.ads_captured,
            ads_unchanged=run.ads_unchanged,
            images_stored=run.images_stored,
            requests_refused=run.requests_refused,
            problems=tuple(run.problems),
            log_file=str(settings.log_dir / f"run-{run_id}.log"),
        )
    # Anchor the run's entries outside the database (after the commit: never a head that
    # could still roll back).
    with session_factory() as session:
        try:
            append_checkpoint_if_new(
                session, settings.resolved_audit_checkpoint_file, f"crawl run {run_id} ended"
            )
        except (CheckpointError, OSError) as exc:
            outcome = replace(
                outcome,
                problems=(
                    *outcome.problems,
                    {"kind": "audit_checkpoint", "url": "", "message": str(exc)},
                ),
            )
    if outcome.status == "failed" and returncode != 0 and outcome.pages_fetched == 0:
        raise CrawlFailed(f"crawl run {run_id} failed: {stderr_tail}")
    return outcome


def _run_worker_process(
    settings: Settings, run_id: int, on_progress: ProgressCallback | None
) -> tuple[int, str]:
    update: dict[str, Any] = {"data_dir": settings.data_dir.resolve()}
    if settings.site_profiles_dir is not None:
        update["site_profiles_dir"] = settings.site_profiles_dir.resolve()
    worker_settings = settings.model_copy(update=update)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    # stderr to a file, not a pipe: a chatty library must never block the worker.
    stderr_path = settings.log_dir / f"run-{run_id}.worker.log"
    command = [
        sys.executable,
        "-m",
        "crawler.worker",
        "--run-id",
        str(run_id),
        "--settings-json",
        worker_settings.model_dump_json(),
    ]
    with (
        stderr_path.open("w", encoding="utf-8") as stderr_file,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr_file, text=True, bufsize=1
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library printed to stdout; progress lines are JSON only
            if on_progress is not None and isinstance(event, dict):
                on_progress(event)
        returncode = process.wait()
    stderr = stderr_path.read_text(encoding="utf-8", errors="replace")
    return returncode, stderr.strip()[-2000:]
