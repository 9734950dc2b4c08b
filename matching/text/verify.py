"""Verification: edit similarity of two distinctive texts, the judge of LSH's candidates.

rapidfuzz ``ratio`` and ``token_sort_ratio`` only: ``token_set_ratio`` and the partial
ratios saturate on short, repetitive ad text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

# max(ratio, token_sort_ratio) of two distinctive texts at or above which they count as
# one author's. Measured on the benchmark corpus (pairs of different text), precision /
# recall at 75, 80, 85, 90:
#   20k ads  0.98/0.73  0.99/0.60  1.00/0.44  1.00/0.30
#   200k ads 0.73/0.71  0.90/0.58  0.98/0.43  0.99/0.31
#   1M ads   0.34/0.68  0.56/0.56  0.77/0.41  0.91/0.32
# Unrelated pairs grow with the square of the corpus, true pairs linearly, so a fixed
# threshold loses precision as the corpus grows; 85 keeps it near 0.98 up to 200k ads.
TEXT_MATCH_THRESHOLD = 85.0


def text_similarity(a: str, b: str, score_cutoff: float = 0) -> float:
    """Edit similarity 0..100 of two normalised (or distinctive) texts.

    The larger of rapidfuzz ``ratio`` (order kept) and ``token_sort_ratio`` (reordered
    sentences); 0 when either text is empty or the score is below ``score_cutoff``.
    """
    if not a or not b:
        return 0.0
    score = float(fuzz.ratio(a, b, score_cutoff=score_cutoff))
    if score == 100.0:
        return score
    reordered = float(fuzz.token_sort_ratio(a, b, score_cutoff=max(score_cutoff, score)))
    return max(score, reordered)


def text_similarities(
    left: Sequence[str], right: Sequence[str], score_cutoff: float = 0
) -> npt.NDArray[np.float32]:
    """``text_similarity`` of each pair ``(left[i], right[i])``, scored in parallel.

    rapidfuzz's ``cpdist`` runs the pairs in C on every core, without a Python call per
    pair; the scores equal ``text_similarity``'s.
    """
    if len(left) != len(right):
        raise ValueError(f"{len(left)} left texts for {len(right)} right ones")
    if not left:
        return np.zeros(0, dtype=np.float32)
    ordered = cpdist(left, right, scorer=fuzz.ratio, score_cutoff=score_cutoff, workers=-1)
    reordered = cpdist(
        left, right, scorer=fuzz.token_sort_ratio, score_cutoff=score_cutoff, workers=-1
    )
    scores: npt.NDArray[np.float32] = np.maximum(ordered, reordered).astype(np.float32)
    empty = np.fromiter((not a or not b for a, b in zip(left, right, strict=True)), bool, len(left))
    scores[empty] = 0.0
    return scores
