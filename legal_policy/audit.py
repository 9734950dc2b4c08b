"""The tamper-evident audit log: typed events and the pure hash-chain rules.

Each entry's hash covers its sequence number, its content and the previous entry's hash,
so editing, deleting or reordering entries breaks verification. Deleting the newest
entries (or all of them), or rewriting the chain and recomputing every hash, is caught
only against anchors kept outside the database: heads written down earlier and the
checkpoint file (``legal_policy.checkpoints``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
# Verification keeps at most this many problem messages; the rest are counted.
MAX_PROBLEMS = 1000

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something that happened, by whom, to what; written with the change it records."""

    action: str
    actor: str
    subject: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    justification: str | None = None
    # Case numbers the event concerns, so that the log can be read and exported per case.
    cases: tuple[str, ...] = ()
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
    cases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChainLink:
    """An entry whose content is withheld (a stub in a case export): only its place."""

    seq: int
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """A hash kept outside the database that the chain must still contain.

    With ``seq`` the entry at that position must have this hash (0 is the empty chain);
    without it the hash must appear anywhere. ``source`` names where it came from, for
    messages ("--head", "checkpoints.jsonl line 4").
    """

    entry_hash: str
    seq: int | None
    source: str


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """The outcome of checking the chain end to end."""

    ok: bool
    entries_checked: int
    head_hash: str
    problems: tuple[str, ...]
    # The last entry's sequence number (0 for an empty chain).
    head_seq: int = 0
    anchors_checked: int = 0


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest entry's place: what is written down outside the system."""

    seq: int
    entry_hash: str

    def __str__(self) -> str:
        return format_head(self.seq, self.entry_hash)


EMPTY_CHAIN = ChainHead(0, GENESIS_HASH)


class InvalidAnchor(ValueError):
    """A head given as text is not ``SEQ:HASH`` or ``HASH``."""


def entry_digest(
    seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    justification: str | None,
    properties: Mapping[str, Any],
    cases: tuple[str, ...] = (),
) -> str:
    """SHA-256 over a canonical JSON form of one entry and the hash before it."""
    content: dict[str, Any] = {
        "seq": seq,
        "prev": prev_hash,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "justification": justification,
        "properties": properties,
    }
    if cases:  # absent in entries written before cases were recorded: their hashes stand
        content["cases"] = list(cases)
    canonical = json.dumps(
        content,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_chain(
    entries: Iterable[ChainedEntry | ChainLink],
    expected_head: str | None = None,
    anchors: Iterable[ChainAnchor] = (),
) -> ChainVerification:
    """Check every link, and that the chain still holds every anchor kept outside it.

    ``expected_head`` must be the last hash (an export's own head); ``anchors`` must be in
    the chain, wherever it ends now. Entries are streamed; only the anchors are kept in
    memory. A ``ChainLink``'s content cannot be checked, only its place in the chain.
    """
    problems = _Problems()
    at_seq: dict[int, list[ChainAnchor]] = {}
    anywhere: dict[str, list[ChainAnchor]] = {}
    anchor_count = 0
    for anchor in anchors:
        anchor_count += 1
        if anchor.seq is None:
            if anchor.entry_hash == GENESIS_HASH:  # the empty chain: every chain begins there
                continue
            anywhere.setdefault(anchor.entry_hash, []).append(anchor)
        elif anchor.seq == 0:
            if anchor.entry_hash != GENESIS_HASH:
                problems.add(f"{anchor.source}: sequence number 0 is the empty chain")
        else:
            at_seq.setdefault(anchor.seq, []).append(anchor)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_seq = 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            problems.add(f"entry {entry.seq}: expected sequence number {expected_seq}")
        if entry.prev_hash != prev_hash:
            problems.add(f"entry {entry.seq}: does not link to the entry before it")
        if isinstance(entry, ChainedEntry) and entry_hash_of(entry) != entry.entry_hash:
            problems.add(f"entry {entry.seq}: content does not match its hash (edited)")
        for anchor in at_seq.pop(entry.seq, ()):
            if anchor.entry_hash != entry.entry_hash:
                problems.add(
                    f"{anchor.source}: entry {entry.seq} has hash {entry.entry_hash}, the "
                    f"anchor recorded {anchor.entry_hash}: the chain was rewritten up to there"
                )
        anywhere.pop(entry.entry_hash, None)
        prev_hash = entry.entry_hash
        last_seq = entry.seq
        expected_seq = entry.seq + 1
    for seq, missing in sorted(at_seq.items()):
        for anchor in missing:
            if seq > last_seq:
                problems.add(
                    f"{anchor.source}: records entry {seq}, but the chain ends at entry "
                    f"{last_seq}: the newest entries were deleted"
                )
            else:
                problems.add(f"{anchor.source}: entry {seq} is missing from the chain")
    for missing in anywhere.values():
        for anchor in missing:
            problems.add(
                f"{anchor.source}: hash {anchor.entry_hash} is not in the chain: entries were "
                "deleted or rewritten"
            )
    if expected_head is not None and expected_head != prev_hash:
        problems.add("chain head differs from the exported head: entries were removed or replaced")
    found = problems.messages()
    return ChainVerification(
        not found, count, prev_hash, found, head_seq=last_seq, anchors_checked=anchor_count
    )


def entry_hash_of(entry: ChainedEntry) -> str:
    """The hash ``entry`` should carry, recomputed from its content."""
    return entry_digest(
        entry.seq,
        entry.prev_hash,
        entry.at,
        entry.actor,
        entry.action,
        entry.subject,
        entry.justification,
        entry.properties,
        entry.cases,
    )


def parse_anchor(text: str, source: str) -> ChainAnchor:
    """``SEQ:HASH`` (the entry at SEQ has HASH) or a bare ``HASH`` (anywhere in the chain)."""
    value = text.strip().lower()
    seq_text, _, hash_text = value.rpartition(":")
    seq: int | None = None
    if seq_text:
        if not seq_text.isdigit():
            raise InvalidAnchor(f"{text!r} is not SEQ:HASH (SEQ a whole number)")
        seq = int(seq_text)
    if not _HASH.fullmatch(hash_text):
        raise InvalidAnchor(f"{text!r} does not end in a 64-digit hex SHA-256 hash")
    return ChainAnchor(hash_text, seq, source)


def format_head(seq: int, entry_hash: str) -> str:
    """A head as written down and given back to ``--head``: ``SEQ:HASH``."""
    return f"{seq}:{entry_hash}"


class _Problems:
    """Collects problem messages, keeping the first ``MAX_PROBLEMS`` and counting the rest."""

    def __init__(self) -> None:
        self._kept: list[str] = []
        self._dropped = 0

    def add(self, message: str) -> None:
        if len(self._kept) < MAX_PROBLEMS:
            self._kept.append(message)
        else:
            self._dropped += 1

    def messages(self) -> tuple[str, ...]:
        if self._dropped:
            return (*self._kept, f"... and {self._dropped} more problems")
        return tuple(self._kept)


def encode_cases(cases: tuple[str, ...]) -> str | None:
    """Case numbers as stored for filtering: ``|A|B|`` (None for none)."""
    return f"|{'|'.join(cases)}|" if cases else None


def decode_cases(stored: str | None) -> tuple[str, ...]:
    """The inverse of ``encode_cases``."""
    return tuple(part for part in (stored or "").split("|") if part)
