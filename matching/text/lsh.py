"""Banded MinHash LSH: candidate pairs of signatures, for verification to judge.

Band hashes and item numbers sit in sorted numpy arrays, 8 bytes per item and band;
whole batches are self-joined band by band with numpy sorts, without a Python loop per ad.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.text.minhash import (
    I64,
    NUM_PERM,
    U32,
    U64,
    empty_signature_rows,
    seeded_u64,
    signatures_agree,
    signatures_to_array,
)

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
# Mixers for band hashes and signature digests (murmur3 fmix64 and odd multipliers).
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_DIGEST_MUL = seeded_u64("digest", NUM_PERM // 2) | np.uint64(1)


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


# The candidate prefilter estimates Jaccard similarity from this many MinHash slots (its
# standard error is under 0.07).
PREFILTER_SLOTS = 64
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
