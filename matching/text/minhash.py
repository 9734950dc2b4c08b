"""MinHash signatures of the word bigrams of a distinctive text, and their comparison.

Every hash comes from fixed blake2b seeds, so stored signatures stay comparable across
processes, machines and numpy versions: a change here invalidates every stored signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from hashlib import blake2b
from typing import Any

import numpy as np
import numpy.typing as npt

U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# Permutations per signature; 128 as in the TECH_NOTES measurement (std of the Jaccard
# estimate ≈ 0.04 at J = 0.3).
NUM_PERM = 128
# Distinctive texts shorter than this get no signature. One sentence of a slot-filled
# template ("Luna hier, 38 jaar oud en afkomstig uit ...") is 8-14 words and matches other
# advertisers' fillings of it; at 15, precision at a threshold of 75 rose from 0.77
# (floor 10) to 0.98 on the 20k-ad benchmark corpus, and 76 % of ads kept a signature.
MIN_TOKENS = 15
# Fill of the rows that ``signatures_to_array`` gives empty signatures.
EMPTY_SLOT = 0xFFFFFFFF


def seeded_u64(label: str, count: int) -> U64:
    """``count`` fixed 64-bit constants named by ``label``: the same on every machine."""
    # Constants from blake2b of fixed labels, not from a numpy RNG whose stream may change.
    words = [
        int.from_bytes(
            blake2b(f"adwatch.text.{label}.{i}".encode(), digest_size=8).digest(), "little"
        )
        for i in range(count)
    ]
    return np.array(words, dtype=np.uint64)


# Bigram (t1, t2) of 32-bit token hashes -> 32-bit value: multiply-add-shift, a strongly
# universal family for vectors of 32-bit keys (Dietzfelbinger 1996; Thorup 2015).
_BIGRAM_K = seeded_u64("bigram", 3)
# One (a, b) per permutation: h(x) = ((a*x + b) mod 2^64) >> 32. The shift is monotone,
# so the minimum is taken before it.
_PERM_A = seeded_u64("perm-a", NUM_PERM) | np.uint64(1)
_PERM_B = seeded_u64("perm-b", NUM_PERM)
# Bigrams hashed per numpy pass (x NUM_PERM x 8 bytes = 2 MB): large enough to amortise
# numpy's per-call cost, small enough to stay in cache.
_CHUNK_ROWS = 2048


@lru_cache(maxsize=1 << 16)  # a pure function; ad vocabulary is small and repetitive
def _token_hash(token: str) -> int:
    return int.from_bytes(blake2b(token.encode(), digest_size=4).digest(), "little")


def text_signatures(texts: Sequence[str]) -> list[bytes]:
    """``text_signature`` of each text, computed in vectorised batches (faster)."""
    out = [b""] * len(texts)
    token_hashes: dict[str, int] = {}  # vocabulary is small: hash each word once
    chunk = _BigramChunk()
    for position, text in enumerate(texts):
        tokens = text.split()
        if len(tokens) < MIN_TOKENS:
            continue
        for token in tokens:
            if token not in token_hashes:
                token_hashes[token] = _token_hash(token)
        chunk.add(position, [token_hashes[t] for t in tokens])
        if chunk.rows >= _CHUNK_ROWS:
            chunk.flush_into(out)
    chunk.flush_into(out)
    return out


class _BigramChunk:
    """Bigrams of a few documents, MinHashed together in one numpy pass."""

    def __init__(self) -> None:
        self.docs: list[int] = []
        self.starts: list[int] = []
        self.firsts: list[int] = []
        self.seconds: list[int] = []
        # Reused across passes: a fresh multi-MB array each time costs page faults.
        self.buffer: U64 = np.empty((NUM_PERM, 0), dtype=np.uint64)

    @property
    def rows(self) -> int:
        return len(self.firsts)

    def add(self, doc: int, token_ids: list[int]) -> None:
        self.docs.append(doc)
        self.starts.append(len(self.firsts))
        self.firsts.extend(token_ids[:-1])
        self.seconds.extend(token_ids[1:])

    def flush_into(self, out: list[bytes]) -> None:
        if not self.docs:
            return
        first = np.array(self.firsts, dtype=np.uint64)
        second = np.array(self.seconds, dtype=np.uint64)
        bigrams = (first * _BIGRAM_K[0] + second * _BIGRAM_K[1] + _BIGRAM_K[2]) >> np.uint64(32)
        if self.buffer.shape[1] < len(bigrams):
            self.buffer = np.empty((NUM_PERM, len(bigrams) + 64), dtype=np.uint64)
        # (NUM_PERM, bigrams), permutations first so that the per-document minimum runs
        # along contiguous memory; the products wrap mod 2^64 as intended.
        hashed = self.buffer[:, : len(bigrams)]
        np.multiply(_PERM_A[:, None], bigrams, out=hashed)
        hashed += _PERM_B[:, None]
        # Repeated bigrams need no removal: the minimum over a multiset is that of the set.
        minima = np.minimum.reduceat(hashed, np.array(self.starts, dtype=np.intp), axis=1)
        packed = (minima.T >> np.uint64(32)).astype("<u4")
        for doc, row in zip(self.docs, packed, strict=True):
            out[doc] = row.tobytes()
        self.docs, self.starts, self.firsts, self.seconds = [], [], [], []


def text_signature(text: str) -> bytes:
    """MinHash of the word bigrams of a normalised text, ``NUM_PERM`` little-endian uint32.

    ``b""`` when the text has fewer than ``MIN_TOKENS`` words.
    """
    return text_signatures([text])[0]


def signature_similarity(a: bytes, b: bytes) -> float:
    """Fraction of equal slots: the estimated Jaccard similarity of the bigram sets.

    0.0 when either signature is empty or their lengths differ.
    """
    if not a or len(a) != len(b):
        return 0.0
    left = np.frombuffer(a, dtype="<u4")
    right = np.frombuffer(b, dtype="<u4")
    return float(np.count_nonzero(left == right)) / len(left)


def signatures_to_array(sigs: Sequence[bytes]) -> U32:
    """Signatures as an (n, NUM_PERM) uint32 array, row i for ``sigs[i]``.

    Empty signatures are *flagged*, not dropped, so rows stay aligned with the caller's
    keys: their row is filled with ``EMPTY_SLOT`` and ``TextLSHIndex`` ignores it.
    """
    out = np.full((len(sigs), NUM_PERM), EMPTY_SLOT, dtype=np.uint32)
    present = [i for i, sig in enumerate(sigs) if sig]
    if any(len(sigs[i]) != 4 * NUM_PERM for i in present):
        raise ValueError(f"signatures must be empty or {4 * NUM_PERM} bytes long")
    if present:
        joined = b"".join(sigs[i] for i in present)
        out[present] = np.frombuffer(joined, dtype="<u4").reshape(len(present), NUM_PERM)
    return out


def empty_signature_rows(sigs: U32) -> npt.NDArray[np.bool_]:
    """Rows of ``signatures_to_array`` that stand for an empty signature."""
    # A real signature has all four first slots at the maximum with probability 2^-128.
    empty: npt.NDArray[np.bool_] = (sigs[:, :4] == EMPTY_SLOT).all(axis=1)
    return empty


# ``signatures_agree`` compares pairs in blocks of this many.
_PREFILTER_BLOCK = 1 << 17


def signatures_agree(
    sigs: npt.NDArray[np.unsignedinteger[Any]], first: I64, second: I64, min_similarity: float
) -> npt.NDArray[np.bool_]:
    """Whether rows ``first[i]`` and ``second[i]`` of ``sigs`` agree in at least
    ``min_similarity`` of their slots (compared in blocks: no pair-sized copy of rows)."""
    need = int(np.ceil(min_similarity * sigs.shape[1]))
    keep = np.empty(len(first), dtype=bool)
    for start in range(0, len(first), _PREFILTER_BLOCK):
        stop = start + _PREFILTER_BLOCK
        equal = sigs[first[start:stop]] == sigs[second[start:stop]]
        keep[start:stop] = np.count_nonzero(equal, axis=1) >= need
    return keep


def narrow_signatures(sigs: Sequence[bytes]) -> tuple[U16, npt.NDArray[np.bool_]]:
    """Signatures as (n, NUM_PERM) uint16 rows of each slot's low 16 bits, and which are set.

    Half the memory of ``signatures_to_array``; a chance equality of 2^-16 per slot changes
    neither banding nor the similarity estimate measurably. ``signatures_agree`` and
    ``TextLSHIndex.candidate_pairs`` take the rows as they are; ``widen_signatures`` makes
    them rows for ``TextLSHIndex.add_many`` and ``query_many``.
    """
    rows = signatures_to_array(sigs)
    signed = ~empty_signature_rows(rows)
    return (rows & 0xFFFF).astype(np.uint16), signed


def widen_signatures(narrow: U16, signed: npt.NDArray[np.bool_]) -> U32:
    """Narrowed signatures as the uint32 rows ``TextLSHIndex`` takes; rows not ``signed`` empty."""
    rows = narrow.astype(np.uint32)
    rows[~signed] = EMPTY_SLOT
    return rows
