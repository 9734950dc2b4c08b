"""Maps from a key to many ad numbers that pickle as flat arrays and unpack on demand.

The engine keeps, per phone, photo and profile, the ads that hold it: a million ads make
about a million small lists or sets. Unpickled one object at a time they cost seconds
(most of what reading a snapshot took at 1M ads); packed as sorted keys, offsets and one
value array they read at the speed of a copy, and only the entries a linking touches are
turned back into Python lists or sets, when it first asks for them.
"""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Iterator, MutableMapping
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

_K = TypeVar("_K", int, str)
_C = TypeVar("_C", list[int], set[int])

# Separator of packed string keys (never inside a phone number or an ad id as stored; a
# key holding it is pickled as a plain list instead).
_SEPARATOR = "\x1f"


class _PackedMultimap(MutableMapping[_K, _C], Generic[_K, _C]):
    """A mutable map whose unchanged entries stay in packed arrays until read.

    Entries read or written live in an ordinary dict (``_changed``); entries of the packed
    base that were deleted are remembered in ``_removed``. Pickling packs everything again.
    """

    def __init__(self, *, create_missing: bool = False) -> None:
        # Reading a missing key creates an empty entry, as ``defaultdict`` does.
        self._create_missing = create_missing
        self._changed: dict[_K, _C] = {}
        self._removed: set[_K] = set()
        self._base_keys: list[_K] = []  # sorted
        self._base_offsets: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self._base_values: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._size = 0

    @abstractmethod
    def _make(self, values: list[int]) -> _C:
        """The container of an entry read from the packed base."""

    @abstractmethod
    def _pack_values(self, container: _C) -> list[int]:
        """An entry's values as packed."""

    def _base_position(self, key: object) -> int:
        """Where ``key`` sits in the packed base, or -1 (deleted keys are not there)."""
        keys = self._base_keys
        try:
            at: int = bisect_left(keys, key)  # type: ignore[call-overload]
        except TypeError:  # a key of another kind is not there
            return -1
        if at < len(keys) and keys[at] == key and key not in self._removed:
            return at
        return -1

    def __getitem__(self, key: _K) -> _C:
        found = self._changed.get(key)
        if found is not None:
            return found
        at = self._base_position(key)
        if at < 0:
            if not self._create_missing:
                raise KeyError(key)
            self._size += 1
            created = self._make([])
        else:
            start, stop = self._base_offsets[at : at + 2].tolist()
            created = self._make(self._base_values[start:stop].tolist())
        self._changed[key] = created
        return created

    def peek(self, key: _K) -> list[int]:
        """An entry's values for reading only, in order (empty when absent): unlike
        ``self[key]`` it neither creates the entry nor unpacks it into a container kept
        in memory."""
        found = self._changed.get(key)
        if found is not None:
            return self._pack_values(found)
        at = self._base_position(key)
        if at < 0:
            return []
        start, stop = self._base_offsets[at : at + 2].tolist()
        values: list[int] = self._base_values[start:stop].tolist()
        return values

    def pack(self) -> None:
        """Pack every entry into the flat arrays (as pickling does), releasing the
        containers: after a large batch, a million small lists cost ~100 MiB more than
        their packed form."""
        self.__setstate__(self.__getstate__())

    def get(self, key: _K, default: Any = None) -> Any:
        """The entry, or ``default`` (never creates one)."""
        if key in self:
            return self[key]
        return default

    def __contains__(self, key: object) -> bool:
        return key in self._changed or self._base_position(key) >= 0

    def __setitem__(self, key: _K, value: _C) -> None:
        if key not in self:
            self._size += 1
        self._changed[key] = value

    def __delitem__(self, key: _K) -> None:
        if key not in self:
            raise KeyError(key)
        self._size -= 1
        self._changed.pop(key, None)
        if self._base_position(key) >= 0:
            self._removed.add(key)

    def __iter__(self) -> Iterator[_K]:
        yield from list(self._changed)
        for key in self._base_keys:
            if key not in self._changed and key not in self._removed:
                yield key

    def __len__(self) -> int:
        return self._size

    def __getstate__(self) -> dict[str, Any]:
        base_keys = self._base_keys
        kept = [
            number
            for number, key in enumerate(base_keys)
            if key not in self._changed and key not in self._removed
        ]
        changed = list(self._changed.items())
        keys: list[Any] = [base_keys[number] for number in kept] + [key for key, _ in changed]
        base_starts = self._base_offsets[:-1][kept]
        parts = [self._pack_values(container) for _, container in changed]
        lengths = np.concatenate(
            [
                np.diff(self._base_offsets)[kept],
                np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)),
            ]
        )
        flat = np.concatenate(
            [
                self._base_values[_segments(base_starts, lengths[: len(kept)])],
                np.fromiter(
                    (value for part in parts for value in part),
                    dtype=np.int64,
                    count=int(lengths[len(kept) :].sum()),
                ),
            ]
        )
        order: list[int] = sorted(range(len(keys)), key=keys.__getitem__)
        starts = np.cumsum(lengths) - lengths
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(lengths[order], out=offsets[1:])
        keys = [keys[number] for number in order]
        packed_keys: object = keys
        if keys and isinstance(keys[0], str) and not any(_SEPARATOR in k for k in keys):
            packed_keys = _SEPARATOR.join(keys)
        elif keys and isinstance(keys[0], int):
            packed_keys = np.asarray(keys, dtype=np.int64)
        return {
            "create_missing": self._create_missing,
            "keys": packed_keys,
            "offsets": offsets,
            "values": flat[_segments(starts[order], lengths[order])],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        packed_keys = state["keys"]
        if isinstance(packed_keys, str):
            keys: list[Any] = packed_keys.split(_SEPARATOR)
        elif isinstance(packed_keys, np.ndarray):
            keys = packed_keys.tolist()
        else:
            keys = list(packed_keys)
        offsets = np.asarray(state["offsets"], dtype=np.int64)
        values = np.asarray(state["values"], dtype=np.int64)
        if len(offsets) != len(keys) + 1 or (len(keys) and offsets[-1] != len(values)):
            raise ValueError("packed map: keys, offsets and values do not agree")
        self._create_missing = bool(state["create_missing"])
        self._changed = {}
        self._removed = set()
        self._base_keys = keys
        self._base_offsets = offsets
        self._base_values = values
        self._size = len(keys)


class ListMultimap(_PackedMultimap[_K, list[int]]):
    """Key -> list of ints, in the order they were appended."""

    def _make(self, values: list[int]) -> list[int]:
        return values

    def _pack_values(self, container: list[int]) -> list[int]:
        return container


class SetMultimap(_PackedMultimap[_K, set[int]]):
    """Key -> set of ints."""

    def _make(self, values: list[int]) -> set[int]:
        return set(values)

    def _pack_values(self, container: set[int]) -> list[int]:
        return sorted(container)


def _segments(
    starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Positions of the runs ``starts[i] .. starts[i] + lengths[i]``, one after another."""
    total = int(lengths.sum())
    shifts = starts - (np.cumsum(lengths) - lengths)
    return np.repeat(shifts, lengths) + np.arange(total, dtype=np.int64)
