"""The synthetic corpus: deterministic, fictional, and every hard case present."""

from __future__ import annotations

import collections
import io
import itertools
import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import imagehash
import numpy as np
import phonenumbers
import pytest
from PIL import Image

from adwatch.synthetic.phones import (
    CORE_POOL_SIZE,
    OBFUSCATED_FORMS,
    SHARED_LINES,
    fiction_phone_pool,
    is_fiction_phone,
)
from adwatch.synthetic.vocabulary import AGENCY_BLOCKS
from benchmarks.corpus import (
    HELP_DESK_PHONES,
    IMAGE_VARIANTS,
    TRANSFORMS,
    CorpusConfig,
    FeatureColumns,
    LabelledAd,
    generate_ads,
    generate_features,
    render_image,
    write_jsonl_corpus,
)
from matching.images import VARIANTS, fingerprint_image, image_distance
from matching.phones import extract_phones
from matching.records import AdFeatures
from matching.text import split_sentences


@pytest.fixture(scope="module")
def ads() -> list[LabelledAd]:
    return generate_ads(CorpusConfig(n_ads=600))


@pytest.fixture(scope="module")
def columns() -> FeatureColumns:
    return generate_features(CorpusConfig(n_ads=50_000, seed=11))


def by_advertiser(ads: list[LabelledAd]) -> dict[str, list[LabelledAd]]:
    groups: dict[str, list[LabelledAd]] = collections.defaultdict(list)
    for ad in ads:
        groups[ad.advertiser_id].append(ad)
    return groups


# --- determinism and fiction ------------------------------------------------------------


def test_same_seed_same_corpus(ads: list[LabelledAd]) -> None:
    assert generate_ads(CorpusConfig(n_ads=600)) == ads
    assert generate_ads(CorpusConfig(n_ads=600, seed=8)) != ads
    spec = ads[0].images[0]
    assert render_image(spec) == render_image(spec)
    one, two = (generate_features(CorpusConfig(n_ads=5_000, seed=3)) for _ in range(2))
    for name in ("advertiser", "posted_at", "phone_ids", "image_phash", "image_variants"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert one.to_ad_features(17) == two.to_ad_features(17)


def test_every_number_is_fictional_and_valid(ads: list[LabelledAd]) -> None:
    # The help desks are shared lines, never an advertiser's number.
    assert set(HELP_DESK_PHONES) <= set(SHARED_LINES)
    assert all(is_fiction_phone(number) for number in HELP_DESK_PHONES)
    used = {p for ad in ads for p in ad.phones}
    assert not used & set(SHARED_LINES)
    # A small corpus keeps to the Ofcom, ACMA and NANPA-202 ranges.
    assert used <= set(fiction_phone_pool()[:CORE_POOL_SIZE])
    assert {p[:3] for p in used} >= {"+44", "+12"}
    assert {ad.help_desk for ad in ads if ad.help_desk} <= set(HELP_DESK_PHONES)


def test_texts_carry_no_other_digits_that_read_as_phones(ads: list[LabelledAd]) -> None:
    for ad in ads:
        found = {m.e164 for m in extract_phones(f"{ad.title}\n{ad.text}")}
        assert found <= {*ad.phones, ad.help_desk}, ad.text


def test_too_many_advertisers_for_the_fiction_ranges_is_refused() -> None:
    with pytest.raises(ValueError, match="fiction ranges hold"):
        generate_ads(CorpusConfig(n_ads=20_000))


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="help_desk_rate"):
        CorpusConfig(help_desk_rate=1.5)
    with pytest.raises(ValueError, match="n_sites"):
        CorpusConfig(n_sites=0)


# --- phone extraction -------------------------------------------------------------------


def test_true_phones_are_extracted(ads: list[LabelledAd]) -> None:
    with_phones = [ad for ad in ads if ad.phones]
    missed = collections.Counter()
    complete = 0
    for ad in with_phones:
        found = {m.e164 for m in extract_phones(f"{ad.title}\n{ad.text}")}
        complete += set(ad.phones) <= found
        missed.update(f for p, f in zip(ad.phones, ad.phone_forms, strict=True) if p not in found)
    assert complete >= 0.99 * len(with_phones), f"missed forms: {dict(missed)}"


# --- hard cases (600 ads) -----------------------------------------------------------------


def test_agency_blocks_are_shared_by_unrelated_advertisers(ads: list[LabelledAd]) -> None:
    members = collections.defaultdict(set)
    for ad in ads:
        if ad.agency is not None:
            members[ad.agency].add(ad.advertiser_id)
            assert all(sentence in ad.text for sentence in AGENCY_BLOCKS[ad.agency])
    assert len(members) == 4
    assert all(len(advertisers) >= 3 for advertisers in members.values())


def test_help_desk_numbers_appear_for_many_advertisers(ads: list[LabelledAd]) -> None:
    advertisers = collections.defaultdict(set)
    for ad in ads:
        if ad.help_desk:
            advertisers[ad.help_desk].add(ad.advertiser_id)
            assert "+44 20 7946 09" in ad.text
    assert len(advertisers) == 3
    assert all(len(a) >= 10 for a in advertisers.values())


def test_stock_photos_are_used_by_many_advertisers(ads: list[LabelledAd]) -> None:
    advertisers = collections.defaultdict(set)
    owners = collections.defaultdict(set)
    for ad in ads:
        for spec in ad.images:
            (advertisers if spec.is_stock else owners)[spec.photo].add(ad.advertiser_id)
    assert len(advertisers) == 4
    assert all(len(a) >= 10 for a in advertisers.values())
    assert all(len(a) == 1 for a in owners.values())  # own photos are never shared


def test_phones_are_obfuscated_and_foreign(ads: list[LabelledAd]) -> None:
    forms = collections.Counter(f for ad in ads for f in ad.phone_forms)
    obfuscated = sum(forms[f] for f in OBFUSCATED_FORMS)
    assert 0.2 < obfuscated / forms.total() < 0.4
    assert len(set(forms) & set(OBFUSCATED_FORMS)) >= 9
    assert {"idd_00", "grouped_3", "trunk_zero"} <= set(forms)
    assert all(not p.startswith("+31") for ad in ads for p in ad.phones)


def test_some_ads_have_no_phone(ads: list[LabelledAd]) -> None:
    no_phone = [ad for ad in ads if not ad.phones]
    assert 0.08 < len(no_phone) / len(ads) < 0.3
    assert any(ad.images for ad in no_phone)
    # Whole advertisers without a phone, linkable only by photo or text.
    groups = by_advertiser(ads)
    assert any(len(g) >= 2 and not any(ad.phones for ad in g) for g in groups.values())


def test_photos_are_reposted_transformed(ads: list[LabelledAd]) -> None:
    kinds = collections.Counter(spec.transform for ad in ads for spec in ad.images)
    assert set(kinds) == set(TRANSFORMS)
    assert 0.15 < 1 - kinds["original"] / kinds.total() < 0.45
    versions = collections.defaultdict(set)
    for ad in ads:
        for spec in ad.images:
            versions[spec.photo].add(spec.transform)
    assert sum(len(v) >= 2 for v in versions.values()) >= 50


def test_transformed_copies_stay_near_their_photo(ads: list[LabelledAd]) -> None:
    # The corpus is hard, not impossible: every kind of copy is within the matcher's radius.
    samples: dict[str, list] = collections.defaultdict(list)
    for ad in ads:
        for spec in ad.images:
            if spec.transform != "original" and len(samples[spec.transform]) < 4:
                samples[spec.transform].append(spec)
    for kind, specs in samples.items():
        for spec in specs:
            original = replace(
                spec, transform="original", crop=0.0, mirror=False, scale=1.0, border=0.0
            )
            original = replace(original, watermark=False, quality=88)
            distance = image_distance(
                fingerprint_image(render_image(original)), fingerprint_image(render_image(spec))
            )
            assert distance <= 8, (kind, spec)


def test_advertisers_post_for_several_persons_with_several_phones(ads: list[LabelledAd]) -> None:
    found = 0
    for group in by_advertiser(ads).values():
        persons = {ad.person_id for ad in group}
        phones = {p for ad in group for p in ad.phones}
        names = {ad.title for ad in group}
        if len(persons) >= 2 and len(phones) >= 2 and len(names) >= 2:
            found += 1
    assert found >= 3
    two = [ad for ad in ads if len(ad.phones) == 2]
    assert len(two) >= 10
    # Both numbers of a two-phone ad also appear alone in other ads of the advertiser.
    alone = {(ad.advertiser_id, ad.phones[0]) for ad in ads if len(ad.phones) == 1}
    assert any((ad.advertiser_id, ad.phones[1]) in alone for ad in two)


def test_persons_move_between_cities_over_time(ads: list[LabelledAd]) -> None:
    times = [ad.posted_at for ad in ads]
    assert times == sorted(times)
    assert all(t.utcoffset() is not None for t in times)
    assert (times[-1] - times[0]).days >= 30
    persons = collections.defaultdict(list)
    for ad in ads:
        persons[ad.person_id].append(ad.city)
    travellers = [cities for cities in persons.values() if len(cities) >= 3]
    assert sum(len(set(c)) >= 2 for c in travellers) >= 0.8 * len(travellers)


def test_many_advertisers_post_once(ads: list[LabelledAd]) -> None:
    sizes = [len(g) for g in by_advertiser(ads).values()]
    assert 0.2 < sizes.count(1) / len(sizes) < 0.45
    assert max(sizes) >= 10


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter dropped, doubled or two letters swapped."""
    if min(len(a), len(b)) < 4:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
    short, long = sorted((a, b), key=len)
    if len(long) - len(short) != 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_texts_are_paraphrased_within_an_advertiser(ads: list[LabelledAd]) -> None:
    def own(ad: LabelledAd) -> list[str]:
        return [s.strip() for s in ad.text.split("\n\n")[0].split(".") if s.strip()]

    groups = [g for g in by_advertiser(ads).values() if len(g) >= 4]
    # Copies vary within most advertisers, yet verbatim reposts exist.
    assert sum(len({ad.text for ad in g}) >= 2 for g in groups) >= 0.9 * len(groups)
    persons = collections.defaultdict(list)
    for ad in ads:
        persons[ad.person_id].append(own(ad))
    pairs = [(a, b) for texts in persons.values() for a, b in itertools.combinations(texts, 2)]
    assert any(a[1:] == b[1:] for a, b in pairs)

    def jaccard(a: list[str], b: list[str]) -> float:
        return len(set(a) & set(b)) / len(set(a) | set(b))

    # Sentences are shared within a person and rarely across advertisers.
    same = [jaccard(a, b) for a, b in pairs]
    other = [jaccard(own(a), own(b)) for a, b in zip(ads, ads[7:], strict=False)]
    assert np.median(same) > 0.3 > np.median(other)
    # Reordered sentences: the shared sentences of two ads in another order.
    reordered = 0
    for a, b in pairs:
        common = set(a) & set(b)
        reordered += [s for s in a if s in common] != [s for s in b if s in common]
    assert reordered >= 100
    # Typos: a word of one ad is one edit away from a word of the same person's other ad.
    typos = 0
    for a, b in pairs:
        words_a, words_b = (set(re.findall(r"\w+", " ".join(text))) for text in (a, b))
        typos += any(one_edit_apart(x, y) for x in words_a - words_b for y in words_b - words_a)
    assert typos >= 100


# --- images and files -------------------------------------------------------------------


def test_base_photos_are_perceptually_distinct(ads: list[LabelledAd]) -> None:
    photos = sorted({spec.photo for ad in ads for spec in ad.images})[:120]
    seed = ads[0].images[0].seed
    hashes = []
    for photo in photos:
        spec = replace(ads[0].images[0], photo=photo, transform="original", crop=0.0)
        spec = replace(spec, mirror=False, scale=1.0, border=0.0, watermark=False, quality=88)
        assert spec.seed == seed
        image = Image.open(io.BytesIO(render_image(spec)))
        hashes.append(imagehash.phash(image))
    distances = np.array([a - b for a, b in itertools.combinations(hashes, 2)])
    percentiles = np.percentile(distances, [0, 1, 5, 50])
    print(f"pHash distances between {len(hashes)} base photos: min/p1/p5/median {percentiles}")
    assert np.median(distances) >= 28
    assert np.mean(distances > 20) >= 0.98
    assert distances.min() >= 10


def test_jsonl_corpus_round_trip(ads: list[LabelledAd], tmp_path: Path) -> None:
    subset = ads[:60]
    path = write_jsonl_corpus(subset, tmp_path)
    assert path == tmp_path / "ads.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert [line["ad_id"] for line in lines] == [t["ad_id"] for t in truth]
    assert [t["advertiser_id"] for t in truth] == [ad.advertiser_id for ad in subset]
    for line, ad in zip(lines, subset, strict=True):
        assert set(line) == {"ad_id", "site", "url", "city", "posted_at", "title", "text", "images"}
        assert datetime.fromisoformat(line["posted_at"]) == ad.posted_at
        assert datetime.fromisoformat(line["posted_at"]).tzinfo is not None
        assert line["text"] == ad.text
        for relative in line["images"]:
            with Image.open(tmp_path / relative) as image:
                image.verify()
    files = list((tmp_path / "images").iterdir())
    assert len(files) == len({spec.image_id for ad in subset for spec in ad.images})


# --- feature level ----------------------------------------------------------------------


def test_feature_columns_yield_ad_features(columns: FeatureColumns) -> None:
    assert IMAGE_VARIANTS == VARIANTS
    features = list(columns.iter_ad_features(0, 200))
    assert all(isinstance(f, AdFeatures) for f in features)
    assert features[0].ad_id == "ad0000001"
    assert all(len(image.variants) == len(VARIANTS) for f in features for image in f.images)
    assert all(f.text_signature == b"" and f.distinctive_text for f in features)
    assert [f.posted_at for f in features] == sorted(f.posted_at for f in features)
    phones = {p for f in features for p in f.phones}
    assert phones and all(p.startswith("+999") and len(p) == 15 for p in phones)
    # +999 is no country's code: such a string is nobody's number.
    for phone in phones:
        with pytest.raises(phonenumbers.NumberParseException):
            phonenumbers.parse(phone)


def test_feature_level_has_the_hard_cases(columns: FeatureColumns) -> None:
    n = len(columns)
    assert n == 50_000
    ad_of_phone = np.repeat(np.arange(n), np.diff(columns.phone_offsets))
    ad_of_image = np.repeat(np.arange(n), np.diff(columns.image_offsets))
    labels = columns.labels
    sizes = np.bincount(labels)
    # Help desks and stock photos: shared by hundreds of advertisers.
    for desk in range(columns.n_help_desks):
        assert len(np.unique(labels[ad_of_phone[columns.phone_ids == desk]])) >= 300
    for stock in range(columns.n_stock_photos):
        assert len(np.unique(labels[ad_of_image[columns.image_base == stock]])) >= 300
    # Agencies, phoneless ads, ads with two own phones, singletons.
    assert len(np.unique(labels[columns.agency >= 0])) > 0.2 * len(sizes)
    own_phones = np.bincount(ad_of_phone[columns.phone_ids >= columns.n_help_desks], minlength=n)
    assert 0.08 < np.mean(own_phones == 0) < 0.3
    assert np.mean(own_phones == 2) > 0.02
    assert 0.2 < np.mean(sizes == 1) < 0.45
    # Several persons per advertiser; persons move between cities.
    persons_per_advertiser = np.bincount(
        labels[np.unique(columns.person, return_index=True)[1]], minlength=len(sizes)
    )
    assert np.sum(persons_per_advertiser >= 2) > 100
    order = np.lexsort((columns.posted_at, columns.person))
    same_person = columns.person[order][1:] == columns.person[order][:-1]
    moved = columns.city[order][1:] != columns.city[order][:-1]
    assert 0.5 < moved[same_person].mean() < 0.8
    # Paraphrases: most ads of a person differ from its template, a quarter are copies.
    assert 0.15 < np.mean(columns.text_variant == 0) < 0.35


def test_simulated_hashes_relate_copies_to_their_photo(columns: FeatureColumns) -> None:
    kinds = columns.image_transform
    first_use = {}
    for row in np.flatnonzero(kinds == 0)[:20_000]:
        first_use.setdefault(int(columns.image_base[row]), int(row))

    def bits(a: int, b: int) -> int:
        return (a ^ b).bit_count()

    checked = collections.Counter()
    for row in range(len(kinds)):
        base = int(columns.image_base[row])
        if base not in first_use or row == first_use[base]:
            continue
        original = first_use[base]
        phash, variants = int(columns.image_phash[row]), columns.image_variants[row].tolist()
        o_phash, o_variants = int(columns.image_phash[original]), columns.image_variants[original]
        kind = TRANSFORMS[int(kinds[row])]
        if kind == "mirrored":
            assert bits(phash, int(o_variants[0])) <= 8 and bits(variants[0], o_phash) <= 8
        elif kind == "cropped":
            assert bits(phash, int(o_variants[1])) <= 8
        else:
            assert bits(phash, o_phash) <= 8
        checked[kind] += 1
    assert set(checked) == set(TRANSFORMS)
    # Unrelated photos are far apart.
    sample = columns.image_phash[:2000]
    distances = np.unpackbits((sample[:1000] ^ sample[1000:]).view(np.uint8)).reshape(1000, -1)
    assert np.median(distances.sum(axis=1)) >= 28


def test_feature_texts_are_the_ads_own_sentences(columns: FeatureColumns) -> None:
    people = collections.defaultdict(list)
    for i in range(3000):
        people[int(columns.person[i])].append(columns.distinctive_text(i))
    repeated = [texts for texts in people.values() if len(texts) >= 3]
    assert repeated
    assert sum(len(set(t)) >= 2 for t in repeated) >= 0.8 * len(repeated)
    agency_ad = int(np.flatnonzero(columns.agency >= 0)[0])
    full = columns.full_text(agency_ad)
    assert full.startswith(" ".join(AGENCY_BLOCKS[columns.agency[agency_ad]]))
    # As boilerplate removal sees it: sentence by sentence, the ad's own ones after the
    # agency's block, then the footer.
    sentences = split_sentences(full)
    blocks = len(AGENCY_BLOCKS[columns.agency[agency_ad]])
    own_then_footer = " ".join(sentences[blocks:])
    assert own_then_footer.startswith(columns.distinctive_text(agency_ad) + " ")
