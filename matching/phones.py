"""Phone numbers in ad text: undo posters' obfuscations, then let ``phonenumbers`` decide.

Ad posters hide numbers from simple filters: digits written as words, the letter O for
zero, full-width or other Unicode digits, digits split by odd separators, ``wa.me/``
links. A pre-pass rewrites those forms into plain digits while keeping, for every
character it produces, the offset of the original character it came from, so that each
mention still points at what the poster actually wrote. Recognition and validation are
``phonenumbers``' own (its matcher at ``Leniency.VALID``); the pre-pass never invents
digits, it only reveals them. A last check drops what merely looks like a phone beside
words that make it a price or an age.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

__all__ = ["PhoneMention", "deobfuscate", "extract_phones", "normalise_phone"]


@dataclass(frozen=True, slots=True)
class PhoneMention:
    """One phone number found in a text.

    ``raw`` is the text as written (``text[start:end]`` of the original), ``e164`` the
    normalised number and ``region`` its ISO 3166 region (``None`` for non-geographic).
    """

    raw: str
    e164: str
    region: str | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class CleanText:
    """Text after the de-obfuscation pre-pass.

    ``origin[i]`` is the ``(start, end)`` span of the original text that produced
    ``text[i]``: one character for a folded digit, a whole word for a spelled-out digit.
    """

    text: str
    origin: tuple[tuple[int, int], ...]

    def span_in_original(self, start: int, end: int) -> tuple[int, int]:
        """The original ``[start, end)`` span that produced ``text[start:end]``."""
        return self.origin[start][0], self.origin[end - 1][1]


# Each produced character with the original span it stands for.
_Chars = list[tuple[str, int, int]]
# A replacement: a plain string, or characters with spans relative to the match.
_Replacement = str | list[tuple[str, int, int]]

_NUMBER_WORDS = {
    # Dutch
    "nul": "0",
    "een": "1",
    "één": "1",
    "eén": "1",
    "twee": "2",
    "drie": "3",
    "vier": "4",
    "vijf": "5",
    "zes": "6",
    "zeven": "7",
    "acht": "8",
    "negen": "9",
    # English
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
# Separators posters put between digits that phonenumbers does not accept itself.
_ODD_SEPARATORS = "*_|·•~/"

_WORD = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
_WORD_RUN = re.compile(
    rf"(?<!\w)(?:(?:{_WORD})|\d+)(?:[\s.\-/]*(?:(?:{_WORD})|\d+))+(?!\w)", re.IGNORECASE
)
_WORD_TOKEN = re.compile(rf"(?<!\w)(?:{_WORD})(?!\w)", re.IGNORECASE)
_LINK = re.compile(
    r"(?:wa\.me/\+?|whatsapp\.com/send/?\?phone=\+?|\btel:\s*(?=\+?\d))", re.IGNORECASE
)
# A run of digits, letter O's and separators that is not part of a word.
_O_RUN = re.compile(r"(?<![^\W\d_])[\dOo][\dOo \.\-/]*[\dOo](?![^\W\d_])")
_ODD_SEPARATED = re.compile(rf"(?<=\d)[{re.escape(_ODD_SEPARATORS)}]+(?=\d)")
_SPACED_DIGITS = re.compile(r"(?<![\d])(?:\+\s?)?(?:\d{1,2}[ .\-/]+){5,}\d{1,2}(?!\d)")
_IDD_PREFIX = re.compile(r"(?<![\w+])(?<!\d[ .\-])00\s?(?=[1-9]\d)")

_DATE_LIKE = re.compile(r"^\s*\d{1,4}\s*[./\-]\s*\d{1,2}\s*[./\-]\s*\d{2,4}\s*$")
_PRICE_BEFORE = re.compile(
    r"(?:€|\$|£|\beur(?:o|os)?|\bprijs|\bprice|\blei|\bron)\s*[:=]?\s*$", re.IGNORECASE
)
_NOT_A_PHONE_AFTER = re.compile(
    r"^\s*(?:,-|,00|€|euro|eur\b|lei\b|jaar|jr\b|years?\b|yrs?\b|y/o|yo\b|cm\b|kg\b)", re.IGNORECASE
)
_MIN_DIGITS = 8
_MAX_DIGITS = 15  # E.164 maximum
# A number printed beside this many other numbers is a hub (help desk, agency line).
PHONE_HUB_DEGREE: Final = 5


def extract_phones(text: str, default_region: str = "NL") -> list[PhoneMention]:
    """Every distinct phone number in ``text``, in order of first mention.

    Numbers written without a country code are read as numbers of ``default_region``.
    Deduplicated by E.164: the first mention of a number is the one kept.
    """
    if not text:
        return []
    clean = deobfuscate(text)
    found: dict[str, PhoneMention] = {}
    for match in PhoneNumberMatcher(clean.text, default_region, leniency=Leniency.VALID):
        start, end = clean.span_in_original(match.start, match.end)
        raw = text[start:end]
        if not _plausible_phone(text, start, end, match.raw_string):
            continue
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if e164 in found:
            continue
        region = phonenumbers.region_code_for_number(match.number)
        found[e164] = PhoneMention(
            raw=raw,
            e164=e164,
            region=region if region and region != "001" else None,
            start=start,
            end=end,
        )
    return list(found.values())


def normalise_phone(raw: str, default_region: str = "NL") -> str | None:
    """E.164 form of a single written number, or ``None`` when it is not a valid number."""
    clean = deobfuscate(raw).text.strip()
    try:
        number = phonenumbers.parse(clean, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def hub_phones(phone_lists: Iterable[Sequence[str]], degree: int = PHONE_HUB_DEGREE) -> set[str]:
    """Numbers printed beside ``degree`` or more other numbers across the ads: a site's
    help desk or an agency line, never one advertiser (``MatchingEngine`` uses the same
    rule as it links)."""
    neighbours: dict[str, set[str]] = {}
    for phones in phone_lists:
        if len(phones) < 2:
            continue
        for phone in phones:
            seen = neighbours.setdefault(phone, set())
            if len(seen) < degree:
                seen.update(other for other in phones if other != phone)
    return {phone for phone, seen in neighbours.items() if len(seen) >= degree}


def deobfuscate(text: str) -> CleanText:
    """Reveal digits that posters disguise, keeping a map back to the original offsets."""
    chars = _normalise_characters(text)
    chars = _substitute(chars, _LINK, _link_prefix)
    chars = _substitute(chars, _WORD_RUN, _spell_out_number_words)
    chars = _substitute(chars, _O_RUN, _zero_for_letter_o)
    chars = _substitute(chars, _ODD_SEPARATED, lambda m: "-")
    chars = _substitute(chars, _SPACED_DIGITS, _join_spaced_digits)
    chars = _substitute(chars, _IDD_PREFIX, lambda m: "+")
    return CleanText("".join(c for c, _, _ in chars), tuple((s, e) for _, s, e in chars))


def _normalise_characters(text: str) -> _Chars:
    out: _Chars = []
    for index, char in enumerate(text):
        if char.isascii():
            folded = char
        elif char in _INVISIBLE:
            continue
        elif char in _DASHES:
            folded = "-"
        elif unicodedata.category(char) == "Nd":
            folded = str(unicodedata.decimal(char))
        elif "CIRCLED" in unicodedata.name(char, "") and unicodedata.digit(char, -1) >= 0:
            folded = str(unicodedata.digit(char))
        else:
            folded = unicodedata.normalize("NFKC", char)
            # Only one-for-one folds (full-width '＋', no-break space); '½' must stay '½'.
            folded = folded if len(folded) == 1 else char
        out.append((folded, index, index + 1))
    return out


def _substitute(
    chars: _Chars, pattern: re.Pattern[str], replacement: Callable[[re.Match[str]], _Replacement]
) -> _Chars:
    """Regex substitution over ``chars`` that keeps each output character's origin."""
    text = "".join(c for c, _, _ in chars)
    out: _Chars = []
    position = 0
    for match in pattern.finditer(text):
        new = replacement(match)
        if new == match.group(0):
            continue
        old_chars = chars[match.start() : match.end()]
        out.extend(chars[position : match.start()])
        out.extend(_aligned(new, old_chars, match.group(0)))
        position = match.end()
    out.extend(chars[position:])
    return out


def _aligned(new: _Replacement, old_chars: _Chars, old: str) -> _Chars:
    """Give each replacement character the origin of the source character(s) it stands for."""
    if not old_chars:
        return []
    if isinstance(new, list):
        return [(c, old_chars[s][1], old_chars[e - 1][2]) for c, s, e in new]
    if len(new) == len(old):
        return [(c, old_chars[i][1], old_chars[i][2]) for i, c in enumerate(new)]
    whole = (old_chars[0][1], old_chars[-1][2])
    if len(new) == 1:
        return [(new, *whole)]
    # Otherwise characters were only dropped (digits joined): align as a subsequence.
    out: _Chars = []
    cursor = 0
    for char in new:
        while cursor < len(old) and old[cursor] != char:
            cursor += 1
        if cursor == len(old):
            return [(c, *whole) for c in new]
        out.append((char, old_chars[cursor][1], old_chars[cursor][2]))
        cursor += 1
    return out


def _link_prefix(match: re.Match[str]) -> str:
    # wa.me and WhatsApp links always carry the country code, without '+'.
    return " " if match.group(0).lower().startswith("tel") else "+"


def _spell_out_number_words(match: re.Match[str]) -> _Replacement:
    run = match.group(0)
    words = list(_WORD_TOKEN.finditer(run))
    digits = sum(len(d) for d in re.findall(r"\d+", run)) + len(words)
    # A lone 'een' (Dutch 'a') beside a number must not become a digit of it.
    if len(words) < 3 or digits < _MIN_DIGITS:
        return run
    join = digits <= _MAX_DIGITS
    out: list[tuple[str, int, int]] = []
    position = 0
    for word in [*words, None]:
        upto = word.start() if word else len(run)
        for i in range(position, upto):
            if run[i].isdigit() or not join:
                out.append((run[i], i, i + 1))
        if word:
            out.append((_NUMBER_WORDS[word.group(0).lower()], word.start(), word.end()))
            position = word.end()
    return out


def _zero_for_letter_o(match: re.Match[str]) -> str:
    run = match.group(0)
    if "o" not in run.lower() or sum(c.isdigit() for c in run) < 6:
        return run
    # Only O's inside a digit group ('O6', '56O8'); a lone 'o' after a number is a word.
    return re.sub(
        r"[\dOo]+",
        lambda g: (
            g.group(0).replace("O", "0").replace("o", "0")
            if any(c.isdigit() for c in g.group(0))
            else g.group(0)
        ),
        run,
    )


def _join_spaced_digits(match: re.Match[str]) -> str:
    run = match.group(0)
    groups = re.findall(r"\d+", run)
    # '06 12 34 56 78' is ordinary writing; '0 6 1 2 3 4 ...' is an obfuscation.
    if sum(len(g) == 1 for g in groups) * 2 < len(groups):
        return run
    prefix = "+" if run.lstrip().startswith("+") else ""
    return prefix + "".join(groups)


def _plausible_phone(text: str, start: int, end: int, matched: str) -> bool:
    if sum(c.isdigit() for c in matched) < _MIN_DIGITS:
        return False
    if _DATE_LIKE.match(text[start:end]):
        return False
    if _PRICE_BEFORE.search(text[max(0, start - 12) : start]):
        return False
    # A unit after the digits ("25 jaar", "150 euro") unmasks glued ages and prices; a
    # number written with its country code is no price list ("+31 6 12345678 yr oud").
    if text[start:end].lstrip().startswith(("+", "00")):
        return True
    return not _NOT_A_PHONE_AFTER.match(text[end : end + 8])
