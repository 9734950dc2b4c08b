"""Linking ads into candidate profiles: evidence, hub rules, incremental and stable ids.

The design follows record linkage practice (Splink's blocking → comparisons → clustering)
with rules an analyst can read back:

* **Strong evidence** joins ads outright: a shared phone number, or the same photo
  (``matching.photos``: a use within ``image_radius`` bits of the photo's first use, its
  mirror image or crops, either way round).
* **Hubs are not identity.** A phone seen beside many different phones (a site's
  help-desk number) or a photo seen with many unrelated phone groups (a stock photo) is
  a *hub*: it is recorded and shown, but never links anything. This is the
  term-frequency idea of Fellegi–Sunter taken to its limit for values that identify no one.
* **Text is supporting evidence.** Near-identical distinctive text (boilerplate removed)
  joins a lone ad to a profile, but two profiles that already stand on their own are only
  joined by text when at least ``text_support`` independent ad pairs agree, so one
  coincidental edge cannot chain two large profiles together.

The engine is incremental: ``add`` finds what new ads touch (shared phones and photos,
and text that verifies), re-clusters only those profiles, and keeps a profile's id when it
grows (the largest previous part keeps it on a merge or a split). Merges and splits come
back as events with their reason. Strong evidence is clustered as a graph with scipy's
connected components; a million ads link in a few minutes (``benchmarks/bench_scale.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from matching.evidence import BatchResult, Evidence, Membership, ProfileEvent
from matching.features import FEATURES_REVISION
from matching.images import DEFAULT_RADIUS
from matching.multimap import ListMultimap, SetMultimap
from matching.pair_scores import PairScoreCache
from matching.phones import PHONE_HUB_DEGREE
from matching.photos import (
    CONFIRM_DHASH,
    CONFIRM_FROM,
    GrowableArray,
    PhotoGroups,
    dhash_rows,
    fingerprint_rows,
)
from matching.profile_ids import inherit_ids
from matching.records import AdFeatures, ImageFingerprint
from matching.text import (
    NUM_PERM,
    TEXT_MATCH_THRESHOLD,
    TextLSHIndex,
    narrow_signatures,
    signatures_agree,
    text_similarities,
    widen_signatures,
)

I64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Candidate text pairs scored per call (bounds the lists of texts held at once).
_VERIFY_BLOCK = 1 << 16
# Images per ad that take part in matching.
MAX_IMAGES_PER_AD = 16

_T = TypeVar("_T")


# Bumped whenever a linkage rule changes meaning; with the thresholds it makes the version
# recorded on every membership (``MatchConfig.version``).
RULES_REVISION: Final = "2026-11-30"


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Thresholds of the linkage rules; defaults measured on the labelled benchmark corpus."""

    image_radius: int = DEFAULT_RADIUS
    # A photo match at this many pHash bits or more links only when the photos' dHashes
    # are within ``photo_confirm_dhash`` bits too (``matching.photos``).
    photo_confirm_from: int = CONFIRM_FROM
    photo_confirm_dhash: int = CONFIRM_DHASH
    # A phone printed beside this many other phones is a hub (help desk, agency line).
    phone_hub_degree: int = PHONE_HUB_DEGREE
    # A photo seen with this many unrelated phone groups is a hub (stock photo).
    image_hub_groups: int = 3
    text_threshold: float = TEXT_MATCH_THRESHOLD
    # Candidate text pairs whose MinHash signatures agree in fewer slots than this share
    # are not verified. On the 20k-ad corpus every pair that passed verification agreed in
    # at least 0.49 while 95 % of the LSH candidates agreed in less; at 100k ads, 0.4
    # against 0.3 kept 99.4 % of the verified edges between profiles in a quarter the time.
    text_prefilter: float = 0.4
    # Independent text-linked ad pairs needed to join two profiles of 2+ ads each.
    text_support: int = 2
    # A text pair is evidence only when both texts are mostly the advertisers' own (at
    # least this share of their characters distinctive, not template), or when they agree
    # almost verbatim. What boilerplate removal leaves of a templated ad is one slot-filled
    # sentence, and two such leftovers score over the threshold by chance: in a 300k-ad
    # store linked as crawls link, leftovers below half joined 480 profiles of several
    # operators (pairwise precision 0.925); counting them for nothing left 50 (0.998) at
    # the same recall. (On held-out data a score just over the threshold on an agency
    # template's leftovers had joined a lone ad to another operator.)
    text_min_share: float = 0.5
    text_verbatim_score: float = 95.0
    # Evidence items kept per ad for the explanation.
    evidence_per_ad: int = 6

    @property
    def version(self) -> str:
        """The linkage model that makes a membership: the rules' revision and a digest of
        these thresholds and of the features' revision (how texts are split and signed),
        as ``2026-11-30+3f2a9c1e``; equal versions link alike."""
        values = json.dumps(
            {"features": FEATURES_REVISION, **dataclasses.asdict(self)}, sort_keys=True
        )
        return f"{RULES_REVISION}+{hashlib.sha256(values.encode()).hexdigest()[:8]}"


class MatchingEngine:
    """Holds the linked ads and their indexes; links new ads in batches.

    Per ad it keeps only what later linking needs (id, phones, distinctive text, text
    signature, photo uses), in columns, so a store of a million ads fits in memory.
    """

    def __init__(self, config: MatchConfig | None = None, *, first_profile_id: int = 1) -> None:
        self.config = config or MatchConfig()
        self._ad_ids: list[str] = []
        self._index_of: dict[str, int] = {}
        self._phones: list[tuple[str, ...]] = []
        self._texts: list[str] = []
        self._shares = GrowableArray((0,), np.float32)
        # MinHash slots kept to their low 16 bits (half the memory; a chance equality of
        # 2^-16 per slot changes neither banding nor the similarity estimate measurably).
        self._signatures = GrowableArray((0, NUM_PERM), np.uint16)
        self._signed = GrowableArray((0,), np.bool_)
        self._image_start = GrowableArray((0,), np.int64)
        self._image_start.extend(np.zeros(1, dtype=np.int64))
        self._profile_of: list[int] = []
        self._members: SetMultimap[int] = SetMultimap()
        self._next_profile_id = first_profile_id
        self._ads_of_phone: ListMultimap[str] = ListMultimap(create_missing=True)
        self._phone_neighbours: dict[str, set[str]] = {}
        self._hub_phones: set[str] = set()
        self._phone_group: _UnionFind[str] = _UnionFind()
        # A new hub phone splits groups: they are rebuilt once, when next read, rather than
        # after every part of a large import that found one (8 rebuilds, 12 s at 1M ads).
        self._phone_groups_stale = False
        self._photos = PhotoGroups(
            self.config.image_radius,
            confirm_from=self.config.photo_confirm_from,
            confirm_dhash=self.config.photo_confirm_dhash,
        )
        self._ads_of_photo: ListMultimap[int] = ListMultimap(create_missing=True)
        # Photo -> phone groups it was seen with when it became a hub.
        self._hub_photos: dict[int, int] = {}
        self._text = TextLSHIndex()
        self._pair_scores = PairScoreCache()
        # Profile ids another engine holds during ``relink_all``: not to be inherited here.
        self._taken_ids: frozenset[int] = frozenset()

    # --- state -------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        # The id lookup is rebuilt from the ids: faster than unpickling a dict of them.
        return {name: value for name, value in self.__dict__.items() if name != "_index_of"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_phone_groups_stale", False)  # snapshots from before the flag
        self.__dict__.update(state)
        self._index_of = dict(zip(self._ad_ids, range(len(self._ad_ids)), strict=True))

    def __len__(self) -> int:
        return len(self._ad_ids)

    def profile_of(self, ad_id: str) -> int:
        """The profile an ad belongs to."""
        return self._profile_of[self._index_of[ad_id]]

    def profiles(self) -> dict[int, list[str]]:
        """Every profile with its ad ids, in the order the ads were added."""
        return {
            pid: [self._ad_ids[i] for i in sorted(members)]
            for pid, members in self._members.items()
        }

    def hub_phones(self) -> frozenset[str]:
        """Phones currently treated as hubs."""
        return frozenset(self._hub_phones)

    def restore_memberships(self, profile_of: Mapping[str, int]) -> None:
        """Put ads already held into the profiles given (replaying a stored linking that
        moved them), without re-linking anything."""
        for ad_id, profile_id in profile_of.items():
            index = self._index_of[ad_id]
            previous = self._profile_of[index]
            if previous == profile_id:
                continue
            members = self._members.get(previous)
            if members is not None:
                members.discard(index)
                if not members:
                    del self._members[previous]
            self._members.setdefault(profile_id, set()).add(index)
            self._profile_of[index] = profile_id
            self._next_profile_id = max(self._next_profile_id, profile_id + 1)

    def skip_profile_ids_below(self, first_free: int) -> None:
        """Give new profiles ids from ``first_free`` on at the least (ids taken elsewhere
        since this engine was made, by another scope, are not handed out again)."""
        self._next_profile_id = max(self._next_profile_id, first_free)

    def load(self, ads: Sequence[AdFeatures], profile_of: Mapping[str, int]) -> None:
        """Restore already linked ads as they are stored, without re-linking them.

        Every ad must name its profile; ids above the largest become the next new ids.
        """
        start = len(self._ad_ids)
        for ad in ads:
            if ad.ad_id not in profile_of:
                raise ValueError(f"ad {ad.ad_id} has no stored profile")
        _, shown = self._register(ads)
        self._mark_hub_photos(shown)
        for offset, ad in enumerate(ads):
            index = start + offset
            profile_id = profile_of[ad.ad_id]
            self._profile_of[index] = profile_id
            self._members.setdefault(profile_id, set()).add(index)
            self._next_profile_id = max(self._next_profile_id, profile_id + 1)

    def add(self, ads: Sequence[AdFeatures]) -> BatchResult:
        """Link new ads: join existing profiles, create, merge or split as evidence says.

        Nothing changes when an ad is already linked or appears twice (``ValueError``).
        """
        return self.add_parts([ads])

    def relink_all(self, reason: str, *, taken_ids: Iterable[int] = ()) -> BatchResult:
        """Re-cluster every ad held from scratch, keeping profile ids where profiles live on.

        For when what may be linked changes (cases combined or separated, ads deleted):
        every ad's membership comes back with fresh evidence; profiles that join are
        merged and parts that no longer connect are split off, with ``reason`` given for
        the splits. Ids in ``taken_ids`` are used by another scope and are not inherited.
        """
        self._taken_ids = frozenset(taken_ids)
        try:
            everything = list(range(len(self._ad_ids)))
            return self._recluster(everything, set(), [reason], report_all=True, keep_scores=False)
        finally:
            self._taken_ids = frozenset()

    def add_parts(self, parts: Iterable[Sequence[AdFeatures]]) -> BatchResult:
        """Link one batch of new ads that arrives in parts (a large export read in chunks).

        The profiles equal those of ``add`` of all parts at once, but only one part is held
        at a time: the engine keeps just what linking needs. (Which earlier copy of a photo
        an explanation cites can depend on where the parts split.) A part holding an ad already
        linked or seen is refused with ``ValueError`` before any of it is taken; the parts
        taken before it are linked first, so nothing already read is lost.
        """
        start = len(self._ad_ids)
        new_hub_phones: set[str] = set()
        shown: set[int] = set()
        refused: ValueError | None = None
        for part in parts:
            seen: set[str] = set()
            for ad in part:
                if ad.ad_id in self._index_of or ad.ad_id in seen:
                    refused = ValueError(f"ad {ad.ad_id} is already linked")
                    break
                seen.add(ad.ad_id)
            if refused:
                break
            if part:
                hub_phones, photos = self._register(part)
                new_hub_phones |= hub_phones
                shown |= photos
            del part  # hold no input while the next part is read, nor while linking
        large = not self._keeps_scores(len(self._ad_ids) - start)
        if large:
            # A first build or a large import unpacked an entry per phone and photo;
            # linking only reads them, so they go back to the flat arrays first.
            self._ads_of_phone.pack()
            self._ads_of_photo.pack()
        result = self._link_new(start, new_hub_phones, self._mark_hub_photos(shown))
        if large:
            self._members.pack()
        if refused:
            raise refused
        return result

    def _link_new(
        self, start: int, new_hub_phones: set[str], new_hub_photos: set[int]
    ) -> BatchResult:
        """Re-cluster what the ads registered from ``start`` on touch."""
        if start == len(self._ad_ids):
            return BatchResult()
        new = range(start, len(self._ad_ids))
        touched = set(new)
        keep_scores = self._keeps_scores(len(new))
        touched.update(self._reach_into_old(new, start, keep_scores=keep_scores))
        for phone in new_hub_phones:
            touched.update(self._ads_of_phone.peek(phone))
        for photo in new_hub_photos:
            touched.update(self._ads_of_photo.peek(photo))
        affected_profiles = {self._profile_of[i] for i in touched if self._profile_of[i] >= 0}
        scope = touched
        for profile_id in affected_profiles:
            scope.update(self._members.peek(profile_id))
        ordered = sorted(scope)
        del touched, scope, affected_profiles  # not held while a million ads re-cluster
        hub_reasons = [
            f"phone {p} now appears beside {len(self._phone_neighbours.get(p, ()))} other numbers "
            "and no longer counts as identity"
            for p in sorted(new_hub_phones)
        ] + [
            f"a photo first posted in ad {self._ad_ids[self._ad_of_use(self._photos.leader_of(p))]}"
            f" now appears with {self._hub_photos[p]} unrelated phone groups and no longer "
            "counts as identity"
            for p in sorted(new_hub_photos)
        ]
        return self._recluster(ordered, set(new), hub_reasons, keep_scores=keep_scores)

    # --- registration and hubs ---------------------------------------------------

    def _register(self, ads: Sequence[AdFeatures]) -> tuple[set[str], set[int]]:
        """Add ads to the columns and indexes; return phones that became hubs and the
        photos the ads show (hub photos are judged once all parts are in)."""
        start = len(self._ad_ids)
        hub_degree = self.config.phone_hub_degree
        before = set(self._hub_phones)
        images: list[ImageFingerprint] = []
        ends: list[int] = []
        first_use = len(self._photos)
        for offset, ad in enumerate(ads):
            index = start + offset
            self._ad_ids.append(ad.ad_id)
            self._index_of[ad.ad_id] = index
            # One string per distinct number, however many ads print it.
            phones = tuple(map(sys.intern, ad.phones))
            self._phones.append(phones)
            self._texts.append(ad.distinctive_text)
            self._profile_of.append(-1)
            for phone in phones:
                self._ads_of_phone[phone].append(index)
                if len(phones) < 2:
                    continue  # most phones stand alone: no set for them
                neighbours = self._phone_neighbours.setdefault(phone, set())
                for other in phones:
                    if other != phone and len(neighbours) <= hub_degree:
                        neighbours.add(other)
                if len(neighbours) >= hub_degree:
                    self._hub_phones.add(phone)
            images.extend(ad.images[:MAX_IMAGES_PER_AD])
            ends.append(first_use + len(images))
        self._image_start.extend(np.asarray(ends, dtype=np.int64))
        self._shares.extend(np.asarray([ad.distinctive_share for ad in ads], dtype=np.float32))
        signatures, signed = narrow_signatures([ad.text_signature for ad in ads])
        self._signatures.extend(signatures)
        self._signed.extend(signed)
        self._text.add_many(
            np.arange(start, start + len(ads)),
            self._signature_rows(np.arange(start, start + len(ads))),
        )

        new_hubs = self._hub_phones - before
        if new_hubs:
            self._phone_groups_stale = True
        elif not self._phone_groups_stale:
            for phones in self._phones[start:]:
                self._group_phones(phones)

        touched_photos: set[int] = set()
        if images:
            photos = self._photos.add(fingerprint_rows(images), dhash_rows(images)).tolist()
            owners = np.repeat(
                np.arange(start, start + len(ads)), np.diff(np.asarray([first_use, *ends]))
            ).tolist()
            for photo, index in zip(photos, owners, strict=True):
                uses = self._ads_of_photo[photo]
                if not uses or uses[-1] != index:
                    uses.append(index)
                touched_photos.add(photo)
        return new_hubs, touched_photos

    def _mark_hub_photos(self, photos: Iterable[int]) -> set[int]:
        """Photos among these now seen with enough phone groups to be hubs (they stay so)."""
        new_hub_photos: set[int] = set()
        for photo in photos:
            if photo in self._hub_photos:
                continue
            groups = self._photo_groups(photo)
            if groups >= self.config.image_hub_groups:
                self._hub_photos[photo] = groups
                new_hub_photos.add(photo)
        return new_hub_photos

    def _group_phones(self, phones: Iterable[str]) -> None:
        own = [p for p in phones if p not in self._hub_phones]
        for phone in own:
            self._phone_group.find(phone)
        for other in own[1:]:
            self._phone_group.union(own[0], other)

    def _rebuild_phone_groups(self) -> None:
        self._phone_group = _UnionFind()
        for phones in self._phones:
            self._group_phones(phones)
        self._phone_groups_stale = False

    def _own_phones(self, index: int) -> list[str]:
        return [p for p in self._phones[index] if p not in self._hub_phones]

    def _photo_groups(self, photo: int) -> int:
        """Distinct phone groups among the ads showing a photo (stops at the hub level)."""
        if self._phone_groups_stale:
            self._rebuild_phone_groups()
        groups: set[str] = set()
        for index in self._ads_of_photo.peek(photo):
            for phone in self._own_phones(index):
                groups.add(self._phone_group.find(phone))
            if len(groups) >= self.config.image_hub_groups:
                break
        return len(groups)

    def _signature_rows(self, ads: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
        """Stored signatures of the given ads as the LSH code takes them (unsigned: empty)."""
        return widen_signatures(self._signatures.view()[ads], self._signed.view()[ads])

    def _ad_of_use(self, use: int) -> int:
        return int(np.searchsorted(self._image_start.view(), use, side="right")) - 1

    def _reach_into_old(self, new: range, start: int, *, keep_scores: bool) -> set[int]:
        """Earlier ads that share a phone, a photo or a text bucket with the new ones."""
        reach: set[int] = set()
        if not start:
            return reach
        phones = {p for i in new for p in self._phones[i] if p not in self._hub_phones}
        for phone in phones:
            ads = self._ads_of_phone.peek(phone)
            reach.update(ads[: bisect_left(ads, start)])
        starts = self._image_start.view()
        uses = np.arange(int(starts[new.start]), int(starts[new.stop]))
        for photo in set(self._photos.photo_of(uses).tolist()) - self._hub_photos.keys():
            ads = self._ads_of_photo.peek(photo)
            reach.update(ads[: bisect_left(ads, start)])
        # Text reaches only old ads whose text verifies: an LSH bucket alone is too wide
        # (a 1,000-ad batch would otherwise reach most of a 100k store).
        signatures = self._signatures.view()

        def old_and_alike(rows: I64Array, keys: I64Array) -> BoolArray:
            alike = signatures_agree(signatures, rows + new.start, keys, self.config.text_prefilter)
            return (keys < start) & alike

        pairs = self._text.query_many(
            self._signature_rows(np.arange(new.start, new.stop)), pair_filter=old_and_alike
        )
        pairs[:, 0] += new.start
        verified = self._text_scores(pairs, keep=keep_scores) >= self.config.text_threshold
        reach.update(pairs[verified, 1].tolist())
        return reach

    # --- clustering --------------------------------------------------------------

    def _recluster(
        self,
        scope: list[int],
        new: set[int],
        hub_reasons: list[str],
        *,
        keep_scores: bool,
        report_all: bool = False,
    ) -> BatchResult:
        count = len(scope)
        scope_array = np.asarray(scope, dtype=np.int64)
        # Position of each ad in the scope, -1 outside it (an array: a dict of a million
        # ads would cost ~100 MB).
        position_of = np.full(len(self._ad_ids), -1, dtype=np.int64)
        position_of[scope_array] = np.arange(count)

        labels, holders_of_phone = self._strong_components(scope, scope_array)

        # Text: verify candidate pairs that strong evidence has not already joined.
        text_edges = self._text_edges(scope_array, labels, keep=keep_scores)
        labels = self._join_by_text(labels, text_edges, self._shares.view()[scope_array].tolist())

        order = np.argsort(labels, kind="stable")
        cuts = np.flatnonzero(np.diff(labels[order])) + 1
        clusters = [part.tolist() for part in np.split(scope_array[order], cuts)] if count else []

        text_by_position: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for a, b, score in text_edges:
            if labels[a] == labels[b]:
                text_by_position[a].append((b, score))
                text_by_position[b].append((a, score))
        del text_edges, order  # not held while a million explanations are built
        # Every holder of a phone but its first cites the first: one record for them all
        # (about a third of a large batch's evidence records were such copies).
        shared_phone: dict[str, Evidence] = {}

        def evidence_of(index: int) -> list[Evidence]:
            return self._evidence(
                index, position_of, holders_of_phone, shared_phone, text_by_position, scope
            )

        return self._assign_ids(clusters, new, evidence_of, hub_reasons, report_all=report_all)

    def _strong_components(
        self, scope: list[int], scope_array: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], dict[str, list[int]]]:
        """Component of each scope position under strong evidence, and the positions
        holding each non-hub phone. (A method of its own so that the graph, a few hundred
        MiB for a million-ad scope, is gone before explanations are built.)"""
        count = len(scope)
        # Strong evidence as a graph: ads, then phones, then photos, as nodes.
        holders_of_phone: dict[str, list[int]] = {}
        phone_node: dict[str, int] = {}
        # Flat int64 buffers, not lists: a million-ad scope has ~1.3M phone edges.
        phone_ads = array("q")
        phone_nodes = array("q")
        for position, index in enumerate(scope):
            for phone in dict.fromkeys(self._phones[index]):
                if phone in self._hub_phones:
                    continue
                node = phone_node.get(phone)
                if node is None:
                    node = phone_node[phone] = len(phone_node)
                    holders_of_phone[phone] = []
                holders_of_phone[phone].append(position)
                phone_ads.append(position)
                phone_nodes.append(count + node)
        use_rows, use_positions = self._uses_of(scope_array)
        use_photos = self._photos.photo_of(use_rows)
        hub_photo_ids = np.fromiter(self._hub_photos, dtype=np.int64, count=len(self._hub_photos))
        linking = ~np.isin(use_photos, hub_photo_ids)
        distinct_photos, photo_node = np.unique(use_photos[linking], return_inverse=True)
        first_photo_node = count + len(phone_node)
        sources = np.concatenate([np.frombuffer(phone_ads, np.int64), use_positions[linking]])
        targets = np.concatenate(
            [np.frombuffer(phone_nodes, np.int64), first_photo_node + photo_node.reshape(-1)]
        )
        nodes = first_photo_node + len(distinct_photos)
        graph = coo_matrix(
            (np.ones(len(sources), dtype=np.int8), (sources, targets)), shape=(nodes, nodes)
        )
        _, node_labels = connected_components(graph, directed=False)
        labels: npt.NDArray[np.int64] = node_labels[:count].astype(np.int64)
        return labels, holders_of_phone

    def _uses_of(
        self, ads: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Image-use rows of the given ads and, for each, the position of its ad in ``ads``."""
        starts = self._image_start.view()
        begin, end = starts[ads], starts[ads + 1]
        counts = end - begin
        total = int(counts.sum())
        offsets = np.cumsum(counts) - counts
        rows = np.repeat(begin - offsets, counts) + np.arange(total, dtype=np.int64)
        return rows, np.repeat(np.arange(len(ads), dtype=np.int64), counts)

    def _text_edges(
        self, scope_array: npt.NDArray[np.int64], labels: npt.NDArray[np.int64], *, keep: bool
    ) -> list[tuple[int, int, float]]:
        """Verified text pairs (positions in scope) between ads not yet joined."""
        config = self.config
        signed = np.flatnonzero(self._signed.view()[scope_array])
        blocking = TextLSHIndex(self._text.bands, self._text.rows, self._text.max_bucket)
        pairs = blocking.candidate_pairs(
            signed,
            self._signatures.view()[scope_array[signed]],
            min_similarity=config.text_prefilter,
        )
        pairs = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
        scores = self._text_scores(scope_array[pairs], keep=keep)
        verified = scores >= config.text_threshold
        return [
            (a, b, score)
            for (a, b), score in zip(
                pairs[verified].tolist(), scores[verified].tolist(), strict=True
            )
        ]

    def _keeps_scores(self, new_ads: int) -> bool:
        """Whether a batch of this many new ads keeps its verified pair scores: an ordinary
        batch does (a profile it touches is touched again), a first build of a large store
        or a large import does not (it would keep millions of pairs for nothing)."""
        return 2 * new_ads <= len(self._ad_ids)

    def _text_scores(self, pairs: I64Array, *, keep: bool) -> npt.NDArray[np.float32]:
        """``text_similarity`` of the distinctive texts of each ad pair (0 below the
        threshold): kept scores where known, the rest scored a block at a time (and kept
        when ``keep``)."""
        known, scores = self._pair_scores.known(pairs)
        unknown = np.flatnonzero(~known)
        fresh = np.zeros(len(unknown), dtype=np.float32)
        texts = self._texts
        for start in range(0, len(unknown), _VERIFY_BLOCK):
            block = pairs[unknown[start : start + _VERIFY_BLOCK]].tolist()
            fresh[start : start + len(block)] = text_similarities(
                [texts[a] for a, _ in block],
                [texts[b] for _, b in block],
                score_cutoff=self.config.text_threshold,
            )
        scores[unknown] = fresh
        if keep:
            self._pair_scores.remember(pairs[unknown], fresh)
        return scores

    def _join_by_text(
        self,
        labels: npt.NDArray[np.int64],
        edges: list[tuple[int, int, float]],
        shares: Sequence[float],
    ) -> npt.NDArray[np.int64]:
        # Support counted between the components strong evidence built; a lone ad
        # needs one edge, two established groups need several independent ones.
        if not edges:
            return labels
        size = np.bincount(labels)
        support: dict[tuple[int, int], set[tuple[int, int]]] = defaultdict(set)
        config = self.config
        for a, b, score in edges:
            ra, rb = int(labels[a]), int(labels[b])
            if ra == rb:
                continue
            template = min(shares[a], shares[b]) < config.text_min_share
            if template and score < config.text_verbatim_score:
                continue  # leftovers of templates (see ``MatchConfig.text_min_share``)
            support[(min(ra, rb), max(ra, rb))].add((a, b))
        forest: _UnionFind[int] = _UnionFind()
        ranked = sorted(support.items(), key=lambda item: -len(item[1]))
        for (ra, rb), pairs in ranked:
            lone = min(size[ra], size[rb]) == 1
            independent = min(len({a for a, _ in pairs}), len({b for _, b in pairs}))
            if lone or independent >= config.text_support:
                forest.union(ra, rb)
        root = np.arange(len(size), dtype=np.int64)
        for label, representative in forest.representatives():
            root[label] = representative
        joined: npt.NDArray[np.int64] = root[labels]
        return joined

    # --- explanation -------------------------------------------------------------

    def _evidence(
        self,
        index: int,
        position_of: I64Array,
        holders_of_phone: Mapping[str, list[int]],
        shared_phone: dict[str, Evidence],
        text_by_position: Mapping[int, list[tuple[int, float]]],
        scope: list[int],
    ) -> list[Evidence]:
        """Why an ad sits in its cluster, from the edges inside the cluster."""
        found: list[Evidence] = []
        position = int(position_of[index])
        for phone in dict.fromkeys(self._phones[index]):
            if phone in self._hub_phones:
                found.append(
                    Evidence(
                        "hub_phone",
                        None,
                        phone=phone,
                        count=len(self._phone_neighbours.get(phone, ())),
                    )
                )
                continue
            holders = holders_of_phone[phone]
            if len(holders) < 2:
                continue
            if position == holders[0]:
                found.append(
                    Evidence(
                        "phone",
                        self._ad_ids[scope[holders[1]]],
                        phone=phone,
                        count=len(holders) - 1,
                    )
                )
                continue
            item = shared_phone.get(phone)
            if item is None:
                item = shared_phone[phone] = Evidence(
                    "phone", self._ad_ids[scope[holders[0]]], phone=phone, count=len(holders) - 1
                )
            found.append(item)
        first_use, end_use = self._image_start.view()[index : index + 2].tolist()
        images: list[Evidence] = []
        hubs: list[Evidence] = []
        shown = self._photos.photo_of(np.arange(first_use, end_use)).tolist()
        for image, (use, photo) in enumerate(zip(range(first_use, end_use), shown, strict=True)):
            if photo in self._hub_photos:
                hubs.append(Evidence("hub_image", None, image=image, count=self._hub_photos[photo]))
                continue
            match = self._other_use(photo, index, position_of)
            if match is not None:
                other, other_use = match
                images.append(
                    Evidence(
                        "image",
                        self._ad_ids[other],
                        image=image,
                        other_image=other_use - int(self._image_start.view()[other]),
                        distance=self._photos.distance(use, other_use),
                    )
                )
        images.sort(key=lambda e: e.distance or 0)
        found += images + hubs
        for other_position, score in text_by_position.get(position, []):
            found.append(
                Evidence("text", self._ad_ids[scope[other_position]], score=round(score, 1))
            )
        found += self._unconfirmed(first_use, end_use, shown)
        return found

    def _unconfirmed(self, first_use: int, end_use: int, shown: list[int]) -> list[Evidence]:
        """Photo matches of an ad's images that were not confirmed (and so link nothing)."""
        found = []
        starts = self._image_start.view()
        for image, use in enumerate(range(first_use, end_use)):
            noted = self._photos.unconfirmed.get(use)
            if noted is None or noted[0] == shown[image]:
                continue
            photo, distance, second = noted
            leader = self._photos.leader_of(photo)
            other = self._ad_of_use(leader)
            found.append(
                Evidence(
                    "unconfirmed_image",
                    self._ad_ids[other],
                    image=image,
                    other_image=leader - int(starts[other]),
                    distance=distance,
                    second_distance=second,
                    second_limit=self.config.photo_confirm_dhash,
                )
            )
        return found

    def _other_use(
        self,
        photo: int,
        index: int,
        position_of: I64Array,
    ) -> tuple[int, int] | None:
        """Another ad in the scope showing the photo (its first poster if it can), and its
        use of it. Ads in the scope that show a photo which links are all in one cluster.
        """
        leader = self._photos.leader_of(photo)
        leader_ad = self._ad_of_use(leader)
        if leader_ad != index and position_of[leader_ad] >= 0:
            return leader_ad, leader
        starts = self._image_start.view()
        for other in self._ads_of_photo.peek(photo):
            if other == index or position_of[other] < 0:
                continue
            first, end = starts[other : other + 2].tolist()
            shown = self._photos.photo_of(np.arange(first, end)).tolist()
            return other, first + shown.index(photo)
        return None

    # --- stable profile ids ------------------------------------------------------

    def _assign_ids(
        self,
        clusters: list[list[int]],
        new: set[int],
        evidence: Callable[[int], list[Evidence]],
        hub_reasons: list[str],
        *,
        report_all: bool = False,
    ) -> BatchResult:
        # ``evidence`` runs once per moved ad (every ad with ``report_all``); a merge's
        # reason recomputes a few.
        result = BatchResult()

        inheritances = inherit_ids(
            [[self._profile_of[i] for i in cluster] for cluster in clusters], self._taken_ids
        )
        split_reason = "; ".join(hub_reasons) or "the evidence no longer connects these ads"

        for number in sorted(range(len(clusters)), key=lambda n: clusters[n][0]):
            cluster = clusters[number]
            inheritance = inheritances[number]
            if inheritance.keep is not None:
                keep = inheritance.keep
                for absorbed in inheritance.absorbed:
                    result.events.append(
                        ProfileEvent(
                            "merged",
                            keep,
                            absorbed,
                            f"profile {absorbed} merged into {keep}: "
                            + self._link_reason(cluster, absorbed, evidence),
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
                for origin in inheritance.origins:
                    result.events.append(
                        ProfileEvent(
                            "split",
                            keep,
                            origin,
                            f"split from profile {origin}: {split_reason}",
                        )
                    )
                if not inheritance.origins:
                    result.events.append(ProfileEvent("created", keep, None, "new ads"))
            moved = [i for i in cluster if report_all or i in new or self._profile_of[i] != keep]
            for pid in {self._profile_of[i] for i in cluster if self._profile_of[i] >= 0}:
                if pid != keep and pid in self._members:
                    self._members[pid].difference_update(cluster)
                    if not self._members[pid]:
                        del self._members[pid]
            self._members.setdefault(keep, set()).update(cluster)
            for index in moved:
                result.memberships.append(
                    Membership(
                        self._ad_ids[index],
                        keep,
                        tuple(evidence(index)[: self.config.evidence_per_ad]),
                    )
                )
            for index in cluster:
                self._profile_of[index] = keep
        return result

    def _link_reason(
        self,
        cluster: list[int],
        absorbed: int,
        evidence: Callable[[int], list[Evidence]],
    ) -> str:
        for index in cluster:
            if self._profile_of[index] != absorbed:
                continue
            for item in evidence(index):
                if item.other_ad_id is None:
                    continue
                other = self._index_of[item.other_ad_id]
                if self._profile_of[other] != absorbed:
                    return f"ad {self._ad_ids[index]} {item.describe()}"
        return "new ads connect both"


class _UnionFind(Generic[_T]):
    """Disjoint sets over hashable items, with path halving and union by size."""

    def __init__(self) -> None:
        self._parent: dict[_T, _T] = {}
        self._size: dict[_T, int] = {}

    def find(self, item: _T) -> _T:
        """The representative of ``item``'s set (a new singleton if unseen)."""
        parent = self._parent
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
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]

    def representatives(self) -> list[tuple[_T, _T]]:
        """Every item seen, with the representative of its set."""
        return [(item, self.find(item)) for item in list(self._parent)]
