"""A crawl run followed by linking its new ads into profiles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.linking import LinkOutcome, link_unlinked_ads
from adwatch.settings import Settings
from crawler.run_control import ProgressCallback, RunOutcome, start_crawl_run


@dataclass(frozen=True, slots=True)
class CrawlAndLinkOutcome:
    """The run's outcome and what linking its ads changed."""

    run: RunOutcome
    linking: LinkOutcome


def crawl_and_link(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    authorisation_id: int,
    site_key: str,
    actor: str,
    on_progress: ProgressCallback | None = None,
) -> CrawlAndLinkOutcome:
    """Crawl one authorised site, then link the newly captured ads into candidate profiles."""
    run = start_crawl_run(
        settings,
        session_factory,
        authorisation_id=authorisation_id,
        site_key=site_key,
        actor=actor,
        on_progress=on_progress,
    )
    with session_factory.begin() as session:
        linking = link_unlinked_ads(session, actor, default_region=settings.default_phone_region)
    return CrawlAndLinkOutcome(run, linking)
