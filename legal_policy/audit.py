"""The tamper-evident audit log: typed events and the pure hash-chain rules.

Each entry's hash covers its sequence number, its content and the previous entry's hash,
so editing, deleting, reordering or truncating entries breaks verification.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something that happened, by whom, to what; written with the change it records."""

    action: str
    actor: str
    subject: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    justification: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class ChainedEntry:
    """An audit entry as stored: the event plus its place in the chain."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    justification: str | None
    properties: Mapping[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """The outcome of checking the chain end to end."""

    ok: bool
    entries_checked: int
    head_hash: str
    problems: tuple[str, ...]


def entry_digest(
    seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    justification: str | None,
    properties: Mapping[str, Any],
) -> str:
    """SHA-256 over a canonical JSON form of one entry and the hash before it."""
    canonical = json.dumps(
        {
            "seq": seq,
            "prev": prev_hash,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "justification": justification,
            "properties": properties,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_chain(
    entries: Iterable[ChainedEntry], expected_head: str | None = None
) -> ChainVerification:
    """Check every link; ``expected_head`` (exported earlier) also detects truncation."""
    problems: list[str] = []
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            problems.append(f"entry {entry.seq}: expected sequence number {expected_seq}")
        if entry.prev_hash != prev_hash:
            problems.append(f"entry {entry.seq}: does not link to the entry before it")
        digest = entry_digest(
            entry.seq,
            entry.prev_hash,
            entry.at,
            entry.actor,
            entry.action,
            entry.subject,
            entry.justification,
            entry.properties,
        )
        if digest != entry.entry_hash:
            problems.append(f"entry {entry.seq}: content does not match its hash (edited)")
        prev_hash = entry.entry_hash
        expected_seq = entry.seq + 1
    if expected_head is not None and expected_head != prev_hash:
        problems.append(
            "chain head differs from the exported head: entries were removed or replaced"
        )
    return ChainVerification(not problems, count, prev_hash, tuple(problems))
