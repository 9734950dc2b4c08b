"""A run's record tells the truth whatever happens to its processes: the worker killed,
the parent killed, Ctrl-C; a failed or interrupted run resumes without storing twice. The
worker's configuration (database URL included) never appears on its command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from crawler.context import STORE_PROCESS_NAME
from crawler.pipelines import PIPELINE_PROCESS_GONE
from storage.models import Ad, CrawlRun, ProfileMembership
from tests.conftest import People
from tests.support import authorise, crawl, slow_down

N_ADS = 30


@pytest.fixture
def slow_site(settings: Settings) -> Iterator[int]:
    """A demo site of N_ADS ads crawled one polite request at a time (~20 s in all)."""
    with running_demo_server(port=0, seed=4, n_ads=N_ADS) as server:
        point_demo_profile_at(settings, server.base_url)
        slow_down(settings, 0.3)
        yield len(server.content.static_ads)


def _stored(session_factory: sessionmaker[Session], run_id: int | None = None) -> int:
    with session_factory() as session:
        query = select(func.count(Ad.id))
        if run_id is not None:
            query = query.where(Ad.run_id == run_id)
        return int(session.scalar(query) or 0)


def test_a_killed_worker_leaves_a_failed_run_with_its_real_counts_and_resumes(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    slow_site: int,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    pid: list[int] = []
    pipeline_processes: list[int] = []

    def kill_after_some_ads(event: dict[str, object]) -> None:
        if event.get("event") == "started":
            pid.append(int(event["pid"]))  # type: ignore[call-overload]
        if event.get("event") == "ad" and event.get("ads") == 4:
            pipeline_processes.extend(_children(pid[0]))
            os.kill(pid[0], signal.SIGKILL)

    outcome, _ = crawl(
        settings,
        session_factory,
        people.investigator,
        authorisation_id,
        on_progress=kill_after_some_ads,
    )
    run = outcome.run
    assert run.status == "failed"
    assert any("SIGKILL" in p["message"] for p in run.problems)
    # The worker's compute and store processes died with it: nothing is stored after.
    assert len(pipeline_processes) == 2
    deadline = time.monotonic() + 5
    while any(_alive(child) for child in pipeline_processes):
        assert time.monotonic() < deadline, "a pipeline process outlived its worker"
        time.sleep(0.05)
    stored = _stored(session_factory, run.run_id)
    assert run.ads_captured == stored >= 4
    assert stored < slow_site

    resumed, _ = crawl(
        settings, session_factory, people.investigator, authorisation_id, resume=run.run_id
    )
    assert resumed.run.run_id == run.run_id and resumed.run.status == "finished"
    assert _stored(session_factory) == slow_site  # every ad, none twice
    assert resumed.run.ads_captured == slow_site
    assert resumed.run.ads_unchanged >= stored
    with session_factory() as session:
        assert session.scalar(select(func.count(CrawlRun.id))) == 1
        assert session.scalar(select(func.count(ProfileMembership.id))) == slow_site


def test_a_finished_run_cannot_be_resumed(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    from crawler.errors import InvalidRun

    with running_demo_server(port=0, seed=4, n_ads=4) as server:
        point_demo_profile_at(settings, server.base_url)
        authorisation_id = authorise(settings, session_factory, people.legal)
        outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
        with pytest.raises(InvalidRun, match="only a failed or interrupted run"):
            crawl(
                settings,
                session_factory,
                people.investigator,
                authorisation_id,
                resume=outcome.run.run_id,
            )


def _cli(settings: Settings, user: str, *argv: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADWATCH_")} | {
        "ADWATCH_DATA_DIR": str(settings.data_dir),
        "ADWATCH_DATABASE_URL": settings.resolved_database_url,
        "ADWATCH_SITE_PROFILES_DIR": str(settings.resolved_site_profiles_dir),
        "ADWATCH_USER": user,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "adwatch", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_ads(session_factory: sessionmaker[Session], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _stored(session_factory) < count:
        assert time.monotonic() < deadline, "the crawl stored nothing in time"
        time.sleep(0.2)


def _processes() -> Iterator[tuple[int, int, list[bytes]]]:
    """Live processes (zombies have ended) as pid, parent pid and command line."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                # The command name may hold spaces or parentheses: ppid follows the last ")".
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if stat[0] != "Z":
                yield int(entry.name), int(stat[1]), cmdline


def _children(parent: int) -> list[int]:
    """Live child processes of ``parent``."""
    return [pid for pid, ppid, _ in _processes() if ppid == parent]


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended."""
    return any(found == pid for found, _, _ in _processes())


def _worker_pids(parent: int | None = None) -> list[int]:
    """Live crawler workers; with ``parent``, only that process's children (a benchmark or
    another test may run workers of its own at the same time)."""
    return [
        pid
        for pid, ppid, cmdline in _processes()
        if b"crawler.worker" in cmdline and (parent is None or ppid == parent)
    ]


def test_ctrl_c_interrupts_the_run_cleanly_and_links_what_it_stored(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    slow_site: int,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    process = _cli(
        settings,
        "investigator",
        "crawl",
        "--authorisation",
        str(authorisation_id),
        "--site",
        "demo",
    )
    _wait_for_ads(session_factory, 3, timeout=60)
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "interrupted" in out and "--resume" in out
    with session_factory() as session:
        run = session.scalars(select(CrawlRun)).one()
        assert run.status == "interrupted"
        stored = _stored(session_factory)
        assert run.ads_captured == stored < slow_site
        assert session.scalar(select(func.count(ProfileMembership.id))) == stored


def test_a_killed_store_process_stops_the_run_and_says_why(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    slow_site: int,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    pid: list[int] = []

    def kill_the_store_after_some_ads(event: dict[str, object]) -> None:
        if event.get("event") == "started":
            pid.append(int(event["pid"]))  # type: ignore[call-overload]
        if event.get("event") == "ad" and event.get("ads") == 3:
            (store,) = [
                child
                for child in _children(pid[0])
                if Path(f"/proc/{child}/comm").read_text().strip() == STORE_PROCESS_NAME
            ]
            os.kill(store, signal.SIGKILL)

    outcome, _ = crawl(
        settings,
        session_factory,
        people.investigator,
        authorisation_id,
        on_progress=kill_the_store_after_some_ads,
    )
    run = outcome.run
    assert run.status == "stopped" and run.stop_reason == PIPELINE_PROCESS_GONE
    stored = _stored(session_factory, run.run_id)
    assert run.ads_captured == stored >= 3
    assert stored < slow_site


def test_a_killed_parent_makes_the_worker_stop_itself_within_seconds(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    slow_site: int,
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    process = _cli(
        settings,
        "investigator",
        "crawl",
        "--authorisation",
        str(authorisation_id),
        "--site",
        "demo",
    )
    _wait_for_ads(session_factory, 2, timeout=60)
    workers = set(_worker_pids(parent=process.pid))
    assert workers, "no worker process found"
    process.kill()
    process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while set(_worker_pids()) & workers:
        assert time.monotonic() < deadline, "the orphaned worker went on crawling"
        time.sleep(0.2)
    with session_factory() as session:
        run = session.scalars(select(CrawlRun)).one()
        assert run.status == "stopped"
        assert run.stop_reason == "the adwatch process that started the run is gone"
        assert run.ads_captured == _stored(session_factory) < slow_site


def test_the_database_url_never_reaches_the_workers_command_line(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    slow_site: int,
) -> None:
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("a password travels only in a PostgreSQL URL")
    # Trust authentication ignores the password; it is there to be looked for.
    secret = "s3cret-crawl-pw"
    with_password = url.set(password=secret).render_as_string(hide_password=False)
    settings = settings.model_copy(update={"database_url": with_password})
    authorisation_id = authorise(settings, session_factory, people.legal)
    seen: list[bytes] = []

    def look_at_the_worker(event: dict[str, object]) -> None:
        if event.get("event") == "started":
            proc = Path("/proc") / str(event["pid"])
            seen.append((proc / "cmdline").read_bytes())
            seen.append((proc / "environ").read_bytes())

    outcome, _ = crawl(
        settings,
        session_factory,
        people.investigator,
        authorisation_id,
        on_progress=look_at_the_worker,
    )
    assert outcome.run.status == "finished" and len(seen) == 2
    assert all(secret.encode() not in data for data in seen)
    assert b"crawler.worker" in seen[0]
