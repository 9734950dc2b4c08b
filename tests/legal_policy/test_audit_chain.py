"""The pure chain rules: anchors kept outside the database, stubs, parsing a head."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legal_policy.audit import (
    GENESIS_HASH,
    MAX_PROBLEMS,
    ChainAnchor,
    ChainedEntry,
    ChainLink,
    InvalidAnchor,
    entry_digest,
    format_head,
    parse_anchor,
    verify_chain,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def chain(n: int) -> list[ChainedEntry]:
    """A valid chain of ``n`` synthetic entries."""
    entries = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        at = T0 + timedelta(seconds=seq)
        cases = ("CASE-1",) if seq % 2 else ()
        digest = entry_digest(seq, prev, at, "a", "x.done", f"s{seq}", None, {"n": seq}, cases)
        entries.append(
            ChainedEntry(seq, at, "a", "x.done", f"s{seq}", None, {"n": seq}, prev, digest, cases)
        )
        prev = digest
    return entries


def stub(entry: ChainedEntry) -> ChainLink:
    return ChainLink(entry.seq, entry.prev_hash, entry.entry_hash)


def test_anchors_in_place_and_anywhere_hold() -> None:
    entries = chain(5)
    anchors = [
        ChainAnchor(entries[2].entry_hash, 3, "line 1"),
        ChainAnchor(entries[4].entry_hash, None, "line 2"),
        ChainAnchor(GENESIS_HASH, 0, "line 3"),
        ChainAnchor(GENESIS_HASH, None, "line 4"),
    ]
    result = verify_chain(entries, anchors=anchors)
    assert result.ok and result.anchors_checked == 4 and result.head_seq == 5


def test_anchor_beyond_the_end_means_truncation() -> None:
    entries = chain(5)
    result = verify_chain(entries[:3], anchors=[ChainAnchor(entries[4].entry_hash, 5, "cp")])
    assert result.problems == (
        "cp: records entry 5, but the chain ends at entry 3: the newest entries were deleted",
    )


def test_anchor_on_a_missing_middle_entry() -> None:
    entries = chain(5)
    result = verify_chain(
        entries[:2] + entries[3:], anchors=[ChainAnchor(entries[2].entry_hash, 3, "cp")]
    )
    assert "cp: entry 3 is missing from the chain" in result.problems


def test_anchor_with_another_hash_means_rewritten() -> None:
    entries = chain(3)
    result = verify_chain(entries, anchors=[ChainAnchor("f" * 64, 2, "cp")])
    assert not result.ok and "the chain was rewritten up to there" in result.problems[0]


def test_bad_anchor_at_sequence_zero() -> None:
    result = verify_chain(chain(1), anchors=[ChainAnchor("f" * 64, 0, "cp")])
    assert result.problems == ("cp: sequence number 0 is the empty chain",)


def test_stubs_link_but_their_content_is_not_checked() -> None:
    entries = chain(4)
    mixed: list[ChainedEntry | ChainLink] = [entries[0], stub(entries[1]), entries[2]]
    mixed.append(stub(entries[3]))
    assert verify_chain(mixed, expected_head=entries[3].entry_hash).ok
    forged: list[ChainedEntry | ChainLink] = [
        entries[0],
        ChainLink(2, entries[0].entry_hash, "e" * 64),
    ]
    forged.append(entries[2])
    assert "entry 3: does not link to the entry before it" in verify_chain(forged).problems


def test_problems_are_capped() -> None:
    entries = [replace(e, actor="b") for e in chain(MAX_PROBLEMS + 5)]
    problems = verify_chain(entries).problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == "... and 5 more problems"


def test_parse_anchor_forms() -> None:
    digest = "ab" * 32
    assert parse_anchor(f"12:{digest}", "--head") == ChainAnchor(digest, 12, "--head")
    assert parse_anchor(f" {digest.upper()} ", "--head") == ChainAnchor(digest, None, "--head")
    assert parse_anchor(format_head(0, GENESIS_HASH), "x").seq == 0


@pytest.mark.parametrize(
    "text", ["", "12:", "x:" + "ab" * 32, "-1:" + "ab" * 32, "ab" * 31, "12:" + "g" * 64]
)
def test_parse_anchor_refuses_malformed_heads(text: str) -> None:
    with pytest.raises(InvalidAnchor):
        parse_anchor(text, "--head")


@given(st.integers(min_value=1, max_value=12), st.data())
def test_any_single_change_breaks_the_chain(n: int, data: st.DataObject) -> None:
    entries = chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    field = data.draw(st.sampled_from(["actor", "subject", "justification", "cases", "at"]))
    changed: Any = {
        "actor": "z",
        "subject": "other",
        "justification": "why",
        "cases": ("CASE-9",),
        "at": entries[i].at + timedelta(microseconds=1),
    }[field]
    tampered = [*entries[:i], replace(entries[i], **{field: changed}), *entries[i + 1 :]]
    assert not verify_chain(tampered).ok
