"""Scheduled crawls and the daily purge: schedules are data, one APScheduler 3 runs them.

People change the ``schedules`` table (``adwatch schedule``, later the web UI). The one
running scheduler (``adwatch serve``) owns APScheduler's job store in the same database and
brings its jobs in line with the table every few seconds: APScheduler's FAQ is clear that a
job store is never shared by two processes, so nothing else writes to it, and a lock per
database (a PostgreSQL advisory lock, or an exclusive lock file beside the SQLite file)
keeps a second scheduler from starting at all.

Every firing re-reads its schedule, its authorisation and its creator, so a pause, a
removal, a revocation or an expiry counts from the moment it happened, not from the next
synchronisation. A schedule whose authorisation no longer allows crawling is stopped with
the reason, audited as the scheduler's own act. Nothing a firing meets is allowed to end the
scheduler, and nothing it logs or records quotes ad content.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.jobstores.memory import MemoryJobStore  # type: ignore[import-untyped]
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import (  # type: ignore[import-untyped]
    STATE_RUNNING,
    STATE_STOPPED,
)
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.crawling import CrawlAndLinkOutcome, crawl_and_link
from adwatch.services.link_snapshots import open_link_snapshots
from adwatch.services.purge import PurgeOutcome, run_purge
from adwatch.settings import Settings
from crawler.errors import CrawlFailed, SiteProfileError
from crawler.site_profile import get_site_profile
from legal_policy.access import AccessContext, system_access
from legal_policy.audit_log import record_event
from legal_policy.authorisation import check_crawl_allowed, stop_reason
from legal_policy.authorisation_store import get_authorisation, terms_of
from legal_policy.catalogue import LegalBasisCatalogue, load_catalogue
from legal_policy.checkpoints import CheckpointError, append_checkpoint_if_new
from legal_policy.errors import AccessDenied, PolicyError, UnknownUser, UserDisabled
from legal_policy.refusals import record_refusal
from legal_policy.registry import case_ref, load_access
from legal_policy.retention import effective_catalogue
from legal_policy.roles import Permission
from storage.blobstore import BlobStore
from storage.db import make_engine
from storage.models import AuditEntry, Authorisation, CrawlRun, Schedule, apscheduler_jobs
from storage.types import utcnow

logger = logging.getLogger("adwatch.scheduler")

# A person's schedule fires at most once a minute: crawling is a measured act, not polling.
MIN_INTERVAL_SECONDS = 60
# A firing missed by up to an hour (the scheduler was down or busy) still runs, once.
MISFIRE_GRACE_SECONDS = 3600
# How often the scheduler brings its jobs in line with the schedules table.
SYNC_SECONDS = 15.0
# Scheduled crawls running at the same time (each is a worker subprocess).
MAX_CONCURRENT_FIRINGS = 4

PURGE_JOB_ID = "adwatch-daily-purge"
DEFAULT_PURGE_TIME = time(3, 30)
JOB_PREFIX = "schedule-"
SYNC_JOB_ID = "adwatch-sync"

# "adwatchS" as a 64-bit key: PostgreSQL's advisory locks are per database, so one key is
# enough for "the scheduler of this database".
SCHEDULER_LOCK_KEY = int.from_bytes(b"adwatchS", "big")

_EVERY = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# crontab's numbering: 0 (and 7) is Sunday.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

EventCallback = Callable[[str], None]


class InvalidSchedule(PolicyError):
    """A schedule that cannot be made or changed as asked (bad timing, wrong state)."""


class ScheduleNotFound(PolicyError):
    """No schedule with this id, or none the user's role reaches."""


class SchedulerAlreadyRunning(Exception):
    """Another scheduler holds this database's scheduler lock."""


# --- triggers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleTiming:
    """When a schedule fires: ``cron`` (five crontab fields, UTC) or ``every`` (seconds)."""

    kind: str
    expression: str

    def describe(self) -> str:
        """``every 6h`` or ``cron 30 2 * * 1 (UTC)``."""
        if self.kind == "every":
            return f"every {format_interval(int(self.expression))}"
        return f"cron {self.expression} (UTC)"

    def first_after(self, anchor: datetime, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (what ``schedule add`` announces)."""
        fire_time: datetime | None = self.trigger(anchor).get_next_fire_time(
            None, moment + timedelta(microseconds=1)
        )
        return fire_time

    def trigger(self, anchor: datetime) -> Any:
        """The APScheduler trigger; an interval counts from ``anchor`` (the schedule's
        creation), so its firings keep their rhythm across pauses and restarts."""
        if self.kind == "every":
            return IntervalTrigger(seconds=int(self.expression), start_date=anchor, timezone=UTC)
        return crontab_trigger(self.expression)


def parse_timing(
    *, cron: str | None, every: str | None, min_interval_seconds: int = MIN_INTERVAL_SECONDS
) -> ScheduleTiming:
    """Exactly one of ``cron`` and ``every``, validated; ``InvalidSchedule`` says what is wrong."""
    if (cron is None) == (every is None):
        raise InvalidSchedule("give exactly one of --cron EXPR and --every INTERVAL")
    if every is not None:
        return ScheduleTiming("every", str(parse_interval(every, min_interval_seconds)))
    assert cron is not None
    expression = " ".join(cron.split())
    crontab_trigger(expression)
    return ScheduleTiming("cron", expression)


def parse_interval(text_value: str, min_seconds: int = MIN_INTERVAL_SECONDS) -> int:
    """``90s``, ``15m``, ``6h``, ``1d`` in seconds; at least ``min_seconds``."""
    match = _EVERY.match(text_value)
    if match is None:
        raise InvalidSchedule(
            f"--every {text_value!r} is not an interval: give a number and a unit, "
            "s, m, h or d (90s, 15m, 6h, 1d)"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds < min_seconds:
        raise InvalidSchedule(
            f"--every {text_value.strip()} is too often: a schedule fires at most once every "
            f"{format_interval(min_seconds)}"
        )
    return seconds


def format_interval(seconds: int) -> str:
    """Seconds in the largest unit that divides them: 21600 → ``6h``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def crontab_trigger(expression: str) -> Any:
    """A CronTrigger in UTC for five crontab fields, days of the week numbered as crontab
    numbers them (0 and 7 Sunday, 1 Monday): APScheduler 3 counts 0 as Monday (its issue
    286), so a plain ``from_crontab("0 2 * * 1")`` would crawl on Tuesdays."""
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidSchedule(
            f"--cron {expression!r} has {len(fields)} fields; a crontab expression has five: "
            "minute hour day-of-month month day-of-week (e.g. '30 2 * * *', in UTC)"
        )
    if fields[2] != "*" and fields[4] != "*":
        # crontab fires when either matches, APScheduler only when both do.
        raise InvalidSchedule(
            f"--cron {expression!r} restricts both the day of the month and the day of the "
            "week, which crontab and APScheduler read differently; restrict one of them"
        )
    try:
        fields[4] = _crontab_weekdays(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)
    except ValueError as exc:
        raise InvalidSchedule(
            f"--cron {expression!r} is not a valid crontab expression: {exc}"
        ) from None


def _crontab_weekdays(field: str) -> str:
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.lower().split(","):
        spec, slash, step_text = item.partition("/")
        if slash and (not step_text.isdigit() or int(step_text) == 0):
            raise ValueError(f"bad step in day of week {item!r}")
        step = int(step_text) if step_text else 1
        if spec == "*":
            start, end = 0, 6
        elif "-" in spec:
            first, last = spec.split("-", 1)
            start, end = _crontab_day(first), _crontab_day(last, as_end=True)
        else:
            start = _crontab_day(spec)
            end = 6 if slash else start
        if start > end:
            raise ValueError(f"day-of-week range {spec!r} runs backwards")
        days.update(day % 7 for day in range(start, end + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def _crontab_day(value: str, *, as_end: bool = False) -> int:
    if value.isdigit() and int(value) <= 7:
        return int(value)
    if value in _CRON_DAYS:
        # "mon-sun": Sunday closes a range as 7.
        return 7 if as_end and value == "sun" else _CRON_DAYS.index(value)
    raise ValueError(f"unknown day of week {value!r} (0-7 or sun-sat)")


def timing_of(schedule: Schedule) -> ScheduleTiming:
    """The stored schedule's timing."""
    return ScheduleTiming(schedule.trigger, schedule.expression)


def job_id_of(schedule_id: int) -> str:
    """The APScheduler job id of a schedule."""
    return f"{JOB_PREFIX}{schedule_id}"


# --- schedules: what people change ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleSummary:
    """A schedule as ``schedule list`` shows it."""

    id: int
    case: str
    authorisation_id: int
    site: str
    timing: ScheduleTiming
    created_by: str
    created_at: datetime
    state: str  # active, paused, stopped
    stop_reason: str | None
    # Why the next firing will stop it, when the authorisation already ended.
    ends_at_next_firing: str | None
    last_fired_at: datetime | None
    last_run_id: int | None
    # The status of the run the last firing started (None: it started none, or not yet).
    last_run_status: str | None
    # The refusal or failure of the last firing, when it started no run.
    last_problem: str | None
    next_run_at: datetime | None


def add_schedule(
    session: Session,
    access: AccessContext,
    *,
    authorisation_id: int,
    site_key: str,
    cron: str | None = None,
    every: str | None = None,
    site_profiles_dir: Path | None,
    now: datetime | None = None,
    min_interval_seconds: int = MIN_INTERVAL_SECONDS,
) -> Schedule:
    """Schedule crawls of one site under an authorisation that allows them now, as an
    investigator of its case; refused (``PolicyError``) otherwise. Audited."""
    now = now or utcnow()
    authorisation = get_authorisation(session, authorisation_id)
    case = authorisation.case_number
    access.require(Permission.START_CRAWL, case_ref(authorisation.case))
    try:
        timing = parse_timing(cron=cron, every=every, min_interval_seconds=min_interval_seconds)
    except InvalidSchedule as exc:
        raise InvalidSchedule(str(exc), case=case) from None
    _check_still_allowed(authorisation, site_key, site_profiles_dir, now)
    schedule = Schedule(
        authorisation_id=authorisation.id,
        site_key=site_key,
        trigger=timing.kind,
        expression=timing.expression,
        created_by=access.user,
        created_at=now,
    )
    session.add(schedule)
    session.flush()
    record_event(
        session,
        access.event(
            "schedule.added",
            f"schedule:{schedule.id}",
            properties={
                "authorisation_id": authorisation.id,
                "site": site_key,
                "trigger": timing.kind,
                "expression": timing.expression,
            },
            cases=[case],
        ),
    )
    return schedule


def list_schedules(session: Session, access: AccessContext) -> list[ScheduleSummary]:
    """The schedules of the user's cases (every case, for legal officers), oldest first."""
    cases = _schedule_reach(access)
    query = (
        select(Schedule, Authorisation)
        .join(Authorisation, Authorisation.id == Schedule.authorisation_id)
        .order_by(Schedule.id)
    )
    if cases is not None:
        query = query.where(Authorisation.case_id.in_(cases))
    rows = session.execute(query).all()
    run_ids = [schedule.last_run_id for schedule, _ in rows if schedule.last_run_id is not None]
    runs = {
        run_id: (status, started_at)
        for run_id, status, started_at in session.execute(
            select(CrawlRun.id, CrawlRun.status, CrawlRun.started_at).where(
                CrawlRun.id.in_(run_ids)
            )
        )
    }
    next_runs = _next_run_times(session, [schedule.id for schedule, _ in rows])
    problems = _last_problems(
        session,
        {s.id: s.last_fired_at for s, _ in rows if s.last_fired_at is not None},
    )
    now = utcnow()
    summaries = []
    for schedule, authorisation in rows:
        state = _state_of(schedule)
        active = state == "active"
        summaries.append(
            ScheduleSummary(
                id=schedule.id,
                case=authorisation.case_number,
                authorisation_id=authorisation.id,
                site=schedule.site_key,
                timing=timing_of(schedule),
                created_by=schedule.created_by,
                created_at=schedule.created_at,
                state=state,
                stop_reason=schedule.stop_reason,
                ends_at_next_firing=stop_reason(terms_of(authorisation), now) if active else None,
                last_fired_at=schedule.last_fired_at,
                last_run_id=schedule.last_run_id,
                last_run_status=_status_of_last_firing(schedule, runs),
                last_problem=problems.get(schedule.id),
                next_run_at=next_runs.get(job_id_of(schedule.id)) if active else None,
            )
        )
    return summaries


def _status_of_last_firing(schedule: Schedule, runs: dict[int, tuple[str, datetime]]) -> str | None:
    """The status of the run the last firing started; None while it has started none (the
    run of an earlier firing says nothing about the last one)."""
    if schedule.last_run_id is None or schedule.last_fired_at is None:
        return None
    status, started_at = runs.get(schedule.last_run_id, ("", schedule.last_fired_at))
    return status if status and started_at >= schedule.last_fired_at else None


def _state_of(schedule: Schedule) -> str:
    if schedule.stopped_at is not None:
        return "stopped"
    return "paused" if schedule.paused_at is not None else "active"


def pause_schedule(
    session: Session, access: AccessContext, schedule_id: int, reason: str | None = None
) -> Schedule:
    """Stop firing until resumed (investigators of the case, legal officers). Audited."""
    schedule, case = _manageable(session, access, schedule_id)
    if schedule.stopped_at is not None:
        raise InvalidSchedule(
            f"schedule {schedule_id} is stopped ({schedule.stop_reason}); nothing to pause",
            case=case,
        )
    if schedule.paused_at is not None:
        raise InvalidSchedule(f"schedule {schedule_id} is already paused", case=case)
    schedule.paused_at = utcnow()
    session.flush()
    _audit_change(session, access, schedule, case, "schedule.paused", reason)
    return schedule


def resume_schedule(
    session: Session,
    access: AccessContext,
    schedule_id: int,
    *,
    site_profiles_dir: Path | None,
    now: datetime | None = None,
) -> Schedule:
    """Let a paused schedule (or one stopped by an authorisation that allows crawling again,
    say after a collection review) fire again, as an investigator of its case. It goes on
    acting as its creator, who must still be an active member of the case. Audited."""
    now = now or utcnow()
    schedule = _get_schedule(session, schedule_id)
    authorisation = get_authorisation(session, schedule.authorisation_id)
    case = authorisation.case_number
    access.require(Permission.START_CRAWL, case_ref(authorisation.case))
    if schedule.paused_at is None and schedule.stopped_at is None:
        raise InvalidSchedule(f"schedule {schedule_id} is not paused", case=case)
    _check_still_allowed(authorisation, schedule.site_key, site_profiles_dir, now)
    creator = _creator_access(session, schedule, authorisation)
    if isinstance(creator, str):
        raise InvalidSchedule(
            f"schedule {schedule_id} crawls as {schedule.created_by}, who may no longer: "
            f"{creator}; add a schedule of your own",
            case=case,
        )
    was = f"stopped: {schedule.stop_reason}" if schedule.stopped_at is not None else "paused"
    schedule.paused_at = schedule.stopped_at = schedule.stop_reason = None
    session.flush()
    _audit_change(session, access, schedule, case, "schedule.resumed", None, was=was)
    return schedule


def remove_schedule(
    session: Session, access: AccessContext, schedule_id: int, reason: str | None = None
) -> None:
    """Delete a schedule (investigators of the case, legal officers); the audit log keeps
    its history. A running scheduler drops its job at once or at its next firing."""
    schedule, case = _manageable(session, access, schedule_id)
    _audit_change(session, access, schedule, case, "schedule.removed", reason)
    session.delete(schedule)
    session.flush()


def _get_schedule(session: Session, schedule_id: int) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(f"no schedule with id {schedule_id} (see `adwatch schedule list`)")
    return schedule


def _schedule_reach(access: AccessContext) -> frozenset[int] | None:
    """Cases whose schedules the user may see: legal officers all, investigators theirs."""
    if access.reach(Permission.MANAGE_AUTHORISATIONS) is not None:
        return access.case_filter(Permission.MANAGE_AUTHORISATIONS)
    return access.case_filter(Permission.START_CRAWL)


def _manageable(session: Session, access: AccessContext, schedule_id: int) -> tuple[Schedule, str]:
    """The schedule, if the user may pause or remove it (legal officers of any case, or
    investigators of its case)."""
    schedule = _get_schedule(session, schedule_id)
    authorisation = get_authorisation(session, schedule.authorisation_id)
    ref = case_ref(authorisation.case)
    if access.reach(Permission.MANAGE_AUTHORISATIONS) is not None:
        access.require(Permission.MANAGE_AUTHORISATIONS, ref)
    else:
        access.require(Permission.START_CRAWL, ref)
    return schedule, authorisation.case_number


def _check_still_allowed(
    authorisation: Authorisation, site_key: str, site_profiles_dir: Path | None, now: datetime
) -> None:
    """The authorisation allows crawling this site now (today's run count aside: a schedule
    is for later days too); its refusal otherwise."""
    site = get_site_profile(site_key, site_profiles_dir).site_ref().pin()
    check_crawl_allowed(terms_of(authorisation), site, now, runs_started_today=0)


def _creator_access(
    session: Session, schedule: Schedule, authorisation: Authorisation
) -> AccessContext | str:
    """The creator's access as it is now, or why they may no longer crawl under it."""
    try:
        access = load_access(session, schedule.created_by, via=f"scheduler:schedule-{schedule.id}")
        access.require(Permission.START_CRAWL, case_ref(authorisation.case))
    except (UnknownUser, UserDisabled, AccessDenied) as exc:
        return str(exc)
    return access


def _audit_change(
    session: Session,
    access: AccessContext,
    schedule: Schedule,
    case: str,
    action: str,
    reason: str | None,
    **extra: str,
) -> None:
    record_event(
        session,
        access.event(
            action,
            f"schedule:{schedule.id}",
            properties={
                "authorisation_id": schedule.authorisation_id,
                "site": schedule.site_key,
                **extra,
            },
            cases=[case],
            justification=reason.strip() if reason and reason.strip() else None,
        ),
    )


def _next_run_times(session: Session, schedule_ids: Iterable[int]) -> dict[str, datetime]:
    """Next firing per job, read from APScheduler's own column (the job itself is pickled
    and stays unread)."""
    job_ids = [job_id_of(schedule_id) for schedule_id in schedule_ids]
    if not job_ids:
        return {}
    rows = session.execute(
        select(apscheduler_jobs.c.id, apscheduler_jobs.c.next_run_time).where(
            apscheduler_jobs.c.id.in_(job_ids)
        )
    )
    return {
        job_id: datetime.fromtimestamp(timestamp, UTC)
        for job_id, timestamp in rows
        if timestamp is not None
    }


def _last_problems(session: Session, last_fired: dict[int, datetime]) -> dict[int, str]:
    """The refusal or failure audited for each schedule's last firing, if it had one."""
    if not last_fired:
        return {}
    subjects = {f"schedule:{schedule_id}": schedule_id for schedule_id in last_fired}
    rows = session.execute(
        select(AuditEntry.subject, AuditEntry.at, AuditEntry.properties)
        .where(
            AuditEntry.subject.in_(subjects),
            AuditEntry.action.in_(("refused", "schedule.failed")),
            AuditEntry.at >= min(last_fired.values()),
        )
        .order_by(AuditEntry.seq.desc())
    )
    found: dict[int, str] = {}
    for subject, at, properties in rows:
        schedule_id = subjects[subject]
        if schedule_id not in found and at >= last_fired[schedule_id]:
            found[schedule_id] = str(properties.get("reason", "failed"))
    return found


# --- firing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """What one firing of a schedule did: ``crawled``, ``stopped``, ``refused``, ``failed``
    or ``skipped`` (paused or removed since the scheduler last looked)."""

    schedule_id: int
    outcome: str
    detail: str
    run_id: int | None = None

    def describe(self) -> str:
        """One line for the console; no ad content."""
        return f"schedule {self.schedule_id}: {self.outcome} — {self.detail}"


class _JobControl(Protocol):
    def drop_job(self, job_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Environment:
    """What firings need; handed to the scheduler's worker threads when they start."""

    settings: Settings
    session_factory: sessionmaker[Session]
    control: _JobControl
    emit: EventCallback

    def catalogue(self) -> LegalBasisCatalogue:
        with self.session_factory() as session:
            return effective_catalogue(session, load_catalogue(self.settings.legal_catalogue))

    def checkpoint(self, reason: str) -> None:
        """Anchor the audit entries just committed outside the database (best effort: the
        next checkpoint covers them too)."""
        try:
            with self.session_factory() as session:
                append_checkpoint_if_new(
                    session, self.settings.resolved_audit_checkpoint_file, reason
                )
        except (CheckpointError, OSError) as exc:
            logger.warning("audit checkpoint not written: %s", type(exc).__name__)

    def fire(self, schedule_id: int) -> Firing:
        """One firing: re-check, then crawl as the creator; never raises."""
        try:
            firing = self._fire(schedule_id)
        except Exception as exc:  # recorded; the scheduler goes on
            firing = Firing(schedule_id, "failed", _error_text(exc))
            logger.warning("schedule %d failed: %s", schedule_id, type(exc).__name__)
            try:
                self._record_failure(schedule_id, exc)
            except Exception as again:
                logger.warning(
                    "schedule %d: failure not recorded: %s", schedule_id, type(again).__name__
                )
        self.emit(firing.describe())
        return firing

    def _fire(self, schedule_id: int) -> Firing:
        with self.session_factory.begin() as session:
            checked = self._check(session, schedule_id, utcnow())
        if isinstance(checked, Firing):
            self.control.drop_job(job_id_of(schedule_id))
            if checked.outcome == "stopped":
                self.checkpoint(f"schedule {schedule_id} stopped")
            return checked
        creator, authorisation_id, site_key = checked
        try:
            outcome = crawl_and_link(
                self.settings.crawler_config(),
                self.session_factory,
                creator,
                authorisation_id=authorisation_id,
                site_key=site_key,
                catalogue=self.catalogue(),
            )
        except PolicyError as exc:
            # Refused as the creator would have been at the front door, and audited the
            # same way; the schedule goes on (a run limit or a changed profile can clear).
            with self.session_factory.begin() as session:
                record_refusal(
                    session,
                    exc,
                    actor=creator.user,
                    attempted=f"schedule:{schedule_id}",
                    via=creator.via,
                    role=creator.role.value,
                )
            self.checkpoint(f"schedule {schedule_id} refused")
            return self._stop_if_ended(schedule_id) or Firing(schedule_id, "refused", str(exc))
        run = outcome.run
        with self.session_factory.begin() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is not None:
                schedule.last_run_id = run.run_id
        # A run stopped by its authorisation ends the schedule now, not at its next firing.
        stopped = self._stop_if_ended(schedule_id)
        if stopped is not None:
            detail = f"{_run_text(outcome)}; schedule stopped: {stopped.detail}"
            return Firing(schedule_id, "stopped", detail, run.run_id)
        return Firing(schedule_id, "crawled", _run_text(outcome), run.run_id)

    def _check(
        self, session: Session, schedule_id: int, now: datetime
    ) -> Firing | tuple[AccessContext, int, str]:
        """Whether the schedule fires now: a skip or a stop, or who crawls what."""
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            return Firing(schedule_id, "skipped", "removed since the scheduler last looked")
        if schedule.stopped_at is not None or schedule.paused_at is not None:
            state = "stopped" if schedule.stopped_at is not None else "paused"
            return Firing(schedule_id, "skipped", f"{state} since the scheduler last looked")
        authorisation = get_authorisation(session, schedule.authorisation_id)
        reason = stop_reason(terms_of(authorisation), now)
        creator = _creator_access(session, schedule, authorisation)
        if reason is None and isinstance(creator, str):
            reason = f"{schedule.created_by} may no longer crawl: {creator}"
        if reason is not None or isinstance(creator, str):
            assert reason is not None
            self._stop(session, schedule, authorisation.case_number, reason, now)
            return Firing(schedule_id, "stopped", reason)
        schedule.last_fired_at = now
        return creator, authorisation.id, schedule.site_key

    def _stop_if_ended(self, schedule_id: int) -> Firing | None:
        now = utcnow()
        with self.session_factory.begin() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None or schedule.stopped_at is not None:
                return None
            authorisation = get_authorisation(session, schedule.authorisation_id)
            reason = stop_reason(terms_of(authorisation), now)
            if reason is None:
                return None
            self._stop(session, schedule, authorisation.case_number, reason, now)
        self.control.drop_job(job_id_of(schedule_id))
        self.checkpoint(f"schedule {schedule_id} stopped")
        return Firing(schedule_id, "stopped", reason)

    def _stop(
        self, session: Session, schedule: Schedule, case: str, reason: str, now: datetime
    ) -> None:
        schedule.stopped_at = now
        schedule.stop_reason = reason
        session.flush()
        record_event(
            session,
            _scheduler_access(schedule.id).event(
                "schedule.stopped",
                f"schedule:{schedule.id}",
                properties={
                    "reason": reason,
                    "authorisation_id": schedule.authorisation_id,
                    "site": schedule.site_key,
                    "created_by": schedule.created_by,
                },
                cases=[case],
            ),
        )

    def _record_failure(self, schedule_id: int, error: Exception) -> None:
        with self.session_factory.begin() as session:
            schedule = session.get(Schedule, schedule_id)
            cases: list[str] = []
            if schedule is not None:
                authorisation = session.get(Authorisation, schedule.authorisation_id)
                cases = [authorisation.case_number] if authorisation is not None else []
            record_event(
                session,
                _scheduler_access(schedule_id).event(
                    "schedule.failed",
                    f"schedule:{schedule_id}",
                    properties={"error": type(error).__name__, "reason": _error_text(error)},
                    cases=cases,
                ),
            )
        self.checkpoint(f"schedule {schedule_id} failed")

    def purge(self) -> PurgeOutcome | None:
        """The daily purge as the scheduler itself; never raises."""
        settings = self.settings
        try:
            outcome = run_purge(
                self.session_factory,
                system_access("purge"),
                self.catalogue(),
                blob_store=BlobStore(settings.blob_dir),
                log_dir=settings.log_dir,
                now=utcnow(),
                default_region=settings.default_phone_region,
                checkpoint_file=settings.resolved_audit_checkpoint_file,
                snapshots=open_link_snapshots(settings.data_dir, settings.resolved_secret_key_file),
            )
        except Exception as exc:
            logger.warning("daily purge failed: %s", type(exc).__name__)
            self.emit(f"daily purge: failed — {_error_text(exc)}")
            try:
                with self.session_factory.begin() as session:
                    record_event(
                        session,
                        system_access("purge").event(
                            "purge.failed",
                            "purge",
                            properties={"error": type(exc).__name__, "reason": _error_text(exc)},
                        ),
                    )
            except Exception as again:
                logger.warning("daily purge failure not recorded: %s", type(again).__name__)
            return None
        counts = outcome.receipt.counts
        self.emit(
            f"daily purge: {counts.get('ads', 0)} ads and {outcome.files_deleted} files "
            "deleted; receipt in the audit log"
        )
        return outcome


def _scheduler_access(schedule_id: int) -> AccessContext:
    return system_access(f"schedule-{schedule_id}")


def _run_text(outcome: CrawlAndLinkOutcome) -> str:
    run = outcome.run
    status = f"{run.status}: {run.stop_reason}" if run.stop_reason else run.status
    return f"crawl run {run.run_id} {status} ({run.ads_captured} ads captured)"


def _error_text(error: Exception) -> str:
    """What may be said about an error: the message of errors adwatch words itself (no
    content), only the type of anything else (a driver's message may quote data)."""
    if isinstance(error, CrawlFailed):
        # "crawl run N failed: <worker's stderr tail>": the run record keeps the rest.
        return str(error).split(":", 1)[0]
    if isinstance(error, PolicyError | SiteProfileError):
        return str(error)
    return type(error).__name__


# The job store keeps each job as a textual reference to a module-level function and its
# arguments; the environment (settings, sessions) is neither picklable nor wanted in the
# database. Each worker thread of a running scheduler is given its scheduler's environment
# when the thread starts (the pool's initializer), so no process-wide state is needed.
_worker = threading.local()


def _bind_environment(environment: _Environment) -> None:
    _worker.environment = environment


def _environment() -> _Environment:
    environment: _Environment | None = getattr(_worker, "environment", None)
    if environment is None:
        raise RuntimeError("scheduled jobs run only in adwatch's scheduler (adwatch serve)")
    return environment


def fire_schedule_job(schedule_id: int) -> None:
    """APScheduler's entry point for a schedule's job (referenced by name in the store)."""
    _environment().fire(schedule_id)


def daily_purge_job() -> None:
    """APScheduler's entry point for the daily purge (referenced by name in the store)."""
    _environment().purge()


# --- single instance -----------------------------------------------------------------------


class SchedulerLock:
    """This database's scheduler lock, held until ``release``."""

    def __init__(self, description: str, release: Callable[[], None], held: Callable[[], bool]):
        self.description = description
        self._release = release
        self._held = held

    def still_held(self) -> bool:
        """False once the lock was lost (database connection gone, lock file replaced)."""
        try:
            return self._held()
        except Exception:
            return False

    def release(self) -> None:
        """Let another scheduler start."""
        self._release()


def acquire_scheduler_lock(database_url: str) -> SchedulerLock:
    """Take the one scheduler lock of this database, or ``SchedulerAlreadyRunning``.

    PostgreSQL: a session advisory lock held on a connection of its own (autocommit, so no
    transaction stays open). SQLite: ``flock`` on ``<database file>.scheduler.lock``. Either
    goes with the process, however it ends.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:":
            # Nothing outside this process can reach it: there is nobody to exclude.
            return SchedulerLock("in-memory database", lambda: None, lambda: True)
        path = Path(database).resolve()
        return _file_lock(path.with_name(f"{path.name}.scheduler.lock"))
    return _advisory_lock(make_engine(database_url))


def _holder_text() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {utcnow():%Y-%m-%d %H:%M:%S} UTC"


def _file_lock(path: Path) -> SchedulerLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise SchedulerAlreadyRunning(
            f"another adwatch scheduler is running on this database ({holder}; lock file "
            f"{path}); only one may run: stop it first"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"adwatch scheduler {_holder_text()}\n".encode(), 0)
    inode = os.fstat(fd).st_ino

    def release() -> None:
        os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor releases the flock

    def held() -> bool:
        # A lock file deleted or replaced under us would let a second scheduler lock anew.
        return os.stat(path).st_ino == inode

    return SchedulerLock(f"lock file {path}", release, held)


def _advisory_lock(engine: Engine) -> SchedulerLock:
    key = {"key": SCHEDULER_LOCK_KEY}
    # pg_locks shows a bigint advisory key as two 32-bit halves.
    halves = {"high": SCHEDULER_LOCK_KEY >> 32, "low": SCHEDULER_LOCK_KEY & 0xFFFFFFFF}
    this_lock = (
        "l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid::bigint = :high AND l.objid::bigint = :low "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    holder_query = text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        f"WHERE {this_lock}"
    )
    held_query = text(
        f"SELECT count(*) FROM pg_locks l WHERE l.pid = pg_backend_pid() AND {this_lock}"
    )
    connection: Connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        # Shown to a second scheduler that finds the lock taken.
        connection.execute(
            text("SELECT set_config('application_name', :name, false)"),
            {"name": f"adwatch scheduler {_holder_text()}"[:63]},
        )
        if not connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
            holder = connection.scalar(holder_query, halves) or "another session"
            raise SchedulerAlreadyRunning(
                f"another adwatch scheduler is running on this database ({holder}; PostgreSQL "
                f"advisory lock {SCHEDULER_LOCK_KEY}); only one may run: stop it first"
            )
    except BaseException:
        _discard(connection, engine)
        raise

    def release() -> None:
        # A connection that died took the lock with it: nothing left to unlock.
        with contextlib.suppress(Exception):
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        _discard(connection, engine)

    def held() -> bool:
        return bool(connection.scalar(held_query, halves))

    return SchedulerLock("PostgreSQL advisory lock", release, held)


def _discard(connection: Connection, engine: Engine) -> None:
    """Close for good, never back into a pool: a pooled connection would keep the lock."""
    with contextlib.suppress(Exception):
        connection.invalidate()
    connection.close()
    engine.dispose()


# --- the runner ----------------------------------------------------------------------------


class _ResilientScheduler(BackgroundScheduler):  # type: ignore[misc]
    """Two fixes to APScheduler 3's loop. Its thread dies on an error from the job store (a
    database gone for a moment); this one waits and tries again, as APScheduler already does
    for ``get_due_jobs``. And ``shutdown`` wakes the loop for one more round after the
    executors closed (apscheduler issue 285): a job due then is "submitted" to a closed pool
    and its next run moved on, so that a persistent job due at shutdown was lost instead of
    caught up by the next scheduler. A round already under way when ``shutdown`` began
    (its job store query waiting on a busy database) did the same; ``shutdown`` now waits
    for it and pauses the loop before the executors close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._round = threading.Lock()
        super().__init__(*args, **kwargs)

    def _process_jobs(self) -> float | None:
        with self._round:
            if self.state == STATE_STOPPED:
                return None
            try:
                return super()._process_jobs()  # type: ignore[no-any-return]
            except Exception as exc:
                logger.warning("job store error (%s); retrying", type(exc).__name__)
                return float(self.jobstore_retry_interval)

    def shutdown(self, wait: bool = True) -> None:
        with self._round:  # the round under way submits to executors still open
            if self.state == STATE_RUNNING:
                self.pause()  # no round after this one submits anything
        super().shutdown(wait)


class SchedulerRunner:
    """The scheduler of one database: scheduled crawls and the daily purge.

    ``start`` takes the single-instance lock (``SchedulerAlreadyRunning`` when another
    scheduler has it), starts APScheduler on its SQLAlchemy job store in the same database,
    registers the daily purge and brings the schedules' jobs in line with the table, then
    again every ``sync_seconds``. ``emit`` receives one content-free line per event. The
    CLI's ``adwatch serve`` runs it in the foreground; the web application can run it in
    its lifespan.
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        emit: EventCallback | None = None,
        purge_at: time = DEFAULT_PURGE_TIME,
        sync_seconds: float = SYNC_SECONDS,
        misfire_grace_seconds: int = MISFIRE_GRACE_SECONDS,
        max_concurrent_firings: int = MAX_CONCURRENT_FIRINGS,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.emit: EventCallback = (
            emit if emit is not None else (lambda message: logger.info("%s", message))
        )
        self.purge_at = purge_at
        self.sync_seconds = sync_seconds
        self.misfire_grace_seconds = misfire_grace_seconds
        self.max_concurrent_firings = max_concurrent_firings
        # Set when the scheduler had to stop firing (its lock was lost).
        self.failure: str | None = None
        self._lock: SchedulerLock | None = None
        self._scheduler: Any = None
        self._stopping = False

    @property
    def scheduler(self) -> Any:
        """The running APScheduler (for the web UI's views and for tests)."""
        if self._scheduler is None:
            raise RuntimeError("the scheduler is not running")
        return self._scheduler

    @property
    def running(self) -> bool:
        """Whether it started and has not been stopped."""
        return self._scheduler is not None

    def start(self) -> None:
        """Take the lock and start firing; ``SchedulerAlreadyRunning`` if another has it."""
        if self._scheduler is not None:
            raise RuntimeError("this scheduler is already running")
        self._stopping, self.failure = False, None
        url = self.settings.resolved_database_url
        self._lock = acquire_scheduler_lock(url)
        try:
            environment = _Environment(self.settings, self.session_factory, self, self.emit)
            scheduler = _ResilientScheduler(
                jobstores={
                    "default": SQLAlchemyJobStore(engine=make_engine(url)),
                    "internal": MemoryJobStore(),
                },
                executors={
                    "default": ThreadPoolExecutor(
                        self.max_concurrent_firings,
                        pool_kwargs={
                            "initializer": _bind_environment,
                            "initargs": (environment,),
                            "thread_name_prefix": "adwatch-firing",
                        },
                    ),
                    # Synchronising never waits behind long crawls.
                    "internal": ThreadPoolExecutor(1),
                },
                job_defaults={
                    "coalesce": True,
                    "max_instances": 1,
                    "misfire_grace_time": self.misfire_grace_seconds,
                },
                timezone=UTC,
            )
            scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
            scheduler.start()
            self._scheduler = scheduler
            self._ensure_purge_job()
            self.sync()
            scheduler.add_job(
                self._tick,
                IntervalTrigger(seconds=self.sync_seconds, timezone=UTC),
                id=SYNC_JOB_ID,
                jobstore="internal",
                executor="internal",
            )
        except BaseException:
            self.stop()
            raise
        self.emit(
            f"scheduler started ({self._lock.description}); daily purge at "
            f"{self.purge_at:%H:%M} UTC"
        )

    def stop(self, *, wait: bool = True) -> None:
        """Stop firing (waiting for running firings unless ``wait`` is False) and let go
        of the lock."""
        self._stopping = True
        try:
            scheduler = self._scheduler
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=wait)
                if wait:
                    self._drop_jobs_of_ended_schedules(scheduler)
        finally:
            self._scheduler = None
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()

    def _drop_jobs_of_ended_schedules(self, scheduler: BackgroundScheduler) -> None:
        """A firing that stopped its schedule while the scheduler shut down could not take
        its job off (a stopped APScheduler looks only at its pending jobs): take such jobs
        out of the job store itself, so that none outlives its schedule."""
        store = scheduler._jobstores.get("default")  # after shutdown: no public accessor
        if not isinstance(store, SQLAlchemyJobStore):
            return
        active = self._active_schedules()
        with store.engine.connect() as connection:
            stored = connection.execute(select(store.jobs_t.c.id)).scalars().all()
        for job_id in stored:
            if job_id.startswith(JOB_PREFIX) and job_id not in active:
                with contextlib.suppress(JobLookupError):
                    store.remove_job(job_id)

    def __enter__(self) -> SchedulerRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _active_schedules(self) -> dict[str, Schedule]:
        """Schedules that should have a job (neither paused nor stopped), by job id."""
        with self.session_factory() as session:
            return {
                job_id_of(schedule.id): schedule
                for schedule in session.scalars(
                    select(Schedule).where(
                        Schedule.paused_at.is_(None), Schedule.stopped_at.is_(None)
                    )
                )
            }

    def sync(self) -> None:
        """Bring the jobs in line with the schedules table: a job for every active schedule,
        none for a paused, stopped or removed one."""
        scheduler = self.scheduler
        active = self._active_schedules()
        for job in scheduler.get_jobs(jobstore="default"):
            if job.id.startswith(JOB_PREFIX) and job.id not in active:
                self.drop_job(job.id)
                self.emit(f"schedule {job.id.removeprefix(JOB_PREFIX)}: off the scheduler")
        for job_id, schedule in active.items():
            if scheduler.get_job(job_id, jobstore="default") is not None:
                continue
            timing = timing_of(schedule)
            job = scheduler.add_job(
                fire_schedule_job,
                timing.trigger(schedule.created_at),
                args=[schedule.id],
                id=job_id,
                name=f"schedule {schedule.id}",
                jobstore="default",
                executor="default",
            )
            self.emit(
                f"schedule {schedule.id}: {timing.describe()}, next at {_when(job.next_run_time)}"
            )

    def drop_job(self, job_id: str) -> None:
        """Take a job off the scheduler if it is on it."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(job_id, jobstore="default")

    def _ensure_purge_job(self) -> None:
        """The daily purge job, kept across restarts: a purge missed while the scheduler was
        down runs (once) when it comes back, whatever the delay."""
        trigger = CronTrigger(hour=self.purge_at.hour, minute=self.purge_at.minute, timezone=UTC)
        job = self.scheduler.get_job(PURGE_JOB_ID, jobstore="default")
        if job is not None and str(job.trigger) == str(trigger):
            return
        self.scheduler.add_job(
            daily_purge_job,
            trigger,
            id=PURGE_JOB_ID,
            name="daily purge",
            jobstore="default",
            executor="default",
            misfire_grace_time=None,
            replace_existing=True,
        )

    def _tick(self) -> None:
        if self._stopping:
            return
        lock = self._lock
        if lock is not None and not lock.still_held():
            # Another scheduler may have started meanwhile: never fire beside it.
            self.failure = f"the scheduler lost its {lock.description}; firing stopped"
            self.emit(self.failure)
            self.scheduler.pause()
            return
        try:
            self.sync()
        except Exception as exc:
            logger.warning("synchronising schedules failed: %s", type(exc).__name__)

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        what = (
            "still busy with its previous firing; this one is skipped"
            if event.code == EVENT_JOB_MAX_INSTANCES
            else "missed its time by more than the grace period; skipped"
        )
        name = "daily purge" if event.job_id == PURGE_JOB_ID else event.job_id.replace("-", " ")
        self.emit(f"{name}: {what}")


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "—"
