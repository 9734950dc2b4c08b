"""Linking ads into candidate profiles: evidence, hub rules, incremental and stable ids.

The design follows record linkage practice (Splink's blocking → comparisons → clustering)
with rules an analyst can read back:

* **Strong evidence** joins ads outright: a shared phone number, or a photo whose
  perceptual hash lies within ``image_radius`` of another ad's photo (or of its mirror
  image or centre crops).
* **Hubs are not identity.** A phone seen beside many different phones (a site's
  help-desk number) or a photo seen with many unrelated phone groups (a stock photo) is
  a *hub*: it is recorded and shown, but never links anything. This is the
  term-frequency idea of Fellegi–Sunter taken to its limit for values that identify no one.
* **Text is supporting evidence.** Near-identical distinctive text (boilerplate removed)
  joins a lone ad to a profile, but two profiles that already stand on their own are only
  joined by text when at least ``text_support`` independent ad pairs agree, so one
  coincidental edge cannot chain two large profiles together.

The engine is incremental: ``add`` finds what new ads touch, re-clusters only those
profiles, and keeps a profile's id when it grows (the largest previous part keeps it on a
merge or a split). Merges and splits come back as events with their reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np

from matching.images import DEFAULT_RADIUS, HammingIndex
from matching.records import AdFeatures
from matching.text import TEXT_MATCH_THRESHOLD, TextLSHIndex, text_similarity

# Images per ad that take part in matching; keys pack (ad, image position) in one int.
MAX_IMAGES_PER_AD = 16
_IMAGE_BITS = 4

_T = TypeVar("_T")

EvidenceKind = Literal["phone", "image", "text", "hub_phone", "hub_image"]
EventKind = Literal["created", "grown", "merged", "split"]


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Thresholds of the linkage rules; defaults measured on the labelled benchmark corpus."""

    image_radius: int = DEFAULT_RADIUS
    # A phone printed beside this many other phones is a hub (help desk, agency line).
    phone_hub_degree: int = 5
    # A photo seen with this many unrelated phone groups is a hub (stock photo).
    image_hub_groups: int = 3
    text_threshold: float = TEXT_MATCH_THRESHOLD
    # Independent text-linked ad pairs needed to join two profiles of 2+ ads each.
    text_support: int = 2
    # Evidence items kept per ad for the explanation.
    evidence_per_ad: int = 6


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason an ad sits in its profile, as data; ``describe`` puts it in words."""

    kind: EvidenceKind
    other_ad_id: str | None
    phone: str | None = None
    image: int | None = None
    other_image: int | None = None
    distance: int | None = None
    score: float | None = None
    count: int | None = None

    def describe(self) -> str:
        """The reason in one sentence."""
        if self.kind == "phone":
            others = f" and {self.count - 1} more" if self.count and self.count > 1 else ""
            return f"shares phone {self.phone} with ad {self.other_ad_id}{others} in this profile"
        if self.kind == "image":
            return (
                f"photo {_ordinal(self.image)} looks like photo {_ordinal(self.other_image)} "
                f"of ad {self.other_ad_id} (perceptual hash distance {self.distance} of 64)"
            )
        if self.kind == "text":
            return f"its distinctive text is {self.score:.0f}% similar to ad {self.other_ad_id}"
        if self.kind == "hub_phone":
            return (
                f"phone {self.phone} also appears beside {self.count} other numbers; "
                "treated as a shared number (help desk, agency), not as identity"
            )
        return (
            f"photo {_ordinal(self.image)} also appears with at least {self.count} unrelated "
            "phone groups; treated as a stock photo, not as identity"
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form, with the sentence under ``explanation``."""
        data: dict[str, object] = {"kind": self.kind}
        for name in ("other_ad_id", "phone", "image", "other_image", "distance", "score", "count"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data["explanation"] = self.describe()
        return data


@dataclass(frozen=True, slots=True)
class Membership:
    """An ad's place in a profile, with the evidence that put it there."""

    ad_id: str
    profile_id: int
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    """A profile created, grown, merged into another, or split off; with its reason."""

    kind: EventKind
    profile_id: int
    other_profile_id: int | None
    reason: str


@dataclass(slots=True)
class BatchResult:
    """What one ``add`` changed: memberships of new and moved ads, and profile events."""

    memberships: list[Membership] = field(default_factory=list)
    events: list[ProfileEvent] = field(default_factory=list)

    def count(self, kind: EventKind) -> int:
        """Number of events of one kind."""
        return sum(1 for e in self.events if e.kind == kind)


class MatchingEngine:
    """Holds the linked ads and their indexes; links new ads in batches."""

    def __init__(self, config: MatchConfig | None = None, *, first_profile_id: int = 1) -> None:
        self.config = config or MatchConfig()
        self._ads: list[AdFeatures] = []
        self._index_of: dict[str, int] = {}
        self._profile_of: list[int] = []
        self._members: dict[int, set[int]] = {}
        self._next_profile_id = first_profile_id
        self._ads_of_phone: dict[str, list[int]] = defaultdict(list)
        self._phone_neighbours: dict[str, set[str]] = defaultdict(set)
        self._hub_phones: set[str] = set()
        self._phone_group: _UnionFind[str] = _UnionFind()
        self._images = HammingIndex()
        self._text = TextLSHIndex()

    # --- state -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ads)

    def profile_of(self, ad_id: str) -> int:
        """The profile an ad belongs to."""
        return self._profile_of[self._index_of[ad_id]]

    def profiles(self) -> dict[int, list[str]]:
        """Every profile with its ad ids, in the order the ads were added."""
        return {
            pid: [self._ads[i].ad_id for i in sorted(members)]
            for pid, members in self._members.items()
        }

    def hub_phones(self) -> frozenset[str]:
        """Phones currently treated as hubs."""
        return frozenset(self._hub_phones)

    def load(self, ads: Sequence[AdFeatures], profile_of: Mapping[str, int]) -> None:
        """Restore already linked ads as they are stored, without re-linking them.

        Every ad must name its profile; ids above the largest become the next new ids.
        """
        start = len(self._ads)
        for ad in ads:
            if ad.ad_id not in profile_of:
                raise ValueError(f"ad {ad.ad_id} has no stored profile")
        self._register(ads)
        for offset, ad in enumerate(ads):
            index = start + offset
            profile_id = profile_of[ad.ad_id]
            self._profile_of[index] = profile_id
            self._members.setdefault(profile_id, set()).add(index)
            self._next_profile_id = max(self._next_profile_id, profile_id + 1)

    def add(self, ads: Sequence[AdFeatures]) -> BatchResult:
        """Link new ads: join existing profiles, create, merge or split as evidence says."""
        seen: set[str] = set()
        for ad in ads:
            if ad.ad_id in self._index_of or ad.ad_id in seen:
                raise ValueError(f"ad {ad.ad_id} is already linked")
            seen.add(ad.ad_id)
        if not ads:
            return BatchResult()
        start = len(self._ads)
        new_hubs = self._register(ads)
        new = range(start, len(self._ads))
        touched = set(new)
        # Ads reachable from the new ones, and every profile a new hub runs through.
        reach = self._neighbourhood(list(new))
        touched.update(reach)
        for phone in new_hubs:
            touched.update(self._ads_of_phone[phone])
        affected_profiles = {self._profile_of[i] for i in touched if self._profile_of[i] >= 0}
        scope = set(touched)
        for profile_id in affected_profiles:
            scope.update(self._members[profile_id])
        hub_reasons = [
            f"phone {p} now appears beside {len(self._phone_neighbours[p])} other numbers "
            "and no longer counts as identity"
            for p in sorted(new_hubs)
        ]
        return self._recluster(sorted(scope), set(new), hub_reasons)

    # --- registration and hubs ---------------------------------------------------

    def _register(self, ads: Sequence[AdFeatures]) -> set[str]:
        """Add ads to the value maps and indexes; return phones that just became hubs."""
        start = len(self._ads)
        keys: list[int] = []
        hashes: list[int] = []
        before = set(self._hub_phones)
        for offset, ad in enumerate(ads):
            index = start + offset
            self._ads.append(ad)
            self._index_of[ad.ad_id] = index
            self._profile_of.append(-1)
            for phone in ad.phones:
                self._ads_of_phone[phone].append(index)
                neighbours = self._phone_neighbours[phone]
                for other in ad.phones:
                    if other != phone and len(neighbours) <= self.config.phone_hub_degree:
                        neighbours.add(other)
                if len(neighbours) >= self.config.phone_hub_degree:
                    self._hub_phones.add(phone)
            for position, image in enumerate(ad.images[:MAX_IMAGES_PER_AD]):
                key = index << _IMAGE_BITS | position
                for value in (image.phash, *image.variants):
                    keys.append(key)
                    hashes.append(value)
            if ad.text_signature:
                self._text.add(index, ad.text_signature)
        if keys:
            self._images.add(np.asarray(keys, dtype=np.int64), np.asarray(hashes, dtype=np.uint64))
        new_hubs = self._hub_phones - before
        if new_hubs:
            self._rebuild_phone_groups()
        else:
            for ad in ads:
                self._group_phones(ad.phones)
        return new_hubs

    def _group_phones(self, phones: Iterable[str]) -> None:
        own = [p for p in phones if p not in self._hub_phones]
        for phone in own:
            self._phone_group.find(phone)
        for other in own[1:]:
            self._phone_group.union(own[0], other)

    def _rebuild_phone_groups(self) -> None:
        self._phone_group = _UnionFind()
        for ad in self._ads:
            self._group_phones(ad.phones)

    def _own_phones(self, index: int) -> list[str]:
        return [p for p in self._ads[index].phones if p not in self._hub_phones]

    # --- candidate evidence ------------------------------------------------------

    def _image_neighbours(self, indexes: Sequence[int]) -> dict[int, dict[int, int]]:
        """For each image key of the given ads: other ads' image keys within the radius."""
        keys: list[int] = []
        queries: list[int] = []
        for index in indexes:
            for position, image in enumerate(self._ads[index].images[:MAX_IMAGES_PER_AD]):
                keys.append(index << _IMAGE_BITS | position)
                queries.append(image.phash)
        found: dict[int, dict[int, int]] = {}
        if not keys:
            return found
        results = self._images.query_many(
            np.asarray(queries, dtype=np.uint64), self.config.image_radius
        )
        for key, hits in zip(keys, results, strict=True):
            own_ad = key >> _IMAGE_BITS
            best: dict[int, int] = {}
            for other_key, distance in hits:
                if other_key >> _IMAGE_BITS == own_ad:
                    continue
                if distance < best.get(other_key, 65):
                    best[other_key] = distance
            found[key] = best
        return found

    def _neighbourhood(self, indexes: Sequence[int]) -> set[int]:
        """Ads that share a phone, a close photo or a text bucket with the given ads."""
        reach: set[int] = set()
        for index in indexes:
            for phone in self._ads[index].phones:
                if phone not in self._hub_phones:
                    reach.update(self._ads_of_phone[phone])
            signature = self._ads[index].text_signature
            if signature:
                reach.update(self._text.query(signature))
        for hits in self._image_neighbours(indexes).values():
            reach.update(key >> _IMAGE_BITS for key in hits)
        return reach

    def _image_hub_groups(self, key: int, hits: Mapping[int, int]) -> int:
        """Distinct phone groups among the ads showing this photo (stops at the hub level)."""
        groups: set[str] = set()
        for index in {key >> _IMAGE_BITS, *(k >> _IMAGE_BITS for k in hits)}:
            for phone in self._own_phones(index):
                groups.add(self._phone_group.find(phone))
            if len(groups) >= self.config.image_hub_groups:
                break
        return len(groups)

    # --- clustering --------------------------------------------------------------

    def _recluster(self, scope: list[int], new: set[int], hub_reasons: list[str]) -> BatchResult:
        config = self.config
        in_scope = set(scope)
        forest: _UnionFind[int] = _UnionFind()
        for index in scope:
            forest.find(index)
        evidence: dict[int, list[Evidence]] = defaultdict(list)

        # Phones that are not hubs join their ads outright.
        first_with: dict[str, int] = {}
        phone_count: Counter[str] = Counter()
        for index in scope:
            for phone in dict.fromkeys(self._ads[index].phones):
                if phone in self._hub_phones:
                    continue
                phone_count[phone] += 1
                if phone in first_with:
                    forest.union(first_with[phone], index)
                else:
                    first_with[phone] = index

        # Close photos join outright unless the photo is a hub.
        image_hits = self._image_neighbours(scope)
        hub_images: dict[int, int] = {}
        for key, hits in image_hits.items():
            groups = self._image_hub_groups(key, hits)
            if groups >= config.image_hub_groups:
                hub_images[key] = groups
        image_edges: list[tuple[int, int, int]] = []
        for key, hits in image_hits.items():
            if key in hub_images:
                continue
            for other_key, distance in hits.items():
                other = other_key >> _IMAGE_BITS
                if other not in in_scope or other_key in hub_images:
                    continue
                forest.union(key >> _IMAGE_BITS, other)
                image_edges.append((key, other_key, distance))

        # Text: verify candidate pairs that strong evidence has not already joined.
        text_edges = self._text_edges(scope, in_scope, forest)
        self._join_by_text(forest, text_edges)

        # Evidence per ad, from the edges inside its final cluster.
        for index in scope:
            ad = self._ads[index]
            for phone in dict.fromkeys(ad.phones):
                if phone in self._hub_phones:
                    evidence[index].append(
                        Evidence(
                            "hub_phone",
                            None,
                            phone=phone,
                            count=len(self._phone_neighbours[phone]),
                        )
                    )
                elif phone_count[phone] > 1:
                    other = next(
                        i for i in self._ads_of_phone[phone] if i != index and i in in_scope
                    )
                    evidence[index].append(
                        Evidence(
                            "phone",
                            self._ads[other].ad_id,
                            phone=phone,
                            count=phone_count[phone] - 1,
                        )
                    )
        for key, other_key, distance in sorted(image_edges, key=lambda e: e[2]):
            a, b = key >> _IMAGE_BITS, other_key >> _IMAGE_BITS
            if forest.find(a) != forest.find(b):
                continue
            evidence[a].append(
                Evidence(
                    "image",
                    self._ads[b].ad_id,
                    image=key & (MAX_IMAGES_PER_AD - 1),
                    other_image=other_key & (MAX_IMAGES_PER_AD - 1),
                    distance=distance,
                )
            )
        for key, groups in hub_images.items():
            evidence[key >> _IMAGE_BITS].append(
                Evidence("hub_image", None, image=key & (MAX_IMAGES_PER_AD - 1), count=groups)
            )
        for a, b, score in text_edges:
            if forest.find(a) == forest.find(b):
                evidence[a].append(Evidence("text", self._ads[b].ad_id, score=round(score, 1)))
                evidence[b].append(Evidence("text", self._ads[a].ad_id, score=round(score, 1)))

        clusters: dict[int, list[int]] = defaultdict(list)
        for index in scope:
            clusters[forest.find(index)].append(index)
        return self._assign_ids(list(clusters.values()), new, evidence, hub_reasons)

    def _text_edges(
        self, scope: list[int], in_scope: set[int], forest: _UnionFind[int]
    ) -> list[tuple[int, int, float]]:
        edges: list[tuple[int, int, float]] = []
        checked: set[tuple[int, int]] = set()
        for index in scope:
            signature = self._ads[index].text_signature
            if not signature:
                continue
            text = self._ads[index].distinctive_text
            for other in self._text.query(signature):
                if other == index or other not in in_scope:
                    continue
                pair = (index, other) if index < other else (other, index)
                if pair in checked or forest.find(index) == forest.find(other):
                    continue
                checked.add(pair)
                score = text_similarity(
                    text,
                    self._ads[other].distinctive_text,
                    score_cutoff=self.config.text_threshold,
                )
                if score >= self.config.text_threshold:
                    edges.append((pair[0], pair[1], score))
        return edges

    def _join_by_text(self, forest: _UnionFind[int], edges: list[tuple[int, int, float]]) -> None:
        # Support counted between the components strong evidence built; a lone ad
        # needs one edge, two established groups need several independent ones.
        size: Counter[int] = Counter()
        for index in list(forest.parent):
            size[forest.find(index)] += 1
        support: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)
        for a, b, _ in edges:
            ra, rb = forest.find(a), forest.find(b)
            if ra != rb:
                support[(min(ra, rb), max(ra, rb))].add((a, b))
        ranked = sorted(support.items(), key=lambda item: -len(item[1]))
        for (ra, rb), pairs in ranked:
            lone = min(size[ra], size[rb]) == 1
            independent = min(len({a for a, _ in pairs}), len({b for _, b in pairs}))
            if lone or independent >= self.config.text_support:
                forest.union(ra, rb)

    # --- stable profile ids ------------------------------------------------------

    def _assign_ids(
        self,
        clusters: list[list[int]],
        new: set[int],
        evidence: Mapping[int, list[Evidence]],
        hub_reasons: list[str],
    ) -> BatchResult:
        result = BatchResult()
        # Each previous profile's heir is the cluster holding most of its ads.
        parts: dict[int, Counter[int]] = defaultdict(Counter)
        for number, cluster in enumerate(clusters):
            for index in cluster:
                previous = self._profile_of[index]
                if previous >= 0:
                    parts[previous][number] += 1
        heir_of = {
            pid: min(counter, key=lambda n: (-counter[n], n)) for pid, counter in parts.items()
        }
        inheritors: dict[int, list[int]] = defaultdict(list)
        for pid, number in heir_of.items():
            inheritors[number].append(pid)
        split_reason = "; ".join(hub_reasons) or "the evidence no longer connects these ads"

        for number in sorted(range(len(clusters)), key=lambda n: min(clusters[n])):
            cluster = clusters[number]
            candidates = inheritors.get(number, [])
            if candidates:
                keep = min(candidates, key=lambda pid: (-parts[pid][number], pid))
                for absorbed in sorted(set(candidates) - {keep}):
                    result.events.append(
                        ProfileEvent(
                            "merged",
                            keep,
                            absorbed,
                            f"profile {absorbed} merged into {keep}: "
                            + self._link_reason(cluster, absorbed, keep, evidence),
                        )
                    )
                    self._members.pop(absorbed, None)
                if any(i in new for i in cluster):
                    result.events.append(
                        ProfileEvent("grown", keep, None, "new ads linked by shared evidence")
                    )
            else:
                keep = self._next_profile_id
                self._next_profile_id += 1
                origins = sorted({self._profile_of[i] for i in cluster if self._profile_of[i] >= 0})
                for origin in origins:
                    result.events.append(
                        ProfileEvent(
                            "split",
                            keep,
                            origin,
                            f"split from profile {origin}: {split_reason}",
                        )
                    )
                if not origins:
                    result.events.append(ProfileEvent("created", keep, None, "new ads"))
            moved = [i for i in cluster if i in new or self._profile_of[i] != keep]
            for pid in {self._profile_of[i] for i in cluster if self._profile_of[i] >= 0}:
                if pid != keep and pid in self._members:
                    self._members[pid].difference_update(cluster)
                    if not self._members[pid]:
                        del self._members[pid]
            self._members.setdefault(keep, set()).update(cluster)
            for index in cluster:
                self._profile_of[index] = keep
            for index in sorted(moved):
                result.memberships.append(
                    Membership(
                        self._ads[index].ad_id,
                        keep,
                        tuple(evidence.get(index, [])[: self.config.evidence_per_ad]),
                    )
                )
        return result

    def _link_reason(
        self,
        cluster: list[int],
        absorbed: int,
        keep: int,
        evidence: Mapping[int, list[Evidence]],
    ) -> str:
        for index in cluster:
            if self._profile_of[index] != absorbed:
                continue
            for item in evidence.get(index, []):
                if item.other_ad_id is None:
                    continue
                other = self._index_of[item.other_ad_id]
                if self._profile_of[other] != absorbed:
                    return f"ad {self._ads[index].ad_id} {item.describe()}"
        return "new ads connect both"


class _UnionFind(Generic[_T]):
    """Disjoint sets over hashable items, with path halving and union by size."""

    def __init__(self) -> None:
        self.parent: dict[_T, _T] = {}
        self._size: dict[_T, int] = {}

    def find(self, item: _T) -> _T:
        """The representative of ``item``'s set (a new singleton if unseen)."""
        parent = self.parent
        if item not in parent:
            parent[item] = item
            self._size[item] = 1
            return item
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: _T, b: _T) -> None:
        """Join the sets of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self._size[ra] += self._size[rb]


def _ordinal(position: int | None) -> str:
    return "?" if position is None else str(position + 1)
