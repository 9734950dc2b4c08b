"""Photo groups: every use of an image assigned to the photo it shows.

The first use of a photo is its *leader*. A later use joins the closest earlier photo
(ties: the older) whose leader it matches within the radius: the use's pHash near the
leader's pHash or one of its variants (the use is a crop or mirror of it), or one of the
use's crops near the leader's pHash (the use is the photo with a border or a strip
added). A use that matches no earlier batch's photo joins the closest earlier use of its
own batch that started a photo, or starts one. Only leaders are indexed, so a stock photo
posted 25,000 times costs one index entry and a handful of hits per query rather than
25,000² pairs, and "is this photo a hub?" becomes a count over its uses.

Near the edge of the radius a pHash match must be confirmed before a use joins a photo:
at ``confirm_from`` bits or more, the dHash of the same pairing of copies (the use's
original against the leader's variant, or the other way round) must be within
``confirm_dhash`` bits. dHash reads other features of the pixels (gradient signs, not
low DCT frequencies), so two different photos rarely agree in both. A match that is not
confirmed does not join; the closest such match of each use is kept in ``unconfirmed``
so that explanations can say what was not linked and why. Chosen from
``benchmarks/bench_photo_confirmation.py``: on 1,500 synthetic photos (10,500 images)
the rule cut the different-photo pairs within radius 8 from 43 to 2 and lost 10 of
31,466 same-photo pairs; on scikit-image's people-free samples cut into tiles (the hard
case: near-symmetric images on black), from 152 to 38, losing 4 % of same-photo pairs.

Uses are processed in blocks, in order; a use that matches an earlier block's photo is
not compared with photos started in its own block, so in rare cases (a use within the
radius of two photos that are themselves more than the radius apart, or a use whose match
to an earlier photo was not confirmed and which is near a use of its own block) the block
size decides which it joins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.hamming_index import HammingIndex, RangeHits
from matching.records import ImageFingerprint

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

# Hashes stored per use: the pHash, then up to this many variants (missing ones repeat
# the pHash, which finds nothing new).
HASHES_PER_USE = 6
# Columns of the zoomed-in variants (centre 90 %, centre 80 %, top 90 %): a use whose crop
# lands near an earlier photo's pHash is that photo with a border or strip added.
_ZOOMED_OUT = (2, 3, 5)
# pHash distances from which a match needs the dHash's confirmation, and the dHash
# distance that confirms it (``bench_photo_confirmation.py``; see the module docstring).
CONFIRM_FROM = 6
CONFIRM_DHASH = 8
# Every pairing of two uses' copies that a match may rest on: the first use's original
# against each copy of the second, and each of the first's copies against the second's
# original.
_PAIRS_LEFT = np.array([0] * HASHES_PER_USE + list(range(1, HASHES_PER_USE)))
_PAIRS_RIGHT = np.array(list(range(HASHES_PER_USE)) + [0] * (HASHES_PER_USE - 1))
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


def dhash_rows(images: Sequence[ImageFingerprint]) -> tuple[U64Array, npt.NDArray[np.bool_]]:
    """(n, HASHES_PER_USE) uint64 dHashes laid out as ``fingerprint_rows``, and whether each
    image has them (a fingerprint from before dHashes were kept has none)."""
    rows = np.zeros((len(images), HASHES_PER_USE), dtype=np.uint64)
    known = np.zeros(len(images), dtype=bool)
    for row, image in enumerate(images):
        if len(image.dhashes) != 1 + len(image.variants):
            continue
        values = image.dhashes[:HASHES_PER_USE]
        rows[row, : len(values)] = values
        rows[row, len(values) :] = image.dhashes[0]
        known[row] = True
    return rows, known


def photo_pairing(a: ImageFingerprint, b: ImageFingerprint) -> tuple[int, int | None]:
    """``pairing_distances`` of two fingerprints: the pHash distance of the photos (either
    one's original against the other's original or a variant) and the dHash distance of
    that pairing; ``None`` when a dHash is unknown."""
    hashes = fingerprint_rows([a, b])
    dhashes, known = dhash_rows([a, b])
    return pairing_distances(
        hashes[0], dhashes[0] if known[0] else None, hashes[1], dhashes[1] if known[1] else None
    )


def pairing_distances(
    hashes_a: Sequence[int] | U64Array, dhashes_a: Sequence[int] | U64Array | None,
    hashes_b: Sequence[int] | U64Array, dhashes_b: Sequence[int] | U64Array | None,
) -> tuple[int, int | None]:  # fmt: skip
    """pHash distance of two uses (their closest pairing of copies) and the dHash distance
    of that pairing (ties: the closer dHash); ``None`` when either dHash is unknown."""
    a = np.asarray(hashes_a, dtype=np.uint64)[_PAIRS_LEFT]
    b = np.asarray(hashes_b, dtype=np.uint64)[_PAIRS_RIGHT]
    distances = np.bitwise_count(a ^ b).astype(np.int64)
    if dhashes_a is None or dhashes_b is None:
        return int(distances.min()), None
    da = np.asarray(dhashes_a, dtype=np.uint64)[_PAIRS_LEFT]
    db = np.asarray(dhashes_b, dtype=np.uint64)[_PAIRS_RIGHT]
    seconds = np.bitwise_count(da ^ db).astype(np.int64)
    best = int(np.lexsort((seconds, distances))[0])
    return int(distances[best]), int(seconds[best])


class PhotoGroups:
    """Assigns image uses to photos; answers which photo a use shows and how close it is."""

    def __init__(
        self,
        radius: int,
        *,
        block_size: int = _BLOCK,
        confirm_from: int = CONFIRM_FROM,
        confirm_dhash: int = CONFIRM_DHASH,
    ) -> None:
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self.radius = radius
        self.block_size = block_size
        self.confirm_from = confirm_from
        self.confirm_dhash = confirm_dhash
        self._leaders = HammingIndex()
        self._leader_phashes = HammingIndex()
        self._hashes = GrowableArray((0, HASHES_PER_USE), np.uint64)
        # dHashes are kept for leaders only, by photo: a match is confirmed against the
        # photo's first use (70 MiB less at 1M ads than one row per use).
        self._leader_dhashes = GrowableArray((0, HASHES_PER_USE), np.uint64)
        self._leader_dhash_known = GrowableArray((0,), np.bool_)
        self._photo = GrowableArray((0,), np.int64)
        self._leader_use: list[int] = []
        # Use -> (photo, pHash distance, dHash distance or None): its closest match within
        # the radius that was not confirmed, when it joined no photo through it.
        self.unconfirmed: dict[int, tuple[int, int, int | None]] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_dhashes" in state:  # pickled before dHashes were kept per leader only
            leaders = np.asarray(state["_leader_use"], dtype=np.int64)
            for old, new in (
                ("_dhashes", "_leader_dhashes"),
                ("_dhash_known", "_leader_dhash_known"),
            ):
                rows = state.pop(old).view()[leaders]
                kept = GrowableArray((0, *rows.shape[1:]), rows.dtype.type)
                kept.extend(rows)
                state[new] = kept
        self.__dict__.update(state)

    def __len__(self) -> int:
        """Number of uses."""
        return len(self._photo)

    @property
    def photo_count(self) -> int:
        """Number of distinct photos."""
        return len(self._leader_use)

    def add(
        self,
        hashes: npt.NDArray[Any],
        dhashes: tuple[npt.NDArray[Any], npt.NDArray[np.bool_]] | None = None,
    ) -> I64Array:
        """Assign new uses ((n, HASHES_PER_USE) uint64 rows) to photos; return their ids.

        ``dhashes`` are the uses' dHash rows and which are known (``dhash_rows``); without
        them no match at ``confirm_from`` bits or more can be confirmed.
        """
        rows = np.asarray(hashes, dtype=np.uint64).reshape(-1, HASHES_PER_USE)
        if dhashes is None:
            second = np.zeros_like(rows)
            known = np.zeros(len(rows), dtype=bool)
        else:
            second = np.asarray(dhashes[0], dtype=np.uint64).reshape(-1, HASHES_PER_USE)
            known = np.asarray(dhashes[1], dtype=bool).reshape(-1)
        if len(second) != len(rows) or len(known) != len(rows):
            raise ValueError(f"{len(second)} dHash rows for {len(rows)} uses")
        photos = np.empty(len(rows), dtype=np.int64)
        step = self.block_size
        for start in range(0, len(rows), step):
            stop = start + step
            photos[start:stop] = self._add_block(
                rows[start:stop], second[start:stop], known[start:stop]
            )
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
        return pairing_distances(hashes[a], None, hashes[b], None)[0]

    def _add_block(
        self, block: U64Array, second: U64Array, known: npt.NDArray[np.bool_]
    ) -> I64Array:
        photos = np.full(len(block), -1, dtype=np.int64)
        distances = np.full(len(block), self.radius + 1, dtype=np.int64)
        first_use = len(self._photo)
        if len(self._leaders):
            # The use's pHash near an earlier photo or one of its crops and mirrors ...
            self._take_closest(
                photos,
                distances,
                self._leaders.range_search(block[:, 0], self.radius),
                np.arange(len(block)),
                block,
                second,
                known,
                first_use,
            )
            # ... or a crop of the use near an earlier photo (the use has a border added).
            open_rows = np.flatnonzero(photos < 0)
            if len(open_rows):
                zoomed = block[open_rows][:, list(_ZOOMED_OUT)]
                found = self._leader_phashes.range_search(zoomed.reshape(-1), self.radius)
                self._take_closest(
                    photos,
                    distances,
                    found,
                    np.repeat(open_rows, len(_ZOOMED_OUT)),
                    block,
                    second,
                    known,
                    first_use,
                )
        new_leaders = self._resolve_in_block(block, second, known, photos, distances)
        for row in np.flatnonzero(photos >= 0).tolist():
            if self.unconfirmed.get(first_use + row, (-1,))[0] == photos[row]:
                del self.unconfirmed[first_use + row]  # it joined that photo after all
        self._hashes.extend(block)
        self._photo.extend(photos)
        if new_leaders:
            # Photo ids are handed out in order of ``new_leaders``: rows line up.
            self._leader_dhashes.extend(second[new_leaders])
            self._leader_dhash_known.extend(known[new_leaders])
            ids = np.asarray([photos[p] for p in new_leaders], dtype=np.int64)
            self._leaders.add(np.repeat(ids, HASHES_PER_USE), block[new_leaders].reshape(-1))
            self._leader_phashes.add(ids, block[new_leaders, 0])
        return photos

    def _confirmed(
        self,
        use: int,
        photo: int,
        distance: int,
        hashes: U64Array, second: U64Array | None,
        other: U64Array, other_second: U64Array | None,
    ) -> bool:  # fmt: skip
        """Whether ``use``'s match to ``photo`` found at ``distance`` bits stands: below
        ``confirm_from`` it does; at or above, the dHash of its pairing must be within
        ``confirm_dhash``. A refused match is noted in ``unconfirmed`` (the closest one)."""
        if distance < self.confirm_from:
            return True
        paired, dhash = pairing_distances(hashes, second, other, other_second)
        if paired < self.confirm_from or (dhash is not None and dhash <= self.confirm_dhash):
            return True
        noted = self.unconfirmed.get(use)
        if noted is None or paired < noted[1]:
            self.unconfirmed[use] = (photo, paired, dhash)
        return False

    def _take_closest(
        self,
        photos: I64Array,
        distances: I64Array,
        found: RangeHits,
        rows: npt.NDArray[Any],
        block: U64Array,
        second: U64Array,
        known: npt.NDArray[np.bool_],
        first_use: int,
    ) -> None:
        """Give rows still without a photo their closest confirmed hit (ties: the older
        photo); the closest unconfirmed one is noted in ``unconfirmed``.

        ``rows[i]`` is the use that query ``i`` was made for; a use may have several.
        """
        counts = np.diff(found.lims)
        hit_rows = np.repeat(rows, counts)
        hit_photos = found.keys
        hit_distances = found.distances
        if not len(hit_rows):
            return
        # Hits near the edge stand only when the dHash confirms them (few: checked one by one).
        keep = np.ones(len(hit_rows), dtype=bool)
        hashes, dhashes, dhash_known = (
            self._hashes.view(),
            self._leader_dhashes.view(),
            self._leader_dhash_known.view(),
        )
        for hit in np.flatnonzero(hit_distances >= self.confirm_from).tolist():
            row, photo = int(hit_rows[hit]), int(hit_photos[hit])
            if photos[row] >= 0:
                continue
            leader = self._leader_use[photo]
            keep[hit] = self._confirmed(
                first_use + row,
                photo,
                int(hit_distances[hit]),
                block[row], second[row] if known[row] else None,
                hashes[leader], dhashes[photo] if dhash_known[photo] else None,
            )  # fmt: skip
        hit_rows, hit_photos, hit_distances = hit_rows[keep], hit_photos[keep], hit_distances[keep]
        open_hit = photos[hit_rows] < 0
        hit_rows, hit_photos, hit_distances = (
            hit_rows[open_hit],
            hit_photos[open_hit],
            hit_distances[open_hit],
        )
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
        self,
        block: U64Array,
        second: U64Array,
        known: npt.NDArray[np.bool_],
        photos: I64Array,
        distances: I64Array,
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
        near: dict[int, dict[int, int]] = defaultdict(dict)
        for a, b, distance in zip(
            query_rows.tolist(), found.keys.tolist(), found.distances.tolist(), strict=True
        ):
            if a != b:
                pair = near[max(a, b)]
                pair[min(a, b)] = min(distance, pair.get(min(a, b), distance))
        started: list[int] = []
        leader_photo: dict[int, int] = {}
        first_use = len(self._photo)
        for row in open_rows.tolist():
            earlier = []
            for other, distance in near.get(row, {}).items():
                if other not in leader_photo:
                    continue
                if self._confirmed(
                    first_use + row,
                    leader_photo[other],
                    distance,
                    block[row], second[row] if known[row] else None,
                    block[other], second[other] if known[other] else None,
                ):  # fmt: skip
                    earlier.append((distance, leader_photo[other]))
            if earlier:
                photos[row], distances[row] = min(earlier)[::-1]
                continue
            photo = len(self._leader_use)
            self._leader_use.append(first_use + row)
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
