"""The kept scores of verified ad pairs (``matching.pair_scores``)."""

from __future__ import annotations

import numpy as np

from matching.pair_scores import PairScoreCache


def pairs(*items: tuple[int, int]) -> np.ndarray:
    return np.asarray(items, dtype=np.int64).reshape(-1, 2)


def test_a_kept_score_is_found_whichever_way_round_the_pair_is_asked() -> None:
    cache = PairScoreCache()
    cache.remember(pairs((3, 7), (2, 9)), np.asarray([91.5, 0.0], dtype=np.float32))
    known, scores = cache.known(pairs((7, 3), (9, 2), (3, 9)))
    assert known.tolist() == [True, True, False]
    assert scores.tolist() == [91.5, 0.0, 0.0]


def test_scores_survive_the_merge_of_recent_pairs_into_the_main_run() -> None:
    cache = PairScoreCache()
    rng = np.random.default_rng(7)
    kept: dict[tuple[int, int], float] = {}
    for _ in range(12):  # enough batches for several merges
        batch = rng.integers(0, 2**32 - 1, size=(5000, 2), dtype=np.int64)
        values = rng.random(len(batch)).astype(np.float32) * 100
        cache.remember(batch, values)
        for (a, b), value in zip(batch.tolist(), values.tolist(), strict=True):
            kept.setdefault((min(a, b), max(a, b)), value)
    asked = np.asarray(list(kept), dtype=np.int64)
    known, scores = cache.known(asked)
    assert known.all()
    assert np.allclose(scores, np.asarray(list(kept.values()), dtype=np.float32))
    assert len(cache) == len(kept)


def test_the_cache_starts_over_at_its_size_limit() -> None:
    cache = PairScoreCache(max_pairs=4)
    cache.remember(pairs((1, 2), (1, 3), (1, 4)), np.ones(3, dtype=np.float32))
    cache.remember(pairs((5, 6), (5, 7)), np.ones(2, dtype=np.float32))
    assert len(cache) == 2
    assert cache.known(pairs((1, 2), (5, 6)))[0].tolist() == [False, True]
    cache.remember(pairs(*((9, n) for n in range(10, 20))), np.ones(10, dtype=np.float32))
    assert len(cache) == 0  # more than the limit at once: nothing kept


def test_an_empty_cache_knows_nothing() -> None:
    known, scores = PairScoreCache().known(pairs((1, 2)))
    assert known.tolist() == [False] and scores.tolist() == [0.0]
    assert PairScoreCache().known(pairs())[0].shape == (0,)
