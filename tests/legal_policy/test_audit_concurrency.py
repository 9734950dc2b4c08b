"""Concurrent writers in separate processes never fork or break the chain, on both backends.

Each worker is a fresh Python process with its own engine, as two crawls or a dozen CLI
commands would be; they wait on a start file so that they really write at the same time.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.audit_log import iter_chain, verify_stored_chain
from storage.models import AuditEntry

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import sys, time
from pathlib import Path
from sqlalchemy import func, select
from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from storage.db import make_engine, make_session_factory
from storage.models import CandidateProfile

url, actor, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
engine = make_engine(url)
factory = make_session_factory(engine)
with engine.connect():
    pass  # connected before the start, so that the writes themselves race
deadline = time.monotonic() + 120
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("never told to start")
    time.sleep(0.002)
for i in range(count):
    with factory.begin() as session:
        # Like `profiles list`: read first, then record the consultation.
        session.execute(select(func.count()).select_from(CandidateProfile)).scalar_one()
        record_event(
            session,
            AuditEvent(action="profiles.listed", actor=actor, subject=f"{actor}:{i}"),
        )
    # A command does other work between transactions; without a gap SQLite's busy handler
    # (which polls) lets one process take the lock again and again, and nothing interleaves.
    time.sleep(0.001)
engine.dispose()
"""


def _run_writers(url: str, tmp_path: Path, writers: int, each: int) -> None:
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, f"writer-{w}", str(each), str(go)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(writers)
    ]
    time.sleep(0.5)
    go.touch()
    failures = []
    for process in processes:
        _, err = process.communicate(timeout=300)
        if process.returncode != 0:
            failures.append(err.decode(errors="replace").strip().splitlines()[-1:])
    assert failures == []


def _actors(session_factory: sessionmaker[Session]) -> Counter[str]:
    with session_factory() as session:
        return Counter(
            session.scalars(
                select(AuditEntry.actor).where(AuditEntry.action == "profiles.listed")
            ).all()
        )


def test_two_processes_appending_a_thousand_each_leave_one_chain(
    database_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _run_writers(database_url, tmp_path, writers=2, each=1000)
    with session_factory() as session:
        result = verify_stored_chain(session)
        entries = list(iter_chain(session))
    assert result.ok, result.problems[:5]
    assert result.entries_checked == 2000
    assert _actors(session_factory) == {"writer-0": 1000, "writer-1": 1000}
    # The writers really interleaved (otherwise this test proves nothing about races).
    switches = sum(a.actor != b.actor for a, b in itertools.pairwise(entries))
    assert switches > 10


def test_twelve_parallel_commands_all_succeed(
    database_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _run_writers(database_url, tmp_path, writers=12, each=3)
    with session_factory() as session:
        result = verify_stored_chain(session)
    assert result.ok and result.entries_checked == 36
    assert set(_actors(session_factory).values()) == {3}
