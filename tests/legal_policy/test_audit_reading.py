"""Legal officers list and export the audit log; an export verifies on its own."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from legal_policy.audit import AuditEvent, ChainAnchor, parse_anchor
from legal_policy.audit_log import (
    chain_head,
    iter_chain,
    record_event,
    stream_chain,
    verify_stored_chain_in_batches,
)
from legal_policy.audit_reading import (
    EXPORT_FORMAT,
    AuditFilter,
    export_case_log,
    list_entries,
    parse_time_bound,
    verify_export,
)
from legal_policy.checkpoints import Checkpoint, append_checkpoint, read_checkpoints
from legal_policy.errors import AccessDenied, JustificationRequired, UnknownCase
from storage.models import AuditEntry

if TYPE_CHECKING:
    from tests.conftest import People

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _event(actor: str, action: str, cases: tuple[str, ...], hours: int) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor=actor,
        subject=f"profile:{hours}",
        properties={"hour": hours},
        justification="synthetic",
        cases=cases,
        at=T0 + timedelta(hours=hours),
    )


@pytest.fixture
def log(people: People) -> People:
    """People plus six synthetic entries of two cases, an hour apart from T0."""
    with people.session_factory.begin() as session:
        for event in (
            _event("analyst", "profiles.consulted", ("CASE-1",), 0),
            _event("other-analyst", "profiles.consulted", ("CASE-2",), 1),
            _event("analyst", "ads.exported", ("CASE-1",), 2),
            _event("investigator", "crawl.started", (), 3),
            _event("analyst", "profiles.consulted", ("CASE-1", "CASE-2"), 4),
            _event("other-analyst", "ads.consulted", ("CASE-10",), 5),
        ):
            record_event(session, event)
    return people


def _listed(people: People, **criteria: Any) -> list[str]:
    entries = list_entries(people.session_factory, people.legal, AuditFilter(**criteria))
    return [f"{e.actor}/{e.action}/{','.join(e.cases)}" for e in entries]


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _rewrite(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records))


# --- list ----------------------------------------------------------------------------------


def test_list_filters(log: People) -> None:
    assert _listed(log, actor="analyst", since=T0, limit=None) == [
        "analyst/profiles.consulted/CASE-1",
        "analyst/ads.exported/CASE-1",
        "analyst/profiles.consulted/CASE-1,CASE-2",
    ]
    assert _listed(log, case="CASE-2", action="profiles.consulted") == [
        "other-analyst/profiles.consulted/CASE-2",
        "analyst/profiles.consulted/CASE-1,CASE-2",
    ]
    assert _listed(
        log, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3), limit=None
    ) == [
        "other-analyst/profiles.consulted/CASE-2",
        "analyst/ads.exported/CASE-1",
        "investigator/crawl.started/",
    ]


def test_list_case_filter_matches_whole_case_numbers_only(log: People) -> None:
    assert _listed(log, case="CASE-1", action="ads.consulted") == []  # not CASE-10
    assert _listed(log, case="CASE_1") == []  # no LIKE wildcards
    assert _listed(log, case="case-1") == []  # nor LIKE's disregard of case on SQLite
    assert _listed(log, case="CASE-10") == ["other-analyst/ads.consulted/CASE-10"]


def test_list_limit_gives_the_newest_in_chain_order(log: People) -> None:
    assert _listed(log, since=T0, limit=2) == [
        "analyst/profiles.consulted/CASE-1,CASE-2",
        "other-analyst/ads.consulted/CASE-10",
    ]


def test_listing_is_audited_and_not_part_of_its_own_view(log: People) -> None:
    shown = _listed(log, case="CASE-2", limit=None)
    assert all("audit.listed" not in line for line in shown)
    with log.session_factory() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert (last.action, last.actor, last.cases) == ("audit.listed", "legal", "|CASE-2|")
    assert last.properties["filters"] == {"case": "CASE-2"}
    assert _listed(log, action="audit.listed") == ["legal/audit.listed/CASE-2"]


@pytest.mark.parametrize("who", ["admin", "analyst", "investigator"])
def test_only_legal_officers_list(log: People, who: str) -> None:
    with pytest.raises(AccessDenied, match="read and export the audit log"):
        list_entries(log.session_factory, log(who), AuditFilter())


def test_time_bounds() -> None:
    assert parse_time_bound("2026-11-30", end=False) == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_time_bound("2026-11-30", end=True) == datetime(
        2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert parse_time_bound("2026-11-30T14:00", end=True) == datetime(
        2026, 11, 30, 14, tzinfo=UTC
    )  # no zone: UTC
    assert parse_time_bound("2026-11-30T14:00+01:00", end=False) == datetime(
        2026, 11, 30, 13, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="not an ISO 8601 date or time"):
        parse_time_bound("30-11-2026", end=False)


# --- streaming in short transactions ------------------------------------------------------


def test_stream_chain_reads_across_batches_up_to_the_given_entry(log: People) -> None:
    with log.session_factory() as session:
        head = chain_head(session)
        whole = list(iter_chain(session))
    streamed = list(stream_chain(log.session_factory, head.seq - 1, batch_size=4))
    assert streamed == whole[:-1]
    assert verify_stored_chain_in_batches(log.session_factory).entries_checked == head.seq


# --- export -------------------------------------------------------------------------------


def _export(people: People, path: Path, case: str = "CASE-1") -> None:
    legal = people("legal", "request of the public prosecutor, case 2026-017")
    export_case_log(people.session_factory, legal, case, path, recipient="OM Rotterdam")


def test_export_holds_every_entry_in_order_full_only_for_the_case(
    log: People, tmp_path: Path
) -> None:
    path = tmp_path / "case-1.audit.jsonl"
    with log.session_factory() as session:
        chain = list(iter_chain(session))
    _export(log, path)
    header, *lines, trailer = _records(path)
    assert header["type"] == "header" and header["format"] == EXPORT_FORMAT
    assert (header["case"], header["exported_by"], header["through_seq"]) == (
        "CASE-1",
        "legal",
        len(chain),
    )
    assert [line["seq"] for line in lines] == [entry.seq for entry in chain]
    for line, entry in zip(lines, chain, strict=True):
        if "CASE-1" in entry.cases:
            assert line["type"] == "entry" and line["properties"] == entry.properties
        else:  # content-free
            assert line == {
                "type": "stub",
                "seq": entry.seq,
                "prev_hash": entry.prev_hash,
                "entry_hash": entry.entry_hash,
            }
    full = sum("CASE-1" in entry.cases for entry in chain)
    assert full >= 4  # case.added, member.added x2, and the synthetic ones
    assert trailer == {
        "type": "trailer",
        "head_seq": chain[-1].seq,
        "head_hash": chain[-1].entry_hash,
        "entries": len(chain),
        "full_entries": full,
    }
    result = verify_export(path)
    assert result.ok, result.problems
    assert (result.case, result.entries, result.full_entries) == ("CASE-1", len(chain), full)


def test_export_is_audited_with_the_file_digest(log: People, tmp_path: Path) -> None:
    path = tmp_path / "case-1.audit.jsonl"
    _export(log, path)
    with log.session_factory() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    assert (last.action, last.actor, last.cases, last.subject) == (
        "audit.exported",
        "legal",
        "|CASE-1|",
        "case:CASE-1",
    )
    assert last.justification == "request of the public prosecutor, case 2026-017"
    assert last.properties["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert last.properties["recipient"] == "OM Rotterdam"
    assert last.properties["head"] == f"{last.seq - 1}:{last.prev_hash}"


def test_export_refusals(log: People, tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(JustificationRequired):
        export_case_log(log.session_factory, log.legal, "CASE-1", path)
    with pytest.raises(AccessDenied):
        export_case_log(log.session_factory, log("admin", "because"), "CASE-1", path)
    with pytest.raises(AccessDenied):  # a member of the case, but not a legal officer
        export_case_log(log.session_factory, log.analyst, "CASE-1", path)
    with pytest.raises(UnknownCase):
        _export(log, path, case="CASE-404")
    assert not path.exists()
    path.write_text("handed over earlier")
    with pytest.raises(FileExistsError):
        _export(log, path)
    assert path.read_text() == "handed over earlier"


def test_export_verifies_against_a_head_kept_elsewhere(log: People, tmp_path: Path) -> None:
    with log.session_factory() as session:
        kept = chain_head(session)
    path = tmp_path / "e.jsonl"
    _export(log, path)
    assert verify_export(path, [parse_anchor(str(kept), "case file")]).ok
    other = ChainAnchor("9" * 64, kept.seq, "case file")
    result = verify_export(path, [other])
    assert not result.ok and "the chain was rewritten up to there" in result.problems[0]


def _exported(log: People, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path / "e.jsonl"
    _export(log, path)
    return path, _records(path)


def _first(records: list[dict[str, Any]], kind: str) -> int:
    return next(i for i, r in enumerate(records) if r["type"] == kind)


def test_verify_export_holds_checkpoints_written_before_it(log: People, tmp_path: Path) -> None:
    with log.session_factory() as session:
        head = chain_head(session)
    before = Checkpoint(head.seq, head.entry_hash, datetime.now(UTC) - timedelta(minutes=1), "")
    after = Checkpoint(head.seq + 50, "a" * 64, datetime.now(UTC) + timedelta(minutes=1), "")
    path, records = _exported(log, tmp_path)
    checkpoints = tmp_path / "checkpoints.jsonl"
    append_checkpoint(checkpoints, before)
    append_checkpoint(checkpoints, after)
    result = verify_export(path, checkpoints=read_checkpoints(checkpoints))
    assert result.ok, result.problems
    assert (result.checkpoints_checked, result.checkpoints_newer) == (1, 1)
    # An export cut short, with a trailer made to match: only the checkpoint catches it.
    cut = [r for r in records if r["type"] != "trailer" and r.get("seq", 0) < head.seq]
    last = cut[-1]
    trailer = {
        "type": "trailer",
        "head_seq": last["seq"],
        "head_hash": last["entry_hash"],
        "entries": len(cut) - 1,
        "full_entries": sum(r["type"] == "entry" for r in cut),
    }
    _rewrite(path, [*cut, trailer])
    assert verify_export(path).ok
    problems = verify_export(path, checkpoints=read_checkpoints(checkpoints)).problems
    assert problems == (
        f"checkpoints.jsonl line 1: records entry {head.seq}, but the chain ends at entry "
        f"{head.seq - 1}: the newest entries were deleted",
    )


def test_verify_export_detects_an_edited_entry(log: People, tmp_path: Path) -> None:
    path, records = _exported(log, tmp_path)
    i = _first(records, "entry")
    records[i]["justification"] = "something kinder"
    _rewrite(path, records)
    result = verify_export(path)
    assert not result.ok
    assert result.problems == (
        f"entry {records[i]['seq']}: content does not match its hash (edited)",
    )


def test_verify_export_detects_content_outside_the_hashes(log: People, tmp_path: Path) -> None:
    path, records = _exported(log, tmp_path)
    stub_line, entry_line = _first(records, "stub"), _first(records, "entry")
    records[stub_line]["subject"] = "profile:7"
    records[entry_line]["note"] = "unhashed"
    _rewrite(path, records)
    assert verify_export(path).problems == (
        f"line {stub_line + 1}: stub line with fields no hash covers: subject",
        f"line {entry_line + 1}: entry line with fields no hash covers: note",
    )


def test_verify_export_detects_a_removed_line(log: People, tmp_path: Path) -> None:
    path, records = _exported(log, tmp_path)
    del records[_first(records, "stub")]
    _rewrite(path, records)
    problems = verify_export(path).problems
    assert any("does not link to the entry before it" in p for p in problems)
    assert any("the trailer counts" in p for p in problems)


def test_verify_export_detects_a_cut_file(log: People, tmp_path: Path) -> None:
    path, records = _exported(log, tmp_path)
    _rewrite(path, records[:-2])
    assert verify_export(path).problems == (
        "the export has no trailer: it is incomplete (cut short?)",
    )


def test_verify_export_detects_a_changed_trailer_and_lines_after_it(
    log: People, tmp_path: Path
) -> None:
    path, records = _exported(log, tmp_path)
    records[-1]["head_hash"] = "0" * 64
    _rewrite(path, [*records, records[1]])
    problems = verify_export(path).problems
    assert problems[0] == f"line {len(records) + 1}: content after the trailer"
    assert "is not the exported chain's head" in problems[1]


def test_verify_export_detects_an_entry_of_another_case(log: People, tmp_path: Path) -> None:
    path, records = _exported(log, tmp_path)
    records[0]["case"] = "CASE-2"
    _rewrite(path, records)
    problems = verify_export(path).problems
    assert problems and all("does not concern case CASE-2" in p for p in problems)


def test_verify_export_reports_malformed_files_without_crashing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert verify_export(empty).problems == ("the file is empty: not an adwatch audit export",)
    assert verify_export(tmp_path / "absent.jsonl").problems[0].startswith("cannot read")
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b'\xff\n{"type": "entry", "seq": 1}\n{"type": "other"}\n[]\n')
    assert verify_export(junk).problems == (
        "line 1: not a JSON object",
        "line 2: malformed entry line",
        "line 3: unknown line type 'other'",
        "line 4: not a JSON object",
    )
