"""``adwatch schedule`` and ``adwatch serve``, on SQLite and PostgreSQL: timing checked as people
type it, refusals that exit 2 and are audited, who may list, pause, resume and remove, and the
scheduler in the foreground (a second one refused, Ctrl-C stopping it cleanly, in real
processes)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.scheduling import PURGE_JOB_ID, acquire_scheduler_lock, add_schedule
from adwatch.settings import Settings
from storage.models import AuditEntry, Schedule, apscheduler_jobs
from tests.conftest import People
from tests.support import Cli, authorise


@pytest.fixture
def cli(settings: Settings, people: People) -> Cli:
    return Cli(settings)


@pytest.fixture
def auth(settings: Settings, session_factory: sessionmaker[Session], people: People) -> int:
    """A valid authorisation of CASE-1 for the demo site."""
    return authorise(settings, session_factory, people.legal)


def audited(session_factory: sessionmaker[Session], action: str) -> list[AuditEntry]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def add(cli: Cli, user: str, auth: int, *timing: str, site: str = "demo") -> tuple[int, str, str]:
    return cli.as_(user, "schedule", "add", "--authorisation", str(auth), "--site", site, *timing)


def test_schedule_add_checks_timing_and_refuses_what_the_policy_refuses(
    cli: Cli, session_factory: sessionmaker[Session], auth: int
) -> None:
    """Intervals below a minute, malformed crontab lines and both or neither timing are
    refused with what is wrong; so are other cases' investigators, analysts, unknown
    authorisations and sites. Every refusal exits 2, adds no schedule and is audited with who
    and why; a crontab "1" is a Monday."""
    attempts: list[tuple[str, int, tuple[str, ...], str]] = [
        ("investigator", auth, ("--every", "59s"), "at most once every 1m"),
        ("investigator", auth, ("--every", "often"), "is not an interval"),
        ("investigator", auth, ("--cron", "0 2 * *"), "has 4 fields"),
        ("investigator", auth, ("--cron", "0 25 * * *"), "not a valid crontab expression"),
        ("investigator", auth, ("--cron", "0 2 * * *", "--every", "1h"), "exactly one of"),
        ("investigator", auth, (), "exactly one of"),
        ("other-investigator", auth, ("--every", "1h"), "not a member of case CASE-1"),
        ("analyst", auth, ("--every", "1h"), "may not start crawl runs"),
        ("investigator", 99, ("--every", "1h"), "no authorisation with id 99"),
    ]
    for user, authorisation, timing, why in attempts:
        code, _, err = add(cli, user, authorisation, *timing)
        assert code == 2 and why in err, (timing, err)
    code, _, err = add(cli, "investigator", auth, "--every", "1h", site="nowhere")
    assert code == 2 and "no site profile named 'nowhere'" in err
    refused = [
        e for e in audited(session_factory, "refused") if e.subject == "adwatch schedule add"
    ]
    assert len(refused) == len(attempts) + 1
    assert [e.actor for e in refused[:2]] == ["investigator", "investigator"]
    assert "at most once every 1m" in refused[0].properties["reason"]
    with session_factory() as session:
        assert session.scalars(select(Schedule)).all() == []

    code, out, _ = add(cli, "investigator", auth, "--every", "1m")
    assert code == 0 and "added schedule 1: every 1m of site demo" in out
    code, out, _ = add(cli, "investigator", auth, "--cron", "30 2 * * 1")
    assert code == 0 and "cron 30 2 * * 1 (UTC)" in out
    first = re.search(r"first crawl at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out)
    assert first is not None
    moment = datetime.strptime(first.group(1), "%Y-%m-%d %H:%M:%S")
    assert (moment.isoweekday(), moment.hour, moment.minute) == (1, 2, 30)
    (added, _) = audited(session_factory, "schedule.added")
    assert added.actor == "investigator" and added.cases == "|CASE-1|"
    assert added.properties["trigger"] == "every" and added.properties["expression"] == "60"


def test_list_pause_resume_remove_follow_roles_and_are_audited(
    cli: Cli, settings: Settings, session_factory: sessionmaker[Session], people: People, auth: int
) -> None:
    """Investigators see and manage their cases' schedules; legal officers see every case's
    and may pause and remove but not resume (resuming crawls is an investigator's act); a
    revoked authorisation shows as ending at the next firing and takes no new schedule."""
    assert add(cli, "investigator", auth, "--every", "6h")[0] == 0
    assert add(cli, "investigator", auth, "--cron", "0 3 * * *")[0] == 0
    other = authorise(settings, session_factory, people.legal, case="CASE-2")
    assert add(cli, "other-investigator", other, "--every", "1d")[0] == 0

    code, out, _ = cli.as_("investigator", "schedule", "list")
    assert code == 0 and "every 6h" in out and "cron 0 3 * * * (UTC)" in out
    assert "every 1d" not in out and "is `adwatch serve` running?" in out
    code, out, _ = cli.as_("legal", "schedule", "list")
    assert code == 0 and "every 6h" in out and "every 1d" in out
    assert cli.as_("analyst", "schedule", "list")[0] == 2

    assert cli.as_("other-investigator", "schedule", "pause", "1")[0] == 2
    code, _, _ = cli.as_("legal", "schedule", "pause", "1", "--reason", "under review")
    assert code == 0
    code, _, err = cli.as_("legal", "schedule", "pause", "1")
    assert code == 2 and "already paused" in err
    code, _, err = cli.as_("legal", "schedule", "resume", "1")
    assert code == 2 and "may not start crawl runs" in err
    code, out, _ = cli.as_("investigator", "schedule", "list")
    assert re.search(r"every 6h .* paused", out)
    assert cli.as_("investigator", "schedule", "resume", "1") == (0, "schedule 1 resumed\n", "")
    assert cli.as_("investigator", "schedule", "remove", "2")[0] == 0
    assert cli.as_("investigator", "schedule", "remove", "2")[0] == 2
    code, _, err = cli.as_("legal", "schedule", "remove", "3", "--reason", "case ended")
    assert code == 0

    changes = [
        (e.action, e.subject, e.actor, e.justification)
        for e in audited(session_factory, "schedule.paused")
        + audited(session_factory, "schedule.resumed")
        + audited(session_factory, "schedule.removed")
    ]
    assert changes == [
        ("schedule.paused", "schedule:1", "legal", "under review"),
        ("schedule.resumed", "schedule:1", "investigator", None),
        ("schedule.removed", "schedule:2", "investigator", None),
        ("schedule.removed", "schedule:3", "legal", "case ended"),
    ]

    assert cli.as_("legal", "authorisation", "revoke", str(auth), "--reason", "withdrawn")[0] == 0
    code, out, _ = cli.as_("investigator", "schedule", "list")
    assert code == 0 and "stops at its next firing: authorisation revoked" in out
    code, _, err = add(cli, "investigator", auth, "--every", "1h")
    assert code == 2 and "revoked" in err


def test_serve_prints_what_fires_and_runs_the_purge_at_the_time_given(
    cli: Cli,
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    auth: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``serve --stop-after`` runs the scheduler for a bounded time, printing each event; a
    schedule whose authorisation was revoked is stopped at its first firing and says so; the
    daily purge is kept at the time given."""
    with session_factory.begin() as session:
        add_schedule(
            session,
            people.investigator,
            authorisation_id=auth,
            site_key="demo",
            every="1s",
            site_profiles_dir=settings.resolved_site_profiles_dir,
            min_interval_seconds=1,
        )
    assert cli.as_("legal", "authorisation", "revoke", str(auth), "--reason", "withdrawn")[0] == 0

    code, out, _ = cli("serve", "--stop-after", "2.5", "--purge-at", "04:15")
    assert code == 0, out
    assert "scheduler started" in out and "daily purge at 04:15 UTC" in out
    assert "schedule 1: stopped — authorisation revoked" in out
    assert out.rstrip().endswith("scheduler stopped")
    with session_factory() as session:
        next_purge = session.scalar(
            select(apscheduler_jobs.c.next_run_time).where(apscheduler_jobs.c.id == PURGE_JOB_ID)
        )
    assert next_purge is not None
    assert datetime.fromtimestamp(next_purge, UTC).strftime("%H:%M") == "04:15"
    code, _, _ = cli("serve", "--stop-after", "1", "--purge-at", "25:00")
    assert code == 2 and "not a time of day" in capsys.readouterr().err  # Click's own output


# --- real processes --------------------------------------------------------------------------


class Serving:
    """``adwatch serve`` in a process of its own, its output read as it comes."""

    def __init__(self, settings: Settings, *args: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ADWATCH_")}
        environment.update(
            ADWATCH_DATA_DIR=str(settings.data_dir),
            ADWATCH_DATABASE_URL=settings.resolved_database_url,
            ADWATCH_SITE_PROFILES_DIR=str(settings.resolved_site_profiles_dir),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adwatch", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors.append)),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream: Iterator[str], keep: Callable[[str], object]) -> None:
        for line in stream:
            keep(line)

    def wait_for_line(self, fragment: str, timeout: float = 30.0) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if fragment in line:
                return line

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Exit code and standard error, once the process ended."""
        code = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=5)
        return code, "".join(self.errors)


def test_a_second_serve_is_refused_and_ctrl_c_stops_the_first(
    settings: Settings, people: People
) -> None:
    """Two ``adwatch serve`` processes on one database: the second exits 2 naming the first
    (its process id); Ctrl-C stops the first cleanly (exit 0) and frees the lock."""
    first = Serving(settings)
    try:
        first.wait_for_line("scheduler started")
        second = Serving(settings, "--stop-after", "5")
        code, err = second.finish()
        assert code == 2, err
        assert "another adwatch scheduler is running on this database" in err
        assert f"pid {first.process.pid}" in err
        first.process.send_signal(signal.SIGINT)
        code, err = first.finish()
        assert code == 0, err
        first.wait_for_line("scheduler stopped", timeout=1)
    finally:
        if first.process.poll() is None:
            first.process.kill()
    acquire_scheduler_lock(settings.resolved_database_url).release()
