"""The systematic-collection monitor: figures per authorisation, warnings, pause, review."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.authorisation import SitePin, check_crawl_allowed
from legal_policy.authorisation_store import get_authorisation, review_collection, terms_of
from legal_policy.catalogue import MonitorThresholds, load_catalogue
from legal_policy.errors import AccessDenied, CollectionPaused
from legal_policy.monitor import apply_monitor, monitor_status
from storage.models import AuditEntry
from tests.conftest import People
from tests.support import Store

LOW = MonitorThresholds(
    days_running=30, ads_kept=3, distinct_profiles=10, cross_site_links=1,
    pause_crawls_when_crossed=True,
)  # fmt: skip


def test_figures_count_ads_profiles_and_profiles_that_link_sites(
    session_factory: sessionmaker[Session], people: People
) -> None:
    demo = Store(session_factory, people.legal, site="demo")
    other = Store(session_factory, people.legal, site="other")
    demo.ad("Utrecht", "Alleen deze week.", ("+442079460501",))
    demo.ad("Breda", "Nu in Breda.", ("+442079460502",))
    other.ad("Zwolle", "Terug in Zwolle.", ("+442079460501",))  # same number, other site
    demo.link(people.investigator)
    other.link(people.investigator)
    now = datetime.now(UTC)
    with session_factory() as session:
        status = monitor_status(
            session, get_authorisation(session, demo.authorisation_id), LOW, now
        )
    assert status.figures["ads_kept"] == 2
    assert status.figures["distinct_profiles"] == 2
    assert status.figures["cross_site_links"] == 1
    assert status.crossed == ("cross_site_links",)


def test_crossing_a_threshold_pauses_crawls_until_a_legal_officer_reviews(
    session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal)
    for number in range(3):
        store.ad("Utrecht", f"Advertentie {number}.", (f"+44207946060{number}",))
    store.link(people.investigator)
    now = datetime.now(UTC)
    with session_factory.begin() as session:
        authorisation = get_authorisation(session, store.authorisation_id)
        status = apply_monitor(session, authorisation, LOW, now)
        assert status.crossed == ("ads_kept",) and status.paused
        # Measured again: paused once, audited once.
        apply_monitor(session, authorisation, LOW, now)
    pin = SitePin("demo", "0" * 64, frozenset({"http://demo.test:80"}))
    with session_factory() as session:
        terms = terms_of(get_authorisation(session, store.authorisation_id))
        with pytest.raises(CollectionPaused, match="adwatch authorisation review"):
            check_crawl_allowed(terms, pin, now, 0)
        paused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "authorisation.paused")
        ).all()
        assert len(paused) == 1 and paused[0].cases == "|CASE-1|"

    with pytest.raises(AccessDenied), session_factory.begin() as session:
        review_collection(session, people.analyst, store.authorisation_id, "fine", LOW, now)
    with session_factory.begin() as session:
        status = review_collection(
            session, people.legal, store.authorisation_id, "still proportionate", LOW, now
        )
    assert not status.paused and status.crossed == ()
    with session_factory() as session:
        check_crawl_allowed(
            terms_of(get_authorisation(session, store.authorisation_id)), pin, now, 0
        )
    # Thresholds count from the review: two more ads are not yet three.
    store.ad("Breda", "Nieuw.", ("+442079460610",))
    store.ad("Breda", "Nieuwer.", ("+442079460611",))
    with session_factory.begin() as session:
        status = apply_monitor(
            session, get_authorisation(session, store.authorisation_id), LOW, now
        )
    assert status.growth("ads_kept") == 2 and not status.paused


def test_without_pausing_the_monitor_only_warns(
    session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal)
    for number in range(4):
        store.ad("Utrecht", f"Advertentie {number}.", (f"+44207946070{number}",))
    warn_only = replace(LOW, pause_crawls_when_crossed=False)
    with session_factory.begin() as session:
        status = apply_monitor(
            session,
            get_authorisation(session, store.authorisation_id),
            warn_only,
            datetime.now(UTC) + timedelta(days=1),
        )
    assert status.crossed and not status.paused


def test_the_bundled_thresholds_are_read_from_the_catalogue() -> None:
    monitor = load_catalogue().monitor
    assert monitor.days_running >= 1 and monitor.pause_crawls_when_crossed is False
