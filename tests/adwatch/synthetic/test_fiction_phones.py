"""Fiction phone numbers: all reserved for fiction, all valid, every written form read back."""

from __future__ import annotations

import phonenumbers
import pytest

from adwatch.synthetic.phones import (
    AU_FICTION_MOBILES,
    CORE_POOL_SIZE,
    LEEDS_DRAMA,
    LONDON_DRAMA,
    OBFUSCATED_FORMS,
    PLAIN_FORMS,
    SHARED_LINES,
    fiction_phone_pool,
    format_phone,
    is_fiction_phone,
)
from matching.phones import extract_phones

# One number of each range: London, Leeds, NANPA 202, a further NANPA area, ACMA.
ONE_OF_EACH_RANGE = ("+442079460123", "+441134960456", "+12025550142", "+14155550199")


def test_the_pool_is_fiction_valid_distinct_and_apart_from_the_shared_lines() -> None:
    pool = fiction_phone_pool()
    assert len(pool) == len(set(pool)) == 3096
    assert CORE_POOL_SIZE == 2096
    assert pool[0] == LONDON_DRAMA[0] and pool[-1] == "+13035550199"
    assert not set(pool) & set(SHARED_LINES)
    assert len(SHARED_LINES) == 10 and SHARED_LINES[0] == "+442079460999"
    for number in (*pool, *SHARED_LINES):
        assert is_fiction_phone(number), number
        assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number


def test_numbers_outside_the_ranges_are_not_fiction() -> None:
    assert is_fiction_phone(LEEDS_DRAMA[-1]) and is_fiction_phone(AU_FICTION_MOBILES[0])
    for number in (
        "+442079461000",  # just past the London drama range
        "+441134961000",  # just past the Leeds one
        "+61491570200",  # inside 0491 570 xxx but not on ACMA's list
        "+12025550099",  # just below NANPA's 555-0100
        "+12025550200",  # just above 555-0199
        "+99910000000001",  # an opaque id, not a number
    ):
        assert not is_fiction_phone(number), number


def test_plain_forms_are_written_as_their_comments_say() -> None:
    written = {form: format_phone("+442079460123", form) for form in PLAIN_FORMS}
    assert written == {
        "intl_spaced": "+44 20 7946 0123",
        "compact": "+442079460123",
        "idd_00": "0044 20 7946 0123",
        "dashed": "+44-20-7946-0123",
        "dotted": "+44.20.7946.0123",
        "trunk_zero": "+44 (0)20 7946 0123",
        "grouped_3": "+44 207 946 012 3",
        "paren_cc": "(+44) 20 7946 0123",
    }
    assert format_phone("+12025550123", "trunk_zero") == "+1 (202) 555-0123"
    assert format_phone("+441134960456", "intl_spaced") == "+44 113 496 0456"
    assert format_phone("+61491570156", "intl_spaced") == "+61 491 570 156"


def test_obfuscated_forms_differ_from_every_plain_form() -> None:
    plain = {format_phone("+442079460123", form) for form in PLAIN_FORMS}
    obfuscated = {format_phone("+442079460123", form) for form in OBFUSCATED_FORMS}
    assert len(plain) == len(PLAIN_FORMS) and len(obfuscated) == len(OBFUSCATED_FORMS)
    assert not plain & obfuscated
    assert format_phone("+442079460123", "words_nl").startswith("+44 twee nul zeven")
    assert format_phone("+442079460123", "words_full_nl").startswith("nul nul vier vier")


@pytest.mark.parametrize("form", PLAIN_FORMS + OBFUSCATED_FORMS)
@pytest.mark.parametrize("number", (*ONE_OF_EACH_RANGE, AU_FICTION_MOBILES[1]))
def test_every_form_of_every_range_parses_back_to_the_same_number(form: str, number: str) -> None:
    written = format_phone(number, form)
    for sentence in (
        f"Bel of app {written} voor een afspraak.",
        f"WhatsApp only: {written} please.",
    ):
        assert [m.e164 for m in extract_phones(sentence)] == [number], sentence


def test_unknown_forms_and_other_countries_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown phone form"):
        format_phone("+442079460123", "carrier_pigeon")
    with pytest.raises(ValueError, match="not a fiction number"):
        format_phone("+33123456789", "intl_spaced")
