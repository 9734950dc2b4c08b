"""Photo groups: uses of one photo share an id, unrelated photos never do, order decides.

Hashes are random 64-bit values with bits flipped by hand; no image is decoded here.
"""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.photos import (
    HASHES_PER_USE,
    GrowableArray,
    PhotoGroups,
    dhash_rows,
    fingerprint_rows,
)
from matching.records import ImageFingerprint

BASE = 0x8F3A_5C21_9D04_E7B6
OTHER = 0x1234_5678_9ABC_DEF0
MIRROR = 0x6B0D_2A9C_F1E3_4758


def flip(value: int, *bits: int) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


DHASH = 0x0F1E_2D3C_4B5A_6978
MASK = (1 << 64) - 1


def rows(*images: ImageFingerprint) -> np.ndarray:
    return fingerprint_rows(list(images))


def both(*images: ImageFingerprint) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``PhotoGroups.add`` arguments: pHash rows and dHash rows."""
    return fingerprint_rows(list(images)), dhash_rows(list(images))


def test_rows_pad_missing_variants_with_the_phash() -> None:
    table = rows(ImageFingerprint(BASE), ImageFingerprint(OTHER, (MIRROR,)))
    assert table.shape == (2, HASHES_PER_USE)
    assert table[0].tolist() == [BASE] * HASHES_PER_USE
    assert table[1].tolist() == [OTHER, MIRROR] + [OTHER] * (HASHES_PER_USE - 2)


def photo(phash: int, variants: tuple[int, ...] = (), dhash: int | None = None) -> ImageFingerprint:
    """A fingerprint; with ``dhash``, the same dHash for the photo and each of its copies."""
    dhashes = () if dhash is None else (dhash,) * (1 + len(variants))
    return ImageFingerprint(phash, variants, dhashes)


def test_reposts_within_the_radius_share_the_photo_of_the_first_use() -> None:
    groups = PhotoGroups(8)
    photos = groups.add(
        *both(
            photo(BASE, dhash=DHASH),
            photo(OTHER, dhash=~DHASH & MASK),
            photo(flip(BASE, *range(1, 9)), dhash=flip(DHASH, 5)),  # 8 bits, confirmed
            photo(flip(BASE, *range(9)), dhash=DHASH),  # 9 bits: another photo
            photo(flip(BASE, 1, 2, 3, 4), dhash=flip(DHASH, *range(30))),  # 4: no need
        )
    )
    assert photos.tolist() == [0, 1, 0, 2, 0]
    assert groups.photo_count == 3
    assert groups.leader_of(0) == 0 and groups.leader_of(2) == 3
    assert groups.distance(0, 2) == 8
    assert groups.unconfirmed == {}


@pytest.mark.parametrize("same_batch", [True, False])
def test_a_match_near_the_radius_needs_the_dhash_to_agree(same_batch: bool) -> None:
    first = photo(BASE, dhash=DHASH)
    uses = [
        photo(flip(BASE, *range(6)), dhash=flip(DHASH, *range(8))),  # 6 bits, dHash 8: joins
        photo(flip(BASE, *range(8)), dhash=flip(DHASH, *range(9))),  # dHash 9: refused
        photo(flip(BASE, *range(10, 16))),  # 6 bits, no dHash (stored before them): refused
    ]
    groups = PhotoGroups(8)
    if same_batch:
        photos = groups.add(*both(first, *uses)).tolist()
    else:
        photos = groups.add(*both(first)).tolist() + groups.add(*both(*uses)).tolist()
    assert photos[:2] == [0, 0] and 0 not in photos[2:]
    assert groups.unconfirmed == {2: (0, 8, 9), 3: (0, 6, None)}


def test_groups_pickled_with_a_dhash_row_per_use_confirm_as_before() -> None:
    """Snapshots made before dHashes were kept per photo hold one row per use; they read
    into the per-photo layout and confirm exactly as the groups that made them."""
    # Photo 1's first use is use 2: rows by photo and rows by use differ.
    first = [photo(BASE, dhash=DHASH), photo(flip(BASE, 1), dhash=DHASH), photo(OTHER)]
    later = [
        photo(flip(BASE, *range(6)), dhash=flip(DHASH, *range(8))),  # confirmed by photo 0
        photo(flip(BASE, *range(8)), dhash=flip(DHASH, *range(9))),  # refused
        photo(flip(OTHER, *range(6)), dhash=DHASH),  # photo 1 has no dHash: refused
    ]
    groups = PhotoGroups(8)
    groups.add(*both(*first))
    old_state = dict(pickle.loads(pickle.dumps(groups)).__dict__)  # a copy, as it was saved
    del old_state["_leader_dhashes"], old_state["_leader_dhash_known"]
    per_use, known = dhash_rows(first)
    old_state["_dhashes"], old_state["_dhash_known"] = GrowableArray((0, 6), np.uint64), None
    old_state["_dhashes"].extend(per_use)
    old_state["_dhash_known"] = GrowableArray((0,), np.bool_)
    old_state["_dhash_known"].extend(known)
    restored = PhotoGroups.__new__(PhotoGroups)
    restored.__setstate__(old_state)
    assert restored.add(*both(*later)).tolist() == groups.add(*both(*later)).tolist() == [0, 2, 3]
    assert restored.unconfirmed == groups.unconfirmed == {4: (0, 8, 9), 5: (1, 6, None)}


def test_the_confirmation_can_be_set() -> None:
    uses = both(
        photo(BASE, dhash=DHASH), photo(flip(BASE, *range(8)), dhash=flip(DHASH, *range(9)))
    )
    assert PhotoGroups(8, confirm_dhash=9).add(*uses).tolist() == [0, 0]
    assert PhotoGroups(8, confirm_from=10).add(uses[0]).tolist() == [0, 0]


def test_a_mirrored_repost_joins_through_the_first_uses_variant() -> None:
    groups = PhotoGroups(8)
    first = groups.add(rows(ImageFingerprint(BASE, (MIRROR,))))
    later = groups.add(rows(ImageFingerprint(flip(MIRROR, 3), (BASE,))))
    assert later.tolist() == first.tolist()
    assert groups.distance(0, 1) == 0  # the repost's variant is the first's pHash


def test_the_closest_earlier_photo_wins_and_ties_go_to_the_older() -> None:
    groups = PhotoGroups(8)
    # Two photos 10 bits apart; a use 5 bits from each, then one 4 from the second.
    second = flip(BASE, *range(10))
    groups.add(rows(ImageFingerprint(BASE), ImageFingerprint(second)))
    tie = flip(BASE, 0, 1, 2, 3, 4)
    nearer_second = flip(BASE, 0, 1, 2, 3, 4, 5)
    assert groups.add(rows(ImageFingerprint(tie), ImageFingerprint(nearer_second))).tolist() == [
        0,
        1,
    ]


def test_a_bad_block_size_is_refused() -> None:
    with pytest.raises(ValueError, match="block_size"):
        PhotoGroups(8, block_size=0)


@given(
    seed=st.integers(0, 10_000),
    cut=st.integers(0, 40),
    block=st.integers(1, 9),
    mixed=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_one_batch_several_batches_and_any_block_size_give_the_same_groups(
    seed: int, cut: int, block: int, mixed: bool
) -> None:
    rng = random.Random(seed)
    bases = [rng.getrandbits(64) for _ in range(5)]
    # Each base photo has its dHash; when ``mixed``, some uses lack theirs (stored before
    # dHashes were kept).
    second = {base: rng.getrandbits(64) for base in bases}
    chosen = [rng.choice(bases) for _ in range(40)]
    uses = [
        photo(
            flip(base, *rng.sample(range(64), rng.randrange(5))),
            dhash=flip(second[base], rng.randrange(64))
            if rng.random() < 0.8 or not mixed
            else None,
        )
        for base in chosen
    ]
    whole = PhotoGroups(8).add(*both(*uses)).tolist()
    stepwise = PhotoGroups(8, block_size=block)
    parts = stepwise.add(*both(*uses[:cut])).tolist() + stepwise.add(*both(*uses[cut:])).tolist()
    if mixed:
        # Unconfirmed matches leave uses free to join photos of their own block, which the
        # block size decides (see the module docstring); every use still gets a photo.
        assert len(parts) == len(whole) == len(uses) and min(whole) >= 0
        return
    assert parts == whole
    # Uses of one base photo share a photo (4 + 4 flips stay within 8 bits, the dHashes
    # within 2).
    for base in bases:
        ids = {whole[i] for i, use in enumerate(uses) if bin(use.phash ^ base).count("1") <= 4}
        assert len(ids) <= 1


@pytest.mark.parametrize("same_batch", [True, False])
def test_a_copy_with_a_border_added_joins_the_photo_through_its_own_crop(same_batch: bool) -> None:
    # The bordered copy's pHash is far from the original's, but its centre crop is the
    # original: only the copy's variants can see the link.
    bordered = flip(BASE, *range(0, 40, 3))
    original = ImageFingerprint(BASE, (MIRROR, flip(OTHER, 1), flip(OTHER, 2)))
    copy = ImageFingerprint(bordered, (flip(MIRROR, 9), flip(BASE, 5), flip(OTHER, 3)))
    groups = PhotoGroups(8)
    if same_batch:
        photos = groups.add(rows(original, copy)).tolist()
    else:
        photos = groups.add(rows(original)).tolist() + groups.add(rows(copy)).tolist()
    assert photos == [0, 0]
    assert groups.distance(0, 1) == 1
