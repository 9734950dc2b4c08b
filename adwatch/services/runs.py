"""Crawl runs as investigators, analysts and legal officers see them (their reach)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext
from legal_policy.roles import Permission
from storage.models import Authorisation, CrawlRun, Site


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
