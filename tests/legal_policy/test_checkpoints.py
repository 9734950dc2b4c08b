"""The checkpoint file: appended atomically, read without ever crashing, written when new."""

from __future__ import annotations

import contextlib
import json
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.audit import AuditEvent
from legal_policy.audit_log import chain_head, record_event
from legal_policy.checkpoints import (
    Checkpoint,
    CheckpointError,
    append_checkpoint,
    append_checkpoint_if_new,
    parse_checkpoint,
    read_checkpoints,
)

AT = datetime(2026, 11, 30, 9, 12, 3, tzinfo=UTC)


def _write(session_factory: sessionmaker[Session], n: int = 1) -> None:
    with session_factory.begin() as session:
        for i in range(n):
            record_event(session, AuditEvent(action="test.written", actor="a", subject=f"s{i}"))


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_append_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "new" / "checkpoints.jsonl"
    first = Checkpoint(3, "a" * 64, AT, "crawl run 7 ended")
    second = Checkpoint(5, "b" * 64, AT, "purge — 2 ads")
    append_checkpoint(path, first)
    append_checkpoint(path, second)
    assert _lines(path) == [
        {"seq": 3, "head_hash": "a" * 64, "at": "2026-11-30T09:12:03+00:00", "reason": "crawl "
         "run 7 ended"},
        {"seq": 5, "head_hash": "b" * 64, "at": "2026-11-30T09:12:03+00:00", "reason": "purge — "
         "2 ads"},
    ]  # fmt: skip
    assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0  # not world-readable
    reading = read_checkpoints(path)
    assert reading.found and reading.problems == ()
    assert reading.checkpoints == ((1, first), (2, second))
    assert reading.newest_seq == 5
    assert [(a.seq, a.source) for a in reading.anchors()] == [
        (3, "checkpoints.jsonl line 1"),
        (5, "checkpoints.jsonl line 2"),
    ]


def test_a_missing_file_is_not_a_problem_but_is_said(tmp_path: Path) -> None:
    reading = read_checkpoints(tmp_path / "absent.jsonl")
    assert not reading.found and reading.checkpoints == () and reading.problems == ()


def test_malformed_lines_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    good = Checkpoint(1, "c" * 64, AT, "ok")
    path.write_bytes(
        good.to_line()
        + b"\n"  # blank lines are skipped
        + b'{"seq": -1, "head_hash": "'
        + b"c" * 64
        + b'", "at": "2026-11-30T09:00:00Z", '
        b'"reason": ""}\n'
        + b'{"seq": 2, "head_hash": "'
        + b"C" * 64
        + b'", "at": "x", "reason": ""}\n'
        + b'{"seq": 2, "head_hash": "'
        + b"c" * 64
        + b'", "at": "2026-11-30T09:00", '
        b'"reason": ""}\n'
        + b'{"seq": true, "head_hash": "'
        + b"c" * 64
        + b'"}\n'
        + b"\xff\n"
        + b'{"seq": 2, "head_hash'
    )
    reading = read_checkpoints(path)
    assert reading.checkpoints == ((1, good),)
    assert reading.problems == (
        "c.jsonl line 3: not a checkpoint ('seq' is not a whole number >= 0)",
        "c.jsonl line 4: not a checkpoint ('head_hash' is not a 64-digit lower-case hex "
        "SHA-256 hash)",
        "c.jsonl line 5: not a checkpoint ('at' is not an ISO 8601 time with a zone)",
        "c.jsonl line 6: not a checkpoint ('seq' is not a whole number >= 0)",
        "c.jsonl line 7: not a checkpoint (not UTF-8 text)",
        "c.jsonl line 8: not a checkpoint (not a JSON object)",
    )


@given(st.binary(max_size=300))
def test_parsing_arbitrary_bytes_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(ValueError):
        parse_checkpoint(raw)


def test_a_torn_last_line_does_not_swallow_the_next_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(Checkpoint(1, "d" * 64, AT, "ok").to_line() + b'{"seq": 2, "hea')
    append_checkpoint(path, Checkpoint(3, "e" * 64, AT, "after the tear"))
    reading = read_checkpoints(path)
    assert [c.seq for _, c in reading.checkpoints] == [1, 3]
    assert len(reading.problems) == 1 and reading.problems[0].startswith("c.jsonl line 2")


def test_checkpoint_if_new_writes_only_when_the_head_moved(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "c.jsonl"
    with session_factory() as session:
        assert append_checkpoint_if_new(session, path, "nothing yet") is None  # empty chain
    assert not path.exists()
    _write(session_factory, 2)
    with session_factory() as session:
        written = append_checkpoint_if_new(session, path, "crawl run 1 ended")
        assert written is not None and (written.seq, written.reason) == (2, "crawl run 1 ended")
        assert append_checkpoint_if_new(session, path, "again") is None
        head = chain_head(session)
    assert written.head_hash == head.entry_hash
    _write(session_factory)
    with session_factory() as session:
        moved = append_checkpoint_if_new(session, path, "purge")
    assert moved is not None and moved.seq == 3
    assert [line["seq"] for line in _lines(path)] == [2, 3]


def test_checkpoint_if_new_finds_the_last_good_line_across_blocks(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _write(session_factory, 2)
    with session_factory() as session:
        head = chain_head(session)
    path = tmp_path / "c.jsonl"
    # A long last checkpoint spanning several read blocks, then a torn line after it.
    long_reason = "r" * 20_000
    path.write_bytes(
        Checkpoint(1, "f" * 64, AT, "old").to_line()
        + Checkpoint(head.seq, head.entry_hash, AT, long_reason).to_line()
        + b'{"torn'
    )
    with session_factory() as session:
        assert append_checkpoint_if_new(session, path, "x") is None


def test_checkpoint_if_new_refuses_an_open_transaction(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_factory.begin() as session:
        record_event(session, AuditEvent(action="test.written", actor="a", subject="s"))
        with pytest.raises(CheckpointError, match="outside any transaction"):
            append_checkpoint_if_new(session, tmp_path / "c.jsonl", "too early")


def test_concurrent_checkpoints_of_one_head_are_written_once(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _write(session_factory, 3)
    path = tmp_path / "c.jsonl"

    def checkpoint(i: int) -> Checkpoint | None:
        with session_factory() as session:
            return append_checkpoint_if_new(session, path, f"writer {i}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        written = [c for c in pool.map(checkpoint, range(6)) if c is not None]
    assert len(written) == 1 and len(_lines(path)) == 1


def test_unwritable_location_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CheckpointError, match="cannot open checkpoint file"):
        append_checkpoint(blocker / "c.jsonl", Checkpoint(1, "a" * 64, AT, "x"))
