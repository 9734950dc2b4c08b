"""Legal officers read, export and verify the audit log; every function checks access first.

Reading never holds one long transaction: on SQLite each holds the write lock, and the
log only grows (entries never change), so batches read apart still form one chain.

A case export is JSON lines that anyone can verify without the database::

    {"type": "header", "format": "adwatch-audit-export/1", "case": "2026-017", ...}
    {"type": "entry", "seq": 1, ... every field ..., "prev_hash": "…", "entry_hash": "…"}
    {"type": "stub", "seq": 2, "prev_hash": "…", "entry_hash": "…"}
    {"type": "trailer", "head_seq": 2, "head_hash": "…", "entries": 2, "full_entries": 1}

Every entry of the chain appears in order: in full when it concerns the case, otherwise as
a stub without content. Full entries' hashes are recomputed, stubs' are taken as given;
continuity from the genesis hash to the trailer's head ties them together, and that head
can be compared with a checkpoint kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.access import AccessContext, require_justification
from legal_policy.audit import (
    ChainAnchor,
    ChainedEntry,
    ChainHead,
    ChainLink,
    ChainVerification,
    verify_chain,
)
from legal_policy.audit_log import (
    chain_columns,
    chain_head,
    chained_entry,
    record_event,
    stream_chain,
    verify_stored_chain_in_batches,
)
from legal_policy.checkpoints import (
    Checkpoint,
    CheckpointReading,
    append_checkpoint,
    checkpoint_of,
    read_checkpoints,
)
from legal_policy.registry import case_ref, get_case
from legal_policy.roles import Permission
from storage.models import AuditEntry

EXPORT_FORMAT = "adwatch-audit-export/1"
# The fields of each kind of export line; anything else would be unverified content.
STUB_FIELDS = frozenset({"type", "seq", "prev_hash", "entry_hash"})
ENTRY_FIELDS = STUB_FIELDS | frozenset(
    ("at", "actor", "action", "subject", "justification", "properties", "cases")
)
_BATCH = 1000


# --- verify, head, checkpoint ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditLogVerification:
    """The chain checked end to end and against every anchor kept outside the database."""

    chain: ChainVerification
    checkpoints: CheckpointReading
    heads_given: int

    @property
    def ok(self) -> bool:
        """Whether nothing at all is wrong (unreadable checkpoint lines count as wrong)."""
        return self.chain.ok and not self.checkpoints.problems

    @property
    def problems(self) -> tuple[str, ...]:
        """Every problem found, chain and checkpoint file alike."""
        return self.checkpoints.problems + self.chain.problems

    @property
    def can_detect_truncation(self) -> bool:
        """Whether any anchor outside the database was there to check the newest entries."""
        return bool(self.checkpoints.checkpoints) or self.heads_given > 0

    @property
    def uncovered_entries(self) -> int:
        """Entries newer than every checkpoint: their deletion would go unnoticed."""
        newest = self.checkpoints.newest_seq
        return max(self.chain.head_seq - (newest or 0), 0)


def verify_audit_log(
    session_factory: sessionmaker[Session],
    access: AccessContext,
    *,
    checkpoint_file: Path,
    heads: Sequence[ChainAnchor] = (),
) -> AuditLogVerification:
    """Check every link, every checkpoint in ``checkpoint_file`` and every head given."""
    access.require(Permission.VERIFY_AUDIT)
    # Checkpoints first: each was written after its entries were committed, so the chain
    # read next holds all of them unless something was deleted.
    reading = read_checkpoints(checkpoint_file)
    result = verify_stored_chain_in_batches(session_factory, [*heads, *reading.anchors()])
    return AuditLogVerification(result, reading, len(heads))


def audit_head(session_factory: sessionmaker[Session], access: AccessContext) -> ChainHead:
    """The chain's head, to write down outside the system (e.g. in the case file)."""
    access.require(Permission.VERIFY_AUDIT)
    with session_factory() as session:
        return chain_head(session)


def write_checkpoint(
    session_factory: sessionmaker[Session], access: AccessContext, path: Path, reason: str
) -> Checkpoint:
    """Append the chain's current head to the checkpoint file, whether or not it moved."""
    access.require(Permission.VERIFY_AUDIT)
    with session_factory() as session:
        head = chain_head(session)
    checkpoint = checkpoint_of(head, reason)
    append_checkpoint(path, checkpoint)
    return checkpoint


# --- list ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to list; every given criterion must hold. Times are inclusive."""

    actor: str | None = None
    case: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # The newest this many matching entries (shown in chain order); None for all.
    limit: int | None = 100

    def describe(self) -> dict[str, Any]:
        """The criteria given, for the audit entry of the consultation."""
        values: dict[str, Any] = {
            "actor": self.actor,
            "case": self.case,
            "action": self.action,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "limit": self.limit,
        }
        return {key: value for key, value in values.items() if value is not None}

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        """The criteria as SQL conditions on ``audit_entries`` in ``dialect``."""
        conditions: list[ColumnElement[bool]] = []
        if self.actor is not None:
            conditions.append(AuditEntry.actor == self.actor)
        if self.case is not None:
            # Not LIKE: SQLite's ignores case, and case numbers are compared exactly.
            find = func.instr if dialect == "sqlite" else func.strpos
            conditions.append(find(AuditEntry.cases, f"|{self.case}|") > 0)
        if self.action is not None:
            conditions.append(AuditEntry.action == self.action)
        if self.since is not None:
            conditions.append(AuditEntry.at >= self.since)
        if self.until is not None:
            conditions.append(AuditEntry.at <= self.until)
        return conditions


def parse_time_bound(text: str, *, end: bool) -> datetime:
    """An ISO 8601 date or time; without a zone it is UTC. A bare date as an ``end`` bound
    means the end of that day, so that ``--to 2026-11-30`` includes the 30th."""
    value = text.strip()
    try:
        if "T" not in value and " " not in value and len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1, microseconds=-1) if end else moment
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time (2026-11-30, 2026-11-30T14:00, "
            "2026-11-30T14:00+01:00)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def list_entries(
    session_factory: sessionmaker[Session], access: AccessContext, criteria: AuditFilter
) -> Iterator[ChainedEntry]:
    """The matching entries in chain order; the consultation itself is audited first.

    With a limit, the newest that many (held in memory, as many as asked); without one,
    every match, streamed in batches.
    """
    access.require(Permission.READ_AUDIT)
    with session_factory.begin() as session:
        dialect = session.get_bind().dialect.name
        through = chain_head(session).seq  # the view does not include its own entry
        record_event(
            session,
            access.event(
                "audit.listed",
                "audit-log",
                properties={"filters": criteria.describe()},
                cases=[criteria.case] if criteria.case else [],
                justification=access.justification,
            ),
        )
    conditions = [AuditEntry.seq <= through, *criteria.conditions(dialect)]
    if criteria.limit is not None:
        query = chain_columns().where(*conditions).order_by(AuditEntry.seq.desc())
        with session_factory() as session:
            rows = session.execute(query.limit(criteria.limit)).all()
        return (chained_entry(row) for row in reversed(rows))
    return _stream_matching(session_factory, conditions)


def _stream_matching(
    session_factory: sessionmaker[Session], conditions: list[ColumnElement[bool]]
) -> Iterator[ChainedEntry]:
    after = 0
    while True:
        query = chain_columns().where(AuditEntry.seq > after, *conditions)
        with session_factory() as session:
            rows = session.execute(query.order_by(AuditEntry.seq).limit(_BATCH)).all()
        if not rows:
            return
        yield from (chained_entry(row) for row in rows)
        after = rows[-1].seq


def entry_record(entry: ChainedEntry) -> dict[str, Any]:
    """An entry as a JSON object with every hashed field (list --json, full export lines)."""
    return {
        "type": "entry",
        "seq": entry.seq,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "justification": entry.justification,
        "properties": dict(entry.properties),
        "cases": list(entry.cases),
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


def json_line(record: dict[str, Any]) -> bytes:
    """One compact JSON line, UTF-8, newline-terminated."""
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


# --- export ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What a case export holds, and the digest of the file written."""

    case: str
    entries: int
    full_entries: int
    head: ChainHead
    sha256: str


def export_case_log(
    session_factory: sessionmaker[Session],
    access: AccessContext,
    case_number: str,
    output: Path,
    *,
    recipient: str | None = None,
) -> ExportSummary:
    """Write the chain as a case export to ``output`` (which must not exist), then audit it.

    The export is a disclosure: it needs READ_AUDIT and a justification, and is recorded
    as ``audit.exported`` with the file's SHA-256, so the file handed over can be matched
    to the log later.
    """
    access.require(Permission.READ_AUDIT)
    # Taken before the head is read: every checkpoint written before this moment records
    # a head the export contains (``verify_export`` relies on it).
    exported_at = datetime.now(UTC)
    with session_factory() as session:
        case = get_case(session, case_number)
        access.require(Permission.READ_AUDIT, case_ref(case))
        head = chain_head(session)
    number = case.number
    justification = require_justification(access, f"the audit log of case {number}")
    header = {
        "type": "header",
        "format": EXPORT_FORMAT,
        "case": number,
        "exported_at": exported_at.isoformat(timespec="seconds"),
        "exported_by": access.user,
        "through_seq": head.seq,
    }
    digest = hashlib.sha256()
    entries = full = 0
    # "x": never overwrite a file that may already have been handed over.
    with output.open("xb") as out:
        try:
            for record in _export_records(session_factory, number, head, header):
                line = json_line(record)
                digest.update(line)
                out.write(line)
                if record["type"] in ("entry", "stub"):
                    entries += 1
                    full += record["type"] == "entry"
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            out.close()
            output.unlink(missing_ok=True)  # no half export left behind to be mistaken
            raise
    summary = ExportSummary(number, entries, full, head, digest.hexdigest())
    with session_factory.begin() as session:
        record_event(
            session,
            access.event(
                "audit.exported",
                f"case:{number}",
                properties={
                    "entries": entries,
                    "full_entries": full,
                    "head": str(head),
                    "sha256": summary.sha256,
                    "recipient": recipient,
                },
                cases=[number],
                justification=justification,
            ),
        )
    return summary


def _export_records(
    session_factory: sessionmaker[Session], case: str, head: ChainHead, header: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    yield header
    count = full = 0
    for entry in stream_chain(session_factory, head.seq):
        count += 1
        if case in entry.cases:
            full += 1
            yield entry_record(entry)
        else:
            yield {
                "type": "stub",
                "seq": entry.seq,
                "prev_hash": entry.prev_hash,
                "entry_hash": entry.entry_hash,
            }
    yield {
        "type": "trailer",
        "head_seq": head.seq,
        "head_hash": head.entry_hash,
        "entries": count,
        "full_entries": full,
    }


# --- verify an export ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportVerification:
    """The outcome of checking a case export on its own."""

    ok: bool
    case: str | None
    entries: int
    full_entries: int
    head: ChainHead | None
    problems: tuple[str, ...]
    # Checkpoints written before the export, which it must therefore contain.
    checkpoints_checked: int = 0
    # Checkpoints written after the export (it cannot know of them): not checked.
    checkpoints_newer: int = 0


def verify_export(
    path: Path, anchors: Iterable[ChainAnchor] = (), checkpoints: CheckpointReading | None = None
) -> ExportVerification:
    """Recompute every full entry's hash, check continuity and the trailer (no database).

    ``anchors`` (heads kept elsewhere) must lie in the exported chain, which ties its stubs
    to the real log; so must every checkpoint written before the export was made (a
    shorter export would be missing entries the log had by then).
    """
    try:
        with path.open("rb") as lines:
            return _verify_export_lines(iter(lines), list(anchors), checkpoints)
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        return ExportVerification(False, None, 0, 0, None, (message,))


def _verify_export_lines(
    lines: Iterator[bytes], anchors: list[ChainAnchor], checkpoints: CheckpointReading | None
) -> ExportVerification:
    state = _ExportReader()
    first = next(lines, None)
    if first is None:
        return ExportVerification(
            False, None, 0, 0, None, ("the file is empty: not an adwatch audit export",)
        )
    state.take_header(first)
    older, newer = _checkpoints_before(checkpoints, state.exported_at)
    chain = verify_chain(state.links(lines), anchors=[*anchors, *older])
    problems = [*state.problems, *chain.problems]
    trailer = state.trailer
    if state.header is not None and trailer is None:
        problems.append("the export has no trailer: it is incomplete (cut short?)")
    if trailer is not None:
        if trailer.get("head_seq") != chain.head_seq or trailer.get("head_hash") != (
            chain.head_hash
        ):
            problems.append(
                f"the trailer's head {trailer.get('head_seq')}:{trailer.get('head_hash')} is "
                f"not the exported chain's head {chain.head_seq}:{chain.head_hash}"
            )
        if trailer.get("entries") != chain.entries_checked:
            problems.append(
                f"the trailer counts {trailer.get('entries')} entries, the export holds "
                f"{chain.entries_checked}"
            )
        if trailer.get("full_entries") != state.full_entries:
            problems.append(
                f"the trailer counts {trailer.get('full_entries')} full entries, the export "
                f"holds {state.full_entries}"
            )
    head = ChainHead(chain.head_seq, chain.head_hash) if chain.entries_checked else None
    return ExportVerification(
        not problems,
        state.case,
        chain.entries_checked,
        state.full_entries,
        head,
        tuple(problems),
        checkpoints_checked=len(older),
        checkpoints_newer=newer,
    )


def _checkpoints_before(
    reading: CheckpointReading | None, exported_at: datetime | None
) -> tuple[list[ChainAnchor], int]:
    """The anchors of checkpoints written strictly before the export, and how many are not.

    Both times are whole seconds; one in the same second as the export may be on either
    side of it, so it is not held against the export. Without a readable export time,
    every checkpoint counts.
    """
    if reading is None:
        return [], 0
    older: list[ChainAnchor] = []
    newer = 0
    for anchor, (_, checkpoint) in zip(reading.anchors(), reading.checkpoints, strict=True):
        if exported_at is None or checkpoint.at < exported_at:
            older.append(anchor)
        else:
            newer += 1
    return older, newer


class _ExportReader:
    """Turns export lines into chain links for ``verify_chain``, noting what is malformed."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.header: dict[str, Any] | None = None
        self.exported_at: datetime | None = None
        self.trailer: dict[str, Any] | None = None
        self.full_entries = 0

    @property
    def case(self) -> str | None:
        return None if self.header is None else _optional_text(self.header.get("case"))

    def take_header(self, raw: bytes) -> None:
        record = self._record(1, raw)
        if record is None:
            return
        if record.get("type") != "header" or record.get("format") != EXPORT_FORMAT:
            self.problems.append(f"line 1: not an adwatch audit export header ({EXPORT_FORMAT})")
            return
        if not isinstance(record.get("case"), str):
            self.problems.append("line 1: the header names no case")
            return
        try:
            self.exported_at = _aware(record.get("exported_at"))
        except (TypeError, ValueError):
            self.problems.append("line 1: the header's export time is not an ISO 8601 time")
        self.header = record

    def links(self, lines: Iterable[bytes]) -> Iterator[ChainedEntry | ChainLink]:
        for number, raw in enumerate(lines, start=2):
            record = self._record(number, raw)
            if record is None:
                continue
            kind = record.get("type")
            if self.trailer is not None:
                self.problems.append(f"line {number}: content after the trailer")
                continue
            if kind == "trailer":
                self.trailer = record
            elif kind in ("entry", "stub"):
                link = self._link(number, record)
                if link is not None:
                    yield link
            else:
                self.problems.append(f"line {number}: unknown line type {kind!r}")

    def _record(self, number: int, raw: bytes) -> dict[str, Any] | None:
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict):
            self.problems.append(f"line {number}: not a JSON object")
            return None
        return record

    def _link(self, number: int, record: dict[str, Any]) -> ChainedEntry | ChainLink | None:
        extra = set(record) - (STUB_FIELDS if record["type"] == "stub" else ENTRY_FIELDS)
        if extra:
            # Not covered by any hash: the content could be anything.
            self.problems.append(
                f"line {number}: {record['type']} line with fields no hash covers: "
                f"{', '.join(sorted(extra))}"
            )
        try:
            seq, prev_hash, entry_hash = record["seq"], record["prev_hash"], record["entry_hash"]
            if not (
                isinstance(seq, int) and isinstance(prev_hash, str) and isinstance(entry_hash, str)
            ):
                raise TypeError
            if record["type"] == "stub":
                return ChainLink(seq, prev_hash, entry_hash)
            entry = ChainedEntry(
                seq=seq,
                at=_aware(record["at"]),
                actor=_text(record["actor"]),
                action=_text(record["action"]),
                subject=_text(record["subject"]),
                justification=_optional_text(record["justification"]),
                properties=_mapping(record["properties"]),
                prev_hash=prev_hash,
                entry_hash=entry_hash,
                cases=tuple(_text(case) for case in record["cases"]),
            )
        except (KeyError, TypeError, ValueError):
            self.problems.append(f"line {number}: malformed {record['type']} line")
            return None
        self.full_entries += 1
        if self.case is not None and self.case not in entry.cases:
            self.problems.append(
                f"line {number}: entry {entry.seq} is given in full but does not concern "
                f"case {self.case}"
            )
        return entry


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError
    return value


def _aware(value: object) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError
    return moment
