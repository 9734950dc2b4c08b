"""Helpers shared by tests: register an authorisation as the legal officer, crawl as the
investigator (the users come from the ``people`` fixture in ``conftest.py``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.cli import run
from adwatch.cli.app_context import AppContext
from adwatch.services.crawling import CrawlAndLinkOutcome, crawl_and_link
from adwatch.services.link_snapshots import LinkSnapshots
from adwatch.services.linking import LinkOutcome, link_unlinked_ads
from adwatch.settings import Settings
from crawler.site_profile import get_site_profile
from legal_policy.access import AccessContext
from legal_policy.authorisation_store import NewAuthorisation, SiteRef, register_authorisation
from legal_policy.catalogue import LegalBasisCatalogue, load_catalogue
from legal_policy.retention import effective_catalogue
from storage.models import Ad, AdImage, AdPhone, CrawlRun, Phone, ProfileMembership


def catalogue_of(settings: Settings, session_factory: sessionmaker[Session]) -> LegalBasisCatalogue:
    """The catalogue in force for these settings (file plus legal officers' periods)."""
    with session_factory() as session:
        return effective_catalogue(session, load_catalogue(settings.legal_catalogue))


def authorise(
    settings: Settings,
    session_factory: sessionmaker[Session],
    legal: AccessContext,
    *,
    case: str = "CASE-1",
    site: str = "demo",
    legal_basis: str = "wpg-9",
    valid_until: datetime | None = None,
    max_pages: int = 200,
    max_runs_per_day: int = 10,
    indicator_threshold: float | None = 0.0,
) -> int:
    """Register an authorisation for the site profile as it reads now; returns its id.

    Its indicator threshold is 0 (every ad of the demo site is kept) unless a test asks for
    the filter (``None``: the indicator model's own threshold)."""
    ref = get_site_profile(site, settings.resolved_site_profiles_dir).site_ref()
    now = datetime.now(UTC)
    with session_factory.begin() as session:
        row = register_authorisation(
            session,
            legal,
            NewAuthorisation(
                case_number=case,
                legal_basis=legal_basis,
                order_reference="ORDER-T1",
                purpose="criminal_investigation",
                officer="test officer",
                dpia_reference="DPIA-T1",
                valid_from=now - timedelta(hours=1),
                valid_until=valid_until or now + timedelta(days=1),
                sites=(ref,),
                max_pages_per_run=max_pages,
                max_runs_per_day=max_runs_per_day,
                indicator_threshold=indicator_threshold,
            ),
            catalogue_of(settings, session_factory),
        )
        return row.id


def crawl(
    settings: Settings,
    session_factory: sessionmaker[Session],
    investigator: AccessContext,
    authorisation_id: int,
    site: str = "demo",
    *,
    on_progress: Callable[[dict[str, object]], None] | None = None,
    resume: int | None = None,
) -> tuple[CrawlAndLinkOutcome, list[dict[str, object]]]:
    """One crawl run (or a resumed one) and linking, as the investigator; returns the
    outcome and the progress events."""
    events: list[dict[str, object]] = []

    def record(event: dict[str, object]) -> None:
        events.append(event)
        if on_progress is not None:
            on_progress(event)

    outcome = crawl_and_link(
        settings.crawler_config(),
        session_factory,
        investigator,
        authorisation_id=authorisation_id,
        site_key=site,
        catalogue=catalogue_of(settings, session_factory),
        on_progress=record,
        resume_run_id=resume,
    )
    return outcome, events


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root``."""
    return [path for path in root.rglob("*") if path.is_file()]


START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Store:
    """Writes ads of one case the way the crawler's store pipeline does (after
    minimisation), under an authorisation registered by the legal officer."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        legal: AccessContext,
        case: str = "CASE-1",
        *,
        legal_basis: str = "wpg-9",
        valid_until: datetime | None = None,
        site: str = "demo",
    ) -> None:
        self.session_factory = session_factory
        now = datetime.now(UTC)
        ref = SiteRef(
            site, site, f"http://{site}.test", "0" * 64, frozenset({f"http://{site}.test:80"})
        )
        with session_factory.begin() as session:
            authorisation = register_authorisation(
                session,
                legal,
                NewAuthorisation(
                    case_number=case,
                    legal_basis=legal_basis,
                    order_reference="ORDER-T2",
                    purpose="criminal_investigation",
                    officer="test officer",
                    dpia_reference="DPIA-T2",
                    valid_from=now - timedelta(hours=1),
                    valid_until=valid_until or now + timedelta(days=1),
                    sites=(ref,),
                ),
                load_catalogue(),
            )
            site_id = authorisation.site_pins[0].site_id
            run = CrawlRun(
                authorisation_id=authorisation.id,
                site_id=site_id,
                started_by="tester",
                software_version="test",
                profile_sha256="0" * 64,
            )
            session.add(run)
            session.flush()
            self.ids = (authorisation.id, site_id, run.id, authorisation.case_id)
            self.case_id = authorisation.case_id
            self.legal_basis = legal_basis
            self.authorisation_id = authorisation.id
        self.site = site
        self.count = 0

    def ad(
        self,
        city: str,
        text: str,
        phones: tuple[str, ...] = (),
        photo: int | None = None,
        *,
        expires_at: datetime | None = None,
        blob: str | None = None,
    ) -> int:
        authorisation_id, site_id, run_id, case_id = self.ids
        self.count += 1
        with self.session_factory.begin() as session:
            ad = Ad(
                site_id=site_id,
                run_id=run_id,
                authorisation_id=authorisation_id,
                case_id=case_id,
                legal_basis=self.legal_basis,
                expires_at=expires_at or datetime.now(UTC) + timedelta(days=30),
                url=f"http://{self.site}.test/ad/{case_id}-{self.count}",
                title=f"Nieuw in {city}",
                text=text,
                city=city,
                posted_at=START + timedelta(days=self.count),
                raw_sha256=None,
                content_sha256=hashlib.sha256(
                    f"{site_id}:{case_id}:{self.count}".encode()
                ).hexdigest(),
            )
            if photo is not None:
                ad.images.append(
                    AdImage(
                        position=0,
                        url="http://127.0.0.1:8765/img/1.jpg",
                        blob_sha256=blob,
                        phash=f"{photo:016x}",
                        phash_variants=[],
                        width=640,
                        height=480,
                    )
                )
            for position, e164 in enumerate(phones):
                phone = session.scalar(select(Phone).where(Phone.e164 == e164))
                if phone is None:
                    phone = Phone(e164=e164, region="GB")
                    session.add(phone)
                    session.flush()
                ad.phone_links.append(AdPhone(phone_id=phone.id, raw=e164, position=position))
            session.add(ad)
            session.flush()
            return ad.id

    def link(
        self, investigator: AccessContext, snapshots: LinkSnapshots | None = None
    ) -> LinkOutcome:
        """Link this case's unlinked ads, as its investigator (with ``snapshots``: through
        the scope's engine snapshot, as crawls do)."""
        with self.session_factory.begin() as session:
            return link_unlinked_ads(session, investigator, [self.case_id], snapshots=snapshots)

    def profile_of(self, ad_id: int) -> int:
        with self.session_factory() as session:
            profile_id = session.scalar(
                select(ProfileMembership.profile_id).where(ProfileMembership.ad_id == ad_id)
            )
            assert profile_id is not None
            return profile_id


class Cli:
    """Runs ``adwatch`` commands in process with the test's settings, capturing output."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        console = Console(record=True, width=300, force_terminal=False)
        errors = Console(record=True, width=300, stderr=True, force_terminal=False)
        context = AppContext(self.settings, console=console, error_console=errors)
        code = run(list(argv), obj=context)
        return code, console.export_text(), errors.export_text()

    def as_(self, user: str, *argv: str) -> tuple[int, str, str]:
        """The command run as a registered user (``--as USER``)."""
        return self("--as", user, *argv)


def adwatch_process(data_dir: Path, *argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """``python -m adwatch`` in a process of its own, with ``ADWATCH_DATA_DIR`` and the given
    ``ADWATCH_`` variables: for what happens before settings exist (the environment)."""
    env = {**os.environ, "ADWATCH_DATA_DIR": str(data_dir), **environ}
    return subprocess.run(
        [sys.executable, "-m", "adwatch", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def slow_down(settings: Settings, delay: float = 0.4) -> None:
    """Make the demo profile polite: one request at a time, ``delay`` seconds apart."""
    profile = settings.resolved_site_profiles_dir / "demo.yaml"
    profile.write_text(
        profile.read_text()
        .replace("download_delay_seconds: 0", f"download_delay_seconds: {delay}")
        .replace("concurrent_requests: 4", "concurrent_requests: 1")
    )
