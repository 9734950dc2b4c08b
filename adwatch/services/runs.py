"""Crawl runs as investigators, analysts and legal officers see them (their reach)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext
from legal_policy.registry import case_ref
from legal_policy.roles import Permission
from storage.models import Authorisation, Case, CrawlRun, Site, WarcFile


class RunNotFound(LookupError):
    """No crawl run with that id."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One crawl run: where, under what, when, how it ended, what it did."""

    run_id: int
    site: str
    authorisation_id: int
    case: str
    started_by: str
    started_at: datetime
    status: str
    stop_reason: str | None
    pages: int
    ads: int
    problems: int


@dataclass(frozen=True, slots=True)
class WarcFileView:
    """One WARC file of a run: where it is (relative to the data directory) and its hash."""

    path: str
    records: int
    size: int
    # None while the run still writes the file (or a killed run left it open).
    sha256: str | None
    created_at: datetime
    closed_at: datetime | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One crawl run in full: outcome, counts, problems by kind, log and evidence files.

    Problems are counted by kind only: their URLs name ads, and the details of a run are
    no consultation of content.
    """

    run_id: int
    case: str
    site: str
    authorisation_id: int
    legal_basis: str
    started_by: str
    software_version: str
    status: str
    stop_reason: str | None
    started_at: datetime
    finished_at: datetime | None
    pages_fetched: int
    ads_captured: int
    ads_unchanged: int
    ads_below_threshold: int
    images_stored: int
    requests_refused: int
    problems_by_kind: dict[str, int]
    # The run's Scrapy log, when it is still on disk (purge removes it with the run's data).
    log_file: Path | None
    logs_purged_at: datetime | None
    warc_files: tuple[WarcFileView, ...]

    @property
    def duration(self) -> timedelta | None:
        """How long the run took; None while it runs."""
        return None if self.finished_at is None else self.finished_at - self.started_at


def list_runs(session: Session, access: AccessContext, *, limit: int = 20) -> list[RunSummary]:
    """The latest runs of the cases the user's role reaches."""
    cases = access.case_filter(Permission.VIEW_RUNS)
    query = (
        select(CrawlRun, Site.key, Authorisation.case_number)
        .join(Site, Site.id == CrawlRun.site_id)
        .join(Authorisation, Authorisation.id == CrawlRun.authorisation_id)
        .order_by(CrawlRun.id.desc())
        .limit(limit)
    )
    if cases is not None:
        query = query.where(Authorisation.case_id.in_(cases))
    return [
        RunSummary(
            run.id,
            site,
            run.authorisation_id,
            case,
            run.started_by,
            run.started_at,
            run.status,
            run.stop_reason,
            run.pages_fetched,
            run.ads_captured,
            len(run.problems),
        )
        for run, site, case in session.execute(query)
    ]


def show_run(session: Session, access: AccessContext, run_id: int, *, log_dir: Path) -> RunDetail:
    """One run of a case the user's role reaches, with its WARC files (``AccessDenied``
    naming the run's case otherwise; ``RunNotFound`` when there is no such run)."""
    access.require(Permission.VIEW_RUNS)
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise RunNotFound(f"no crawl run {run_id}")
    authorisation = run.authorisation
    case = session.get(Case, authorisation.case_id)
    assert case is not None
    access.require(Permission.VIEW_RUNS, case_ref(case))
    log_file = log_dir / f"run-{run.id}.log"
    files = session.scalars(
        select(WarcFile).where(WarcFile.run_id == run.id).order_by(WarcFile.path)
    ).all()
    return RunDetail(
        run_id=run.id,
        case=case.number,
        site=run.site.key,
        authorisation_id=run.authorisation_id,
        legal_basis=authorisation.legal_basis,
        started_by=run.started_by,
        software_version=run.software_version,
        status=run.status,
        stop_reason=run.stop_reason,
        started_at=run.started_at,
        finished_at=run.finished_at,
        pages_fetched=run.pages_fetched,
        ads_captured=run.ads_captured,
        ads_unchanged=run.ads_unchanged,
        ads_below_threshold=run.ads_below_threshold,
        images_stored=run.images_stored,
        requests_refused=run.requests_refused,
        problems_by_kind=dict(
            sorted(Counter(str(p.get("kind", "unknown")) for p in run.problems).items())
        ),
        log_file=log_file if log_file.exists() else None,
        logs_purged_at=run.logs_purged_at,
        warc_files=tuple(
            WarcFileView(
                f.path, f.records, f.size, f.sha256, f.created_at, f.closed_at, f.expires_at
            )
            for f in files
        ),
    )
