"""The demo site's synthetic content: deterministic, fiction-only, with a usable ground truth."""

from __future__ import annotations

import io
import re
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from PIL import Image

from adwatch.demo.content import (
    AGENCY_PHONE_DISPLAY,
    AGENCY_PHONE_E164,
    BAD_IMAGE_NAME,
    BASE_DATE,
    FAULT_AD_IDS,
    FAULT_BAD_IMAGE,
    HELP_DESK_PHONE_E164,
    DemoSiteContent,
    display_phone,
    generate_demo_content,
)
from adwatch.synthetic.phones import AU_FICTION_MOBILES, is_fiction_phone
from adwatch.synthetic.photos import PICTURE_SIZE
from adwatch.synthetic.places import CITY_NAMES
from matching.images import describe_image, image_distance

# Ofcom drama range +44 20 7946 0000–0999; ACMA fiction mobiles +61 491 570 006–159.
UK_FICTION = re.compile(r"^\+442079460\d{3}$")
AU_FICTION = re.compile(r"^\+61491570(00[6-9]|0[1-9]\d|1[0-5]\d)$")


@pytest.fixture(scope="module")
def content() -> DemoSiteContent:
    return generate_demo_content(seed=7, n_ads=40)


def _dhash(data: bytes) -> int:
    """A 64-bit difference hash, enough to tell "same picture" from "another picture"."""
    pixels = Image.open(io.BytesIO(data)).convert("L").resize((9, 8)).tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = bits << 1 | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return bits


def _by(content: DemoSiteContent, key: str) -> dict[str, set[str]]:
    """Map each phone (``key="phone"``) or image name to the advertisers using it."""
    users: dict[str, set[str]] = defaultdict(set)
    for ad in content.ads:
        values = (ad.phone_e164,) if key == "phone" else ad.image_names
        for value in values:
            users[value].add(ad.advertiser_id)
    return users


def test_same_seed_gives_same_ads_and_image_bytes() -> None:
    first = generate_demo_content(seed=11, n_ads=24, faults=True)
    second = generate_demo_content(seed=11, n_ads=24, faults=True)
    assert first.ads == second.ads
    assert first.reviews == second.reviews
    assert list(first.images) == list(second.images)
    assert all(first.images[name] == second.images[name] for name in first.images)


def test_different_seed_gives_different_content() -> None:
    first = generate_demo_content(seed=1)
    second = generate_demo_content(seed=2)
    assert first.ads != second.ads
    assert [ad.title for ad in first.ads] != [ad.title for ad in second.ads]
    assert set(first.images).isdisjoint(second.images)
    some = next(iter(first.images))
    assert first.images[some] not in {second.images[name] for name in second.images}


def test_shape_of_the_site(content: DemoSiteContent) -> None:
    assert len(content.ads) == 40
    assert len({ad.ad_id for ad in content.ads}) == 40
    assert all(re.fullmatch(r"a\d{4}", ad.ad_id) for ad in content.ads)
    assert len({ad.advertiser_id for ad in content.ads}) == 10
    assert 4 <= sum(ad.requires_js for ad in content.ads) <= 6
    assert content.fault_ads == ()
    for ad in content.ads:
        assert ad.posted_at.utcoffset() == timedelta(hours=1)
        assert BASE_DATE <= ad.posted_at < BASE_DATE + timedelta(days=120)
        assert ad.city in CITY_NAMES
        assert 1 <= len(ad.image_names) <= 4
        assert ad.title and ad.text


def test_advertisers_share_phones_and_photos_but_only_within_themselves(
    content: DemoSiteContent,
) -> None:
    ads_per_phone: dict[str, int] = defaultdict(int)
    ads_per_image: dict[str, int] = defaultdict(int)
    for ad in content.ads:
        ads_per_phone[ad.phone_e164] += 1
        for name in ad.image_names:
            ads_per_image[name] += 1
    assert max(ads_per_phone.values()) >= 3
    assert max(ads_per_image.values()) >= 2
    # Ground truth stays clean: no phone and no picture crosses advertisers.
    assert all(len(users) == 1 for users in _by(content, "phone").values())
    assert all(len(users) == 1 for users in _by(content, "image").values())


def test_some_advertisers_use_two_phones_move_cities_and_some_share_nothing(
    content: DemoSiteContent,
) -> None:
    phones: dict[str, set[str]] = defaultdict(set)
    cities: dict[str, set[str]] = defaultdict(set)
    ads: dict[str, int] = defaultdict(int)
    for ad in content.ads:
        phones[ad.advertiser_id].add(ad.phone_e164)
        cities[ad.advertiser_id].add(ad.city)
        ads[ad.advertiser_id] += 1
    assert any(len(p) == 2 for p in phones.values())
    assert any(len(c) >= 3 for c in cities.values())
    singletons = [adv for adv, count in ads.items() if count == 1]
    assert 2 <= len(singletons) <= 4


def test_every_phone_is_reserved_for_fiction(content: DemoSiteContent) -> None:
    big = generate_demo_content(seed=3, n_ads=400, faults=True)
    for ad in (*content.ads, *big.ads):
        assert UK_FICTION.match(ad.phone_e164) or AU_FICTION.match(ad.phone_e164), ad
        assert is_fiction_phone(ad.phone_e164)
        assert ad.phone_e164 != HELP_DESK_PHONE_E164
        # The displayed form is the same number, however it is written.
        digits = re.sub(r"\D", "", ad.phone_display)
        assert digits.endswith(ad.phone_e164[3:].lstrip("0")), ad.phone_display
    assert all(AU_FICTION.match(number) for number in AU_FICTION_MOBILES)
    assert any(ad.phone_e164.startswith("+61") for ad in big.ads)
    assert not is_fiction_phone("+442079461000")
    assert not is_fiction_phone("+61491570200")


def test_phone_display_formats_vary(content: DemoSiteContent) -> None:
    assert len({display_phone("+442079460123", style) for style in range(5)}) == 5
    assert display_phone("+442079460123", 0) == "+44 20 7946 0123"
    assert display_phone("+442079460123", 1) == "+44 (0)20 7946 0123"
    assert display_phone("+442079460123", 2) == "+44-20-7946-0123"
    assert display_phone("+442079460123", 3) == "0044 20 7946 0123"
    assert display_phone("+61491570156", 0) == "+61 491 570 156"
    assert len({ad.phone_display for ad in content.ads}) > len(
        {ad.phone_e164 for ad in content.ads}
    )
    assert any(
        re.sub(r"\D", "", ad.phone_e164[3:]) in re.sub(r"\D", "", ad.text) for ad in content.ads
    )


def test_texts_mix_dutch_and_english_and_stay_non_explicit(content: DemoSiteContent) -> None:
    texts = " ".join(ad.title + " " + ad.text for ad in content.ads).lower()
    assert "bel of app" in texts or "nieuw in" in texts or "deze week" in texts
    assert "call or whatsapp" in texts or "new in" in texts or "this week" in texts
    for word in ("sex", "nude", "naakt", "erot", "porn", "xxx"):
        assert word not in texts


def test_images_are_small_distinct_jpegs(content: DemoSiteContent) -> None:
    originals: list[int] = []
    for name, data in content.images.items():
        assert len(data) <= 40_000, name
        picture = Image.open(io.BytesIO(data))
        picture.load()
        assert picture.format == "JPEG"
        if name in content.image_variant_of:
            assert picture.size[0] <= PICTURE_SIZE[0]
        else:
            assert picture.size == PICTURE_SIZE
            originals.append(_dhash(data))
    assert len(content.images) >= 20
    # Different "photos" must look different to a perceptual hash.
    for i, first in enumerate(originals):
        for second in originals[i + 1 :]:
            assert bin(first ^ second).count("1") > 8


def test_variants_are_near_duplicates_under_another_name(content: DemoSiteContent) -> None:
    assert content.image_variant_of, "expected some resized or recompressed copies"
    kinds = set(content.image_copy_kind.values())
    assert {"mirrored", "cropped"} <= kinds
    used = {name for ad in content.ads for name in ad.image_names}
    for variant, original in content.image_variant_of.items():
        assert variant != original and variant in used
        assert content.images[variant] != content.images[original]
        # Resized, recompressed, mirrored or cropped: within the matcher's photo radius.
        copy = describe_image(content.images[variant]).fingerprint
        assert image_distance(copy, describe_image(content.images[original]).fingerprint) <= 4


def test_faults_are_added_without_changing_the_healthy_ads() -> None:
    plain = generate_demo_content(seed=5, n_ads=30)
    faulty = generate_demo_content(seed=5, n_ads=30, faults=True)
    assert faulty.ads[: len(plain.ads)] == plain.ads
    assert tuple(ad.ad_id for ad in faulty.fault_ads) == FAULT_AD_IDS
    assert faulty.listed_ads()[:3] == faulty.fault_ads
    bad = faulty.ad(FAULT_BAD_IMAGE)
    assert bad is not None and BAD_IMAGE_NAME in bad.image_names
    with pytest.raises(OSError):
        Image.open(io.BytesIO(faulty.images[BAD_IMAGE_NAME]))


def test_listing_helpers_partition_the_ads(content: DemoSiteContent) -> None:
    static = content.static_ads
    scripted = content.js_ads
    assert {ad.ad_id for ad in static} | {ad.ad_id for ad in scripted} == {
        ad.ad_id for ad in content.ads
    }
    assert not any(ad.requires_js for ad in static)
    assert all(ad.requires_js for ad in scripted)
    assert [ad.posted_at for ad in static] == sorted((ad.posted_at for ad in static), reverse=True)


@pytest.mark.parametrize("n_ads", [0, 1, 2, 3, 7])
def test_tiny_sites_work(n_ads: int) -> None:
    content = generate_demo_content(seed=9, n_ads=n_ads, faults=True)
    assert len([ad for ad in content.ads if ad.ad_id not in FAULT_AD_IDS]) == n_ads


def test_negative_ad_count_is_refused() -> None:
    with pytest.raises(ValueError, match="n_ads"):
        generate_demo_content(n_ads=-1)


def test_generation_is_fast() -> None:
    started = time.perf_counter()
    generate_demo_content(seed=13, n_ads=40)
    assert time.perf_counter() - started < 1.0


def test_a_booking_office_number_sits_beside_several_advertisers_own() -> None:
    content = generate_demo_content(seed=7, n_ads=40)
    assert is_fiction_phone(AGENCY_PHONE_E164)
    printing = [ad for ad in content.ads if AGENCY_PHONE_DISPLAY in ad.text]
    assert {ad.phone_e164 for ad in content.ads}.isdisjoint({AGENCY_PHONE_E164})
    # Beside at least five other numbers: the matcher's hub rule applies to it.
    assert len({ad.phone_e164 for ad in printing}) >= 5


def test_one_ad_is_linked_to_its_advertiser_by_text_alone(content: DemoSiteContent) -> None:
    # The ad that switches to a new number and a new photo still carries a sentence that
    # its advertiser's other ads have and no other advertiser writes.
    def sentences(text: str) -> set[str]:
        return set(re.split(r"(?<=[.!?])\s+", text.replace("\n\n", " ")))

    def photos(names: tuple[str, ...]) -> set[str]:
        return {content.image_variant_of.get(name, name) for name in names}

    text_only = []
    for ad in content.ads:
        siblings = [b for b in content.ads if b.advertiser_id == ad.advertiser_id and b != ad]
        strangers = [b for b in content.ads if b.advertiser_id != ad.advertiser_id]
        if ad.phone_e164 in {b.phone_e164 for b in siblings}:
            continue
        if photos(ad.image_names) & {p for b in siblings for p in photos(b.image_names)}:
            continue
        own = sentences(ad.text) - {s for b in strangers for s in sentences(b.text)}
        if own & {s for b in siblings for s in sentences(b.text)}:
            text_only.append(ad.ad_id)
    assert text_only


def test_a_site_that_uses_every_fiction_number_still_generates() -> None:
    # Past about 1,000 advertisers no number is left for the ad that switches numbers.
    content = generate_demo_content(seed=7, n_ads=5000)
    assert len(content.ads) == 5000
    assert all(is_fiction_phone(ad.phone_e164) for ad in content.ads)
