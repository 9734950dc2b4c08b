"""Phone extraction: obfuscations revealed, non-phones rejected, raw spans kept.

Every number here is ``phonenumbers``' own documented example number for its region and
type, or a number from a range reserved for fiction; none belongs to a person.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from matching.phones import deobfuscate, extract_phones, normalise_phone

REGIONS = ["NL", "RO", "MD", "BG", "PL", "HU", "DE", "BE", "GB", "UA", "FR", "ES", "AU"]


def example(
    region: str, kind: PhoneNumberType = PhoneNumberType.MOBILE
) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


NL_MOBILE = example("NL")  # 06 12345678
NL_E164 = e164(NL_MOBILE)
RO_E164 = e164(example("RO"))
MD_E164 = e164(example("MD"))


def found(text: str, region: str = "NL") -> list[str]:
    return [m.e164 for m in extract_phones(text, region)]


@pytest.mark.parametrize(
    "written",
    [
        "06-12345678",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06/12345678",
        "06_1234_5678",
        "06*12*34*56*78",
        "0 6 1 2 3 4 5 6 7 8",
        "0 6 - 1 2 3 4 - 5 6 7 8",
        "O6-12345678",
        "o6 1234 5678",
        "06-1234-5678",
        "+31 (0)6 12345678",
        "+31612345678",
        "0031 6 12345678",
        "0031612345678",
        "nul zes een twee drie vier vijf zes zeven acht",
        "zero six one two three four five six seven eight",
        "Nul-Zes-Een-Twee-Drie-Vier-Vijf-Zes-Zeven-Acht",
        "06 een twee drie vier 5678",
        "\uff10\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width
        "\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic
        "\u24ea\u2465\u2460\u2461\u2462\u2463\u2464\u2465\u2466\u2467",  # circled
        "06\u20111234\u200b5678",  # non-breaking hyphen, zero-width space
        "tel:0612345678",
        "wa.me/31612345678",
    ],
)
def test_obfuscated_dutch_mobile_is_found(written: str) -> None:
    mentions = extract_phones(f"Nieuw in de stad, bel {written} voor een afspraak")
    assert [m.e164 for m in mentions] == [NL_E164]
    assert mentions[0].region == "NL"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+40 712 034 567", RO_E164),
        ("0040 712 034 567", RO_E164),
        ("wa.me/40712034567", RO_E164),
        ("https://api.whatsapp.com/send?phone=37362112345", MD_E164),
        ("+373 621 12 345", MD_E164),
        ("+359 43 012 345", e164(example("BG"))),
        ("+48 512 345 678", e164(example("PL"))),
        ("+44 20 7946 0630", "+442079460630"),  # Ofcom drama range
        ("+61 491 570 110", "+61491570110"),  # ACMA fiction range
    ],
)
def test_european_and_fiction_numbers_in_international_form(written: str, expected: str) -> None:
    assert found(f"WhatsApp: {written}") == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "Prijs: 150 euro per uur, 250 euro voor 2 uur",
        "€ 0612345678",
        "vanaf 0612345678 euro",
        "Beschikbaar van 12-05-2026 tot 19-05-2026",
        "12.05.2026 - 19.05.2026",
        "2026/05/12",
        "Ik ben 23 jaar, 1,68 m en 55 kg",
        "Postcode 1012 AB Amsterdam",
        "Advertentie-ID 4829103847562910",
        "referentie 20260512123456789",
        "een twee drie, zo makkelijk",
        "Kamer 12, 2e verdieping, huisnummer 140",
        "",
    ],
)
def test_prices_dates_ages_postcodes_and_ids_are_not_phones(text: str) -> None:
    assert found(text) == []


def test_raw_span_points_at_what_the_poster_wrote() -> None:
    text = "Hoi! Bel nul zes een twee drie vier vijf zes zeven acht, of app wa.me/40712034567."
    first, second = extract_phones(text)
    assert (first.raw, first.e164) == ("nul zes een twee drie vier vijf zes zeven acht", NL_E164)
    assert text[first.start : first.end] == first.raw
    assert second.e164 == RO_E164 and text[second.start : second.end] == second.raw
    assert second.raw.endswith("40712034567")


def test_duplicates_are_reported_once_in_order_of_first_mention() -> None:
    text = "Bel +44 20 7946 0630 of 06-12345678. Nogmaals: +44 (0)20 7946 0630"
    mentions = extract_phones(text)
    assert [m.e164 for m in mentions] == ["+442079460630", NL_E164]
    assert mentions[0].raw == "+44 20 7946 0630"


def test_national_numbers_are_read_in_the_default_region() -> None:
    assert found("bel 0712 034 567", "RO") == [RO_E164]
    assert found("bel 06 12345678", "RO") == []  # not a Romanian number


def test_a_lone_dutch_article_is_not_read_as_a_digit() -> None:
    assert found("Ik ben een meisje, 06 12345678") == [NL_E164]


def test_normalise_phone() -> None:
    assert normalise_phone("06-12345678") == NL_E164
    assert normalise_phone("O6 12 34 56 78") == NL_E164
    assert normalise_phone("+40 712 034 567", "NL") == RO_E164
    assert normalise_phone("150 euro") is None
    assert normalise_phone("") is None


def test_deobfuscation_keeps_an_origin_for_every_character() -> None:
    text = "bel ⓪⑥ een twee drie vier 5678 of 0 6 1 2"
    clean = deobfuscate(text)
    assert len(clean.origin) == len(clean.text)
    assert all(0 <= s < e <= len(text) for s, e in clean.origin)


# --- properties ---------------------------------------------------------------

FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL]
SEPARATORS = [" ", ".", "-", "/", " - "]
FILLER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,!?", max_size=40)


@given(
    region=st.sampled_from(REGIONS),
    fmt=st.sampled_from(FORMATS),
    separator=st.sampled_from(SEPARATORS),
    before=FILLER,
    after=FILLER,
)
def test_any_example_mobile_is_found_in_any_international_writing(
    region: str, fmt: int, separator: str, before: str, after: str
) -> None:
    number = example(region)
    written = phonenumbers.format_number(number, fmt).replace(" ", separator)
    mentions = extract_phones(f"{before} {written} {after}", "NL")
    assert e164(number) in [m.e164 for m in mentions]


@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_spans_are_consistent(text: str) -> None:
    for mention in extract_phones(text):
        assert text[mention.start : mention.end] == mention.raw
        assert mention.e164.startswith("+")


@given(
    day=st.integers(1, 28),
    month=st.integers(1, 12),
    year=st.integers(2020, 2030),
    separator=st.sampled_from(["-", ".", "/"]),
    price=st.integers(50, 5000),
    age=st.integers(18, 60),
)
def test_dates_prices_and_ages_are_never_phones(
    day: int, month: int, year: int, separator: str, price: int, age: int
) -> None:
    date = separator.join([f"{day:02d}", f"{month:02d}", str(year)])
    text = f"Beschikbaar {date}, {age} jaar, {price} euro per uur, €{price},-"
    assert found(text) == []


def test_a_number_with_its_country_code_is_kept_before_an_age_unit() -> None:
    # Found by hypothesis: "yr" after a number marks an age, but not after "+31 6 ...".
    assert [m.e164 for m in extract_phones("bel +31 6 12345678 yr oud", "NL")] == ["+31612345678"]
    assert extract_phones("ik ben 25 jaar", "NL") == []
