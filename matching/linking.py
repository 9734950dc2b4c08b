"""Linking ads into candidate profiles, incrementally, with the evidence for every link."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

AdId = Hashable
ProfileId = Hashable
# A node of the linkage graph: ("ad", ad id) or ("profile", profile id).
Node = tuple[str, Hashable]


@dataclass(frozen=True, slots=True)
class AdPhones:
    """An ad to be linked and the E.164 phone numbers found in it."""

    ad_id: AdId
    phones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PhoneOwner:
    """A profile already holding a phone number, and one of its ads that shows it."""

    profile_id: ProfileId
    ad_id: AdId


@dataclass(frozen=True, slots=True)
class Evidence:
    """One reason two ads are linked, as data; the CLI and web only render it."""

    kind: str
    value: str
    other_ad_id: AdId

    def describe(self) -> str:
        """The reason in words."""
        if self.kind == "shared_phone":
            return f"shares phone {self.value} with ad {self.other_ad_id}"
        return f"{self.kind} {self.value} with ad {self.other_ad_id}"


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a new ad goes: an existing profile, or a new one named by ``new_profile``."""

    ad_id: AdId
    profile_id: ProfileId | None
    new_profile: int | None
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class ProfileMerge:
    """Two existing profiles joined because a new ad links both; the survivor keeps its id."""

    survivor: ProfileId
    absorbed: ProfileId
    reason: str


@dataclass(frozen=True, slots=True)
class LinkResult:
    """Assignments for every new ad and the merges they cause."""

    assignments: tuple[Assignment, ...]
    merges: tuple[ProfileMerge, ...]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Node, Node] = {}

    def find(self, node: Node) -> Node:
        self.parent.setdefault(node, node)
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: Node, b: Node) -> None:
        self.parent[self.find(a)] = self.find(b)


def link_by_shared_phone(
    new_ads: Sequence[AdPhones],
    known_phones: Mapping[str, PhoneOwner],
    profile_order: Iterable[ProfileId] = (),
) -> LinkResult:
    """Join new ads to profiles (existing or new) with which they share an E.164 phone.

    ``known_phones`` maps each phone already in a profile to that profile. When one new ad
    links several existing profiles they merge into the first in ``profile_order`` (the
    oldest), so a profile keeps its id when it grows.
    """
    order = {profile: rank for rank, profile in enumerate(profile_order)}
    forest = _UnionFind()
    evidence: dict[AdId, list[Evidence]] = {ad.ad_id: [] for ad in new_ads}
    first_new_ad_with: dict[str, AdId] = {}
    for ad in new_ads:
        forest.find(("ad", ad.ad_id))
        for phone in ad.phones:
            owner = known_phones.get(phone)
            if owner is not None:
                forest.union(("ad", ad.ad_id), ("profile", owner.profile_id))
                evidence[ad.ad_id].append(Evidence("shared_phone", phone, owner.ad_id))
            earlier = first_new_ad_with.setdefault(phone, ad.ad_id)
            if earlier != ad.ad_id:
                forest.union(("ad", ad.ad_id), ("ad", earlier))
                evidence[ad.ad_id].append(Evidence("shared_phone", phone, earlier))
                evidence[earlier].append(Evidence("shared_phone", phone, ad.ad_id))

    components: dict[Node, list[Node]] = {}
    for node in list(forest.parent):
        components.setdefault(forest.find(node), []).append(node)

    assignments: list[Assignment] = []
    merges: list[ProfileMerge] = []
    next_new = 0
    for members in components.values():
        profiles = sorted(
            (node[1] for node in members if node[0] == "profile"),
            key=lambda p: (order.get(p, len(order)), str(p)),
        )
        ads = [node[1] for node in members if node[0] == "ad"]
        target: ProfileId | None = profiles[0] if profiles else None
        new_key: int | None = None
        if target is None:
            new_key = next_new
            next_new += 1
        for absorbed in profiles[1:]:
            merges.append(
                ProfileMerge(
                    survivor=target,
                    absorbed=absorbed,
                    reason="new ads share phone numbers with both profiles: "
                    + "; ".join(
                        f"ad {ad_id} {e.describe()}" for ad_id in ads for e in evidence[ad_id]
                    ),
                )
            )
        for ad_id in ads:
            assignments.append(Assignment(ad_id, target, new_key, tuple(evidence[ad_id])))
    position = {ad.ad_id: index for index, ad in enumerate(new_ads)}
    assignments.sort(key=lambda a: position[a.ad_id])
    return LinkResult(tuple(assignments), tuple(merges))
