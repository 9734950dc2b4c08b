"""Data minimisation at the source: what a legal basis lets adwatch keep of a captured ad.

``minimise_ad`` applies a legal basis's field rules (``legal_policy.field_rules``) to one
extracted ad before anything is written, and returns the minimised ad with a record of what
it removed. The record holds field names and counts only, never content, so it can go to
the audit log. Everything here is pure: no I/O, no logging, no clock.

What each rule means is ``field_rules.MEANINGS``; this module implements exactly that:

- title, text: ``mask`` replaces phone numbers (as ``matching.phones.extract_phones`` finds
  them, so masking removes exactly what the crawler would extract), e-mail addresses and
  links by ``[phone]``, ``[e-mail]`` and ``[link]``.
- posted_at: ``mask`` keeps the day (00:00 UTC of its UTC date).
- phones: ``pseudonymise`` replaces the number and its written form by a per-case keyed hash.
- images: kept images are re-encoded from their pixels alone, so no EXIF, GPS, XMP, ICC
  profile, comment or text chunk survives; ``mask`` keeps the perceptual hashes only.
- raw_page: kept pages lose third-party content (reviews, comments) and the elements of
  every field that is not kept, and with them scripts, comments and meta tags, which repeat
  field values where no field selector reaches.
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import lxml.html
from lxml import etree
from parsel.csstranslator import HTMLTranslator
from PIL import Image, ImageOps

from legal_policy.field_rules import FIELD_NAMES, MEANINGS, FieldRule, FieldRules, check_consistent
from legal_policy.pseudonyms import pseudonymise_phone
from matching.images import ImageRejected, open_untrusted
from matching.phones import extract_phones

__all__ = [
    "CAPTURED_FIELDS",
    "CapturedAd",
    "CapturedImage",
    "CapturedPhone",
    "ImageNotReencodable",
    "MinimisationError",
    "MinimisationRecord",
    "MinimisedAd",
    "MinimisedImage",
    "PageNotParsable",
    "cut_page",
    "mask_contact_details",
    "minimise_ad",
    "strip_image_metadata",
]

# The fields a capture holds apart from the page itself: the keys of ``field_selectors``.
CAPTURED_FIELDS: Final = tuple(name for name in FIELD_NAMES if name != "raw_page")

JPEG_QUALITY: Final = 95


class MinimisationError(ValueError):
    """A capture cannot be minimised as given (a programming or configuration error)."""


class ImageNotReencodable(MinimisationError):
    """An image could not be decoded, so its pixels cannot be kept without its metadata."""


class PageNotParsable(MinimisationError):
    """A page could not be decoded or parsed, so it cannot be cut."""


# --- what comes in ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapturedPhone:
    """A phone number of an ad: E.164, its region and the form written in the ad."""

    e164: str
    region: str
    raw: str


@dataclass(frozen=True, slots=True)
class CapturedImage:
    """A fetched ad image with the fingerprint the crawler computed (``describe_image``)."""

    url: str
    data: bytes
    phash: int
    variants: tuple[int, ...]
    width: int
    height: int
    # Bytes adwatch itself stored earlier (already re-encoded without metadata): a recrawl
    # that was told the image is unchanged reuses them instead of fetching them again.
    stored: bool = False
    # dHashes of the image and its variants (``ImageFingerprint.dhashes``).
    dhashes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CapturedAd:
    """One ad as extracted by the crawler, before minimisation.

    ``field_selectors`` maps each captured field (``CAPTURED_FIELDS``) to the CSS selectors
    of the page elements that hold it; ``third_party_selectors`` select content of others
    (reviews, comments), which is never kept.
    """

    url: str
    title: str
    text: str
    city: str | None
    posted_at: datetime | None
    phones: tuple[CapturedPhone, ...]
    images: tuple[CapturedImage, ...]
    raw_page: bytes | None
    page_encoding: str | None
    field_selectors: Mapping[str, tuple[str, ...]]
    third_party_selectors: tuple[str, ...]


# --- what goes out ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinimisedImage:
    """An image as kept: re-encoded pixels (or none, when masked) and its hashes."""

    url: str
    data: bytes | None
    phash: int
    variants: tuple[int, ...]
    width: int
    height: int
    media_type: str | None
    dhashes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MinimisedAd:
    """An ad reduced to what its legal basis allows; ``None`` or ``()`` where a field is gone."""

    url: str
    title: str | None
    text: str | None
    city: str | None
    posted_at: datetime | None
    phones: tuple[CapturedPhone, ...]
    images: tuple[MinimisedImage, ...]
    raw_page: bytes | None


@dataclass(frozen=True, slots=True)
class MinimisationRecord:
    """What minimisation did to one ad: the rules, the fields removed and counts, no content."""

    rules: Mapping[str, str]
    dropped: tuple[str, ...]
    counts: Mapping[str, int]

    def __reduce__(self) -> tuple[Any, tuple[dict[str, str], tuple[str, ...], dict[str, int]]]:
        # Read-only views do not pickle, and the record travels between the crawler's
        # processes: it is rebuilt from plain copies.
        return _record_of, (dict(self.rules), self.dropped, dict(self.counts))

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy (names and counts only)."""
        return {
            "rules": dict(self.rules),
            "dropped": list(self.dropped),
            "counts": dict(self.counts),
        }


def _record_of(
    rules: dict[str, str], dropped: tuple[str, ...], counts: dict[str, int]
) -> MinimisationRecord:
    return MinimisationRecord(
        rules=MappingProxyType(rules), dropped=dropped, counts=MappingProxyType(counts)
    )


# --- the whole ad -------------------------------------------------------------------------


def minimise_ad(
    rules: FieldRules, ad: CapturedAd, *, pseudonym_key: bytes, default_region: str
) -> tuple[MinimisedAd, MinimisationRecord]:
    """Apply ``rules`` to ``ad``: the minimised ad and the record of what was removed.

    ``pseudonym_key`` is the case's key (``pseudonyms.case_key``); ``default_region`` reads
    numbers written without a country code, as the crawler does. Refuses rules that are not
    possible for a field or not consistent (``field_rules.check_consistent``), a naive
    ``posted_at``, unknown selector names and images that cannot be decoded.
    """
    _check_rules(rules)
    _check_capture(ad)
    counts: dict[str, int] = {}
    written = tuple(phone.raw for phone in ad.phones)
    page = _minimise_page(rules, ad, counts)
    minimised = MinimisedAd(
        url=ad.url,
        title=_minimise_text("title", rules.title, ad.title, written, default_region, counts),
        text=_minimise_text("text", rules.text, ad.text, written, default_region, counts),
        city=ad.city if rules.city == FieldRule.KEEP else None,
        posted_at=_minimise_posted_at(rules.posted_at, ad.posted_at),
        phones=_minimise_phones(rules.phones, ad.phones, pseudonym_key, counts),
        images=_minimise_images(rules.images, ad.images, counts),
        raw_page=page,
    )
    dropped = [name for name, rule in rules.as_dict().items() if rule == FieldRule.DROP]
    if ad.raw_page is not None and page is None and "raw_page" not in dropped:
        dropped.append("raw_page")  # unparsable or uncuttable: never kept unminimised
    record = MinimisationRecord(
        rules=MappingProxyType(rules.as_dict()),
        dropped=tuple(dropped),
        counts=MappingProxyType(counts),
    )
    return minimised, record


def _check_rules(rules: FieldRules) -> None:
    for name, rule in rules.as_dict().items():
        if FieldRule(rule) not in MEANINGS[name]:
            raise MinimisationError(f"{name}: the rule {rule!r} is not possible for this field")
    check_consistent(rules)


def _check_capture(ad: CapturedAd) -> None:
    # A misspelt name ("phone") would leave that field's elements in the page.
    unknown = sorted(set(ad.field_selectors) - set(CAPTURED_FIELDS))
    if unknown:
        raise MinimisationError(
            f"field_selectors names unknown field(s) {', '.join(unknown)}; "
            f"fields are: {', '.join(CAPTURED_FIELDS)}"
        )
    if ad.posted_at is not None and ad.posted_at.utcoffset() is None:
        raise MinimisationError("posted_at must be timezone-aware")


def _minimise_text(
    name: str,
    rule: FieldRule,
    value: str,
    written_phones: Sequence[str],
    default_region: str,
    counts: dict[str, int],
) -> str | None:
    if rule == FieldRule.DROP:
        return None
    if rule == FieldRule.KEEP:
        return value
    masked, found = mask_contact_details(value, default_region)
    # The ad's own numbers as the crawler wrote them down (from the phone element, or read
    # with another region), in case the text shows one where the text pass did not see it.
    masked, literal = _mask_literal(masked, written_phones, _PLACEHOLDERS[_PHONES])
    found[_PHONES] += literal
    counts.update({f"{name}.{kind}": count for kind, count in found.items()})
    return masked


def _minimise_posted_at(rule: FieldRule, value: datetime | None) -> datetime | None:
    if value is None or rule == FieldRule.DROP:
        return None
    if rule == FieldRule.MASK:
        day = value.astimezone(UTC)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return value


def _minimise_phones(
    rule: FieldRule, phones: tuple[CapturedPhone, ...], key: bytes, counts: dict[str, int]
) -> tuple[CapturedPhone, ...]:
    if rule == FieldRule.KEEP:
        return phones
    if rule == FieldRule.DROP:
        counts["phones.dropped"] = len(phones)
        return ()
    # Two written forms of one number become one pseudonym: keep it once.
    pseudonymised: dict[str, CapturedPhone] = {}
    for phone in phones:
        pseudonym = pseudonymise_phone(key, phone.e164)
        pseudonymised.setdefault(pseudonym, CapturedPhone(pseudonym, phone.region, pseudonym))
    counts["phones.pseudonymised"] = len(phones)
    return tuple(pseudonymised.values())


def _minimise_images(
    rule: FieldRule, images: tuple[CapturedImage, ...], counts: dict[str, int]
) -> tuple[MinimisedImage, ...]:
    if rule == FieldRule.DROP:
        counts["images.dropped"] = len(images)
        return ()
    if rule == FieldRule.MASK:
        counts["images.pixels_removed"] = len(images)
        return tuple(
            MinimisedImage(i.url, None, i.phash, i.variants, i.width, i.height, None, i.dhashes)
            for i in images
        )
    kept = []
    reused = 0
    for position, image in enumerate(images, start=1):
        if image.stored:
            reused += 1
            kept.append(
                MinimisedImage(
                    image.url,
                    image.data,
                    image.phash,
                    image.variants,
                    image.width,
                    image.height,
                    _stored_media_type(image.data),
                    image.dhashes,
                )
            )
            continue
        try:
            data, media_type = strip_image_metadata(image.data)
        except ImageNotReencodable as exc:
            raise ImageNotReencodable(f"image {position} of the ad: {exc}") from exc
        # The captured size is already the size as displayed, which re-encoding keeps.
        kept.append(
            MinimisedImage(
                image.url,
                data,
                image.phash,
                image.variants,
                image.width,
                image.height,
                media_type,
                image.dhashes,
            )
        )
    counts["images.metadata_stripped"] = len(kept) - reused
    if reused:
        counts["images.reused_as_stored"] = reused
    return tuple(kept)


def _stored_media_type(data: bytes) -> str:
    """The media type of bytes ``strip_image_metadata`` wrote (JPEG or PNG)."""
    return "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"


def _minimise_page(rules: FieldRules, ad: CapturedAd, counts: dict[str, int]) -> bytes | None:
    if ad.raw_page is None or rules.raw_page == FieldRule.DROP:
        return None
    cut_fields = [name for name in rules.not_kept() if name != "raw_page"]
    uncuttable = [
        name for name in cut_fields if _has_value(ad, name) and not ad.field_selectors.get(name)
    ]
    if uncuttable:
        # The page shows a value that is not kept and nothing says where: keep no page.
        counts["raw_page.fields_without_selectors"] = len(uncuttable)
        return None
    field_selectors = [
        selector
        for name in cut_fields
        for selector in (*ad.field_selectors.get(name, ()), *_PAGE_ECHOES.get(name, ()))
    ]
    groups = {
        "third_party_elements_removed": tuple(ad.third_party_selectors),
        "field_elements_removed": tuple(field_selectors),
    }
    try:
        page, found = _cut(ad.raw_page, ad.page_encoding, groups, embedded=bool(cut_fields))
    except PageNotParsable:
        counts["raw_page.unparsable"] = 1
        return None
    counts.update({f"raw_page.{kind}": count for kind, count in found.items()})
    return page


def _has_value(ad: CapturedAd, name: str) -> bool:
    return bool(getattr(ad, name))


# --- text ---------------------------------------------------------------------------------

_PHONES: Final = "phones_masked"
_EMAILS: Final = "emails_masked"
_LINKS: Final = "links_masked"
# Kinds in order of precedence where spans overlap (a wa.me link is a phone number).
_PLACEHOLDERS: Final[Mapping[str, str]] = {
    _PHONES: "[phone]",
    _EMAILS: "[e-mail]",
    _LINKS: "[link]",
}

# '@' and the bracketed spellings posters use to get past filters: "naam (at) mail (dot) nl".
_AT = r"(?:\s*[@＠]\s*|\s*[(\[{]\s*(?:at|apenstaartje)\s*[)\]}]\s*)"
_DOT = r"(?:\.|\s*[(\[{]\s*(?:dot|punt)\s*[)\]}]\s*)"
_EMAIL: Final = re.compile(rf"(?:mailto:)?[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)+", re.IGNORECASE)
# Top-level domains taken for a link when written bare ("mijnsite.nl"); a list, because any
# "word.word" would catch sentences typed without a space after the full stop.
_BARE_TLDS = (
    "com|net|org|info|biz|nl|be|de|fr|eu|uk|co|io|me|app|site|online|xyz|club|top|live|"
    "ro|ru|pl|bg|hu|es|it|ua|cz|sk|lt|lv|br|th|vn|cn"
)
# Brackets end a link, so a placeholder next to a link is never taken into it.
_URL_CHARS = r"[^\s<>\"'\[\]{}]"
_LINK: Final = re.compile(
    rf"""
    (?:\b[a-z][a-z0-9+.-]*://|\bwww\.){_URL_CHARS}+                 # scheme:// or www.
    | (?<![\w.@-])(?:[a-z0-9-]+\.)+[a-z]{{2,}}/{_URL_CHARS}*        # host/path: wa.me/…, t.me/…
    | (?<![\w.@-])(?:[a-z0-9-]+\.)+(?:{_BARE_TLDS})(?![\w-]|\.\w)   # bare host: site.nl
    """,
    re.IGNORECASE | re.VERBOSE,
)
_TRAILING_PUNCTUATION = ".,;:!?)'\""
# Digits and the separators written between them, with at least eight digits in all.
_DIGIT_RUN: Final = re.compile(r"(?<![\w+＋])[+＋]?\d(?:[ .\-/()]*\d){7,}")
_DIGITS: Final = re.compile(r"\d+")
# A phone number as written: 8 digits at least (as extract_phones), at most E.164's 15 plus
# an international prefix '00'. Parts of a run tried, at most: a bound on the work a hostile
# wall of digits can cause (each try reads the whole text).
_PHONE_DIGITS: Final = (8, 17)
# Characters before a number that extract_phones reads for a price mark ("prijs: €").
_PRICE_CONTEXT: Final = 16
_MAX_PARTS: Final = 32


def mask_contact_details(text: str, default_region: str) -> tuple[str, dict[str, int]]:
    """``text`` with phone numbers, e-mail addresses and links replaced by placeholders.

    Returns the masked text and how many of each were replaced (``phones_masked``,
    ``emails_masked``, ``links_masked``). Idempotent: the result contains nothing to mask.
    """
    counts = dict.fromkeys(_PLACEHOLDERS, 0)
    # extract_phones reports one mention per number, so a repeated number needs another
    # pass. A placeholder is never part of a match (brackets end links and addresses, and
    # it holds no digit), so each pass uses up characters of the text: the loop is bounded.
    for _ in range(len(text) + 1):
        spans = _contact_spans(text, default_region)
        if not spans:
            return text, counts
        text = _replace_spans(text, spans, counts)
    raise MinimisationError("masking contact details did not settle")  # pragma: no cover


def _contact_spans(text: str, default_region: str) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, kind)`` spans of everything to mask, in order."""
    readable = _ascii_digits(text)
    spans = [(m.start, m.end, _PHONES) for m in extract_phones(readable, default_region)]
    spans += [
        (s, e, _PHONES) for s, e in _numbers_missed_by_context(readable, default_region, spans)
    ]
    spans += [(m.start(), m.end(), _EMAILS) for m in _EMAIL.finditer(text)]
    spans += [(start, end, _LINKS) for start, end in _link_spans(text)]
    return _merge(spans)


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit (and '＋') in ASCII, character for character.

    extract_phones folds digits itself, but decides whether a number before "€ 150" is a
    price by looking for '+' or '00' in the text as written ('００４４' is not '0044').
    """
    return "".join(map(_ascii_digit, text))


def _ascii_digit(char: str) -> str:
    if char == "＋":
        return "+"
    if not char.isascii() and unicodedata.category(char) == "Nd":
        return str(unicodedata.decimal(char))
    return char


def _numbers_missed_by_context(
    text: str, default_region: str, found: list[tuple[int, int, str]]
) -> list[tuple[int, int]]:
    """Phone numbers ``extract_phones`` passes over because of the digits or words after them.

    It reads "+44 20 7946 0000 25 jaar" or "€ 150 0044 20 7946 0000" as one over-long,
    invalid number, and takes a number before "€ 150" for a price unless the text as
    written starts with '+' or '00' ("(+44 …" does not). For masking, a missed number is a
    leak and an extra placeholder is cheap, so every run of digit groups that nothing
    covers is tried again a part at a time (see ``_parts``): the text is cut off after the
    part, and the separators before it become line breaks, which end a number. A part
    counts only if phonenumbers accepts it; what stands before it ("€", "prijs") still
    marks a price, and a date stays a date.
    """
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(text):
        if any(s < run.end() and run.start() < e for s, e, _ in found):
            continue
        groups = [
            (run.start() + g.start(), run.start() + g.end()) for g in _DIGITS.finditer(run[0])
        ]
        # extract_phones reports a number once, at its first mention: the probe shows no
        # earlier text than the few characters that may mark a price.
        hidden = [(0, run.start() - _PRICE_CONTEXT), *((s, e) for s, e, _ in found), *spans]
        for first, last in _parts(groups):
            start, end = groups[first][0], groups[last][1]
            gap = [(groups[first - 1][1], start)] if first else []
            probe = _blanked(text[:end], [*hidden, *gap])
            # A mention may begin before the part's digits, at its '+' or a bracket.
            inside = [
                (m.start, m.end)
                for m in extract_phones(probe, default_region)
                if start < m.end and m.start < end
            ]
            if inside:
                spans += inside
                break
    return spans


def _blanked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` with each span made line breaks (which end a number), offsets unchanged."""
    chars = list(text)
    for start, end in spans:
        start, end = max(0, start), min(len(chars), end)
        if start < end:
            chars[start:end] = "\n" * (end - start)
    return "".join(chars)


def _parts(groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(first, last)`` group indices of each part of a run with as many digits as a phone
    number, at most ``_MAX_PARTS``: read from the left as a person reads, the earliest
    start first and then the longest part (else "006 / 12-11-2026" may pass for a number
    with '00' for its international prefix and cut a real one in two)."""
    digits = [end - start for start, end in groups]
    parts = [
        (first, last)
        for first in range(len(groups))
        for last in range(first, len(groups))
        if _PHONE_DIGITS[0] <= sum(digits[first : last + 1]) <= _PHONE_DIGITS[1]
    ]
    parts.sort(key=lambda part: (part[0], part[0] - part[1]))
    return parts[:_MAX_PARTS]


def _link_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _LINK.finditer(text):
        # A link at the end of a sentence or in brackets does not own the full stop.
        end = match.start() + len(match.group(0).rstrip(_TRAILING_PUNCTUATION))
        if end > match.start():
            spans.append((match.start(), end))
    return spans


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Join overlapping spans; the joined span takes the kind that ranks first."""
    rank = {kind: position for position, kind in enumerate(_PLACEHOLDERS)}
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], rank[s[2]])):
        if merged and start < merged[-1][1]:
            last_start, last_end, last_kind = merged[-1]
            best = min(last_kind, kind, key=rank.__getitem__)
            merged[-1] = (last_start, max(last_end, end), best)
        else:
            merged.append((start, end, kind))
    return merged


def _replace_spans(text: str, spans: list[tuple[int, int, str]], counts: dict[str, int]) -> str:
    parts = []
    position = 0
    for start, end, kind in spans:
        parts += [text[position:start], _PLACEHOLDERS[kind]]
        counts[kind] += 1
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _mask_literal(text: str, forms: Sequence[str], placeholder: str) -> tuple[str, int]:
    """Replace every occurrence of each non-empty form, longest first."""
    replaced = 0
    for form in sorted({f for f in forms if f.strip()}, key=len, reverse=True):
        replaced += text.count(form)
        text = text.replace(form, placeholder)
    return text, replaced


# --- images -------------------------------------------------------------------------------


def strip_image_metadata(data: bytes) -> tuple[bytes, str]:
    """Re-encode an image from its pixels alone: ``(bytes, media type)``.

    The image is decoded defensively (the formats and pixel limit of ``matching.images``),
    turned upright by its EXIF orientation and its pixels copied into a new image, so that
    no EXIF, GPS, XMP, ICC profile, comment or text chunk survives. JPEG stays JPEG (quality
    95); every other format becomes PNG. Raises ``ImageNotReencodable``.
    """
    upright, source_format = _decode_upright(data)
    jpeg = source_format in ("JPEG", "MPO")
    fresh = _pixels_only(upright, jpeg=jpeg)
    buffer = io.BytesIO()
    if jpeg:
        fresh.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue(), "image/jpeg"
    fresh.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"


def _decode_upright(data: bytes) -> tuple[Image.Image, str]:
    """The image decoded and turned upright, with its format."""
    try:
        with open_untrusted(data) as image:
            image.load()
            return ImageOps.exif_transpose(image), str(image.format)
    except ImageRejected as exc:
        raise ImageNotReencodable(f"image could not be decoded: {exc}") from None


# Modes PNG stores as they are; others (palette, CMYK, 32-bit) are converted to RGB(A).
_PNG_MODES: Final = ("1", "L", "LA", "RGB", "RGBA", "I;16")


def _pixels_only(image: Image.Image, *, jpeg: bool) -> Image.Image:
    """A new image holding only ``image``'s pixels: its ``info`` (metadata) stays behind."""
    transparent = "transparency" in image.info  # palette or single-colour transparency
    if jpeg:
        mode = "L" if image.mode in ("1", "L") else "RGB"
    elif image.mode in _PNG_MODES and not transparent:
        mode = image.mode
    else:
        mode = "RGBA" if transparent or "A" in image.getbands() else "RGB"
    pixels = image if image.mode == mode else image.convert(mode)
    return Image.frombytes(mode, pixels.size, pixels.tobytes())


# --- pages --------------------------------------------------------------------------------

# Elements that repeat a field outside its own element: the page's <title> is the ad's.
_PAGE_ECHOES: Final[Mapping[str, tuple[str, ...]]] = {"title": ("title",)}
# Scripts (JSON-LD, a framework's state, a renderer's data), comments and meta tags (Open
# Graph, description) repeat field values where no field selector reaches: when any field is
# cut, they go too. <meta charset> and http-equiv carry no content and stay.
_EMBEDDED: Final[Mapping[str, str]] = {
    "scripts_removed": "//script",
    "comments_removed": "//comment()",
    "meta_elements_removed": "//meta[@content and not(@http-equiv)]",
}
# Parsel's pseudo-elements select text or attributes; the element holding them is cut.
_PSEUDO_ELEMENT: Final = re.compile(r"::(?:text|attr\([^)]*\))")


def cut_page(raw: bytes, encoding: str | None, selectors: Sequence[str]) -> tuple[bytes, int]:
    """The page without the elements ``selectors`` match, and how many were cut.

    Selectors are CSS in parsel's syntax; ``::text`` and ``::attr()`` are ignored, so the
    element that holds the text or attribute goes. The page is re-serialised in
    ``encoding`` (UTF-8 when ``None``). Raises ``PageNotParsable``, or ``MinimisationError``
    for a selector that is not CSS.
    """
    page, counts = _cut(raw, encoding, {"removed": tuple(selectors)}, embedded=False)
    return page, counts["removed"]


def _cut(
    raw: bytes, encoding: str | None, groups: Mapping[str, Sequence[str]], *, embedded: bool
) -> tuple[bytes, dict[str, int]]:
    """Cut each group's selectors (and, if ``embedded``, scripts, comments and meta tags)."""
    # Selectors are checked before the page, so a bad one fails on every page alike.
    xpaths = {name: [_element_xpath(s) for s in selectors] for name, selectors in groups.items()}
    codec = _codec(encoding)
    root = _parse(raw, codec)
    counts = {name: sum(_remove(root, xpath) for xpath in paths) for name, paths in xpaths.items()}
    if not embedded:
        return _serialise(root.getroottree(), codec), counts
    for name, xpath in _EMBEDDED.items():
        counts[name] = _remove(root, xpath)
    # Comments before or after <html> cannot be unlinked: serialise without them.
    outside = [node for node in _siblings(root) if node.tag is etree.Comment]
    counts["comments_removed"] += len(outside)
    return _serialise(root, codec, doctype=root.getroottree().docinfo.doctype), counts


def _element_xpath(selector: str) -> str:
    css = _PSEUDO_ELEMENT.sub("", selector).strip()
    if not css or css.endswith(","):
        raise MinimisationError(f"selector {selector!r} selects no element to cut")
    try:
        return str(HTMLTranslator().css_to_xpath(css))
    except Exception as exc:  # cssselect's SelectorError and ExpressionError, untyped
        raise MinimisationError(f"selector {selector!r} is not CSS: {exc}") from None


def _codec(encoding: str | None) -> str:
    try:
        return codecs.lookup(encoding or "utf-8").name
    except LookupError:
        raise PageNotParsable(f"unknown page encoding {encoding!r}") from None


def _parse(raw: bytes, codec: str) -> Any:
    """The page's root element (lxml, untyped)."""
    # Decoding here, with replacement, because libxml2 silently stops at the first byte
    # that is invalid in the page's encoding; the parser then reads clean UTF-8.
    text = raw.decode(codec, errors="replace").lstrip("\ufeff")
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=False, remove_pis=False)
    try:
        return lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except (etree.LxmlError, ValueError) as exc:
        raise PageNotParsable(f"page could not be parsed: {exc}") from None


def _remove(root: Any, xpath: str) -> int:
    """Cut every node ``xpath`` finds (text after a node stays); how many were cut."""
    removed = 0
    for node in root.xpath(xpath):
        if isinstance(node, str):  # a text or attribute result: nothing to cut here
            continue
        if node is root:
            root.clear()
        elif any(ancestor is root for ancestor in node.iterancestors()):
            node.drop_tree()
        else:
            continue  # inside a node already cut
        removed += 1
    return removed


def _siblings(root: Any) -> list[Any]:
    return [*root.itersiblings(preceding=True), *root.itersiblings()]


def _serialise(node: Any, codec: str, *, doctype: str | None = None) -> bytes:
    text: str = lxml.html.tostring(node, encoding="unicode", method="html", doctype=doctype)
    # Characters the page's encoding lacks (the replacement character) as references.
    return text.encode(codec, errors="xmlcharrefreplace")
