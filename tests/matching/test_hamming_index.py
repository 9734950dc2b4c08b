"""The Hamming index finds exactly the stored hashes within a radius, whichever path it
searches by (faiss tables of recent adds, sorted tables, brute force), and pickles whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import hamming_index
from matching.hamming_index import HammingIndex
from matching.images import DEFAULT_RADIUS, hamming


def brute_force(
    keys: list[int], hashes: list[int], query: int, radius: int
) -> list[tuple[int, int]]:
    best: dict[int, int] = {}
    for key, value in zip(keys, hashes, strict=True):
        distance = hamming(value, query)
        if distance <= radius and distance < best.get(key, 65):
            best[key] = distance
    return sorted(best.items(), key=lambda item: (item[1], item[0]))


@st.composite
def stored_and_queries(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], int]:
    """Hashes clustered around a few centres so that every radius has hits to find."""
    centres = draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4))
    near = st.builds(
        lambda centre, bits: centre ^ sum(1 << b for b in bits),
        st.sampled_from(centres),
        st.sets(st.integers(0, 63), max_size=14),
    )
    hashes = draw(st.lists(near | st.integers(0, 2**64 - 1), max_size=60))
    keys = draw(st.lists(st.integers(0, 15), min_size=len(hashes), max_size=len(hashes)))
    queries = draw(st.lists(near, min_size=1, max_size=8))
    return keys, hashes, queries, draw(st.integers(0, 12))


@pytest.mark.parametrize("path", ["brute force", "tables built whole", "tables merged into"])
@settings(max_examples=60, deadline=None)
@given(case=stored_and_queries())
def test_index_is_exact(path: str, case: tuple[list[int], list[int], list[int], int]) -> None:
    keys, hashes, queries, radius = case
    half = len(hashes) // 2
    with pytest.MonkeyPatch.context() as patch:
        # Small indexes are scanned whole; force each search path in turn ("merged into":
        # the tables are built from the first half, and the second half merged in).
        patch.setattr(hamming_index, "_PROBE_COST", 10**12 if path == "brute force" else 0)
        index = HammingIndex()
        index.add(keys[:half], hashes[:half])
        if path == "tables merged into":
            index.range_search(queries, radius)
        index.add(keys[half:], hashes[half:])
        found = index.query_many(queries, radius)
        assert found == [brute_force(keys, hashes, q, radius) for q in queries]
        assert index.query(queries[0], radius) == found[0]


def test_merged_tables_equal_tables_built_whole() -> None:
    """Adds merged into the sorted tables leave them as a rebuild would make them."""
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 2**64, size=110_000, dtype=np.uint64)
    stored[90_000:90_100] = stored[:100]  # repeated hashes: order within a bucket matters
    merged = HammingIndex()
    merged.add(np.arange(80_000), stored[:80_000])
    merged.range_search(stored[:10], DEFAULT_RADIUS)
    assert merged._main is not None
    for start in range(80_000, 110_000, 7_000):
        merged.add(np.arange(start, min(start + 7_000, 110_000)), stored[start : start + 7_000])
        merged.range_search(stored[:10], DEFAULT_RADIUS)
    whole = HammingIndex()
    whole.add(np.arange(110_000), stored)
    whole.range_search(stored[:10], DEFAULT_RADIUS)
    assert whole._main is not None
    for mine, theirs in zip(merged._main._order, whole._main._order, strict=True):
        assert np.array_equal(mine, theirs)
    for mine, theirs in zip(merged._main._offsets, whole._main._offsets, strict=True):
        assert np.array_equal(mine, theirs)


def test_large_index_uses_tables_and_is_exact() -> None:
    rng = np.random.default_rng(5)
    stored = rng.integers(0, 2**64, size=90_000, dtype=np.uint64)
    keys = np.arange(len(stored), dtype=np.int64) // 3
    queries = stored[:200].copy()
    for row in range(len(queries)):
        for bit in rng.choice(64, size=row % 12, replace=False):
            queries[row] ^= np.uint64(1) << np.uint64(bit)
    index = HammingIndex()
    index.add(keys, stored)
    assert index._tables_pay_off(DEFAULT_RADIUS // 3)
    hits = index.range_search(queries, DEFAULT_RADIUS)
    for row, query in enumerate(queries):
        distances = np.bitwise_count(stored ^ query)
        expected: dict[int, int] = {}
        for position in np.flatnonzero(distances <= DEFAULT_RADIUS):
            key = int(keys[position])
            expected[key] = min(expected.get(key, 65), int(distances[position]))
        assert dict(hits.hits(row)) == expected
    # Every query with at most 8 flipped bits finds the hash it came from.
    assert sum(len(hits.hits(row)) > 0 for row in range(len(queries))) >= 200 * 9 // 12


def test_adds_after_queries_are_found() -> None:
    index = HammingIndex()
    index.add([1, 1], [0b1, 2**63])
    assert index.query(0, 1) == [(1, 1)]
    index.add(np.array([2, 3]), np.array([0, 2**64 - 1], dtype=np.uint64))
    assert index.query(0, 1) == [(2, 0), (1, 1)]
    assert index.query(2**64 - 1, 0) == [(3, 0)]
    assert len(index) == 4
    for step in range(3000):  # many small adds grow storage geometrically
        index.add([10 + step], [step << 20])
    assert len(index) == 3004
    assert index.query(2999 << 20, 0) == [(3009, 0)]


def test_empty_index_and_empty_queries() -> None:
    index = HammingIndex()
    assert len(index) == 0
    assert index.query(12345, 8) == []
    assert index.query_many([1, 2, 3], 8) == [[], [], []]
    index.add([], [])
    assert len(index) == 0
    index.add([7], [99])
    assert index.query_many([], 8) == []
    hits = index.range_search(np.zeros(0, dtype=np.uint64), 8)
    assert len(hits) == 0
    assert hits.lims.tolist() == [0]


def test_range_search_layout() -> None:
    index = HammingIndex()
    index.add([5, 6, 7, 5], [0b0, 0b1, 0b11, 0b111])
    hits = index.range_search([0, 2**64 - 1, 0b111], 2)
    assert hits.lims.tolist() == [0, 3, 3, 6]
    assert hits.hits(0) == [(5, 0), (6, 1), (7, 2)]
    assert hits.hits(2) == [(5, 0), (7, 1), (6, 2)]
    assert hits.keys.dtype == hits.distances.dtype == np.int64


def test_bad_index_arguments() -> None:
    index = HammingIndex()
    with pytest.raises(ValueError, match="2 keys for 1 hashes"):
        index.add([1, 2], [3])
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        index.add([1], [-1])
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        index.add([1], [2**64])
    with pytest.raises(ValueError, match="negative"):
        index.add(np.array([1]), np.array([-5], dtype=np.int64))
    with pytest.raises(TypeError, match="integers"):
        index.add(np.array([1]), np.array([0.5]))
    with pytest.raises(ValueError, match="radius"):
        index.query(0, -1)


@pytest.mark.parametrize("path", ["brute force", "tables"])
def test_a_pickled_hamming_index_answers_as_the_original_and_grows_alike(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The linking snapshot pickles the index: hashes added since the last table search
    come back merged into the sorted tables with the rest, and adds continue as before."""
    import pickle

    monkeypatch.setattr(hamming_index, "_PROBE_COST", 0 if path == "tables" else 10**12)
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 2**63, size=6000, dtype=np.uint64)
    index = HammingIndex()
    index.add(np.arange(5000), stored[:5000])
    queries = np.concatenate([stored[::97] ^ np.uint64(0b1011), stored[4990:5010]])
    before = index.query_many(queries, 8)
    index.add(np.arange(5000, 5200), stored[5000:5200])  # not yet in any tables
    copy = pickle.loads(pickle.dumps(index))
    assert len(copy) == 5200
    if path == "tables":
        assert copy._main is not None and copy._main_size == 5200
    else:
        assert copy._main is None
    for radius in (0, 4, 8):
        assert copy.query_many(queries, radius) == index.query_many(queries, radius)
    assert copy.query_many(queries, 8) != before  # the added hashes are found
    for each in (index, copy):
        each.add(np.arange(5200, 6000), stored[5200:])
    assert copy.query_many(queries, 8) == index.query_many(queries, 8)
    assert copy.query_many(stored[5900:], 0) == [[(k, 0)] for k in range(5900, 6000)]


def test_an_index_pickled_with_faiss_era_state_loads() -> None:
    """Snapshots written when recent adds lived in faiss tables (always pickled
    compacted, the tables left out) read into the current index."""
    import pickle

    rng = np.random.default_rng(4)
    stored = rng.integers(0, 2**63, size=80_000, dtype=np.uint64)
    index = HammingIndex()
    index.add(np.arange(80_000), stored)
    index.range_search(stored[:3], 8)
    state = index.__getstate__()
    assert "_tables" not in state
    old = HammingIndex.__new__(HammingIndex)
    old.__setstate__(pickle.loads(pickle.dumps({**state, "_tables": None})))
    assert old.query_many(stored[:50] ^ np.uint64(0b111), 8) == index.query_many(
        stored[:50] ^ np.uint64(0b111), 8
    )
