"""Photo groups: every use of an image assigned to the photo it shows.

The first use of a photo is its *leader*. A later use joins the closest earlier photo
(ties: the older) whose leader it matches within the radius: the use's pHash near the
leader's pHash or one of its variants (the use is a crop or mirror of it), or one of the
use's crops near the leader's pHash (the use is the photo with a border or a strip
added). A use that matches no earlier batch's photo joins the closest earlier use of its
own batch that started a photo, or starts one. Only leaders are indexed, so a stock photo
posted 25,000 times costs one index entry and a handful of hits per query rather than
25,000² pairs, and "is this photo a hub?" becomes a count over its uses.

Uses are processed in blocks, in order; a use that matches an earlier block's photo is
not compared with photos started in its own block, so in rare cases (a use within the
radius of two photos that are themselves more than the radius apart) the block size
decides which of the two it joins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.images import HammingIndex, RangeHits
from matching.records import ImageFingerprint

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

# Hashes stored per use: the pHash, then up to this many variants (missing ones repeat
# the pHash, which finds nothing new).
HASHES_PER_USE = 6
# Columns of the zoomed-in variants (centre 90 %, centre 80 %, top 90 %): a use whose crop
# lands near an earlier photo's pHash is that photo with a border or strip added.
_ZOOMED_OUT = (2, 3, 5)
# Uses searched together; a block's self-join grows with the square of a stock photo's
# uses inside it, so blocks stay small.
_BLOCK = 8192


def fingerprint_rows(images: Sequence[ImageFingerprint]) -> U64Array:
    """(n, HASHES_PER_USE) uint64: each image's pHash and variants, padded with the pHash."""
    rows = np.empty((len(images), HASHES_PER_USE), dtype=np.uint64)
    for row, image in enumerate(images):
        values = (image.phash, *image.variants[: HASHES_PER_USE - 1])
        rows[row, : len(values)] = values
        rows[row, len(values) :] = image.phash
    return rows


class PhotoGroups:
    """Assigns image uses to photos; answers which photo a use shows and how close it is."""

    def __init__(self, radius: int, *, block_size: int = _BLOCK) -> None:
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self.radius = radius
        self.block_size = block_size
        self._leaders = HammingIndex()
        self._leader_phashes = HammingIndex()
        self._hashes = GrowableArray((0, HASHES_PER_USE), np.uint64)
        self._photo = GrowableArray((0,), np.int64)
        self._leader_use: list[int] = []

    def __len__(self) -> int:
        """Number of uses."""
        return len(self._photo)

    @property
    def photo_count(self) -> int:
        """Number of distinct photos."""
        return len(self._leader_use)

    def add(self, hashes: npt.NDArray[Any]) -> I64Array:
        """Assign new uses ((n, HASHES_PER_USE) uint64 rows) to photos; return their ids."""
        rows = np.asarray(hashes, dtype=np.uint64).reshape(-1, HASHES_PER_USE)
        photos = np.empty(len(rows), dtype=np.int64)
        step = self.block_size
        for start in range(0, len(rows), step):
            photos[start : start + step] = self._add_block(rows[start : start + step])
        return photos

    def photo_of(self, uses: npt.NDArray[Any]) -> I64Array:
        """Photo id of each use."""
        return self._photo.view()[np.asarray(uses, dtype=np.int64)]

    def leader_of(self, photo: int) -> int:
        """The use that first showed the photo."""
        return self._leader_use[photo]

    def distance(self, a: int, b: int) -> int:
        """Bits between two uses: the pHash of either against the other's pHash or variants."""
        hashes = self._hashes.view()
        left, right = hashes[a].tolist(), hashes[b].tolist()
        forward = min((value ^ left[0]).bit_count() for value in right)
        backward = min((value ^ right[0]).bit_count() for value in left)
        return int(min(forward, backward))

    def _add_block(self, block: U64Array) -> I64Array:
        photos = np.full(len(block), -1, dtype=np.int64)
        distances = np.full(len(block), self.radius + 1, dtype=np.int64)
        if len(self._leaders):
            # The use's pHash near an earlier photo or one of its crops and mirrors ...
            self._take_closest(
                photos,
                distances,
                self._leaders.range_search(block[:, 0], self.radius),
                np.arange(len(block)),
            )
            # ... or a crop of the use near an earlier photo (the use has a border added).
            open_rows = np.flatnonzero(photos < 0)
            if len(open_rows):
                zoomed = block[open_rows][:, list(_ZOOMED_OUT)]
                found = self._leader_phashes.range_search(zoomed.reshape(-1), self.radius)
                self._take_closest(photos, distances, found, np.repeat(open_rows, len(_ZOOMED_OUT)))
        new_leaders = self._resolve_in_block(block, photos, distances)
        self._hashes.extend(block)
        self._photo.extend(photos)
        if new_leaders:
            ids = np.asarray([photos[p] for p in new_leaders], dtype=np.int64)
            self._leaders.add(np.repeat(ids, HASHES_PER_USE), block[new_leaders].reshape(-1))
            self._leader_phashes.add(ids, block[new_leaders, 0])
        return photos

    @staticmethod
    def _take_closest(
        photos: I64Array, distances: I64Array, found: RangeHits, rows: npt.NDArray[Any]
    ) -> None:
        """Give rows still without a photo their closest hit (ties: the older photo).

        ``rows[i]`` is the use that query ``i`` was made for; a use may have several.
        """
        has = np.flatnonzero(np.diff(found.lims))
        # Hits of a query come closest first, then by key (photo id): the first is its best.
        hit_rows = rows[has]
        hit_photos = found.keys[found.lims[has]]
        hit_distances = found.distances[found.lims[has]]
        order = np.lexsort((hit_photos, hit_distances, hit_rows))
        hit_rows, hit_photos, hit_distances = (
            hit_rows[order],
            hit_photos[order],
            hit_distances[order],
        )
        first = np.ones(len(hit_rows), dtype=bool)
        first[1:] = hit_rows[1:] != hit_rows[:-1]
        photos[hit_rows[first]] = hit_photos[first]
        distances[hit_rows[first]] = hit_distances[first]

    def _resolve_in_block(
        self, block: U64Array, photos: I64Array, distances: I64Array
    ) -> list[int]:
        """Uses new to every earlier photo join the closest earlier one of their own block,
        in order, or start a photo; returns the positions that started one."""
        open_rows = np.flatnonzero(photos < 0)
        if not len(open_rows):
            return []
        local = HammingIndex()
        local.add(np.repeat(open_rows, HASHES_PER_USE), block[open_rows].reshape(-1))
        found = local.range_search(block[open_rows, 0], self.radius)
        query_rows = np.repeat(open_rows, np.diff(found.lims))
        # Either use's pHash near the other's hashes links them: make the hits symmetric.
        near: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for a, b, distance in zip(
            query_rows.tolist(), found.keys.tolist(), found.distances.tolist(), strict=True
        ):
            if a != b:
                near[max(a, b)].append((distance, min(a, b)))
        started: list[int] = []
        leader_photo: dict[int, int] = {}
        for row in open_rows.tolist():
            earlier = [(d, leader_photo[o]) for d, o in near.get(row, []) if o in leader_photo]
            if earlier:
                photos[row], distances[row] = min(earlier)[::-1]
                continue
            photo = len(self._leader_use)
            self._leader_use.append(len(self._photo) + row)
            leader_photo[row] = photo
            started.append(row)
            photos[row], distances[row] = photo, 0
        return started


class GrowableArray:
    """A numpy array that grows at the end, by a quarter of its size at a time (amortised
    O(1); little slack, as a million ads' signatures alone take 256 MB)."""

    def __init__(self, shape: tuple[int, ...], dtype: type[np.generic]) -> None:
        self._data: npt.NDArray[Any] = np.zeros((1024, *shape[1:]), dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def view(self) -> npt.NDArray[Any]:
        """The filled part (a view: valid until the next ``extend``)."""
        return self._data[: self._size]

    def extend(self, rows: npt.NDArray[Any]) -> None:
        """Append rows."""
        need = self._size + len(rows)
        if need > len(self._data):
            grown = np.zeros(
                (max(need, len(self._data) * 5 // 4), *self._data.shape[1:]), self._data.dtype
            )
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : need] = rows
        self._size = need
