"""The matching engine: evidence rules, hubs, text support, stable ids, merges and splits.

Features are written by hand so that each test states exactly which evidence exists.
Phone numbers are strings in the unassigned +999 country code: never a real number.
"""

from __future__ import annotations

import itertools
import pickle
import random
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.engine import MatchConfig, MatchingEngine
from matching.records import AdFeatures, ImageFingerprint
from matching.text import text_signature, text_similarity

PHOTO_A = 0x8F3A_5C21_9D04_E7B6
PHOTO_B = 0x1234_5678_9ABC_DEF0
PHOTO_C = 0x0F0F_F0F0_3C3C_C3C3
MIRROR_OF_A = 0x6B0D_2A9C_F1E3_4758


def ad(
    ad_id: str,
    phones: Sequence[str] = (),
    images: Sequence[ImageFingerprint] = (),
    text: str = "",
) -> AdFeatures:
    return AdFeatures(
        ad_id=ad_id,
        site="demo",
        city=None,
        posted_at=None,
        phones=tuple(phones),
        images=tuple(images),
        distinctive_text=text,
        text_signature=text_signature(text) if text else b"",
    )


def flip(value: int, *bits: int) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def partition(engine: MatchingEngine) -> set[frozenset[str]]:
    return {frozenset(ads) for ads in engine.profiles().values()}


def test_ads_sharing_a_phone_form_one_profile_and_say_why() -> None:
    engine = MatchingEngine()
    result = engine.add([ad("1", ["+9991001"]), ad("2", ["+9991001"]), ad("3", ["+9991002"])])
    assert partition(engine) == {frozenset({"1", "2"}), frozenset({"3"})}
    assert result.count("created") == 2
    why = {m.ad_id: [e.describe() for e in m.evidence] for m in result.memberships}
    assert why["2"] == ["shares phone +9991001 with ad 1 in this profile"]
    assert why["3"] == []


def test_a_help_desk_number_is_a_hub_not_identity() -> None:
    helpdesk = "+9990999"
    ads = [ad(f"{n}", [f"+99910{n:02d}", helpdesk]) for n in range(8)]
    engine = MatchingEngine()
    result = engine.add(ads)
    assert len(engine.profiles()) == 8
    assert helpdesk in engine.hub_phones()
    reasons = [e.describe() for m in result.memberships for e in m.evidence]
    assert any("treated as a shared number" in r and helpdesk in r for r in reasons)


def test_close_photos_link_ads_without_phones() -> None:
    engine = MatchingEngine()
    engine.add(
        [
            ad("1", images=[ImageFingerprint(PHOTO_A)]),
            ad("2", images=[ImageFingerprint(flip(PHOTO_A, 3, 17, 40))]),
            ad("3", images=[ImageFingerprint(PHOTO_B)]),
        ]
    )
    assert partition(engine) == {frozenset({"1", "2"}), frozenset({"3"})}
    membership = next(
        m for m in engine.add([ad("4", images=[ImageFingerprint(PHOTO_B)])]).memberships
    )
    assert membership.evidence[0].kind == "image"
    assert "distance 0" in membership.evidence[0].describe()


def test_a_mirrored_repost_matches_through_the_stored_variant() -> None:
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"], [ImageFingerprint(PHOTO_A, variants=(MIRROR_OF_A,))])])
    result = engine.add([ad("2", images=[ImageFingerprint(flip(MIRROR_OF_A, 5))])])
    assert engine.profile_of("2") == engine.profile_of("1")
    assert result.count("grown") == 1


def test_a_stock_photo_shared_by_unrelated_advertisers_links_nobody() -> None:
    engine = MatchingEngine()
    result = engine.add(
        [ad(str(n), [f"+999100{n}"], [ImageFingerprint(flip(PHOTO_C, n))]) for n in range(5)]
    )
    assert len(engine.profiles()) == 5
    assert any(e.kind == "hub_image" for m in result.memberships for e in m.evidence)


def test_a_photo_that_turns_out_to_be_a_stock_photo_splits_the_profile_it_joined() -> None:
    engine = MatchingEngine()
    engine.add(
        [
            ad("1", ["+9991001"], [ImageFingerprint(PHOTO_C)]),
            ad("2", ["+9991002"], [ImageFingerprint(flip(PHOTO_C, 2))]),
        ]
    )
    assert len(engine.profiles()) == 1
    kept = engine.profile_of("1")
    result = engine.add([ad("3", ["+9991003"], [ImageFingerprint(flip(PHOTO_C, 7))])])
    assert len(engine.profiles()) == 3
    assert kept in {engine.profile_of("1"), engine.profile_of("2")}
    splits = [e for e in result.events if e.kind == "split"]
    assert len(splits) == 1 and splits[0].other_profile_id == kept
    assert (
        "first posted in ad 1" in splits[0].reason
        and "3 unrelated phone groups" in splits[0].reason
    )


def test_a_stock_photo_is_a_hub_whatever_order_its_uses_arrive_in() -> None:
    uses = [ad(str(n), [f"+999100{n}"], [ImageFingerprint(flip(PHOTO_C, n))]) for n in range(6)]
    batch = MatchingEngine()
    batch.add(uses)
    stepwise = MatchingEngine()
    for one in uses:
        stepwise.add([one])
    assert partition(stepwise) == partition(batch) == {frozenset(str(n)) for n in range(6)}


def test_phone_groups_split_by_a_new_hub_decide_whether_a_photo_is_a_hub() -> None:
    """While +9990999 is beside few numbers it joins them into one phone group; once it is
    a hub they are separate advertisers, and a photo shown with four of them is stock."""
    hub = "+9990999"
    first = [ad(str(n), [f"+999100{n}", hub], [ImageFingerprint(PHOTO_C)]) for n in (1, 2, 3)]
    later = [
        ad("4", ["+9991004", hub]),
        ad("5", ["+9991005", hub], [ImageFingerprint(flip(PHOTO_C, 3))]),
    ]
    stepwise = MatchingEngine()
    stepwise.add(first)
    assert len(stepwise.profiles()) == 1 and hub not in stepwise.hub_phones()
    stepwise.add(later)
    assert hub in stepwise.hub_phones()
    batch = MatchingEngine()
    batch.add_parts([first, later])
    assert partition(stepwise) == partition(batch) == {frozenset(str(n)) for n in range(1, 6)}


def test_a_new_ad_reaches_old_ads_only_through_text_that_verifies() -> None:
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"], text=LANA), ad("2", ["+9991001"]), ad("3", text=OTHER)])
    result = engine.add([ad("4", text=LANA_PARAPHRASED)])
    assert engine.profile_of("4") == engine.profile_of("1")
    assert {m.ad_id for m in result.memberships} == {"4"}
    assert result.count("grown") == 1


def test_one_advertiser_with_two_phones_and_one_photo_is_one_profile() -> None:
    engine = MatchingEngine()
    engine.add(
        [
            ad("1", ["+9991001"], [ImageFingerprint(PHOTO_A)]),
            ad("2", ["+9991002"], [ImageFingerprint(flip(PHOTO_A, 9))]),
        ]
    )
    assert len(engine.profiles()) == 1


LANA = (
    "ik ben lana nieuw in utrecht en alleen deze week hier vriendelijk en rustig "
    "bel gerust voor een afspraak overdag of in de avond"
)
LANA_PARAPHRASED = (
    "ik ben lana nieuw in utrecht en alleen deze week hier vriendelijk en rustig "
    "bel gerust voor een afspraak overdag of s avonds"
)
OTHER = (
    "welkom bij studio zonneschijn in breda wij hebben een gezellige ontvangst "
    "en ruime parkeergelegenheid voor de deur"
)


def test_a_lone_ad_joins_a_profile_by_its_text() -> None:
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"], text=LANA), ad("2", ["+9991001"])])
    result = engine.add([ad("3", text=LANA_PARAPHRASED), ad("4", text=OTHER)])
    assert engine.profile_of("3") == engine.profile_of("1")
    assert engine.profile_of("4") != engine.profile_of("1")
    evidence = next(m for m in result.memberships if m.ad_id == "3").evidence
    assert evidence[0].kind == "text" and evidence[0].score is not None
    assert evidence[0].score >= MatchConfig().text_threshold


@pytest.mark.parametrize(
    ("share", "joins"), [(1.0, True), (0.5, True), (0.3, False)], ids=["own", "half", "template"]
)
def test_a_lone_ad_whose_text_is_mostly_template_needs_a_near_verbatim_match(
    share: float, joins: bool
) -> None:
    # A looser paraphrase: between the threshold and ``text_verbatim_score`` against LANA.
    rewritten = (
        "ik ben lana nieuw in utrecht alleen deze week hier lief en rustig bel me voor een "
        "afspraak overdag of s avonds"
    )
    config = MatchConfig()
    assert config.text_threshold <= text_similarity(LANA, rewritten) < config.text_verbatim_score
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"], text=LANA), ad("2", ["+9991001"])])
    lone = replace(ad("3", text=rewritten), distinctive_share=share)
    engine.add([lone])
    assert (engine.profile_of("3") == engine.profile_of("1")) is joins
    # Verbatim, the same template leftovers still join: the texts agree in every word.
    engine.add([replace(ad("4", text=LANA), distinctive_share=share)])
    assert engine.profile_of("4") == engine.profile_of("1")


def test_one_text_edge_does_not_merge_two_established_profiles() -> None:
    engine = MatchingEngine()
    engine.add(
        [
            ad("a1", ["+9991001"], text=LANA),
            ad("a2", ["+9991001"]),
            ad("b1", ["+9992002"], text=LANA_PARAPHRASED),
            ad("b2", ["+9992002"]),
        ]
    )
    assert len(engine.profiles()) == 2


def test_two_independent_text_edges_do_merge_two_profiles() -> None:
    engine = MatchingEngine()
    engine.add(
        [
            ad("a1", ["+9991001"], text=LANA),
            ad("a2", ["+9991001"], text=OTHER),
            ad("b1", ["+9992002"], text=LANA_PARAPHRASED),
            ad("b2", ["+9992002"], text=OTHER + " tot snel"),
        ]
    )
    assert len(engine.profiles()) == 1


# Paraphrases between the text threshold and ``text_verbatim_score``.
LANA_LOOSELY = (
    "ik ben lana nieuw in utrecht alleen deze week hier lief en rustig bel me voor een "
    "afspraak overdag of s avonds"
)
OTHER_LOOSELY = OTHER + " tot snel groetjes en kusjes"


def profiles_of_two_phone_groups(b_texts: tuple[str, str], share: float) -> int:
    """Profiles made of two phone groups, (LANA, OTHER) and ``b_texts``, every text being
    ``share`` of its ad: they join only on two independent text pairs that count."""
    engine = MatchingEngine()
    texts = [("a1", "+9991001", LANA), ("a2", "+9991001", OTHER)]
    texts += [("b1", "+9992002", b_texts[0]), ("b2", "+9992002", b_texts[1])]
    engine.add(
        [replace(ad(i, [phone], text=text), distinctive_share=share) for i, phone, text in texts]
    )
    return len(engine.profiles())


@pytest.mark.parametrize(("above", "profiles"), [(True, 1), (False, 2)], ids=["own", "template"])
def test_text_pairs_of_texts_that_are_mostly_template_are_no_evidence(
    above: bool, profiles: int
) -> None:
    # Below ``text_min_share`` of its ad, what is left of a text is template leftovers.
    config = MatchConfig()
    for a, b in ((LANA, LANA_LOOSELY), (OTHER, OTHER_LOOSELY)):
        assert config.text_threshold <= text_similarity(a, b) < config.text_verbatim_score
    share = config.text_min_share + (0.05 if above else -0.05)
    assert profiles_of_two_phone_groups((LANA_LOOSELY, OTHER_LOOSELY), share) == profiles


def test_near_verbatim_text_pairs_count_even_when_mostly_template() -> None:
    config = MatchConfig()
    assert text_similarity(LANA, LANA_PARAPHRASED) >= config.text_verbatim_score
    share = config.text_min_share / 2
    assert profiles_of_two_phone_groups((LANA_PARAPHRASED, OTHER), share) == 1


def test_a_profile_keeps_its_id_as_it_grows() -> None:
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"])])
    first = engine.profile_of("1")
    for n in range(2, 6):
        result = engine.add([ad(str(n), ["+9991001"])])
        assert engine.profile_of(str(n)) == first
        assert [e.kind for e in result.events] == ["grown"]


def test_an_ad_that_bridges_two_profiles_merges_them_with_a_reason() -> None:
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"]), ad("2", ["+9991001"]), ad("3", ["+9992002"])])
    big, small = engine.profile_of("1"), engine.profile_of("3")
    result = engine.add([ad("4", ["+9991001", "+9992002"])])
    assert {engine.profile_of(a) for a in "1234"} == {big}
    merged = [e for e in result.events if e.kind == "merged"]
    assert [(e.profile_id, e.other_profile_id) for e in merged] == [(big, small)]
    assert "+9992002" in merged[0].reason or "+9991001" in merged[0].reason


def test_a_number_that_turns_out_to_be_a_hub_splits_the_profile_it_joined() -> None:
    engine = MatchingEngine()
    shared = "+9990999"
    engine.add([ad("1", ["+9991001", shared]), ad("2", ["+9991002", shared])])
    assert len(engine.profiles()) == 1
    kept = engine.profile_of("1")
    later = [ad(f"n{n}", [f"+99930{n:02d}", shared]) for n in range(5)]
    result = engine.add(later)
    assert shared in engine.hub_phones()
    assert engine.profile_of("1") != engine.profile_of("2")
    assert kept in {engine.profile_of("1"), engine.profile_of("2")}
    splits = [e for e in result.events if e.kind == "split"]
    assert len(splits) == 1 and splits[0].other_profile_id == kept
    assert shared in splits[0].reason


def test_load_restores_profiles_without_relinking() -> None:
    engine = MatchingEngine()
    engine.load([ad("1", ["+9991001"]), ad("2", ["+9991001"])], {"1": 7, "2": 7})
    result = engine.add([ad("3", ["+9991001"]), ad("4", ["+9994004"])])
    assert engine.profile_of("3") == 7
    assert engine.profile_of("4") == 8  # new ids continue above the stored ones
    assert result.count("grown") == 1 and result.count("created") == 1


def test_bad_input_is_refused_and_nothing_changes() -> None:
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"])])
    for bad in ([ad("1")], [ad("5"), ad("5")]):
        try:
            engine.add(bad)
        except ValueError as exc:
            assert "already linked" in str(exc)
        else:
            raise AssertionError("duplicate ad accepted")
    assert engine.profiles() == {engine.profile_of("1"): ["1"]}
    try:
        engine.load([ad("9")], {})
    except ValueError as exc:
        assert "no stored profile" in str(exc)
    else:
        raise AssertionError("ad without profile loaded")


@st.composite
def small_worlds(draw: st.DrawFn) -> list[AdFeatures]:
    n = draw(st.integers(1, 25))
    rng = random.Random(draw(st.integers(0, 10_000)))
    photos = [rng.getrandbits(64) for _ in range(4)]
    ads = []
    for i in range(n):
        phones = [f"+99910{rng.randrange(6)}" for _ in range(rng.randrange(3))]
        images = [ImageFingerprint(flip(rng.choice(photos), rng.randrange(64)))] * rng.randrange(2)
        ads.append(ad(str(i), phones, images))
    return ads


@given(world=small_worlds(), cut=st.integers(0, 25))
@settings(max_examples=60, deadline=None)
def test_incremental_linking_ends_where_batch_linking_ends(
    world: list[AdFeatures], cut: int
) -> None:
    """Absent hub changes, adding in two batches gives the partition of one batch."""
    batch = MatchingEngine(MatchConfig(phone_hub_degree=99, image_hub_groups=99))
    batch.add(world)
    stepwise = MatchingEngine(MatchConfig(phone_hub_degree=99, image_hub_groups=99))
    stepwise.add(world[:cut])
    stepwise.add(world[cut:])
    assert partition(stepwise) == partition(batch)
    # Every ad sits in exactly one profile.
    assert sorted(a for ads in stepwise.profiles().values() for a in ads) == sorted(
        a.ad_id for a in world
    )


@given(world=small_worlds(), cuts=st.lists(st.integers(0, 25), max_size=3))
@settings(max_examples=40, deadline=None)
def test_a_batch_read_in_parts_links_like_one_batch(
    world: list[AdFeatures], cuts: list[int]
) -> None:
    whole = MatchingEngine()
    expected = whole.add(world)
    bounds = [0, *sorted(cuts), len(world)]
    parted = MatchingEngine()
    result = parted.add_parts(world[a:b] for a, b in itertools.pairwise(bounds))
    assert partition(parted) == partition(whole)
    assert [(m.ad_id, m.profile_id, m.evidence) for m in result.memberships] == [
        (m.ad_id, m.profile_id, m.evidence) for m in expected.memberships
    ]


@given(world=small_worlds(), cuts=st.lists(st.integers(0, 25), min_size=1, max_size=3))
@settings(max_examples=40, deadline=None)
def test_a_pickled_engine_links_on_exactly_as_the_original(
    world: list[AdFeatures], cuts: list[int]
) -> None:
    """The snapshot's engine (packed maps, compacted photo index, id lookup rebuilt) goes
    on as the engine it was made from: same memberships, evidence, events and hubs."""
    config = MatchConfig(phone_hub_degree=3, image_hub_groups=3)
    original, copy = MatchingEngine(config), MatchingEngine(config)
    bounds = [0, *sorted(cuts), len(world)]
    for a, b in itertools.pairwise(bounds):
        copy = pickle.loads(pickle.dumps(copy))
        expected, found = original.add(world[a:b]), copy.add(world[a:b])
        assert found.memberships == expected.memberships
        assert found.events == expected.events
    assert copy.profiles() == original.profiles()
    assert copy.hub_phones() == original.hub_phones()
    assert all(copy.profile_of(a.ad_id) == original.profile_of(a.ad_id) for a in world)


def test_a_refused_part_leaves_the_parts_before_it_linked() -> None:
    engine = MatchingEngine()
    first = [ad("1", ["+9991001"]), ad("2", ["+9991001"])]
    with pytest.raises(ValueError, match="ad 2 is already linked"):
        engine.add_parts([first, [ad("3"), ad("2")], [ad("4")]])
    assert partition(engine) == {frozenset({"1", "2"})}
    engine.add([ad("3"), ad("4")])  # the refused part can be sent again, corrected
    assert len(engine) == 4


def test_relink_all_merges_what_now_connects_and_keeps_ids() -> None:
    # Two scopes linked apart, then held by one engine (cases combined): re-linking
    # everything merges the profiles that share a phone; every ad gets fresh evidence.
    left = MatchingEngine()
    left.add([ad("1", ["+9991001"]), ad("2", ["+9991001"])])
    right = MatchingEngine(first_profile_id=10)
    right.add([ad("3", ["+9991001"]), ad("4", ["+9992002"])])
    stored = {a: left.profile_of(a) for a in ("1", "2")} | {
        a: right.profile_of(a) for a in ("3", "4")
    }
    combined = MatchingEngine()
    combined.load(
        [
            ad("1", ["+9991001"]),
            ad("2", ["+9991001"]),
            ad("3", ["+9991001"]),
            ad("4", ["+9992002"]),
        ],
        stored,
    )
    result = combined.relink_all("cases combined")
    assert partition(combined) == {frozenset({"1", "2", "3"}), frozenset({"4"})}
    assert combined.profile_of("3") == stored["1"]  # the larger part keeps its id
    assert combined.profile_of("4") == stored["4"]
    assert {m.ad_id for m in result.memberships} == {"1", "2", "3", "4"}
    assert result.count("merged") == 1


def test_relink_all_does_not_inherit_ids_held_by_another_scope() -> None:
    # One profile spanned two cases; after separation each case is re-linked alone. The
    # second case's part may not keep the id the first case's part kept.
    engine = MatchingEngine(first_profile_id=1)
    engine.add([ad("1", ["+9991001"]), ad("2", ["+9991001"]), ad("3", ["+9991001"])])
    shared = engine.profile_of("1")
    first = MatchingEngine(first_profile_id=shared + 1)
    first.load([ad("1", ["+9991001"]), ad("2", ["+9991001"])], {"1": shared, "2": shared})
    first.relink_all("cases separated")
    second = MatchingEngine(first_profile_id=shared + 1)
    second.load([ad("3", ["+9991001"])], {"3": shared})
    result = second.relink_all("cases separated", taken_ids={shared})
    assert first.profile_of("1") == shared
    assert second.profile_of("3") != shared
    splits = [e for e in result.events if e.kind == "split"]
    assert splits and splits[0].other_profile_id == shared
    assert "cases separated" in splits[0].reason


def test_an_unconfirmed_photo_match_links_nothing_and_is_explained() -> None:
    dhash = 0x0F1E_2D3C_4B5A_6978
    first = ImageFingerprint(PHOTO_A, dhashes=(dhash,))
    confirmed = ImageFingerprint(flip(PHOTO_A, *range(8)), dhashes=(flip(dhash, 1, 2),))
    refused = ImageFingerprint(flip(PHOTO_A, *range(8, 16)), dhashes=(flip(dhash, *range(20)),))
    engine = MatchingEngine()
    result = engine.add(
        [ad("1", images=[first]), ad("2", images=[confirmed]), ad("3", images=[refused])]
    )
    assert partition(engine) == {frozenset({"1", "2"}), frozenset({"3"})}
    why = {m.ad_id: m.evidence for m in result.memberships}
    assert [e.kind for e in why["2"]] == ["image"]
    [unconfirmed] = why["3"]
    assert unconfirmed.kind == "unconfirmed_image" and unconfirmed.other_ad_id == "1"
    assert (unconfirmed.distance, unconfirmed.second_distance) == (8, 20)
    assert unconfirmed.describe() == (
        "photo 1 resembles photo 1 of ad 1 (perceptual hash distance 8 of 64), but the "
        "independent difference hash differs by 20 bits (more than 8): not linked by this photo"
    )
    assert unconfirmed.as_dict()["second_distance"] == 20


def test_the_linkage_version_names_the_rules_and_their_thresholds() -> None:
    version = MatchConfig().version
    assert version.startswith("2026-11-30+") and version == MatchConfig().version
    assert MatchConfig(photo_confirm_dhash=10).version != version


def test_replaying_a_batch_with_load_and_restore_gives_the_engine_that_added_it() -> None:
    """A linking snapshot stores each batch as its ads and the memberships it made:
    loading the ads with their profiles and restoring the moved ones must leave the
    engine as ``add`` left it, so that the next batch links alike."""
    rng = random.Random(11)
    phones = [f"+99910{n:02d}" for n in range(15)]
    photos = [rng.getrandbits(64) for _ in range(8)]

    def random_ad(number: int) -> AdFeatures:
        chosen = rng.sample(phones, rng.choice([0, 1, 1, 2]))
        images = [ImageFingerprint(flip(rng.choice(photos), rng.randrange(64)))] * rng.choice(
            [0, 1]
        )
        words = " ".join(rng.choice(["rustig", "nieuw", "centrum", "avond"]) for _ in range(12))
        return ad(str(number), chosen, images, words if rng.random() < 0.3 else "")

    batches = [[random_ad(b * 20 + i) for i in range(20)] for b in range(5)]
    live = MatchingEngine()
    replayed = MatchingEngine()
    old_ads_moved = 0
    for batch in batches:
        result = live.add(batch)
        moved = {m.ad_id: m.profile_id for m in result.memberships}
        new_ids = {a.ad_id for a in batch}
        old_ads_moved += len(moved.keys() - new_ids)
        replayed.load(batch, {k: v for k, v in moved.items() if k in new_ids})
        replayed.restore_memberships({k: v for k, v in moved.items() if k not in new_ids})
        assert replayed.profiles() == live.profiles()
        assert replayed.hub_phones() == live.hub_phones()
    assert old_ads_moved  # merges moved earlier ads: the replay is put to the test
    probe = [random_ad(1000 + i) for i in range(20)]
    assert [(m.ad_id, m.profile_id) for m in replayed.add(probe).memberships] == [
        (m.ad_id, m.profile_id) for m in live.add(probe).memberships
    ]


def test_a_profile_touched_again_does_not_verify_its_old_text_pairs_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import matching.engine as engine_module

    verified: list[int] = []

    def counting(left: list[str], right: list[str], score_cutoff: float = 0) -> list[float]:
        verified.append(len(left))
        return list(text_similarity(a, b, score_cutoff) for a, b in zip(left, right, strict=True))

    monkeypatch.setattr(engine_module, "text_similarities", counting)
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"], text=LANA), ad("2", ["+9991001"])])
    verified.clear()
    engine.add([ad("3", text=LANA_PARAPHRASED)])  # joins by text alone
    assert sum(verified) == 1  # reaching the old ad; re-clustering reuses that score
    verified.clear()
    engine.add([ad("4", ["+9991001"])])  # touches the profile again
    assert sum(verified) == 0
    assert len({engine.profile_of(a) for a in "1234"}) == 1


def test_a_first_build_keeps_no_pair_scores() -> None:
    """A batch larger than what is held is a build or an import: its pairs are not kept."""
    engine = MatchingEngine()
    engine.add([ad("1", ["+9991001"], text=LANA), ad("3", text=LANA_PARAPHRASED)])
    assert len(engine.profiles()) == 1
    assert len(engine._pair_scores) == 0
