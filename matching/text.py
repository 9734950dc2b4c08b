"""Text signals of shared authorship: distinctive sentences, MinHash LSH, edit similarity.

Ad texts are short, repetitive and written from a small vocabulary, and many unrelated
advertisers paste the same agency template or carry the same site footer. So text is
compared in three steps:

1. **Boilerplate removal.** Texts are split into sentences, each normalised and keyed.
   ``BoilerplateModel`` counts for every sentence the *distinct owners* using it (an owner
   is the caller's best guess at one advertiser: a phone, else a photo, else the ad); a
   sentence used by ``min_owners`` or more owners is boilerplate and dropped. One
   advertiser reposting its own text 500 times stays one owner. This is the
   term-frequency idea of record linkage taken to its limit for sentences.
2. **Candidates by MinHash LSH** over word bigrams of the distinctive text: bigrams
   survive synonym swaps, reordered sentences and typos far better than trigrams
   (TECH_NOTES: 98 % vs 49 % of true near-duplicates), and banding with a threshold near
   0.3 Jaccard keeps the candidate set small.
3. **Verification** with rapidfuzz ``ratio`` / ``token_sort_ratio`` (never
   ``token_set_ratio`` or partial ratios: they saturate on this kind of text).

Why MinHash and LSH are written here rather than taken from datasketch 2.0 (measured by
``benchmarks/bench_text.py``, 20k synthetic ads, one core): its ``MinHash.update_batch``
took 137 µs per ad against 11.5 µs for ``text_signatures`` on the same texts, and its
``MinHashLSH`` inserts at 258 µs per ad and keeps every band key as Python ``bytes`` in
dicts (112 MB traced for 15k ads, about 7 GB at 1M). The index here stores 8 bytes per
ad and band in sorted numpy arrays (0.33 GB at 1M ads), adds in 7 µs, counts distinct
signatures per bucket (so verbatim reposts do not fill buckets) and self-joins a whole
batch without a Python loop per ad (1M ads: 54 s). datasketch queries faster (42 µs
against 92 µs here). The hashes here come from fixed blake2b seeds, so stored signatures
stay comparable across processes, machines and numpy versions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from hashlib import blake2b
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

__all__ = [
    "EMPTY_SLOT",
    "LSH_BANDS",
    "LSH_MAX_BUCKET",
    "LSH_ROWS",
    "MIN_TOKENS",
    "NUM_PERM",
    "TEXT_MATCH_THRESHOLD",
    "BoilerplateModel",
    "TextLSHIndex",
    "distinctive_text",
    "empty_signature_rows",
    "normalise_text",
    "sentence_key",
    "signature_similarity",
    "signatures_agree",
    "signatures_to_array",
    "split_sentences",
    "text_signature",
    "text_signatures",
    "text_similarities",
    "text_similarity",
]

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
# 42 bands of 3 rows (126 of the 128 slots): candidate threshold (1/42)^(1/3) ≈ 0.29,
# where a pair is found with probability 0.68 at J = 0.3, 0.94 at 0.4 and 0.995 at 0.5.
LSH_BANDS = 42
LSH_ROWS = 3
# A bucket holding more distinct signatures than this is boilerplate-like: skipped. It is
# the valve on candidate volume, which grows faster than the ads (unrelated ads sharing a
# slot-filled template pile up): at 200k synthetic ads 50 gave 12M candidate pairs and
# 98.6 % of the pairs that pass verification, 200 gave 28M and 99.1 %, 20 gave 5.6M
# and 97.7 %. One advertiser's ads rarely fill a bucket: copies count once.
LSH_MAX_BUCKET = 50
# max(ratio, token_sort_ratio) of two distinctive texts at or above which they count as
# one author's. Measured on the benchmark corpus (pairs of different text), precision /
# recall at 75, 80, 85, 90:
#   20k ads  0.98/0.73  0.99/0.60  1.00/0.44  1.00/0.30
#   200k ads 0.73/0.71  0.90/0.58  0.98/0.43  0.99/0.31
#   1M ads   0.34/0.68  0.56/0.56  0.77/0.41  0.91/0.32
# Unrelated pairs grow with the square of the corpus, true pairs linearly, so a fixed
# threshold loses precision as the corpus grows; 85 keeps it near 0.98 up to 200k ads.
TEXT_MATCH_THRESHOLD = 85.0
# Fill of the rows that ``signatures_to_array`` gives empty signatures.
EMPTY_SLOT = 0xFFFFFFFF

# --- normalisation -----------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Bare domains only for top-level domains that are not also Dutch or English words
# ("nieuw.de", "call.me" are sentence ends with a missing space, not addresses).
# A URL's trailing punctuation stays: it may end the sentence.
_URL = re.compile(
    r"(?:(?:https?://|www\.)\S*|\b(?:[a-z0-9-]+\.)+(?:nl|com|net|org|eu|io|uk|ro)\b(?:/\S*)?)"
    r"(?<![.,!?;:)\]])",
    re.IGNORECASE,
)
# Six or more digits, possibly split by spaces, dots, dashes, slashes or brackets: phones
# (compared separately, so their digits must not make texts similar) and the odd date.
_PHONE = re.compile(r"\+?\d(?:[ \t./()\-]{0,2}\d){5,}")
_NON_WORD = re.compile(r"[\W_]+")
_SENTENCE_BREAK = re.compile(
    r"\.(?!\d)|(?<!\d)\."  # a dot, unless between digits (1.5 uur)
    r"|[!?;…\n\r*•·●▪►◆■□★☆✓✔♥|~]+"
    r"|\s[-–—]+\s"
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]"  # emoji and dingbats
)


def _strip_contacts(text: str) -> str:
    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" ", text)
    return _PHONE.sub(" ", text)


def _fold(text: str) -> str:
    """Casefold, strip accents, keep letters and digits: the part after contact removal."""
    text = text.casefold()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
        text = unicodedata.normalize("NFKC", text)
    # Punctuation turned to spaces can reveal a phone written as 06,00,00,00,00.
    return " ".join(_PHONE.sub(" ", _NON_WORD.sub(" ", text)).split())


def normalise_text(text: str) -> str:
    """NFKC, casefolded, accents stripped, without URLs, e-mails and phone-like digit runs.

    Only letters and digits remain, single-spaced. Idempotent.
    """
    return _fold(_strip_contacts(unicodedata.normalize("NFKC", text)))


def split_sentences(text: str) -> list[str]:
    """The raw text's sentences, each normalised; empty ones dropped.

    Contacts are removed before splitting so that the dots of a URL or a phone number do
    not cut a sentence.
    """
    clean = _strip_contacts(unicodedata.normalize("NFKC", text))
    sentences = (_fold(part) for part in _SENTENCE_BREAK.split(clean))
    return [s for s in sentences if s]


def sentence_key(sentence: str) -> int:
    """Stable unsigned 64-bit key of an (already normalised) sentence."""
    return int.from_bytes(blake2b(sentence.encode(), digest_size=8).digest(), "little")


# --- boilerplate -------------------------------------------------------------------

# Owner pairs buffered in a dict before they are merged into the sorted arrays.
_MERGE_ROWS = 1 << 16


def owner_key(owner: str) -> int:
    """The 64-bit key under which the boilerplate model counts an owner (an author)."""
    return int.from_bytes(blake2b(owner.encode(), digest_size=8).digest(), "little")


class BoilerplateModel:
    """Counts, per sentence key, the distinct owners that used it, saturating at ``min_owners``.

    Memory stays small at millions of ads: per key at most ``min_owners`` rows of
    (key, owner hash), 16 bytes each, in two sorted numpy arrays; new rows wait in a
    small dict and are merged in batches. Most keys belong to one owner and take one row.
    """

    def __init__(self, min_owners: int = 5) -> None:
        if min_owners < 2:
            raise ValueError("min_owners must be at least 2")
        self.min_owners = min_owners
        self._keys: U64 = np.empty(0, dtype=np.uint64)  # sorted
        self._owners: U64 = np.empty(0, dtype=np.uint64)  # owner hash of each row
        self._pending: dict[int, list[int]] = {}  # key -> owner hashes not yet merged
        self._pending_rows = 0

    def observe(self, owner: str, keys: Iterable[int]) -> None:
        """Record that ``owner`` used the sentences with these keys."""
        self.observe_hashed(owner_key(owner), keys)

    def observe_hashed(self, owner_hash: int, keys: Iterable[int]) -> None:
        """``observe`` with the owner given as its ``owner_key`` (how it is stored)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return
        starts, stops = self._stored_ranges(unique)
        for key, start, stop in zip(unique, starts, stops, strict=True):
            stored = stop - start
            if stored >= self.min_owners:
                continue
            if stored and owner_hash in self._owners[start:stop].tolist():
                continue
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = [owner_hash]
            elif owner_hash in pending or stored + len(pending) >= self.min_owners:
                continue
            else:
                pending.append(owner_hash)
            self._pending_rows += 1
        if self._pending_rows >= _MERGE_ROWS:
            self._merge()

    def owners_of(self, key: int) -> int:
        """Distinct owners seen using the sentence, counted up to ``min_owners``."""
        return self._owner_counts([key])[0]

    def is_boilerplate(self, key: int) -> bool:
        """Whether at least ``min_owners`` distinct owners used the sentence."""
        return self.owners_of(key) >= self.min_owners

    def distinctive_sentences(self, sentences: Sequence[str]) -> list[str]:
        """The normalised sentences that are not boilerplate, repeats dropped, in order."""
        keys = [sentence_key(s) for s in sentences]
        counts = self._owner_counts(keys)
        seen: set[int] = set()
        kept = []
        for sentence, key, count in zip(sentences, keys, counts, strict=True):
            if sentence and count < self.min_owners and key not in seen:
                seen.add(key)
                kept.append(sentence)
        return kept

    def __len__(self) -> int:
        """Stored (key, owner) rows, merged or pending."""
        return len(self._keys) + self._pending_rows

    def _stored_ranges(self, keys: Sequence[int]) -> tuple[list[int], list[int]]:
        if not len(self._keys):
            zeros = [0] * len(keys)
            return zeros, zeros
        wanted = np.array(keys, dtype=np.uint64)
        starts = np.searchsorted(self._keys, wanted, side="left")
        stops = np.searchsorted(self._keys, wanted, side="right")
        return starts.tolist(), stops.tolist()

    def _owner_counts(self, keys: Sequence[int]) -> list[int]:
        starts, stops = self._stored_ranges(keys)
        return [
            stop - start + len(self._pending.get(key, ()))
            for key, start, stop in zip(keys, starts, stops, strict=True)
        ]

    def _merge(self) -> None:
        rows = self._pending_rows
        keys = np.fromiter(
            (k for k, owners in self._pending.items() for _ in owners), np.uint64, count=rows
        )
        owners = np.fromiter(
            (o for owners in self._pending.values() for o in owners), np.uint64, count=rows
        )
        order = np.argsort(keys, kind="stable")
        keys, owners = keys[order], owners[order]
        # Merging sorted runs by insertion is linear, unlike re-sorting everything.
        at = np.searchsorted(self._keys, keys, side="right")
        self._keys = np.insert(self._keys, at, keys)
        self._owners = np.insert(self._owners, at, owners)
        self._pending.clear()
        self._pending_rows = 0


def distinctive_text(text: str, model: BoilerplateModel) -> str:
    """The text normalised, without its boilerplate sentences, in original order."""
    return " ".join(model.distinctive_sentences(split_sentences(text)))


# --- MinHash -----------------------------------------------------------------------


def _seeded_u64(label: str, count: int) -> U64:
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
_BIGRAM_K = _seeded_u64("bigram", 3)
# One (a, b) per permutation: h(x) = ((a*x + b) mod 2^64) >> 32. The shift is monotone,
# so the minimum is taken before it.
_PERM_A = _seeded_u64("perm-a", NUM_PERM) | np.uint64(1)
_PERM_B = _seeded_u64("perm-b", NUM_PERM)
# Mixers for band hashes and signature digests (murmur3 fmix64 and odd multipliers).
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_DIGEST_MUL = _seeded_u64("digest", NUM_PERM // 2) | np.uint64(1)
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


# --- LSH ---------------------------------------------------------------------------


def _fmix64(x: U64) -> U64:
    """murmur3's 64-bit finaliser, in place."""
    x ^= x >> np.uint64(33)
    x *= _FMIX_1
    x ^= x >> np.uint64(33)
    x *= _FMIX_2
    x ^= x >> np.uint64(33)
    return x


def _band_hashes(
    sigs: npt.NDArray[np.unsignedinteger[Any]],
    bands: int,
    rows: int,
    select: I64 | None = None,
) -> U32:
    """(n, bands) 32-bit hash of each band's rows; never 0xFFFFFFFF, so h + 1 cannot wrap.

    With ``select``, only those rows of ``sigs``, in that order (gathered block by block).
    """
    count = len(sigs) if select is None else len(select)
    out = np.empty((count, bands), dtype=np.uint32)
    for start in range(0, count, 1 << 16):
        part = (
            sigs[start : start + (1 << 16)]
            if select is None
            else sigs[select[start : start + (1 << 16)]]
        )
        block = part[:, : bands * rows].reshape(-1, bands, rows)
        acc = np.zeros(block.shape[:2], dtype=np.uint64)
        for row in range(rows):
            acc ^= block[:, :, row].astype(np.uint64)
            acc = _fmix64(acc)
        out[start : start + len(block)] = np.minimum(acc >> np.uint64(32), 0xFFFFFFFE)
    return out


def _digests(sigs: npt.NDArray[np.unsignedinteger[Any]], select: I64 | None = None) -> U64:
    """(n,) 64-bit digest of each whole signature (of ``select``'s rows), telling exact
    copies apart."""
    count = len(sigs) if select is None else len(select)
    out = np.empty(count, dtype=np.uint64)
    for start in range(0, count, 1 << 16):
        part = (
            sigs[start : start + (1 << 16)]
            if select is None
            else sigs[select[start : start + (1 << 16)]]
        )
        words = np.ascontiguousarray(part).view(np.uint64)
        mixed = words * _DIGEST_MUL[: words.shape[1]]
        out[start : start + len(part)] = _fmix64(mixed.sum(axis=1, dtype=np.uint64))
    return out


def empty_signature_rows(sigs: U32) -> npt.NDArray[np.bool_]:
    """Rows of ``signatures_to_array`` that stand for an empty signature."""
    # A real signature has all four first slots at the maximum with probability 2^-128.
    empty: npt.NDArray[np.bool_] = (sigs[:, :4] == EMPTY_SLOT).all(axis=1)
    return empty


# The candidate prefilter estimates Jaccard similarity from this many MinHash slots (its
# standard error is under 0.07); pairs are compared in blocks of this many.
PREFILTER_SLOTS = 64
_PREFILTER_BLOCK = 1 << 17
_PAIRS_PER_SLICE = 1 << 22
# Added items wait, unhashed, until this many are pending; then they are merged.
_MERGE_ITEMS = 1 << 16
# A query scans up to this many pending items directly; with more, it merges them first.
_SCAN_ITEMS = 4096
# A bucket with more members than this is skipped without counting its distinct
# signatures (bounds the cost of a query; verbatim reposts rarely run into thousands).
_MEMBER_CAP = 5000


class TextLSHIndex:
    """Banded MinHash LSH: keys whose signatures agree on all rows of at least one band.

    A bucket holding more than ``max_bucket`` *distinct* signatures (or more than 5000
    members) is boilerplate-like and skipped; ``skipped_buckets`` counts the skips. Exact
    copies of one signature (an advertiser's verbatim reposts) count once, so a prolific
    reposter does not make its own buckets look over-full, but they are all returned.
    Storage is 8 bytes per item and band in sorted numpy arrays (0.33 GB for 1M items
    with the default 42 bands), plus 16 bytes per item; items added one at a time wait,
    unhashed, in a buffer and are merged in batches.
    """

    def __init__(
        self, bands: int = LSH_BANDS, rows: int = LSH_ROWS, max_bucket: int = LSH_MAX_BUCKET
    ) -> None:
        if bands < 1 or rows < 1 or bands * rows > NUM_PERM:
            raise ValueError(f"need bands >= 1, rows >= 1 and bands * rows <= {NUM_PERM}")
        if max_bucket < 1:
            raise ValueError("max_bucket must be at least 1")
        self.bands = bands
        self.rows = rows
        self.max_bucket = max_bucket
        self.skipped_buckets = 0
        self._member_cap = max(_MEMBER_CAP, max_bucket)
        self._keys: I64 = np.empty(0, dtype=np.int64)  # by item number
        self._digests: U64 = np.empty(0, dtype=np.uint64)
        self._hashes: list[U32] = [np.empty(0, dtype=np.uint32) for _ in range(bands)]
        self._items: list[npt.NDArray[np.int32]] = [
            np.empty(0, dtype=np.int32) for _ in range(bands)
        ]
        self._pending_keys: list[int] = []
        self._pending_sigs: list[bytes] = []
        # Band hashes and digests of the first pending items, filled in by queries.
        self._pending_hashes: U32 = np.empty((0, bands), dtype=np.uint32)
        self._pending_digests: U64 = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._keys) + len(self._pending_keys)

    def add(self, key: int, signature: bytes) -> None:
        """Index ``signature`` under ``key`` (an int64); empty signatures are ignored."""
        if not signature:
            return
        if len(signature) != 4 * NUM_PERM:
            raise ValueError(f"signatures must be empty or {4 * NUM_PERM} bytes long")
        self._pending_keys.append(key)
        self._pending_sigs.append(signature)
        if len(self._pending_keys) >= _MERGE_ITEMS:
            self._flush()

    def add_many(self, keys: npt.ArrayLike, signatures: U32) -> None:
        """Index many signatures at once ((n, NUM_PERM) uint32; ``EMPTY_SLOT`` rows skipped)."""
        keys_arr = np.asarray(keys, dtype=np.int64)
        sigs = self._check(keys_arr, signatures)
        keep = ~empty_signature_rows(sigs)
        self._flush()
        sigs = sigs[keep]
        self._merge(keys_arr[keep], _band_hashes(sigs, self.bands, self.rows), _digests(sigs))

    def query(self, signature: bytes) -> set[int]:
        """Keys sharing at least one band bucket with ``signature`` (itself, if added)."""
        if not signature:
            return set()
        if len(self._pending_keys) > _SCAN_ITEMS:
            self._flush()
        self._hash_pending()
        row = signatures_to_array([signature])
        probe = _band_hashes(row, self.bands, self.rows)[0]
        # [h, h + 1) per band, kept uint32 so that searchsorted does not cast the arrays.
        bounds = np.stack([probe, probe + np.uint32(1)], axis=1)
        ranges = np.array([h.searchsorted(b) for h, b in zip(self._hashes, bounds, strict=True)])
        sizes = ranges[:, 1] - ranges[:, 0]
        scan = len(self._pending_keys) > 0
        if scan:
            pending_hits = self._pending_hashes == probe  # (pending, bands)
            sizes += pending_hits.sum(axis=0)
        members: list[npt.NDArray[np.int32]] = []
        pending_members: list[npt.NDArray[np.intp]] = []
        no_extra = np.empty(0, dtype=np.intp)
        for band in np.flatnonzero(sizes).tolist():
            stored = self._items[band][ranges[band, 0] : ranges[band, 1]]
            extra = np.flatnonzero(pending_hits[:, band]) if scan else no_extra
            if sizes[band] > self.max_bucket and self._over_full(stored, extra):
                self.skipped_buckets += 1
                continue
            members.append(stored)
            pending_members.append(extra)
        found: set[int] = set()
        if members:
            found.update(self._keys[np.concatenate(members)].tolist())
        if scan and pending_members:
            found.update(self._pending_keys[i] for i in np.concatenate(pending_members).tolist())
        return found

    def query_many(
        self,
        signatures: U32,
        *,
        pair_filter: Callable[[I64, I64], npt.NDArray[np.bool_]] | None = None,
    ) -> I64:
        """``query`` for many signatures at once: unique (m, 2) pairs (row, key).

        ``signatures`` is an (n, NUM_PERM) uint32 array (``EMPTY_SLOT`` rows find
        nothing); row ``i`` pairs with every key ``query`` would return for it. Vectorised
        band by band; over-full buckets are judged once per bucket. ``pair_filter(rows,
        keys)``, if given, is applied band by band and drops the pairs it marks False
        before they are collected (a cheap prefilter keeps memory flat).
        """
        sigs = np.asarray(signatures, dtype=np.uint32)
        if sigs.ndim != 2 or sigs.shape[1] != NUM_PERM:
            raise ValueError(f"signatures must be (n, {NUM_PERM}) uint32")
        self._flush()
        rows = np.flatnonzero(~empty_signature_rows(sigs))
        if not len(rows) or not len(self._keys):
            return np.empty((0, 2), dtype=np.int64)
        probes = _band_hashes(sigs[rows], self.bands, self.rows)
        codes = _PairCodes(len(self._keys))  # packs (row, item) as row * items + item
        for band in range(self.bands):
            column, items = self._hashes[band], self._items[band]
            begin = np.searchsorted(column, probes[:, band], side="left")
            end = np.searchsorted(column, probes[:, band], side="right")
            sizes = end - begin
            over = np.flatnonzero(sizes > self.max_bucket)
            if len(over):
                values, first = np.unique(probes[over, band], return_index=True)
                no_extra = np.empty(0, dtype=np.intp)
                full = {
                    value: self._over_full(items[begin[over[i]] : end[over[i]]], no_extra)
                    for value, i in zip(values.tolist(), first.tolist(), strict=True)
                }
                skip = np.fromiter((full[v] for v in probes[over, band].tolist()), bool, len(over))
                self.skipped_buckets += int(np.count_nonzero(skip))
                sizes[over[skip]] = 0
            total = int(sizes.sum())
            if not total:
                continue
            which = np.repeat(np.arange(len(rows), dtype=np.int64), sizes)
            positions = np.repeat(begin - (np.cumsum(sizes) - sizes), sizes) + np.arange(total)
            found = items[positions].astype(np.int64)
            if pair_filter is not None:
                keep = pair_filter(rows[which], self._keys[found])
                which, found = which[keep], found[keep]
            codes.add_ordered(which, found)
        packed = codes.result()
        found_rows, found_items = packed // len(self._keys), packed % len(self._keys)
        return np.stack([rows[found_rows], self._keys[found_items]], axis=1)

    def _over_full(self, stored: npt.NDArray[np.int32], extra: npt.NDArray[np.intp]) -> bool:
        if len(stored) + len(extra) > self._member_cap:
            return True
        digests = np.concatenate([self._digests[stored], self._pending_digests[extra]])
        return len(np.unique(digests)) > self.max_bucket

    def candidate_pairs(
        self, keys: npt.ArrayLike, signatures: U32, *, min_similarity: float = 0.0
    ) -> I64:
        """Self-join of a batch: unique (m, 2) key pairs, first < second, sharing a bucket.

        ``signatures`` is an (n, NUM_PERM) uint32 array aligned with ``keys``; rows of
        ``EMPTY_SLOT`` are ignored. A uint16 array (each slot's low 16 bits, no empty rows)
        is taken as it is, at half the memory. Over-full buckets are skipped as in ``query``, so the
        pairs are those per-item queries would give. Items added with ``add`` take no part.
        Runs band by band with numpy sorts over the distinct signatures, no Python loop per
        item; exact copies are expanded into pairs at the end. With ``min_similarity``,
        pairs whose signatures agree in fewer than that share of the first
        ``PREFILTER_SLOTS`` slots (an estimate of their Jaccard similarity) are dropped
        band by band, before they cost memory.
        """
        keys_arr = np.asarray(keys, dtype=np.int64)
        sigs = self._check(keys_arr, signatures, narrow=True)
        if sigs.dtype == np.uint16:
            rows = np.arange(len(sigs), dtype=np.int64)
        else:
            rows = np.flatnonzero(~empty_signature_rows(sigs))
        if len(rows) < 2:
            return np.empty((0, 2), dtype=np.int64)
        # Group exact copies: members[starts[g] : starts[g] + sizes[g]] are group g's rows.
        # Rows are gathered block by block: a million signatures are not copied at once.
        digests = _digests(sigs, rows)
        by_digest = np.argsort(digests, kind="stable")
        members = rows[by_digest]
        first_copy = _run_starts(digests[by_digest])
        copies = np.diff(np.append(first_copy, len(rows)))
        groups = len(first_copy)
        hashes = _band_hashes(sigs, self.bands, self.rows, members[first_copy])
        group_sigs = sigs[members[first_copy], :PREFILTER_SLOTS] if min_similarity > 0 else sigs
        codes = _PairCodes(groups)
        reached = np.zeros(groups, dtype=bool)  # in at least one bucket that is kept
        for band in range(self.bands):
            order = np.argsort(hashes[:, band], kind="stable")
            starts = _run_starts(hashes[order, band])
            distinct = np.diff(np.append(starts, groups))
            sizes = np.add.reduceat(copies[order], starts)
            over = (distinct > self.max_bucket) | (sizes > self._member_cap)
            self.skipped_buckets += int(np.count_nonzero(over))
            reached[order[np.repeat(~over, distinct)]] = True
            pair_keep = ~over & (distinct >= 2)
            kept_starts, kept_sizes = starts[pair_keep], distinct[pair_keep]
            # Buckets in slices of about _PAIRS_PER_SLICE pairs: a band of a million
            # signatures can hold tens of millions before the prefilter.
            pair_counts = np.cumsum(kept_sizes * (kept_sizes - 1) // 2)
            cuts = np.searchsorted(
                pair_counts,
                np.arange(
                    _PAIRS_PER_SLICE, pair_counts[-1] if len(pair_counts) else 0, _PAIRS_PER_SLICE
                ),
            )
            for part in np.split(np.arange(len(kept_starts)), cuts):
                first, second = _pairs_within(kept_starts[part], kept_sizes[part])
                first, second = order[first], order[second]
                if min_similarity > 0:
                    keep = signatures_agree(group_sigs, first, second, min_similarity)
                    first, second = first[keep], second[keep]
                codes.add(first, second)
        # Pairs of groups become every pair of their members; copies pair among themselves.
        group_pairs = codes.result()
        left_group, right_group = group_pairs // groups, group_pairs % groups
        left, right = _cross(
            first_copy[left_group], copies[left_group], first_copy[right_group], copies[right_group]
        )
        with_copies = np.flatnonzero(reached & (copies >= 2))
        same_left, same_right = _pairs_within(first_copy[with_copies], copies[with_copies])
        left = keys_arr[members[np.concatenate([left, same_left])]]
        right = keys_arr[members[np.concatenate([right, same_right])]]
        pairs: I64 = np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        if len(pairs) > 1:  # sorted; a key given twice can repeat a pair
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
            fresh = np.ones(len(pairs), dtype=bool)
            fresh[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
            pairs = pairs[fresh]
        return pairs

    def _check(
        self, keys: I64, signatures: npt.ArrayLike, *, narrow: bool = False
    ) -> npt.NDArray[np.unsignedinteger[Any]]:
        given = np.asarray(signatures)
        sigs = given if narrow and given.dtype == np.uint16 else given.astype(np.uint32, copy=False)
        if sigs.ndim != 2 or sigs.shape[1] != NUM_PERM or len(sigs) != len(keys):
            raise ValueError(f"signatures must be (len(keys), {NUM_PERM}) uint32")
        return sigs

    def _hash_pending(self) -> None:
        done = len(self._pending_hashes)
        if done < len(self._pending_sigs):
            sigs = signatures_to_array(self._pending_sigs[done:])
            self._pending_hashes = np.concatenate(
                [self._pending_hashes, _band_hashes(sigs, self.bands, self.rows)]
            )
            self._pending_digests = np.concatenate([self._pending_digests, _digests(sigs)])

    def _flush(self) -> None:
        if self._pending_keys:
            self._hash_pending()
            keys = np.array(self._pending_keys, dtype=np.int64)
            self._merge(keys, self._pending_hashes, self._pending_digests)
            self._pending_keys, self._pending_sigs = [], []
            self._pending_hashes = self._pending_hashes[:0]
            self._pending_digests = self._pending_digests[:0]

    def _merge(self, keys: I64, hashes: U32, digests: U64) -> None:
        base = len(self._keys)
        self._keys = np.concatenate([self._keys, keys])
        self._digests = np.concatenate([self._digests, digests])
        numbers = np.arange(base, base + len(keys), dtype=np.int32)
        for band in range(self.bands):
            order = np.argsort(hashes[:, band], kind="stable")
            column = hashes[order, band]
            at = np.searchsorted(self._hashes[band], column, side="right")
            self._hashes[band] = np.insert(self._hashes[band], at, column)
            self._items[band] = np.insert(self._items[band], at, numbers[order])


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


def _unique(values: I64) -> I64:
    """Sorted distinct values; sort-based, far faster than ``np.unique`` on tens of millions."""
    ordered = np.sort(values)
    return ordered[_run_starts(ordered)] if len(ordered) else ordered


def _run_starts(ordered: npt.NDArray[np.generic]) -> I64:
    """Where each run of equal values starts in a sorted, non-empty array."""
    fresh = np.empty(len(ordered), dtype=bool)
    fresh[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=fresh[1:])
    return np.flatnonzero(fresh)


def _cross(left_start: I64, left_size: I64, right_start: I64, right_size: I64) -> tuple[I64, I64]:
    """Every (p, q) with p in [left_start, +left_size) and q in [right_start, +right_size)."""
    counts = left_size * right_size
    which = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    width = right_size[which]
    return left_start[which] + offset // width, right_start[which] + offset % width


def _pairs_within(starts: I64, sizes: I64) -> tuple[I64, I64]:
    """All position pairs (p, q), p < q, inside each group [start, start + size)."""
    if not len(starts):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    total = int(sizes.sum())
    group_of = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = starts[group_of] + rank
    partners = sizes[group_of] - 1 - rank  # later members of the same group
    first = np.repeat(position, partners)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners)
    return first, first + 1 + offset


class _PairCodes:
    """Unique pairs of row numbers packed as ``low * n + high``, deduplicated in batches."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._unique: I64 = np.empty(0, dtype=np.int64)
        self._buffer: list[I64] = []
        self._buffered = 0

    def add(self, a: I64, b: I64) -> None:
        if not len(a):
            return
        self._buffer.append(np.minimum(a, b) * self.n + np.maximum(a, b))
        self._buffered += len(a)
        # Amortised: re-deduplicate only once the buffer outgrows what is already unique.
        if self._buffered > max(len(self._unique), 1 << 20):
            self._compact()

    def add_ordered(self, first: I64, second: I64) -> None:
        """Add pairs as given (not unordered): packed as ``first * n + second``."""
        if not len(first):
            return
        self._buffer.append(first * self.n + second)
        self._buffered += len(first)
        if self._buffered > max(len(self._unique), 1 << 20):
            self._compact()

    def result(self) -> I64:
        self._compact()
        return self._unique

    def _compact(self) -> None:
        if self._buffer:
            self._unique = _unique(np.concatenate([self._unique, *self._buffer]))
            self._buffer = []
            self._buffered = 0


# --- verification ------------------------------------------------------------------


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
