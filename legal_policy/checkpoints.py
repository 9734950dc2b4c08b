"""Checkpoints of the audit chain, kept in a file outside the database.

Whoever can alter the database can delete the newest entries, empty the table, or edit
entries and recompute every hash after them; the chain alone cannot tell. A checkpoint
(sequence number and hash of the head at a moment) written to other storage can: the
chain must still hold that hash at that place. The file is JSON lines, one checkpoint
each, only ever appended to::

    {"seq": 41, "head_hash": "9f…", "at": "2026-11-30T09:12:03+00:00", "reason": "crawl run 7"}

Lines that cannot be read are verification problems, never crashes: the file lives outside
adwatch's control.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from legal_policy.audit import ChainAnchor, ChainHead
from legal_policy.audit_log import chain_head

_HASH = re.compile(r"[0-9a-f]{64}")
# The tail is read backwards in blocks this big to find the last checkpoint.
_TAIL_BLOCK = 8192
FILE_MODE = 0o640


class CheckpointError(Exception):
    """A checkpoint could not be written (file system error or misuse)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head at a moment, and why it was written down."""

    seq: int
    head_hash: str
    at: datetime
    reason: str

    def to_line(self) -> bytes:
        """The checkpoint as one JSON line (UTF-8, newline-terminated)."""
        record = {
            "seq": self.seq,
            "head_hash": self.head_hash,
            "at": self.at.astimezone(UTC).isoformat(timespec="seconds"),
            "reason": self.reason,
        }
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class CheckpointReading:
    """What a checkpoint file holds: its checkpoints by line, and the lines it could not read."""

    path: Path
    found: bool
    checkpoints: tuple[tuple[int, Checkpoint], ...]
    problems: tuple[str, ...]

    def anchors(self) -> list[ChainAnchor]:
        """Every checkpoint as an anchor the chain must still hold."""
        return [
            ChainAnchor(checkpoint.head_hash, checkpoint.seq, f"{self.path.name} line {line}")
            for line, checkpoint in self.checkpoints
        ]

    @property
    def newest_seq(self) -> int | None:
        """The highest sequence number any checkpoint records (None without checkpoints)."""
        return max((checkpoint.seq for _, checkpoint in self.checkpoints), default=None)


def parse_checkpoint(raw: bytes) -> Checkpoint:
    """One line of the file as a checkpoint; ``ValueError`` saying what is wrong otherwise."""
    try:
        record: Any = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError:
        raise ValueError("not a JSON object") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    seq, head_hash, at, reason = (record.get(k) for k in ("seq", "head_hash", "at", "reason"))
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError("'seq' is not a whole number >= 0")
    if not isinstance(head_hash, str) or not _HASH.fullmatch(head_hash):
        raise ValueError("'head_hash' is not a 64-digit lower-case hex SHA-256 hash")
    if not isinstance(reason, str):
        raise ValueError("'reason' is not text")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError("'at' is not an ISO 8601 time with a zone")
    return Checkpoint(seq, head_hash, when.astimezone(UTC), reason)


def read_checkpoints(path: Path) -> CheckpointReading:
    """Read every checkpoint in ``path`` (streamed); a missing file is ``found=False``."""
    checkpoints: list[tuple[int, Checkpoint]] = []
    problems: list[str] = []
    try:
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                try:
                    checkpoints.append((number, parse_checkpoint(raw)))
                except ValueError as exc:
                    problems.append(f"{path.name} line {number}: not a checkpoint ({exc})")
    except FileNotFoundError:
        return CheckpointReading(path, False, (), ())
    except OSError as exc:
        problems.append(f"cannot read the checkpoint file {path}: {exc.strerror or exc}")
    return CheckpointReading(path, True, tuple(checkpoints), tuple(problems))


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append ``checkpoint`` as one line: a single write to an O_APPEND file, then fsync."""
    with _locked_for_append(path) as fd:
        _append(fd, checkpoint)


def append_checkpoint_if_new(session: Session, path: Path, reason: str) -> Checkpoint | None:
    """Checkpoint the chain's head unless the file's last checkpoint already covers it.

    Call it after the commit, with a session not in a transaction: a checkpoint must only
    ever record committed entries (a rolled-back one would later look like a deletion).
    Returns the checkpoint written, or None.
    """
    if session.in_transaction():
        raise CheckpointError(
            "append_checkpoint_if_new needs a session outside any transaction (commit first)"
        )
    # Read in a transaction of its own, ended before the file is touched: on SQLite it
    # holds the database's write lock.
    with session.begin():
        head = chain_head(session)
    if head.seq == 0:
        return None
    with _locked_for_append(path) as fd:
        last = _last_checkpoint(fd)
        if last is not None and head.seq <= last.seq:
            return None
        checkpoint = checkpoint_of(head, reason)
        _append(fd, checkpoint)
    return checkpoint


def checkpoint_of(head: ChainHead, reason: str) -> Checkpoint:
    """A checkpoint of ``head`` taken now."""
    return Checkpoint(head.seq, head.entry_hash, datetime.now(UTC), reason)


@contextmanager
def _locked_for_append(path: Path) -> Iterator[int]:
    """The file opened for appending, exclusively locked against other adwatch writers.

    O_APPEND alone makes each single write atomic on a local file system; the lock keeps
    "read the last checkpoint, then append" atomic too, so concurrent processes do not
    write the same head twice.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise CheckpointError(f"cannot open checkpoint file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock
    if created:
        _fsync_directory(path.parent)


def _append(fd: int, checkpoint: Checkpoint) -> None:
    line = checkpoint.to_line()
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        # A torn earlier write: start on a line of our own rather than extend a broken one.
        line = b"\n" + line
    try:
        written = os.write(fd, line)
        os.fsync(fd)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint: {exc.strerror}") from None
    if written != len(line):
        raise CheckpointError(f"checkpoint only partly written ({written} of {len(line)} bytes)")


def _last_checkpoint(fd: int) -> Checkpoint | None:
    """The last well-formed checkpoint, reading the file backwards from its end."""
    position = os.fstat(fd).st_size
    partial = b""  # the start of a line whose beginning lies before ``position``
    while position > 0:
        step = min(_TAIL_BLOCK, position)
        position -= step
        lines = (os.pread(fd, step, position) + partial).split(b"\n")
        partial = lines.pop(0) if position > 0 else b""
        for raw in reversed(lines):
            if raw.strip():
                try:
                    return parse_checkpoint(raw)
                except ValueError:
                    continue
    return None


def _fsync_directory(directory: Path) -> None:
    # A new file's name is durable only once its directory is synced.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
