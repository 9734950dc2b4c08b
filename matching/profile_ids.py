"""Stable profile ids: which earlier profile a re-clustered group of ads inherits its id from.

An analyst cites profile ids in case notes, so an id must live on while its profile does:
when re-clustering turns earlier profiles into new clusters, each earlier profile's heir is
the cluster that holds most of its ads, and a cluster that is heir to several earlier
profiles keeps the id of the one it holds most of (the others are merged into it). A
cluster that is nobody's heir gets a new id: it was split off or is new.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# Previous profile of an ad that had none (it is new in this batch).
NO_PROFILE = -1


@dataclass(frozen=True, slots=True)
class Inheritance:
    """What one cluster inherits: the id it keeps, or ``None`` for a new id."""

    keep: int | None
    # Earlier profiles merged into ``keep``, in id order.
    absorbed: tuple[int, ...]
    # The earlier profiles its ads came from (for a new id: the profiles it split from).
    origins: tuple[int, ...]


def inherit_ids(
    previous: Sequence[Sequence[int]], taken: Collection[int] = ()
) -> list[Inheritance]:
    """For each cluster, given as its ads' previous profile ids (``NO_PROFILE`` for none),
    the id it keeps. Ids in ``taken`` belong elsewhere and are never inherited; ties go to
    the earlier cluster and the lower id, so the outcome does not depend on set order."""
    parts: dict[int, Counter[int]] = defaultdict(Counter)
    for number, ids in enumerate(previous):
        for pid in ids:
            if pid != NO_PROFILE and pid not in taken:
                parts[pid][number] += 1
    inheritors: dict[int, list[int]] = defaultdict(list)
    for pid, counter in parts.items():
        inheritors[min(counter, key=lambda n: (-counter[n], n))].append(pid)
    outcome = []
    for number, ids in enumerate(previous):
        origins = tuple(sorted({pid for pid in ids if pid != NO_PROFILE}))
        candidates = inheritors.get(number)
        if not candidates:
            outcome.append(Inheritance(None, (), origins))
            continue
        keep = min(candidates, key=lambda pid: (-parts[pid][number], pid))
        absorbed = tuple(sorted(set(candidates) - {keep}))
        outcome.append(Inheritance(keep, absorbed, origins))
    return outcome
