"""Phone numbers reserved for fiction, and the ways advertisers write them.

Every number here lies in a range that a regulator reserves for drama and fiction, so it
can never be anyone's; all of them are valid to ``phonenumbers``, so the matcher treats
them as it would a real number. Written forms cover the groupings of other countries and
the obfuscations that ``matching.phones`` undoes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import phonenumbers

__all__ = [
    "AU_FICTION_MOBILES",
    "CORE_POOL_SIZE",
    "DIGIT_WORDS",
    "LEEDS_DRAMA",
    "LONDON_DRAMA",
    "NANPA_FICTION_AREAS",
    "OBFUSCATED_FORMS",
    "OPAQUE_COUNTRY_CODE",
    "PLAIN_FORMS",
    "SHARED_LINES",
    "fiction_phone_pool",
    "format_phone",
    "is_fiction_phone",
]

# Ofcom's drama ranges, London 020 7946 0000–0999 and Leeds 0113 496 0000–0999 (the
# 07700 900xxx drama mobiles are not valid numbers to libphonenumber, so a matcher would
# rightly drop them).
LONDON_DRAMA: Final = tuple(f"+44207946{n:04d}" for n in range(1000))
LEEDS_DRAMA: Final = tuple(f"+44113496{n:04d}" for n in range(1000))
# The top of the London range, 020 7946 0999 down to 0990, is kept for lines that many
# advertisers print beside their own (site help desks, booking offices): never an
# advertiser's own number.
SHARED_LINES: Final = LONDON_DRAMA[:989:-1]
# NANPA reserves 555-0100–0199 for fiction in every area code: 202 first, then ten more
# for corpora that need them.
NANPA_FICTION_AREAS: Final = (
    "202",
    "212",
    "312",
    "415",
    "617",
    "713",
    "305",
    "404",
    "503",
    "206",
    "303",
)
# ACMA fiction mobiles: only numbers that are both inside 0491 570 006–159 and on ACMA's
# published list, so they are fictional under either reading of the reservation.
AU_FICTION_MOBILES: Final = (
    "+61491570006",
    "+61491570110",
    "+61491570156",
    "+61491570157",
    "+61491570158",
    "+61491570159",
)
# 999 is an unassigned country code: a "+999…" string is nobody's number, and
# ``phonenumbers`` refuses to parse it. Generators use it for opaque phone ids that must
# bypass phone extraction.
OPAQUE_COUNTRY_CODE: Final = "999"


def _nanpa(area: str) -> list[str]:
    return [f"+1{area}555{n:04d}" for n in range(100, 200)]


_CORE: Final = (
    *LONDON_DRAMA[:990],
    *LEEDS_DRAMA,
    *_nanpa(NANPA_FICTION_AREAS[0]),
    *AU_FICTION_MOBILES,
)
CORE_POOL_SIZE: Final = len(_CORE)
_EVERY_FICTION_NUMBER: Final = frozenset(
    (*LONDON_DRAMA, *LEEDS_DRAMA, *AU_FICTION_MOBILES)
) | frozenset(number for area in NANPA_FICTION_AREAS for number in _nanpa(area))


@lru_cache(maxsize=1)
def fiction_phone_pool() -> tuple[str, ...]:
    """Advertiser numbers, all reserved for fiction and valid to ``phonenumbers``, in order.

    First the core (:data:`CORE_POOL_SIZE`, 2,096 numbers): London 020 7946 0000–0989,
    Leeds 0113 496 0000–0999, NANPA's 555-0100–0199 in area code 202 and the six ACMA
    mobiles. After them, for corpora that need more, 555-0100–0199 in ten further area
    codes: 1,000 more. No other country's numbers are used: Romania, Moldova and
    Bulgaria, whose formats such ads often show, publish no fiction range.
    """
    extra = [number for area in NANPA_FICTION_AREAS[1:] for number in _nanpa(area)]
    pool = (*_CORE, *extra)
    return tuple(n for n in pool if phonenumbers.is_valid_number(phonenumbers.parse(n)))


def is_fiction_phone(e164: str) -> bool:
    """Whether ``e164`` is one of the fiction-reserved numbers of this module."""
    return e164 in _EVERY_FICTION_NUMBER


DIGIT_WORDS: Final = {
    "nl": ("nul", "een", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}
_FULLWIDTH: Final = str.maketrans("0123456789+", "０１２３４５６７８９＋")

# How advertisers write a number. Plain forms include the groupings of other countries
# (``grouped_3`` is how Romanian, Moldovan and Bulgarian mobiles are usually written).
PLAIN_FORMS: Final = (
    "intl_spaced",  # +44 20 7946 0123
    "compact",  # +442079460123
    "idd_00",  # 0044 20 7946 0123
    "dashed",  # +44-20-7946-0123
    "dotted",  # +44.20.7946.0123
    "trunk_zero",  # +44 (0)20 7946 0123, +1 (202) 555-0123
    "grouped_3",  # +44 207 946 012 3
    "paren_cc",  # (+44) 20 7946 0123
)
# Forms that hide the number from simple filters; ``matching.phones`` undoes them all.
OBFUSCATED_FORMS: Final = (
    "spaced_digits",  # +4 4 2 0 7 9 4 6 0 1 2 3
    "letter_o",  # +44 2O 7946 O123
    "words_nl",  # +44 twee nul zeven …
    "words_en",  # +44 two zero seven …
    "words_full_nl",  # nul nul vier vier twee …
    "words_mixed",  # +44 20 zeven negen vier zes …
    "wa_me",  # wa.me/442079460123
    "tel_link",  # tel:+442079460123
    "fullwidth",  # ＋４４ ２０ ７９４６ ０１２３
    "stars",  # +44*20*7946*0123
    "zero_width",  # +44\u200b20\u200b7946\u200b0123
)


def _phone_groups(e164: str) -> tuple[str, list[str]]:
    """Country code and the national number in its usual groups."""
    if e164.startswith("+44"):
        national = e164[3:]
        if national.startswith("20"):
            return "44", [national[:2], national[2:6], national[6:]]
        return "44", [national[:3], national[3:6], national[6:]]
    if e164.startswith("+1"):
        national = e164[2:]
        return "1", [national[:3], national[3:6], national[6:]]
    if e164.startswith("+61"):
        national = e164[3:]
        return "61", [national[:3], national[3:6], national[6:]]
    raise ValueError(f"not a fiction number of this module: {e164}")


def format_phone(e164: str, form: str) -> str:
    """Write a fiction number in one of :data:`PLAIN_FORMS` or :data:`OBFUSCATED_FORMS`.

    Every form is international: on a Dutch site a national "020 …" reads as Amsterdam.
    """
    cc, groups = _phone_groups(e164)
    national = "".join(groups)
    spaced = " ".join(groups)
    nl, en = DIGIT_WORDS["nl"], DIGIT_WORDS["en"]
    if form == "intl_spaced":
        return f"+{cc} {spaced}"
    if form == "compact":
        return e164
    if form == "idd_00":
        return f"00{cc} {spaced}"
    if form == "dashed":
        return f"+{cc}-{'-'.join(groups)}"
    if form == "dotted":
        return f"+{cc}.{'.'.join(groups)}"
    if form == "trunk_zero":
        if cc == "1":
            return f"+1 ({groups[0]}) {groups[1]}-{groups[2]}"
        return f"+{cc} (0){spaced}"
    if form == "grouped_3":
        return f"+{cc} " + " ".join(national[i : i + 3] for i in range(0, len(national), 3))
    if form == "paren_cc":
        return f"(+{cc}) {spaced}"
    if form == "spaced_digits":
        return "+" + " ".join(cc + national)
    if form == "letter_o":
        return f"+{cc} " + " ".join(g.replace("0", "O") for g in groups)
    if form == "words_nl":
        return f"+{cc} " + " ".join(nl[int(c)] for c in national)
    if form == "words_en":
        return f"+{cc} " + " ".join(en[int(c)] for c in national)
    if form == "words_full_nl":
        return " ".join(nl[int(c)] for c in f"00{cc}{national}")
    if form == "words_mixed":
        return f"+{cc} {groups[0]} " + " ".join(nl[int(c)] for c in "".join(groups[1:]))
    if form == "wa_me":
        return f"wa.me/{cc}{national}"
    if form == "tel_link":
        return f"tel:+{cc}{national}"
    if form == "fullwidth":
        return f"+{cc} {spaced}".translate(_FULLWIDTH)
    if form == "stars":
        return f"+{cc}*{'*'.join(groups)}"
    if form == "zero_width":
        return f"+{cc}\u200b" + "\u200b".join(groups)
    raise ValueError(f"unknown phone form {form!r}")
