"""Verified text scores of ad pairs, kept so that a profile touched again is not re-verified.

An ad's distinctive text never changes once it is held, so the score of a pair of held ads
never changes either. Re-clustering a profile that new ads touch used to verify every
candidate pair inside it again (rapidfuzz over each pair's texts), a cost that grew with the
largest profiles and so with the store. The cache keeps each verified pair as one 64-bit
code and one float32 score (12 bytes) in sorted arrays, with a small sorted run of recent
additions merged in when it grows, and it empties itself at a size limit: it is only a
short cut, every pair it does not know is verified as before.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64Array = npt.NDArray[np.int64]
F32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# 8M pairs: ~100 MB at most (a relinking of a whole large store can fill it; it then starts over).
DEFAULT_MAX_PAIRS = 1 << 23
# The recent run is merged into the main one when it holds this share of it (or more
# than this many pairs while the main run is small).
_MERGE_SHARE = 8
_MERGE_MIN = 1 << 15


def _codes(pairs: I64Array) -> npt.NDArray[np.uint64]:
    """One code per unordered pair of ad indexes below 2^32."""
    low = np.minimum(pairs[:, 0], pairs[:, 1]).astype(np.uint64)
    high = np.maximum(pairs[:, 0], pairs[:, 1]).astype(np.uint64)
    codes: npt.NDArray[np.uint64] = (low << np.uint64(32)) | high
    return codes


def _union(
    codes: npt.NDArray[np.uint64],
    scores: F32Array,
    more_codes: npt.NDArray[np.uint64],
    more_scores: F32Array,
) -> tuple[npt.NDArray[np.uint64], F32Array]:
    """Both sorted runs in one, each code once (the first run's score where both hold it)."""
    merged, first = np.unique(np.concatenate([codes, more_codes]), return_index=True)
    return merged, np.concatenate([scores, more_scores])[first]


class PairScoreCache:
    """Scores of ad-index pairs: ``known`` looks pairs up, ``remember`` adds them."""

    _main_codes: npt.NDArray[np.uint64]
    _main_scores: F32Array
    _recent_codes: npt.NDArray[np.uint64]
    _recent_scores: F32Array

    def __init__(self, max_pairs: int = DEFAULT_MAX_PAIRS) -> None:
        self.max_pairs = max_pairs
        self.clear()

    def __len__(self) -> int:
        return len(self._main_codes) + len(self._recent_codes)

    def known(self, pairs: I64Array) -> tuple[BoolArray, F32Array]:
        """For each pair: whether its score is kept, and the score (0 where not kept)."""
        codes = _codes(pairs)
        found = np.zeros(len(codes), dtype=np.bool_)
        scores = np.zeros(len(codes), dtype=np.float32)
        for table, values in (
            (self._main_codes, self._main_scores),
            (self._recent_codes, self._recent_scores),
        ):
            if not len(table) or not len(codes):
                continue
            at = np.minimum(np.searchsorted(table, codes), len(table) - 1)
            hit = table[at] == codes
            found |= hit
            scores[hit] = values[at[hit]]
        return found, scores

    def remember(self, pairs: I64Array, scores: F32Array) -> None:
        """Keep the scores of pairs not kept yet (a pair's score never changes)."""
        if not len(pairs):
            return
        if len(self) + len(pairs) > self.max_pairs:
            self.clear()
            if len(pairs) > self.max_pairs:
                return
        self._recent_codes, self._recent_scores = _union(
            self._recent_codes, self._recent_scores, _codes(pairs), scores.astype(np.float32)
        )
        if len(self._recent_codes) * _MERGE_SHARE > max(len(self._main_codes), _MERGE_MIN):
            self._main_codes, self._main_scores = _union(
                self._main_codes, self._main_scores, self._recent_codes, self._recent_scores
            )
            self._recent_codes = np.zeros(0, dtype=np.uint64)
            self._recent_scores = np.zeros(0, dtype=np.float32)

    def clear(self) -> None:
        """Forget every kept score."""
        self._main_codes = np.zeros(0, dtype=np.uint64)
        self._main_scores = np.zeros(0, dtype=np.float32)
        self._recent_codes = np.zeros(0, dtype=np.uint64)
        self._recent_scores = np.zeros(0, dtype=np.float32)
