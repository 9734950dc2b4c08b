"""A crawl run followed by linking its new ads into profiles, inside the run's case."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.link_snapshots import open_link_snapshots
from adwatch.services.linking import LinkOutcome, link_unlinked_ads
from crawler.config import CrawlerConfig
from crawler.run_control import ProgressCallback, RunOutcome, start_crawl_run
from legal_policy.access import AccessContext
from legal_policy.authorisation_store import get_authorisation
from legal_policy.catalogue import LegalBasisCatalogue
from legal_policy.monitor import MonitorStatus, apply_monitor
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class CrawlAndLinkOutcome:
    """The run's outcome, what linking its ads changed, and the monitor afterwards."""

    run: RunOutcome
    linking: LinkOutcome
    monitor: MonitorStatus


def crawl_and_link(
    config: CrawlerConfig,
    session_factory: sessionmaker[Session],
    access: AccessContext,
    *,
    authorisation_id: int,
    site_key: str,
    catalogue: LegalBasisCatalogue,
    on_progress: ProgressCallback | None = None,
    resume_run_id: int | None = None,
) -> CrawlAndLinkOutcome:
    """Crawl one authorised site as an investigator of its case (or resume a failed or
    interrupted run), then link the newly captured ads into the case's candidate profiles
    and update the collection monitor."""
    run = start_crawl_run(
        config,
        session_factory,
        access,
        authorisation_id=authorisation_id,
        site_key=site_key,
        catalogue=catalogue,
        on_progress=on_progress,
        resume_run_id=resume_run_id,
    )
    with session_factory.begin() as session:
        case_id = get_authorisation(session, authorisation_id).case_id
        linking = link_unlinked_ads(
            session,
            access,
            [case_id],
            default_region=config.default_phone_region,
            snapshots=open_link_snapshots(config.data_dir, config.secret_key_file),
        )
    with session_factory.begin() as session:
        monitor = apply_monitor(
            session, get_authorisation(session, authorisation_id), catalogue.monitor, utcnow()
        )
    return CrawlAndLinkOutcome(run, linking, monitor)
