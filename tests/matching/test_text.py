"""Text signals of shared authorship: paraphrases match, boilerplate does not.

The ad texts are written here: plausible, never explicit, with invented first names and
phone numbers that belong to no one (06 0000 0000).
"""

from __future__ import annotations

import itertools
import random
from hashlib import blake2b

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matching.text as text_module
from matching.text import (
    EMPTY_SLOT,
    MIN_TOKENS,
    NUM_PERM,
    TEXT_MATCH_THRESHOLD,
    BoilerplateModel,
    TextLSHIndex,
    distinctive_text,
    normalise_text,
    sentence_key,
    signature_similarity,
    signatures_to_array,
    split_sentences,
    text_signature,
    text_signatures,
    text_similarities,
    text_similarity,
)

LANA = (
    "Nieuw in Utrecht, alleen deze week! Ik ben Lana, 25 jaar, vriendelijk en discreet. "
    "In mijn vrije tijd verzamel ik oude platen en bak ik appeltaart voor de buren. "
    "Ik ontvang in een rustig appartement vlak bij het station. "
    "Na een drukke week geniet ik van een wandeling langs de gracht met een kop thee. "
    "Bel 06 0000 0000, geen sms."
)
# Synonyms swapped (nieuw/pas, vriendelijk/aardig, rustig/kalm), sentences reordered,
# two typos, another age and the phone written differently.
LANA_REWRITTEN = (
    "Ik ontvang in een kalm appartement vlak bij het station.\n"
    "Ik ben Lana, 26 jaar, aardig en discreet 💋 "
    "Na een drukke week geniet ik van een wandelng langs de gracht met een kop thee! "
    "Pas in Utrecht, alleen deze week. "
    "In mijn vrije tijd verzamel ik oude platen en bak ik appeltart voor de buren. "
    "Tel: 06-00000000"
)
BELLA = (
    "Hi, I am Bella, new in Amsterdam for a few days only. I am sweet, calm and always on "
    "time. Every morning I take photos of old bridges and I bake cinnamon bread for my "
    "neighbours. I receive in a quiet apartment near the park. Call me, no texts or hidden "
    "numbers."
)
BELLA_REWRITTEN = (
    "I receive in a quiet flat near the park * Hi, I am Bella, just arrived in Amsterdam for "
    "a few days only * Every morning I take pictures of old bridges and I bake cinamon bread "
    "for my neighbours * I am lovely, calm and always on time * Call me, no texts."
)
# Same genre, same city words and phrasing habits, another advertiser.
MIRA = (
    "Hoi heren, ik ben Mira uit Rotterdam en net terug van vakantie. Ik ontvang in een "
    "schone studio in het centrum. Mijn hobby's zijn dansen, koken en lange fietstochten "
    "langs de Maas. Afspraak graag een uur van tevoren maken. Ik spreek Nederlands en een "
    "beetje Spaans. Alleen bellen, geen anonieme nummers."
)
SOFIA = (
    "Hello gentlemen, I am Sofia, new in Amsterdam and available this week. I receive in a "
    "private studio near the station. I love dancing, yoga and long walks by the sea. "
    "Please book at least one hour in advance. Calls only, no hidden numbers."
)
AGENCY = (
    "Boek via ons bureau voor de beste service in heel Nederland. "
    "Al onze dames zijn gecontroleerd en betrouwbaar. "
    "Bel de receptie voor beschikbaarheid en prijzen. "
    "Wij zijn dagelijks geopend van 10 tot 02 uur."
)
AGENCY_OWN = {
    "noor": "Ik ben Noor, rustig en zorgzaam, en ik hou van oude Franse films. Op zondag "
    "maak ik lange fietstochten langs de rivier en daarna kook ik voor vrienden.",
    "yara": "Hallo, ik ben Yara en ik kom uit Spanje. Mijn vrienden zeggen dat ik grappig "
    "ben en veel van schilderen hou, vooral van zonsondergangen aan zee.",
    "ilse": "Ilse hier, sportief en spontaan. Ik zwem elke ochtend.",
    "fleur": "Ik ben Fleur, ik lees graag gedichten en drink graag thee.",
    "roos": "Roos is mijn naam, ik ben elegant en hou van reizen.",
}


def distinctive(text: str) -> str:
    return distinctive_text(text, BoilerplateModel())


# --- normalisation -----------------------------------------------------------------


def test_normalise_folds_case_width_and_accents() -> None:
    assert normalise_text("Ｃafé  ÉLÈVE\tnaïve Straße") == "cafe eleve naive strasse"


def test_normalise_removes_urls_mails_and_phone_like_digits() -> None:
    text = (
        "Bel +31 6 00 00 00 00 of 06-0000.0000, mail lana@example.nl, "
        "zie https://example.nl/p?id=12 en www.example.com/profiel. Prijs 150 euro, 25 jaar"
    )
    assert normalise_text(text) == "bel of mail zie en prijs 150 euro 25 jaar"


@given(st.text(max_size=200))
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert once == once.strip() and "  " not in once


def test_split_sentences_on_punctuation_bullets_and_emoji() -> None:
    text = (
        "Nieuw in Utrecht!! Alleen deze week 💋 Ik ben Lana.\n- Geen sms\n* Prijs 1.5 uur "
        "150 euro ♥ Kusjes • zie www.example.nl/lana. Tot snel?"
    )
    assert split_sentences(text) == [
        "nieuw in utrecht",
        "alleen deze week",
        "ik ben lana",
        "geen sms",
        "prijs 1 5 uur 150 euro",
        "kusjes",
        "zie",
        "tot snel",
    ]


def test_split_sentences_drops_empty_parts() -> None:
    assert split_sentences("...!!\n\n 💋💋 * ") == []


def test_sentence_key_is_a_fixed_unsigned_64_bit_value() -> None:
    key = sentence_key("ik ben lana")
    assert key == int.from_bytes(blake2b(b"ik ben lana", digest_size=8).digest(), "little")
    assert 0 <= key < 2**64
    assert sentence_key("ik ben lana") != sentence_key("ik ben mira")


# --- boilerplate -------------------------------------------------------------------


def fitted_with_agency() -> BoilerplateModel:
    model = BoilerplateModel(min_owners=5)
    for name, own in AGENCY_OWN.items():
        model.observe(f"phone:{name}", [sentence_key(s) for s in split_sentences(AGENCY + own)])
    return model


def test_agency_template_is_removed_and_its_users_no_longer_look_alike() -> None:
    model = fitted_with_agency()
    noor = distinctive_text(AGENCY + " " + AGENCY_OWN["noor"], model)
    yara = distinctive_text(AGENCY_OWN["yara"] + " " + AGENCY, model)
    for sentence in split_sentences(AGENCY):
        assert model.is_boilerplate(sentence_key(sentence))
        assert sentence not in noor and sentence not in yara
    assert noor == normalise_text(AGENCY_OWN["noor"])
    assert text_similarity(noor, yara) < TEXT_MATCH_THRESHOLD
    assert TextLSHIndex().candidate_pairs(
        np.array([1, 2]), signatures_to_array([text_signature(noor), text_signature(yara)])
    ).shape == (0, 2)
    # Without the model the template dominates: that is what the model is for.
    plain = text_similarity(
        normalise_text(AGENCY + " " + AGENCY_OWN["noor"]),
        normalise_text(AGENCY + " " + AGENCY_OWN["yara"]),
    )
    assert plain > text_similarity(noor, yara) + 20


def test_template_below_min_owners_is_kept() -> None:
    model = BoilerplateModel(min_owners=5)
    for name in ["noor", "yara", "ilse", "fleur"]:
        model.observe(f"phone:{name}", [sentence_key(s) for s in split_sentences(AGENCY)])
    key = sentence_key(split_sentences(AGENCY)[0])
    assert model.owners_of(key) == 4
    assert not model.is_boilerplate(key)


def test_one_owner_reposting_many_times_is_not_boilerplate() -> None:
    model = BoilerplateModel(min_owners=5)
    keys = [sentence_key(s) for s in split_sentences(LANA)]
    for _ in range(500):
        model.observe("phone:lana", keys)
    assert {model.owners_of(k) for k in keys} == {1}
    assert distinctive_text(LANA, model) == distinctive(LANA)


def test_owner_counts_saturate_and_repeats_within_an_ad_count_once() -> None:
    model = BoilerplateModel(min_owners=3)
    model.observe("a", [7, 7, 7])
    assert model.owners_of(7) == 1
    for owner in "bcdefg":
        model.observe(owner, [7])
    assert model.owners_of(7) == 3
    assert model.is_boilerplate(7)
    assert len(model) == 3  # rows stop growing once the key is saturated
    assert model.owners_of(8) == 0


def test_distinctive_sentences_keep_order_and_drop_repeats() -> None:
    model = BoilerplateModel(min_owners=2)
    model.observe("x", [sentence_key("geen sms")])
    model.observe("y", [sentence_key("geen sms")])
    sentences = ["ik ben lana", "geen sms", "ik ben lana", "tot snel"]
    assert model.distinctive_sentences(sentences) == ["ik ben lana", "tot snel"]


def test_min_owners_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        BoilerplateModel(min_owners=1)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.lists(st.integers(0, 40), max_size=6)),
        max_size=60,
    ),
    st.integers(2, 5),
)
def test_boilerplate_counts_match_a_plain_set_model(
    observations: list[tuple[int, list[int]]], min_owners: int
) -> None:
    # Merge every few rows, so that the sorted arrays and the pending dict both serve.
    saved = text_module._MERGE_ROWS
    text_module._MERGE_ROWS = 7
    try:
        model = BoilerplateModel(min_owners)
        owners: dict[int, set[int]] = {}
        for owner, keys in observations:
            model.observe(f"owner{owner}", keys)
            for key in keys:
                owners.setdefault(key, set()).add(owner)
        for key in range(41):
            assert model.owners_of(key) == min(len(owners.get(key, ())), min_owners)
    finally:
        text_module._MERGE_ROWS = saved


# --- signatures --------------------------------------------------------------------


def test_signature_is_fixed_across_processes_and_versions() -> None:
    # Derived from blake2b only: a change here invalidates every stored signature.
    signature = text_signature(normalise_text(BELLA))
    assert len(signature) == 4 * NUM_PERM
    assert blake2b(signature, digest_size=8).hexdigest() == EXPECTED_BELLA_DIGEST
    assert np.frombuffer(signature, dtype="<u4")[:3].tolist() == EXPECTED_BELLA_SLOTS


EXPECTED_BELLA_DIGEST = "d99e7bff5f88e764"
EXPECTED_BELLA_SLOTS = [33800615, 365710451, 27383786]


def test_short_and_empty_texts_have_no_signature() -> None:
    assert text_signature("") == b""
    assert text_signature(" ".join(["woord"] * (MIN_TOKENS - 1))) == b""
    assert text_signature(" ".join(f"w{i}" for i in range(MIN_TOKENS))) != b""


def test_batched_signatures_equal_single_ones() -> None:
    texts = [normalise_text(t) for t in (LANA, "te kort", MIRA, "", BELLA, SOFIA)] * 300
    assert text_signatures(texts) == [text_signature(t) for t in texts]


def test_signature_similarity_estimates_bigram_jaccard() -> None:
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(60)]
    for _ in range(30):
        a = [rng.choice(vocabulary) for _ in range(rng.randint(20, 80))]
        b = list(a)
        for _ in range(rng.randint(0, 40)):
            b[rng.randrange(len(b))] = rng.choice(vocabulary)
        exact = len(bigram_set(a) & bigram_set(b)) / len(bigram_set(a) | bigram_set(b))
        estimate = signature_similarity(text_signature(" ".join(a)), text_signature(" ".join(b)))
        assert abs(estimate - exact) < 0.16  # ~4 standard deviations at 128 permutations


def bigram_set(words: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(words))


@given(st.text(alphabet="abcde ", min_size=0, max_size=120))
def test_signature_similarity_of_identical_signatures_is_one(text: str) -> None:
    signature = text_signature(text)
    assert signature_similarity(signature, signature) == (1.0 if signature else 0.0)


def test_signatures_to_array_flags_empty_rows() -> None:
    signature = text_signature(normalise_text(LANA))
    array = signatures_to_array([signature, b""])
    assert array.shape == (2, NUM_PERM) and array.dtype == np.uint32
    assert array[0].astype("<u4").tobytes() == signature
    assert (array[1] == EMPTY_SLOT).all()
    with pytest.raises(ValueError):
        signatures_to_array([b"\x00" * 12])


# --- paraphrase and unrelated ads ----------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(LANA, LANA_REWRITTEN), (BELLA, BELLA_REWRITTEN)])
def test_rewritten_ads_are_similar_and_lsh_candidates(first: str, second: str) -> None:
    a, b = distinctive(first), distinctive(second)
    assert text_similarity(a, b) >= TEXT_MATCH_THRESHOLD
    index = TextLSHIndex()
    index.add(1, text_signature(a))
    assert index.query(text_signature(b)) == {1}


@pytest.mark.parametrize(
    ("first", "second"),
    [(LANA, MIRA), (BELLA, SOFIA), (LANA_REWRITTEN, MIRA), (SOFIA, BELLA_REWRITTEN)],
)
def test_unrelated_ads_of_the_same_genre_are_not_similar(first: str, second: str) -> None:
    a, b = distinctive(first), distinctive(second)
    assert text_similarity(a, b) < TEXT_MATCH_THRESHOLD
    assert signature_similarity(text_signature(a), text_signature(b)) < 0.2


def test_text_similarity_of_empty_text_is_zero() -> None:
    assert text_similarity("", "") == 0.0
    assert text_similarity("ik ben lana", "") == 0.0


def test_text_similarity_honours_the_cutoff() -> None:
    a, b = distinctive(LANA), distinctive(MIRA)
    assert text_similarity(a, b, score_cutoff=95) == 0.0
    assert text_similarity(a, a, score_cutoff=95) == 100.0


words = st.sampled_from(
    ["ik", "ben", "lana", "nieuw", "in", "utrecht", "discreet", "rustig", "deze", "week", "bel"]
)
texts = st.lists(words, max_size=30).map(" ".join)


@given(texts, texts)
def test_text_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    score = text_similarity(a, b)
    assert 0.0 <= score <= 100.0
    assert score == text_similarity(b, a)


@given(texts.filter(bool))
def test_identical_texts_score_100(text: str) -> None:
    assert text_similarity(text, text) == 100.0


# --- LSH ---------------------------------------------------------------------------


def random_signatures(seed: int, groups: int, per_group: int, noise: float) -> np.ndarray:
    """Groups of near-duplicate signatures: each slot of a copy redrawn with ``noise``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**32 - 1, size=(groups, NUM_PERM), dtype=np.uint32)
    sigs = np.repeat(base, per_group, axis=0)
    redraw = rng.random(sigs.shape) < noise
    sigs[redraw] = rng.integers(0, 2**32 - 1, size=int(redraw.sum()), dtype=np.uint32)
    return sigs


def query_pairs(index: TextLSHIndex, keys: list[int], blobs: list[bytes]) -> set[tuple[int, int]]:
    pairs = set()
    for key, blob in zip(keys, blobs, strict=True):
        for other in index.query(blob):
            if other != key:
                pairs.add((min(key, other), max(key, other)))
    return pairs


@settings(max_examples=15, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 30),
    st.integers(1, 8),
    st.floats(0.2, 0.9),
    st.sampled_from([1, 3, 200]),
    st.sampled_from([(42, 3), (20, 2), (8, 5)]),
    st.integers(0, 6),
    st.sampled_from([4, 5000]),
)
def test_batch_pairs_equal_the_union_of_queries(
    seed: int,
    groups: int,
    per_group: int,
    noise: float,
    max_bucket: int,
    layout: tuple[int, int],
    copies: int,
    member_cap: int,
) -> None:
    sigs = random_signatures(seed, groups, per_group, noise)
    rng = np.random.default_rng(seed)
    sigs[rng.random(len(sigs)) < 0.1] = EMPTY_SLOT
    sigs[1 : 1 + copies] = sigs[0]  # verbatim reposts
    keys = rng.permutation(10 * len(sigs))[: len(sigs)].astype(np.int64) - 5
    bands, rows = layout
    saved = text_module._SCAN_ITEMS, text_module._MERGE_ITEMS, text_module._MEMBER_CAP
    # Merge every 11 items and scan up to 5: merged and pending items both serve queries.
    text_module._SCAN_ITEMS, text_module._MERGE_ITEMS, text_module._MEMBER_CAP = 5, 11, member_cap
    try:
        batch = TextLSHIndex(bands, rows, max_bucket).candidate_pairs(keys, sigs)
        index = TextLSHIndex(bands, rows, max_bucket)
        blobs = [b"" if (row == EMPTY_SLOT).all() else row.astype("<u4").tobytes() for row in sigs]
        for key, blob in zip(keys.tolist(), blobs, strict=True):
            index.add(key, blob)
        queried = query_pairs(index, keys.tolist(), blobs)
    finally:
        text_module._SCAN_ITEMS, text_module._MERGE_ITEMS, text_module._MEMBER_CAP = saved
    assert batch.dtype == np.int64 and batch.shape[1] == 2
    assert (batch[:, 0] < batch[:, 1]).all()
    assert len({tuple(p) for p in batch.tolist()}) == len(batch)
    assert {tuple(p) for p in batch.tolist()} == queried


def test_add_many_equals_adding_one_at_a_time() -> None:
    sigs = random_signatures(3, 40, 3, 0.5)
    keys = np.arange(len(sigs), dtype=np.int64) * 3
    blobs = [row.astype("<u4").tobytes() for row in sigs]
    one_by_one, bulk = TextLSHIndex(), TextLSHIndex()
    for key, blob in zip(keys.tolist(), blobs, strict=True):
        one_by_one.add(key, blob)
    bulk.add_many(keys, sigs)
    assert len(one_by_one) == len(bulk) == len(sigs)
    for blob in blobs:
        assert one_by_one.query(blob) == bulk.query(blob)


def test_over_full_buckets_are_skipped_and_counted() -> None:
    shared = random_signatures(1, 1, 1, 0.0)[0]
    sigs = np.repeat(shared[None, :], 6, axis=0)
    sigs[:, 3:] = random_signatures(2, 6, 1, 0.0)[:, 3:]  # only band 0 is shared
    index = TextLSHIndex(bands=42, rows=3, max_bucket=5)
    assert index.candidate_pairs(np.arange(6), sigs).shape == (0, 2)
    assert index.skipped_buckets == 1
    index.add_many(np.arange(6), sigs)
    assert index.query(sigs[0].astype("<u4").tobytes()) == {0}
    assert index.skipped_buckets == 2


def test_exact_reposts_do_not_fill_a_bucket() -> None:
    # 300 verbatim reposts and two rewrites of one text: one distinct signature per text.
    a, b = distinctive(LANA), distinctive(LANA_REWRITTEN)
    signatures = [text_signature(a)] * 300 + [text_signature(b)] * 2
    index = TextLSHIndex(max_bucket=200)
    pairs = index.candidate_pairs(np.arange(302), signatures_to_array(signatures))
    assert len(pairs) == 302 * 301 // 2
    assert index.skipped_buckets == 0


def test_empty_signatures_are_ignored() -> None:
    index = TextLSHIndex()
    index.add(1, b"")
    assert len(index) == 0
    assert index.query(b"") == set()
    assert index.candidate_pairs(np.array([1, 2]), signatures_to_array([b"", b""])).shape == (0, 2)


def test_layouts_beyond_the_signature_are_refused() -> None:
    with pytest.raises(ValueError):
        TextLSHIndex(bands=43, rows=3)


@given(seed=st.integers(0, 10_000), threshold=st.sampled_from([0.0, 0.3, 0.6, 1.0]))
@settings(max_examples=40, deadline=None)
def test_prefiltered_pairs_are_the_pairs_whose_signatures_agree_enough(
    seed: int, threshold: float
) -> None:
    sigs = random_signatures(seed, 6, 5, 0.5)
    keys = np.arange(len(sigs), dtype=np.int64)
    every = TextLSHIndex().candidate_pairs(keys, sigs)
    kept = TextLSHIndex().candidate_pairs(keys, sigs, min_similarity=threshold)
    slots = text_module.PREFILTER_SLOTS
    agree = (sigs[every[:, 0], :slots] == sigs[every[:, 1], :slots]).mean(axis=1)
    expected = {tuple(p) for p in every[agree >= threshold - 1e-9].tolist()}
    assert {tuple(p) for p in kept.tolist()} == expected


def test_the_prefilter_keeps_rewritten_ads() -> None:
    texts = [distinctive(t) for t in (LANA, LANA_REWRITTEN, MIRA, BELLA, BELLA_REWRITTEN)]
    sigs = signatures_to_array(text_signatures(texts))
    pairs = TextLSHIndex().candidate_pairs(np.arange(5), sigs, min_similarity=0.3)
    assert {(0, 1), (3, 4)} <= {tuple(p) for p in pairs.tolist()}


@given(
    st.lists(
        st.tuples(st.text(st.sampled_from("ab cde"), max_size=30), st.text(max_size=30)),
        max_size=20,
    ),
    st.sampled_from([0.0, 50.0, 85.0]),
)
@settings(max_examples=60, deadline=None)
def test_batched_similarities_equal_single_ones(
    pairs: list[tuple[str, str]], cutoff: float
) -> None:
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    batched = text_similarities(left, right, score_cutoff=cutoff).tolist()
    single = [text_similarity(a, b, score_cutoff=cutoff) for a, b in pairs]
    assert batched == pytest.approx(single, abs=1e-3)


def test_batched_similarities_need_aligned_lists() -> None:
    with pytest.raises(ValueError, match="left texts"):
        text_similarities(["a"], [])


@given(
    seed=st.integers(0, 10_000),
    max_bucket=st.sampled_from([1, 3, 200]),
    copies=st.integers(0, 6),
)
@settings(max_examples=40, deadline=None)
def test_query_many_equals_one_query_per_row(seed: int, max_bucket: int, copies: int) -> None:
    sigs = random_signatures(seed, 5, 6, 0.4)
    sigs[1 : 1 + copies] = sigs[0]
    rng = np.random.default_rng(seed)
    sigs[rng.random(len(sigs)) < 0.1] = EMPTY_SLOT
    stored, asked = sigs[:20], sigs[20:]
    keys = np.arange(100, 120, dtype=np.int64)
    index = TextLSHIndex(max_bucket=max_bucket)
    index.add_many(keys, stored)
    expected = set()
    for row, sig in enumerate(asked):
        if not (sig == EMPTY_SLOT).all():
            expected |= {(row, key) for key in index.query(sig.astype("<u4").tobytes())}
    skipped_by_queries = index.skipped_buckets
    index.skipped_buckets = 0
    pairs = index.query_many(asked)
    assert {tuple(p) for p in pairs.tolist()} == expected
    assert len({tuple(p) for p in pairs.tolist()}) == len(pairs)
    assert index.skipped_buckets == skipped_by_queries


def test_narrow_signatures_pair_like_their_low_16_bits() -> None:
    sigs = random_signatures(11, 6, 5, 0.4)
    keys = np.arange(len(sigs), dtype=np.int64) * 3
    low = sigs & 0xFFFF
    wide = TextLSHIndex().candidate_pairs(keys, low.astype(np.uint32), min_similarity=0.3)
    narrow = TextLSHIndex().candidate_pairs(keys, low.astype(np.uint16), min_similarity=0.3)
    assert narrow.tolist() == wide.tolist()
    assert len(narrow) > 0


def test_buckets_sliced_into_small_pair_batches_give_the_same_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sigs = random_signatures(5, 8, 6, 0.3)
    keys = np.arange(len(sigs), dtype=np.int64)
    whole = TextLSHIndex().candidate_pairs(keys, sigs, min_similarity=0.2)
    monkeypatch.setattr(text_module, "_PAIRS_PER_SLICE", 3)
    sliced = TextLSHIndex().candidate_pairs(keys, sigs, min_similarity=0.2)
    assert sliced.tolist() == whole.tolist() and len(whole) > 10
