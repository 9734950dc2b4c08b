"""Boilerplate removal: sentences that many distinct owners (advertisers) use are dropped.

A sentence used by ``min_owners`` or more owners is an agency template or a site footer,
not a sign of one author; one advertiser reposting its own text stays one owner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import blake2b

import numpy as np
import numpy.typing as npt

from matching.text.normalise import sentence_key, split_sentences

U64 = npt.NDArray[np.uint64]

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
