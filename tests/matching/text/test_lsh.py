"""LSH: batch self-joins equal per-item queries; buckets, copies and the prefilter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matching.text.lsh as lsh_module
from matching.text import (
    EMPTY_SLOT,
    NUM_PERM,
    TextLSHIndex,
    signatures_to_array,
    text_signature,
    text_signatures,
)
from tests.matching.text.ad_texts import (
    BELLA,
    BELLA_REWRITTEN,
    LANA,
    LANA_REWRITTEN,
    MIRA,
    distinctive,
)


def random_signatures(seed: int, groups: int, per_group: int, noise: float) -> np.ndarray:
    """Groups of near-duplicate signatures: each slot of a copy redrawn with ``noise``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**32 - 1, size=(groups, NUM_PERM), dtype=np.uint32)
    sigs = np.repeat(base, per_group, axis=0)
    redraw = rng.random(sigs.shape) < noise
    sigs[redraw] = rng.integers(0, 2**32 - 1, size=int(redraw.sum()), dtype=np.uint32)
    return sigs


def query_pairs(index: TextLSHIndex, keys: list[int], blobs: list[bytes]) -> set[tuple[int, int]]:
    pairs = set()
    for key, blob in zip(keys, blobs, strict=True):
        for other in index.query(blob):
            if other != key:
                pairs.add((min(key, other), max(key, other)))
    return pairs


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 30),
    st.integers(1, 8),
    st.floats(0.2, 0.9),
    st.sampled_from([1, 3, 200]),
    st.sampled_from([(42, 3), (20, 2), (8, 5)]),
    st.integers(0, 6),
    st.sampled_from([4, 5000]),
)
def test_batch_pairs_equal_the_union_of_queries(
    seed: int,
    groups: int,
    per_group: int,
    noise: float,
    max_bucket: int,
    layout: tuple[int, int],
    copies: int,
    member_cap: int,
) -> None:
    sigs = random_signatures(seed, groups, per_group, noise)
    rng = np.random.default_rng(seed)
    sigs[rng.random(len(sigs)) < 0.1] = EMPTY_SLOT
    sigs[1 : 1 + copies] = sigs[0]  # verbatim reposts
    keys = rng.permutation(10 * len(sigs))[: len(sigs)].astype(np.int64) - 5
    bands, rows = layout
    saved = lsh_module._SCAN_ITEMS, lsh_module._MERGE_ITEMS, lsh_module._MEMBER_CAP
    # Merge every 11 items and scan up to 5: merged and pending items both serve queries.
    lsh_module._SCAN_ITEMS, lsh_module._MERGE_ITEMS, lsh_module._MEMBER_CAP = 5, 11, member_cap
    try:
        batch = TextLSHIndex(bands, rows, max_bucket).candidate_pairs(keys, sigs)
        index = TextLSHIndex(bands, rows, max_bucket)
        blobs = [b"" if (row == EMPTY_SLOT).all() else row.astype("<u4").tobytes() for row in sigs]
        for key, blob in zip(keys.tolist(), blobs, strict=True):
            index.add(key, blob)
        queried = query_pairs(index, keys.tolist(), blobs)
    finally:
        lsh_module._SCAN_ITEMS, lsh_module._MERGE_ITEMS, lsh_module._MEMBER_CAP = saved
    assert batch.dtype == np.int64 and batch.shape[1] == 2
    assert (batch[:, 0] < batch[:, 1]).all()
    assert len({tuple(p) for p in batch.tolist()}) == len(batch)
    assert {tuple(p) for p in batch.tolist()} == queried


def test_add_many_equals_adding_one_at_a_time() -> None:
    sigs = random_signatures(3, 40, 3, 0.5)
    keys = np.arange(len(sigs), dtype=np.int64) * 3
    blobs = [row.astype("<u4").tobytes() for row in sigs]
    one_by_one, bulk = TextLSHIndex(), TextLSHIndex()
    for key, blob in zip(keys.tolist(), blobs, strict=True):
        one_by_one.add(key, blob)
    bulk.add_many(keys, sigs)
    assert len(one_by_one) == len(bulk) == len(sigs)
    for blob in blobs:
        assert one_by_one.query(blob) == bulk.query(blob)


def test_over_full_buckets_are_skipped_and_counted() -> None:
    shared = random_signatures(1, 1, 1, 0.0)[0]
    sigs = np.repeat(shared[None, :], 6, axis=0)
    sigs[:, 3:] = random_signatures(2, 6, 1, 0.0)[:, 3:]  # only band 0 is shared
    index = TextLSHIndex(bands=42, rows=3, max_bucket=5)
    assert index.candidate_pairs(np.arange(6), sigs).shape == (0, 2)
    assert index.skipped_buckets == 1
    index.add_many(np.arange(6), sigs)
    assert index.query(sigs[0].astype("<u4").tobytes()) == {0}
    assert index.skipped_buckets == 2


def test_exact_reposts_do_not_fill_a_bucket() -> None:
    # 300 verbatim reposts and two rewrites of one text: one distinct signature per text.
    a, b = distinctive(LANA), distinctive(LANA_REWRITTEN)
    signatures = [text_signature(a)] * 300 + [text_signature(b)] * 2
    index = TextLSHIndex(max_bucket=200)
    pairs = index.candidate_pairs(np.arange(302), signatures_to_array(signatures))
    assert len(pairs) == 302 * 301 // 2
    assert index.skipped_buckets == 0


def test_empty_signatures_are_ignored() -> None:
    index = TextLSHIndex()
    index.add(1, b"")
    assert len(index) == 0
    assert index.query(b"") == set()
    assert index.candidate_pairs(np.array([1, 2]), signatures_to_array([b"", b""])).shape == (0, 2)


def test_layouts_beyond_the_signature_are_refused() -> None:
    with pytest.raises(ValueError):
        TextLSHIndex(bands=43, rows=3)


@given(seed=st.integers(0, 10_000), threshold=st.sampled_from([0.0, 0.3, 0.6, 1.0]))
@settings(max_examples=40, deadline=None)
def test_prefiltered_pairs_are_the_pairs_whose_signatures_agree_enough(
    seed: int, threshold: float
) -> None:
    sigs = random_signatures(seed, 6, 5, 0.5)
    keys = np.arange(len(sigs), dtype=np.int64)
    every = TextLSHIndex().candidate_pairs(keys, sigs)
    kept = TextLSHIndex().candidate_pairs(keys, sigs, min_similarity=threshold)
    slots = lsh_module.PREFILTER_SLOTS
    agree = (sigs[every[:, 0], :slots] == sigs[every[:, 1], :slots]).mean(axis=1)
    expected = {tuple(p) for p in every[agree >= threshold - 1e-9].tolist()}
    assert {tuple(p) for p in kept.tolist()} == expected


def test_the_prefilter_keeps_rewritten_ads() -> None:
    texts = [distinctive(t) for t in (LANA, LANA_REWRITTEN, MIRA, BELLA, BELLA_REWRITTEN)]
    sigs = signatures_to_array(text_signatures(texts))
    pairs = TextLSHIndex().candidate_pairs(np.arange(5), sigs, min_similarity=0.3)
    assert {(0, 1), (3, 4)} <= {tuple(p) for p in pairs.tolist()}


@given(
    seed=st.integers(0, 10_000),
    max_bucket=st.sampled_from([1, 3, 200]),
    copies=st.integers(0, 6),
)
@settings(max_examples=40, deadline=None)
def test_query_many_equals_one_query_per_row(seed: int, max_bucket: int, copies: int) -> None:
    sigs = random_signatures(seed, 5, 6, 0.4)
    sigs[1 : 1 + copies] = sigs[0]
    rng = np.random.default_rng(seed)
    sigs[rng.random(len(sigs)) < 0.1] = EMPTY_SLOT
    stored, asked = sigs[:20], sigs[20:]
    keys = np.arange(100, 120, dtype=np.int64)
    index = TextLSHIndex(max_bucket=max_bucket)
    index.add_many(keys, stored)
    expected = set()
    for row, sig in enumerate(asked):
        if not (sig == EMPTY_SLOT).all():
            expected |= {(row, key) for key in index.query(sig.astype("<u4").tobytes())}
    skipped_by_queries = index.skipped_buckets
    index.skipped_buckets = 0
    pairs = index.query_many(asked)
    assert {tuple(p) for p in pairs.tolist()} == expected
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)
    assert index.skipped_buckets == skipped_by_queries


def test_narrow_signatures_pair_like_their_low_16_bits() -> None:
    sigs = random_signatures(11, 6, 5, 0.4)
    keys = np.arange(len(sigs), dtype=np.int64) * 3
    low = sigs & 0xFFFF
    wide = TextLSHIndex().candidate_pairs(keys, low.astype(np.uint32), min_similarity=0.3)
    narrow = TextLSHIndex().candidate_pairs(keys, low.astype(np.uint16), min_similarity=0.3)
    assert narrow.tolist() == wide.tolist()
    assert len(narrow) > 0


def test_buckets_sliced_into_small_pair_batches_give_the_same_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sigs = random_signatures(5, 8, 6, 0.3)
    keys = np.arange(len(sigs), dtype=np.int64)
    whole = TextLSHIndex().candidate_pairs(keys, sigs, min_similarity=0.2)
    monkeypatch.setattr(lsh_module, "_PAIRS_PER_SLICE", 3)
    sliced = TextLSHIndex().candidate_pairs(keys, sigs, min_similarity=0.2)
    assert sliced.tolist() == whole.tolist() and len(whole) > 10
