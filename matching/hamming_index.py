"""Exact Hamming-radius search over 64-bit hashes, each stored under an int key.

``HammingIndex`` finds every stored hash within a radius of a query (the photos' pHashes and
their variants, ``matching.images``), exactly, with multi-index hashing in compact numpy
sorted tables that new hashes are merged into; a small index is scanned instead.

Measured with ``benchmarks/bench_image_index.py``; the numbers that chose the chunks and
the storage are quoted next to them below.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import faiss
import numpy as np
import numpy.typing as npt

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

# Multi-index hashing (Norouzi et al., 2014): the 64 bits are cut into three chunks, one
# hash table each. If two hashes differ in at most r bits, one chunk differs in at most
# r // 3 (pigeonhole), so probing every bucket within r // 3 flips of the query's chunk in
# each table finds all of them. Chunk width ~log2(n) keeps buckets short: at 1M hashes the
# 21-bit chunks average 0.5 entries, 232 buckets probed per table at radius 8.
# (shift, bits): each table sees the hash rotated right by ``shift`` and keys on its low bits.
_CHUNKS: Final = ((0, 21), (21, 21), (42, 22))
# The sorted tables answer a radius-8 query over 1M hashes in a median 0.08 ms and 100k
# batched queries in 1.5 s (bench_image_index.py), at 28 bytes per hash. New hashes are
# merged into them before the next table search (an insert into each sorted column and a
# running count per bucket: ~30 ms for a block of new photos into 6M hashes, where a
# rebuild took 6 s). faiss IndexBinaryHash tables for recent adds, tried before, cost
# about 100 us per query whatever their size and 5 us per hash added: slower than both.
# A bucket probe costs about as much as scanning this many stored hashes (faiss's flat
# scan, measured against the sorted tables between 30k and 240k hashes).
_PROBE_COST: Final = 96
_QUERY_BLOCK: Final = 65_536
# Queries probed together in the sorted tables (each probes ~232 buckets per table).
_PROBE_BLOCK: Final = 4096


@dataclass(frozen=True, slots=True)
class RangeHits:
    """Hits of a batch of queries, laid out like faiss ``range_search``.

    The hits of query ``i`` are ``keys[lims[i]:lims[i + 1]]`` with their ``distances``,
    one per key (its closest stored hash), closest first and then by key.
    """

    lims: I64Array
    keys: I64Array
    distances: I64Array

    def __len__(self) -> int:
        return len(self.lims) - 1

    def hits(self, query: int) -> list[tuple[int, int]]:
        """``(key, distance)`` pairs of one query."""
        start, stop = int(self.lims[query]), int(self.lims[query + 1])
        return list(
            zip(self.keys[start:stop].tolist(), self.distances[start:stop].tolist(), strict=True)
        )


class HammingIndex:
    """Exact search for stored 64-bit hashes within a Hamming radius, each under an int key.

    Several hashes may share a key (a photo's pHash and its variants); a query reports each
    key once, at the distance of its closest hash. Adds may follow queries. An instance must
    not be used from several threads at once.

    A small index is scanned whole (faiss's flat scan); a larger one keeps multi-index
    sorted tables (``_SortedTables``, 28 bytes per hash) into which hashes added since
    the last table search are merged before the next one.
    """

    def __init__(self) -> None:
        self._main: _SortedTables | None = None
        self._main_size = 0  # hashes already in the sorted tables
        self._hashes: U64Array = np.zeros(0, dtype=np.uint64)
        self._keys: I64Array = np.zeros(0, dtype=np.int64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __getstate__(self) -> dict[str, Any]:
        if self._main is not None:
            self._merge_added()  # pickled whole: no merge left for the reader
        state = dict(self.__dict__)
        state["_hashes"] = self._hashes[: self._size]
        state["_keys"] = self._keys[: self._size]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.pop("_tables", None)  # faiss tables of recent adds, in older snapshots
        self.__dict__.update(state)
        if self._main is not None:
            self._main.rebind(self._hashes[: self._main_size])

    def add(
        self, keys: Sequence[int] | npt.NDArray[Any], hashes: Sequence[int] | npt.NDArray[Any]
    ) -> None:
        """Store ``hashes[i]`` under ``keys[i]``."""
        hash_array = _as_hashes(hashes)
        key_array = np.asarray(keys, dtype=np.int64).reshape(-1)
        if len(key_array) != len(hash_array):
            raise ValueError(f"{len(key_array)} keys for {len(hash_array)} hashes")
        if len(hash_array) == 0:
            return
        self._reserve(self._size + len(hash_array))
        self._hashes[self._size : self._size + len(hash_array)] = hash_array
        self._keys[self._size : self._size + len(hash_array)] = key_array
        self._size += len(hash_array)

    def query(self, hash: int, radius: int) -> list[tuple[int, int]]:
        """``(key, distance)`` of every key with a hash within ``radius`` bits, closest first."""
        return self.range_search([hash], radius).hits(0)

    def query_many(
        self, hashes: Sequence[int] | npt.NDArray[Any], radius: int
    ) -> list[list[tuple[int, int]]]:
        """``query`` for each hash, in one batched search."""
        found = self.range_search(hashes, radius)
        keys, distances = found.keys.tolist(), found.distances.tolist()
        bounds = found.lims.tolist()
        return [
            list(zip(keys[start:stop], distances[start:stop], strict=True))
            for start, stop in itertools.pairwise(bounds)
        ]

    def range_search(self, hashes: Sequence[int] | npt.NDArray[Any], radius: int) -> RangeHits:
        """Hits of many queries as flat arrays (the fast form for millions of queries)."""
        if radius < 0:
            raise ValueError(f"radius must be 0 or more, not {radius}")
        queries = _as_hashes(hashes)
        radius = min(radius, 64)
        flips = radius // len(_CHUNKS)
        parts: list[tuple[I64Array, I64Array, I64Array]] = []
        if self._size and len(queries):
            tables = self._tables_pay_off(flips)
            if tables:
                self._merge_added()
            for start in range(0, len(queries), _QUERY_BLOCK):
                block = queries[start : start + _QUERY_BLOCK]
                if tables and self._main is not None:
                    rows, ids, distances = self._main.search(block, radius, flips)
                else:
                    rows, ids, distances = self._search_brute(block, radius)
                parts.append((rows + start, self._keys[ids], distances))
        return _collapse(len(queries), parts)

    def _tables_pay_off(self, flips: int) -> bool:
        probes = sum(_buckets_within(bits, flips) for _, bits in _CHUNKS)
        return probes * _PROBE_COST < self._size

    def _merge_added(self) -> None:
        """Bring every hash into the sorted tables (built whole the first time)."""
        if self._main is None:
            self._main = _SortedTables(self._hashes[: self._size])
        elif self._size > self._main_size:
            self._main.merge(self._hashes[: self._size], self._main_size)
        self._main_size = self._size

    def _search_brute(self, queries: U64Array, radius: int) -> tuple[I64Array, I64Array, I64Array]:
        # faiss's flat scan (popcount in C++, both cores) is about three times numpy's
        # per-query scan; it keeps hits strictly below the threshold.
        flat = faiss.IndexBinaryFlat(64)
        flat.add(_codes(self._hashes[: self._size]))
        lims, distances, ids = flat.range_search(_codes(queries), radius + 1)
        rows = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(lims.astype(np.int64)))
        return rows, ids.astype(np.int64), distances.astype(np.int64)

    def _reserve(self, size: int) -> None:
        if size <= len(self._hashes):
            return
        # Geometric growth (by a quarter) keeps many small adds linear overall.
        capacity = max(size, len(self._hashes) * 5 // 4, 1024)
        hashes = np.zeros(capacity, dtype=np.uint64)
        keys = np.zeros(capacity, dtype=np.int64)
        hashes[: self._size] = self._hashes[: self._size]
        keys[: self._size] = self._keys[: self._size]
        self._hashes, self._keys = hashes, keys
        if self._main is not None:  # let the old array go: the tables read the new one
            self._main.rebind(self._hashes[: self._main_size])


class _SortedTables:
    """Multi-index hashing in flat arrays: per chunk, hash positions sorted by chunk value
    and the start of each chunk value's run (a bucket is ``order[offsets[v]:offsets[v+1]]``).
    """

    def __init__(self, hashes: U64Array) -> None:
        self._hashes = hashes
        self._order: list[npt.NDArray[np.int32]] = []
        self._offsets: list[npt.NDArray[np.int32]] = []
        for shift, bits in _CHUNKS:
            chunk = _chunk(hashes, shift, bits)
            self._order.append(np.argsort(chunk, kind="stable").astype(np.int32))
            offsets = np.zeros((1 << bits) + 1, dtype=np.int32)
            np.cumsum(np.bincount(chunk, minlength=1 << bits), out=offsets[1:])
            self._offsets.append(offsets)

    def merge(self, hashes: U64Array, known: int) -> None:
        """Take in ``hashes[known:]`` (the tables hold ``hashes[:known]``): each goes at the
        end of its bucket's run, as a rebuild's stable sort would put it."""
        self._hashes = hashes
        added = hashes[known:]
        positions = np.arange(known, len(hashes), dtype=np.int32)
        for number, (shift, bits) in enumerate(_CHUNKS):
            chunk = _chunk(added, shift, bits)
            by_chunk = np.argsort(chunk, kind="stable")
            chunk = chunk[by_chunk]
            offsets = self._offsets[number]
            self._order[number] = np.insert(
                self._order[number], offsets[chunk + 1], positions[by_chunk]
            )
            offsets[1:] += np.cumsum(np.bincount(chunk, minlength=1 << bits), dtype=np.int32)

    def rebind(self, hashes: U64Array) -> None:
        """Read the same hashes from another array (the index grew its storage)."""
        self._hashes = hashes

    def __getstate__(self) -> dict[str, Any]:
        # The hashes belong to the owning index, which pickles them and rebinds them.
        return {**self.__dict__, "_hashes": None}

    def search(
        self, queries: U64Array, radius: int, flips: int
    ) -> tuple[I64Array, I64Array, I64Array]:
        """(query row, hash position, distance) of every stored hash within ``radius``."""
        rows_parts, ids_parts, dist_parts = [], [], []
        for start in range(0, len(queries), _PROBE_BLOCK):
            block = queries[start : start + _PROBE_BLOCK]
            for number, (shift, bits) in enumerate(_CHUNKS):
                masks = _flip_masks(bits, flips)
                probes = _chunk(block, shift, bits)[:, None] ^ masks[None, :]
                offsets = self._offsets[number]
                begin = offsets[probes].reshape(-1).astype(np.int64)
                counts = offsets[probes + 1].reshape(-1) - begin
                total = int(counts.sum())
                if not total:
                    continue
                rows = np.repeat(
                    np.arange(len(block), dtype=np.int64),
                    counts.reshape(len(block), -1).sum(axis=1),
                )
                positions = np.repeat(begin - (np.cumsum(counts) - counts), counts) + np.arange(
                    total
                )
                ids = self._order[number][positions].astype(np.int64)
                xor = self._hashes[ids] ^ block[rows]
                distances = np.bitwise_count(xor).astype(np.int64)
                keep = distances <= radius
                if number:  # on the hits only: few of the candidates
                    near = np.flatnonzero(keep)
                    keep[near] = _first_table_only(xor[near], number, flips)
                rows_parts.append(rows[keep] + start)
                ids_parts.append(ids[keep])
                dist_parts.append(distances[keep])
        if not rows_parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(rows_parts), np.concatenate(ids_parts), np.concatenate(dist_parts)


def _chunk(values: U64Array, shift: int, bits: int) -> I64Array:
    return (_rotate_right(values, shift) & np.uint64((1 << bits) - 1)).astype(np.int64)


@functools.cache
def _flip_masks(bits: int, flips: int) -> I64Array:
    """Every ``bits``-wide mask with at most ``flips`` bits set."""
    masks = [
        sum(1 << b for b in chosen)
        for count in range(flips + 1)
        for chosen in itertools.combinations(range(bits), count)
    ]
    return np.asarray(masks, dtype=np.int64)


def _first_table_only(xor: U64Array, number: int, flips: int) -> npt.NDArray[np.bool_]:
    """A hit is found by every table whose chunk is within ``flips`` bits of the query's;
    keep it only from the first such table."""
    keep = np.ones(len(xor), dtype=bool)
    for earlier_shift, earlier_bits in _CHUNKS[:number]:
        mask = np.uint64(((1 << earlier_bits) - 1) << earlier_shift)
        keep &= np.bitwise_count(xor & mask) > flips
    return keep


def _as_hashes(values: Sequence[int] | npt.NDArray[Any]) -> U64Array:
    """Hashes as a 1-D uint64 array; negative or wider values are an error, not a wrap."""
    if isinstance(values, np.ndarray):
        if values.dtype == np.uint64:
            return np.ascontiguousarray(values.reshape(-1))
        if values.dtype.kind not in "iu":
            raise TypeError(f"hashes must be integers, not {values.dtype}")
        if values.size and values.min() < 0:
            raise ValueError("hashes are unsigned 64-bit integers; got a negative value")
        return values.reshape(-1).astype(np.uint64)
    try:
        return np.array(list(values), dtype=np.uint64).reshape(-1)
    except OverflowError as exc:
        raise ValueError(f"hashes are unsigned 64-bit integers: {exc}") from None


def _rotate_right(values: U64Array, shift: int) -> U64Array:
    if shift == 0:
        return values
    return (values >> np.uint64(shift)) | (values << np.uint64(64 - shift))


def _codes(values: U64Array) -> npt.NDArray[np.uint8]:
    """faiss binary codes (n, 8) viewing the same bytes; tables key on the native low bits."""
    return np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8).reshape(-1, 8)


def _buckets_within(bits: int, flips: int) -> int:
    total, term = 0, 1
    for flipped in range(flips + 1):
        total += term
        term = term * (bits - flipped) // (flipped + 1)
    return total


def _collapse(count: int, parts: list[tuple[I64Array, I64Array, I64Array]]) -> RangeHits:
    """One hit per (query, key) at its smallest distance, ordered by query, distance, key."""
    if parts:
        rows = np.concatenate([p[0] for p in parts])
        keys = np.concatenate([p[1] for p in parts])
        distances = np.concatenate([p[2] for p in parts])
    else:
        rows = keys = distances = np.zeros(0, dtype=np.int64)
    order = np.lexsort((distances, keys, rows))
    rows, keys, distances = rows[order], keys[order], distances[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
    rows, keys, distances = rows[first], keys[first], distances[first]
    order = np.lexsort((keys, distances, rows))
    lims = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=count), out=lims[1:])
    return RangeHits(lims, keys[order], distances[order])
