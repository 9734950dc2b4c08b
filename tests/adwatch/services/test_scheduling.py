"""The scheduler for real, on SQLite and PostgreSQL: APScheduler 3 on its job store in the test's
database, firing real crawls of the demo site on loopback, stopping schedules whose
authorisation ended, coalescing after downtime, one scheduler per database, the daily purge.

Intervals of a second or two come through the service API (people get at least a minute).
Where a firing only has to happen, not to crawl, the authorisation's one run of the day is
taken first: every firing is then refused by the policy in milliseconds, and audited.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from apscheduler.schedulers.base import STATE_PAUSED  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.services.scheduling import (
    PURGE_JOB_ID,
    InvalidSchedule,
    SchedulerAlreadyRunning,
    SchedulerRunner,
    add_schedule,
    crontab_trigger,
    format_interval,
    list_schedules,
    parse_interval,
    pause_schedule,
    remove_schedule,
    resume_schedule,
)
from adwatch.settings import Settings
from legal_policy.access import SCHEDULER, AccessContext
from legal_policy.authorisation_store import revoke_authorisation
from legal_policy.errors import AuthorisationRevoked
from legal_policy.registry import set_user_disabled
from storage.models import Ad, AuditEntry, Authorisation, CrawlRun, Schedule, apscheduler_jobs
from tests.conftest import People
from tests.support import Store, authorise, catalogue_of

T = TypeVar("T")

# --- helpers ---------------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


class Events(list[str]):
    """The lines the scheduler emits."""

    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def runner(
    settings: Settings, session_factory: sessionmaker[Session], events: Events
) -> Iterator[Callable[[], SchedulerRunner]]:
    """Makes schedulers that look at the schedules table twice a second; all stopped at the
    end, whatever happened."""
    made: list[SchedulerRunner] = []

    def make() -> SchedulerRunner:
        made.append(SchedulerRunner(settings, session_factory, emit=events, sync_seconds=0.5))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def schedule_every(
    settings: Settings,
    session_factory: sessionmaker[Session],
    access: AccessContext,
    authorisation_id: int,
    seconds: int,
) -> Schedule:
    with session_factory.begin() as session:
        return add_schedule(
            session,
            access,
            authorisation_id=authorisation_id,
            site_key="demo",
            every=f"{seconds}s",
            site_profiles_dir=settings.resolved_site_profiles_dir,
            min_interval_seconds=1,
        )


def take_todays_run(session_factory: sessionmaker[Session], authorisation_id: int) -> None:
    """Use up an authorisation allowing one run a day: later firings are refused at once."""
    with session_factory.begin() as session:
        authorisation = session.get(Authorisation, authorisation_id)
        assert authorisation is not None and authorisation.max_runs_per_day == 1
        session.add(
            CrawlRun(
                authorisation_id=authorisation_id,
                site_id=authorisation.site_pins[0].site_id,
                started_by="investigator",
                software_version="test",
                profile_sha256="0" * 64,
                status="finished",
            )
        )


def entries(
    session_factory: sessionmaker[Session], subject: str, action: str | None = None
) -> list[AuditEntry]:
    with session_factory() as session:
        query = select(AuditEntry).where(AuditEntry.subject == subject).order_by(AuditEntry.seq)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        return list(session.scalars(query))


def schedule_row(session_factory: sessionmaker[Session], schedule_id: int) -> Schedule | None:
    with session_factory() as session:
        return session.get(Schedule, schedule_id)


def is_stopped(session_factory: sessionmaker[Session], schedule_id: int) -> bool:
    row = schedule_row(session_factory, schedule_id)
    return row is not None and row.stopped_at is not None


def job_ids(session_factory: sessionmaker[Session]) -> set[str]:
    with session_factory() as session:
        return set(session.scalars(select(apscheduler_jobs.c.id)))


def runs(session_factory: sessionmaker[Session]) -> list[CrawlRun]:
    with session_factory() as session:
        return list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))


def revoke(
    settings: Settings, session_factory: sessionmaker[Session], people: People, auth: int
) -> None:
    with session_factory.begin() as session:
        revoke_authorisation(
            session, people.legal, auth, "order withdrawn", catalogue_of(settings, session_factory)
        )


# --- timing: pure --------------------------------------------------------------------------


def test_intervals_are_read_in_units_and_a_person_gets_at_least_a_minute() -> None:
    assert [parse_interval(v) for v in ("90s", "15m", "6h", "1d", " 2H ")] == [
        90, 900, 21600, 86400, 7200
    ]  # fmt: skip
    assert [format_interval(s) for s in (90, 900, 21600, 86400)] == ["90s", "15m", "6h", "1d"]
    with pytest.raises(InvalidSchedule, match="at most once every 1m"):
        parse_interval("59s")
    for bad in ("6", "h", "6x", "-5m", "1.5h", ""):
        with pytest.raises(InvalidSchedule, match="not an interval"):
            parse_interval(bad)
    assert parse_interval("2s", min_seconds=1) == 2


def test_cron_is_five_fields_in_utc_and_bad_ones_say_why() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    weekdays = crontab_trigger("30 2 * * 1-5").get_next_fire_time(None, saturday)
    assert weekdays == datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # Monday
    with pytest.raises(InvalidSchedule, match="has 4 fields"):
        crontab_trigger("0 2 * *")
    with pytest.raises(InvalidSchedule, match="not a valid crontab expression"):
        crontab_trigger("61 2 * * *")
    with pytest.raises(InvalidSchedule, match="unknown day of week"):
        crontab_trigger("0 2 * * 8")
    with pytest.raises(InvalidSchedule, match="restrict one of them"):
        crontab_trigger("0 2 1 * 1")


@given(st.lists(st.integers(0, 7), min_size=1, max_size=7, unique=True))
def test_cron_days_of_the_week_count_as_crontab_counts_them(days: list[int]) -> None:
    """0 and 7 are Sunday, 1 Monday (APScheduler 3's own from_crontab takes 0 for Monday):
    over a fortnight, the expression fires on exactly the weekdays crontab means."""
    trigger = crontab_trigger(f"0 12 * * {','.join(map(str, days))}")
    moment = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # a Sunday
    fired: set[int] = set()
    for _ in range(14):
        moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))
        fired.add(moment.isoweekday() % 7)  # crontab numbering: Sunday 0
    assert fired == {day % 7 for day in days}


# --- firing real crawls --------------------------------------------------------------------


@pytest.mark.slow
def test_a_schedule_crawls_as_its_creator_until_its_authorisation_is_revoked(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    runner: Callable[[], SchedulerRunner],
    events: Events,
) -> None:
    """Every two seconds the demo site is crawled for real, as the investigator who made the
    schedule, each run audited by the crawl itself; the schedule records its last firing and
    run. Once the legal officer revokes the authorisation, the next firing stops the
    schedule, says why, is audited as the scheduler's act, and starts no crawl. Nothing the
    scheduler says quotes an ad."""
    with running_demo_server(port=0, seed=5, n_ads=3) as server:
        point_demo_profile_at(settings, server.base_url)
        auth = authorise(settings, session_factory, people.legal)
        schedule = schedule_every(settings, session_factory, people.investigator, auth, 2)
        with runner():
            finished = wait_for(
                "two scheduled crawls",
                lambda: len([r for r in runs(session_factory) if r.status == "finished"]) >= 2,
            )
            assert finished
            revoke(settings, session_factory, people, auth)
            wait_for("the schedule to stop", lambda: is_stopped(session_factory, schedule.id))
    crawled = runs(session_factory)
    assert {run.started_by for run in crawled} == {"investigator"}
    assert crawled[0].ads_captured == 3 and crawled[1].status == "finished"
    with session_factory() as session:
        authorisation = session.get(Authorisation, auth)
        revoked_at = authorisation.revoked_at if authorisation is not None else None
    assert revoked_at is not None and all(run.started_at < revoked_at for run in crawled)
    started = [e for e in entries_of_runs(session_factory, crawled) if e.action == "crawl.started"]
    assert len(started) == len(crawled)
    assert {(e.actor, e.properties["via"]) for e in started} == {
        ("investigator", f"scheduler:schedule-{schedule.id}")
    }

    row = schedule_row(session_factory, schedule.id)
    assert row is not None and row.stop_reason == "authorisation revoked"
    assert row.stopped_at is not None and row.stopped_at >= revoked_at
    assert row.last_fired_at is not None and row.last_run_id == crawled[-1].id
    (stop,) = entries(session_factory, f"schedule:{schedule.id}", "schedule.stopped")
    assert stop.actor == SCHEDULER and stop.properties["reason"] == "authorisation revoked"
    assert stop.cases == "|CASE-1|" and stop.properties["role"] == "system"
    assert f"schedule-{schedule.id}" not in job_ids(session_factory)
    # Revoked between firings, or during a crawl (which then stops too): either way said.
    (said_stop,) = [line for line in events if line.startswith(f"schedule {schedule.id}: stopped")]
    assert said_stop.endswith("authorisation revoked")
    assert sum("crawled — crawl run" in line for line in events) >= 1
    said = "\n".join(events)
    for ad in server.content.ads:
        assert ad.title not in said and ad.text[:40] not in said and ad.city not in said


def entries_of_runs(
    session_factory: sessionmaker[Session], crawled: list[CrawlRun]
) -> list[AuditEntry]:
    subjects = [f"crawl_run:{run.id}" for run in crawled]
    with session_factory() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.subject.in_(subjects)).order_by(AuditEntry.seq)
            )
        )


def test_expired_authorisation_and_disabled_creator_stop_schedules_without_crawling(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    runner: Callable[[], SchedulerRunner],
) -> None:
    """A schedule made while its authorisation was valid, which has expired since, and one
    whose creator was disabled, are stopped at their first firing with the reason; no crawl
    run is started, and both stops are audited under the scheduler's name and their case."""
    now = datetime.now(UTC)
    expiring = authorise(
        settings, session_factory, people.legal, valid_until=now + timedelta(seconds=2)
    )
    other = authorise(settings, session_factory, people.legal, case="CASE-2")
    expires = schedule_every(settings, session_factory, people.investigator, expiring, 1)
    creator = schedule_every(settings, session_factory, people("other-investigator"), other, 1)
    with session_factory.begin() as session:
        set_user_disabled(session, people.admin, "other-investigator", True)
    time.sleep(max(0.0, (now + timedelta(seconds=2.2) - datetime.now(UTC)).total_seconds()))
    with session_factory() as session:
        before = {s.id: s.ends_at_next_firing for s in list_schedules(session, people.legal)}
    assert before == {expires.id: "authorisation expired", creator.id: None}

    with runner():
        wait_for(
            "both schedules to stop",
            lambda: all(is_stopped(session_factory, s.id) for s in (expires, creator)),
            timeout=15,
        )
    assert runs(session_factory) == []
    expired_row = schedule_row(session_factory, expires.id)
    disabled_row = schedule_row(session_factory, creator.id)
    assert expired_row is not None and expired_row.stop_reason == "authorisation expired"
    assert disabled_row is not None and disabled_row.stop_reason is not None
    assert disabled_row.stop_reason.startswith("other-investigator may no longer crawl: user")
    assert "disabled" in disabled_row.stop_reason
    for schedule, case in ((expires, "|CASE-1|"), (creator, "|CASE-2|")):
        (stop,) = entries(session_factory, f"schedule:{schedule.id}", "schedule.stopped")
        assert stop.actor == SCHEDULER and stop.cases == case
    assert not {f"schedule-{expires.id}", f"schedule-{creator.id}"} & job_ids(session_factory)


# --- changes while it runs -----------------------------------------------------------------


def test_pause_resume_remove_are_audited_and_a_running_scheduler_honours_them(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    runner: Callable[[], SchedulerRunner],
) -> None:
    """A paused schedule does not fire; resumed, it fires again (each firing here refused by
    the run limit, audited, and the schedule goes on); a broken site profile makes firings
    fail without stopping the scheduler; paused again by the legal officer it stops firing;
    removed, its job goes. Each change is audited with who did it."""
    auth = authorise(settings, session_factory, people.legal, max_runs_per_day=1)
    take_todays_run(session_factory, auth)
    schedule = schedule_every(settings, session_factory, people.investigator, auth, 1)
    subject = f"schedule:{schedule.id}"
    with session_factory.begin() as session:
        pause_schedule(session, people.investigator, schedule.id)

    def refusals() -> list[AuditEntry]:
        return entries(session_factory, subject, "refused")

    with runner() as scheduler:
        time.sleep(1.5)
        assert refusals() == []
        assert f"schedule-{schedule.id}" not in job_ids(session_factory)

        with session_factory.begin() as session:
            resume_schedule(
                session,
                people.investigator,
                schedule.id,
                site_profiles_dir=settings.resolved_site_profiles_dir,
            )
        first = wait_for("a refused firing", refusals, timeout=10)[0]
        assert first.actor == "investigator" and first.properties["refusal"] == "RunLimitReached"
        assert first.properties["via"] == f"scheduler:schedule-{schedule.id}"
        with session_factory() as session:
            (listed,) = list_schedules(session, people.investigator)
        assert listed.state == "active" and listed.last_problem is not None
        assert "runs per day" in listed.last_problem and listed.next_run_at is not None

        settings.resolved_site_profiles_dir.mkdir(parents=True, exist_ok=True)
        broken = settings.resolved_site_profiles_dir / "broken.yaml"
        broken.write_text("key: [unclosed\n")
        failure = wait_for(
            "a failed firing", lambda: entries(session_factory, subject, "schedule.failed")
        )[0]
        assert failure.actor == SCHEDULER and failure.properties["error"] == "SiteProfileError"
        broken.unlink()
        count = len(refusals())
        wait_for("a refused firing after the failure", lambda: len(refusals()) > count)
        assert scheduler.running and scheduler.failure is None

        with session_factory.begin() as session:
            pause_schedule(session, people.legal, schedule.id, "reviewing the schedule")
        time.sleep(0.5)  # a firing already under way may still finish
        count = len(refusals())
        time.sleep(1.5)
        assert len(refusals()) == count
        assert f"schedule-{schedule.id}" not in job_ids(session_factory)

        with session_factory.begin() as session:
            resume_schedule(
                session,
                people.investigator,
                schedule.id,
                site_profiles_dir=settings.resolved_site_profiles_dir,
            )
        wait_for("the job back", lambda: f"schedule-{schedule.id}" in job_ids(session_factory))
        with session_factory.begin() as session:
            remove_schedule(session, people.investigator, schedule.id, "no longer needed")
        wait_for("the job to go", lambda: f"schedule-{schedule.id}" not in job_ids(session_factory))
    assert schedule_row(session_factory, schedule.id) is None
    changes = [
        (e.action, e.actor, e.justification)
        for e in entries(session_factory, subject)
        if e.action.startswith("schedule.") and e.action != "schedule.failed"
    ]
    assert changes == [
        ("schedule.added", "investigator", None),
        ("schedule.paused", "investigator", None),
        ("schedule.resumed", "investigator", None),
        ("schedule.paused", "legal", "reviewing the schedule"),
        ("schedule.resumed", "investigator", None),
        ("schedule.removed", "investigator", "no longer needed"),
    ]


def test_a_revoked_authorisation_cannot_be_scheduled_or_resumed_under(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    auth = authorise(settings, session_factory, people.legal)
    schedule = schedule_every(settings, session_factory, people.investigator, auth, 60)
    with session_factory.begin() as session:
        pause_schedule(session, people.investigator, schedule.id)
    revoke(settings, session_factory, people, auth)
    with pytest.raises(AuthorisationRevoked), session_factory.begin() as session:
        schedule_every(settings, session_factory, people.investigator, auth, 60)
    with pytest.raises(AuthorisationRevoked), session_factory.begin() as session:
        resume_schedule(
            session,
            people.investigator,
            schedule.id,
            site_profiles_dir=settings.resolved_site_profiles_dir,
        )
    row = schedule_row(session_factory, schedule.id)
    assert row is not None and row.paused_at is not None


# --- downtime, single instance, purge ------------------------------------------------------


def test_after_downtime_missed_firings_coalesce_into_one_catch_up(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    runner: Callable[[], SchedulerRunner],
) -> None:
    """The job store keeps the schedule's next firing while no scheduler runs; a scheduler
    started after several firings were missed fires once for all of them (coalesce), then
    keeps the rhythm. Without coalescing every missed firing would run, one after another,
    before the next regular one."""
    auth = authorise(settings, session_factory, people.legal, max_runs_per_day=1)
    take_todays_run(session_factory, auth)
    schedule = schedule_every(settings, session_factory, people.investigator, auth, 2)
    with runner():
        pass  # takes the schedule into the job store
    assert f"schedule-{schedule.id}" in job_ids(session_factory)
    # Down for two firings at least; back 0.3 s after the last of them was due.
    created = schedule.created_at
    elapsed = (datetime.now(UTC) - created).total_seconds()
    back = created + timedelta(seconds=2 * (int(elapsed // 2) + 2) + 0.3)
    time.sleep((back - datetime.now(UTC)).total_seconds())
    next_regular = back + timedelta(seconds=1.7)
    restarted = datetime.now(UTC)
    with runner():
        time.sleep((next_regular - datetime.now(UTC)).total_seconds() + 0.8)
    refused = entries(session_factory, f"schedule:{schedule.id}", "refused")
    catch_up = [e for e in refused if restarted <= e.at < next_regular]
    regular = [e for e in refused if e.at >= next_regular]
    assert len(catch_up) == 1, [e.at for e in refused]
    assert len(regular) == 1


def test_only_one_scheduler_runs_per_database(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    runner: Callable[[], SchedulerRunner],
) -> None:
    """A second scheduler on the same database is refused, saying who holds the lock; once
    the first stops, it may start. A scheduler whose lock is taken from it (its PostgreSQL
    session killed, its lock file replaced) stops firing rather than run beside another."""
    first = runner()
    first.start()
    second = runner()
    with pytest.raises(SchedulerAlreadyRunning, match="another adwatch scheduler") as refused:
        second.start()
    assert f"pid {os.getpid()}" in str(refused.value)
    assert not second.running and first.running
    first.stop()
    second.start()
    assert second.running and second.failure is None

    if session_factory.kw["bind"].dialect.name == "postgresql":
        with session_factory() as session:
            session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'adwatch scheduler%' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    else:
        database = Path(str(make_url(settings.resolved_database_url).database))
        lock = database.with_name("adwatch.sqlite3.scheduler.lock")
        assert lock.exists() and f"pid {os.getpid()}" in lock.read_text()
        lock.unlink()
    failure = wait_for("the lost lock to be noticed", lambda: second.failure, timeout=5)
    assert "lost its" in failure and second.scheduler.state == STATE_PAUSED


def test_daily_purge_is_registered_and_a_missed_one_runs_as_the_scheduler(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    runner: Callable[[], SchedulerRunner],
) -> None:
    """The daily purge job is in the job store at 03:30 UTC. One missed by two hours while no
    scheduler ran is run when the next one starts (a purge has no grace period to miss):
    the expired ad goes, with a receipt whose actor is the scheduler."""
    store = Store(session_factory, people.legal)
    expired = store.ad("Utrecht", "Synthetisch.", expires_at=datetime.now(UTC) - timedelta(days=1))
    live = store.ad("Zwolle", "Synthetisch.")
    first = runner()
    with first:
        job = first.scheduler.get_job(PURGE_JOB_ID)
        assert job is not None and str(job.trigger) == "cron[hour='3', minute='30']"
        next_purge = job.next_run_time.astimezone(UTC)
        assert (next_purge.hour, next_purge.minute) == (3, 30)
        assert timedelta(0) < next_purge - datetime.now(UTC) <= timedelta(days=1)
        first.scheduler.pause()  # so that the job below is stored missed, not run
        first.scheduler.modify_job(
            PURGE_JOB_ID, next_run_time=datetime.now(UTC) - timedelta(hours=2)
        )
    assert PURGE_JOB_ID in job_ids(session_factory)
    with session_factory() as session:
        assert session.get(Ad, expired) is not None

    with runner() as second:
        receipt = wait_for(
            "the purge receipt", lambda: entries(session_factory, "purge", "purge.receipt")
        )[0]
        job = second.scheduler.get_job(PURGE_JOB_ID)
        assert job.next_run_time.astimezone(UTC) == next_purge
    assert receipt.actor == SCHEDULER == "adwatch-scheduler"
    assert receipt.properties["via"] == "scheduler:purge"
    assert receipt.properties["counts"]["ads"] == 1
    with session_factory() as session:
        assert session.get(Ad, expired) is None and session.get(Ad, live) is not None
        assert session.scalar(select(func.count()).select_from(CrawlRun)) == 1


def test_a_schedule_stopped_as_the_scheduler_shuts_down_leaves_no_job_behind(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    """A firing that stops its schedule while the scheduler shuts down cannot take the job
    off through APScheduler (stopped, it looks only at pending jobs); stop() does it."""
    authorisation_id = authorise(settings, session_factory, people.legal)
    schedule = schedule_every(settings, session_factory, people.investigator, authorisation_id, 60)
    slow_sync = SchedulerRunner(settings, session_factory, sync_seconds=3600)
    with slow_sync:
        assert f"schedule-{schedule.id}" in job_ids(session_factory)
        with session_factory.begin() as session:  # as the firing does, before drop_job
            row = session.get(Schedule, schedule.id)
            assert row is not None
            row.stopped_at, row.stop_reason = datetime.now(UTC), "authorisation expired"
    assert f"schedule-{schedule.id}" not in job_ids(session_factory)
