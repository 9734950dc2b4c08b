"""Trafficking indicators: a versioned, declarative model that scores ads and profiles.

In the spirit of the police's score model, an ad is kept only when the indicators it
shows add up to the model's threshold; a candidate profile is scored the same way from
plain facts about it (cities and dates, phones, names, shared photos) and from the ad
scores of its ads. The rules are data (``indicator_models/*.yaml``), validated on load:
phrase patterns are written against normalised text (case-folded, accents stripped,
whitespace collapsed), numeric rules carry their parameters.

Every score is an *assessment*, never a fact (LED art. 7): it records the model version
and, for each indicator that fired, the observed evidence it rests on. Nationality,
ethnic origin and origin (source-country phone) indicators are protected: the model is
refused unless they can never reach a threshold on their own, and scoring enforces the
same at run time (LED art. 10 and 11(3): no profiling on such data alone).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import yaml

__all__ = [
    "CATEGORIES",
    "PROTECTED_CATEGORIES",
    "AdRateParams",
    "AdsPerPhoneParams",
    "Appearance",
    "FiredIndicator",
    "IndicatorModel",
    "IndicatorModelError",
    "IndicatorRule",
    "IndicatorScore",
    "LowPriceParams",
    "PhoneCitiesParams",
    "PhoneRegionParams",
    "PhrasesParams",
    "ProfileFacts",
    "SharedImagesParams",
    "describe",
    "explain",
    "indicator_model_from_yaml",
    "keeps",
    "normalise_text",
    "parse_indicator_model",
    "score_ad",
    "score_profile",
]

LEVELS = ("ad", "profile")

#: Categories a rule may have. Closed so that a typo cannot slip a protected rule past
#: the legal checks under another name.
CATEGORIES = frozenset(
    {
        "movement",
        "availability",
        "control",
        "price",
        "wording",
        "identity",
        "nationality",
        "ethnic_origin",
        "origin",
    }
)

#: Special-category or proxy data (LED art. 10): never the sole trigger of a threshold.
#: Fixed in code, not in the model file, so that editing a model cannot lift it.
PROTECTED_CATEGORIES = frozenset({"nationality", "ethnic_origin", "origin"})

PRICE_UNITS = ("quarter", "half_hour", "hour", "unspecified")

_ASSESSMENT_SENTENCE = (
    "This score is an automated assessment by an indicator model, not an established "
    "fact about any person; the evidence listed is what was observed."
)
_PROTECTED_ONLY_NOTE = (
    "Only nationality, ethnic-origin or origin indicators fired; by policy these may never "
    "be the sole trigger, so this result is not over threshold whatever its score."
)
_MAX_EVIDENCE_CHARS = 80
_MAX_SNIPPETS = 3


class IndicatorModelError(ValueError):
    """An indicator model file or mapping that cannot be used; the message names the rule."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class PhrasesParams:
    """Ad rule that fires when any of its patterns occurs in the normalised title or text."""

    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class LowPriceParams:
    """Ad rule that fires on a euro price below the limit for its unit.

    A limit of ``None`` means prices in that unit never fire; ``unspecified`` is for a
    price written without a recognisable unit. Prices below ``min_eur`` are ignored.
    """

    quarter: float | None
    half_hour: float | None
    hour: float | None
    unspecified: float | None
    min_eur: float

    def limit(self, unit: str) -> float | None:
        """The "below" limit for ``unit`` (one of ``PRICE_UNITS``)."""
        limits = {
            "quarter": self.quarter,
            "half_hour": self.half_hour,
            "hour": self.hour,
            "unspecified": self.unspecified,
        }
        return limits[unit]


@dataclass(frozen=True, slots=True)
class PhoneCitiesParams:
    """Profile rule: its phone(s) seen in ``min_cities`` cities within ``within_days``."""

    min_cities: int
    within_days: float


@dataclass(frozen=True, slots=True)
class SharedImagesParams:
    """Profile rule: the same photos under several names, or under ages far apart."""

    min_shared_image_ads: int
    min_names: int
    min_age_spread: int


@dataclass(frozen=True, slots=True)
class AdsPerPhoneParams:
    """Profile rule: at least ``min_ads_per_phone`` ads per phone number."""

    min_ads_per_phone: float


@dataclass(frozen=True, slots=True)
class PhoneRegionParams:
    """Profile rule: a phone number from one of ``regions`` (ISO 3166 codes)."""

    regions: frozenset[str]


@dataclass(frozen=True, slots=True)
class AdRateParams:
    """Profile rule: share of the profile's ads on which any of ``rules`` fired."""

    rules: tuple[str, ...]
    min_share: float
    min_ads: int


RuleParams = (
    PhrasesParams
    | LowPriceParams
    | PhoneCitiesParams
    | SharedImagesParams
    | AdsPerPhoneParams
    | PhoneRegionParams
    | AdRateParams
)


@dataclass(frozen=True, slots=True)
class IndicatorRule:
    """One indicator: what it looks for (``params``), how much it weighs, how it reads."""

    id: str
    level: str
    kind: str
    category: str
    weight: float
    description: str
    description_nl: str
    params: RuleParams

    @property
    def protected(self) -> bool:
        """Whether this rule is nationality, ethnic origin or origin."""
        return self.category in PROTECTED_CATEGORIES


@dataclass(frozen=True, slots=True)
class IndicatorModel:
    """A validated model; build it with ``indicator_model_from_yaml`` or ``parse_indicator_model``.

    ``digest`` is the SHA-256 of the model file's bytes (or, for a mapping, of its
    canonical JSON), so that a recorded version can be checked against the exact rules.
    """

    version: str
    threshold: float
    profile_threshold: float
    rules: tuple[IndicatorRule, ...]
    digest: str = ""
    source: str = ""

    @property
    def ad_rules(self) -> tuple[IndicatorRule, ...]:
        return tuple(r for r in self.rules if r.level == "ad")

    @property
    def profile_rules(self) -> tuple[IndicatorRule, ...]:
        return tuple(r for r in self.rules if r.level == "profile")

    def rule(self, rule_id: str) -> IndicatorRule:
        """The rule with this id (``KeyError`` if there is none)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


@dataclass(frozen=True, slots=True)
class FiredIndicator:
    """One indicator that fired, with the observed evidence (a fact) it rests on."""

    rule_id: str
    category: str
    weight: float
    description: str
    evidence: str

    @property
    def protected(self) -> bool:
        return self.category in PROTECTED_CATEGORIES

    def as_dict(self) -> dict[str, object]:
        """The indicator as JSON-ready data."""
        return {
            "rule_id": self.rule_id,
            "category": self.category,
            "weight": self.weight,
            "description": self.description,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class IndicatorScore:
    """The model's assessment of one ad or profile: never a fact, always with its version."""

    model_version: str
    level: str
    score: float
    threshold: float
    over_threshold: bool
    fired: tuple[FiredIndicator, ...]
    note: str

    def as_dict(self) -> dict[str, object]:
        """The assessment as JSON-ready data (``from_dict`` reads it back)."""
        return {
            "model_version": self.model_version,
            "level": self.level,
            "score": self.score,
            "threshold": self.threshold,
            "over_threshold": self.over_threshold,
            "fired": [fired.as_dict() for fired in self.fired],
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndicatorScore:
        """An assessment from ``as_dict`` data (``KeyError``/``TypeError`` if malformed)."""
        return cls(
            model_version=str(data["model_version"]),
            level=str(data["level"]),
            score=float(data["score"]),
            threshold=float(data["threshold"]),
            over_threshold=bool(data["over_threshold"]),
            fired=tuple(
                FiredIndicator(
                    rule_id=str(f["rule_id"]),
                    category=str(f["category"]),
                    weight=float(f["weight"]),
                    description=str(f["description"]),
                    evidence=str(f["evidence"]),
                )
                for f in data["fired"]
            ),
            note=str(data["note"]),
        )


@dataclass(frozen=True, slots=True)
class Appearance:
    """One ad of a profile: when and where it was posted, and on which site."""

    posted_at: datetime | None
    city: str | None
    site: str


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """Plain facts about a candidate profile, as the linker and extractor found them.

    ``phone_regions[i]`` is the ISO 3166 region of ``phones[i]`` (``None`` when unknown);
    ``shared_image_ad_count`` counts the profile's ads that share a photo with another
    of its ads.
    """

    ad_count: int
    phones: tuple[str, ...] = ()
    phone_regions: tuple[str | None, ...] = ()
    appearances: tuple[Appearance, ...] = ()
    names: tuple[str, ...] = ()
    ages: tuple[int, ...] = ()
    shared_image_ad_count: int = 0

    def __post_init__(self) -> None:
        if self.ad_count < 0 or self.shared_image_ad_count < 0:
            raise ValueError("ad_count and shared_image_ad_count must not be negative")
        if len(self.phone_regions) != len(self.phones):
            raise ValueError("phone_regions must have one entry per phone")


# --------------------------------------------------------------------------- text


@lru_cache(maxsize=8192)
def _fold(char: str) -> str:
    """One character case-folded, compatibility-decomposed and without accents."""
    if char in "\u2018\u2019\u02bc\u0060\u00b4":
        return "'"
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKD", stripped.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


@dataclass(frozen=True, slots=True)
class _Normalised:
    """Normalised text; ``origin[i]`` is the index of the original character of ``text[i]``."""

    text: str
    origin: tuple[int, ...]

    def original(self, source: str, start: int, end: int) -> str:
        """What the poster wrote for ``text[start:end]``."""
        if start >= end:
            return ""
        return source[self.origin[start] : self.origin[end - 1] + 1]


def _normalise(source: str) -> _Normalised:
    chars: list[str] = []
    origin: list[int] = []
    space_at: int | None = None
    for index, char in enumerate(source):
        for out in _fold(char):
            if out.isspace():
                if space_at is None:
                    space_at = index
                continue
            if space_at is not None and chars:
                chars.append(" ")
                origin.append(space_at)
            space_at = None
            chars.append(out)
            origin.append(index)
    return _Normalised("".join(chars), tuple(origin))


def normalise_text(text: str) -> str:
    """Text as indicator patterns see it: case-folded, accents stripped, spaces collapsed."""
    return _normalise(text).text


def _strip_accents(pattern: str) -> str:
    decomposed = unicodedata.normalize("NFKD", pattern)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_EVIDENCE_CHARS:
        text = text[: _MAX_EVIDENCE_CHARS - 1] + "…"
    return text


# --------------------------------------------------------------------------- prices

# A euro amount: "€50", "€ 50,-", "eur 50", "50 euro", "50€", "50,00 eur", "50,-".
_PRICE = re.compile(
    r"(?:€|\beur(?:o'?s?)?\b)\s*(?P<a>\d{1,4})(?:[.,](?P<ac>\d{2}))?(?:\s*,\s*-+)?(?![.,]?\d)"
    r"|(?<![\w.,])(?P<b>\d{1,4})(?:[.,](?P<bc>\d{2}))?(?:\s*,\s*-+)?\s*(?:€|eur(?:o'?s?)?\b)"
    r"|(?<![\w.,€])(?P<c>\d{1,4})\s*,\s*-+(?!\d)"
)
_HALF_HOUR = (
    r"(?:(?:een|a|one)\s*)?half(?:\s*an)?\s*(?:uur(?:tje)?|hour|hr)\b|halfuur(?:tje)?\b"
    r"|\b1\s*[/\u2044]\s*2\s*(?:uur|hour|u|h)\b|\b30\s*min\w*"
)
_QUARTER = r"(?:een\s*)?kwartier(?:tje)?\b|\b15\s*min\w*|\b(?:a\s*)?quarter(?:\s*of\s*an)?\s*hour\b"
_HOUR = r"\b(?:(?:1|een|one|an?)\s*)?(?:uur(?:tje)?|hour|hr)\b|\b60\s*min\w*"
_UNIT = re.compile(rf"\b(?P<half_hour>{_HALF_HOUR})|\b(?P<quarter>{_QUARTER})|(?P<hour>{_HOUR})")
# A unit joined to the price that precedes it: "per uur", "p/u", "/h", "voor een half uur".
_UNIT_AFTER = re.compile(
    r"\s*(?:(?:per|p\s*/|p\.|/|voor|for|a|an|the|each|elk|ieder)\s*"
    rf"(?:(?P<half_hour>{_HALF_HOUR})|(?P<quarter>{_QUARTER})|(?P<hour>{_HOUR}|[uh]\b))"
    r"|p\.?\s*(?P<short>[uh])\b)"
)
# What may stand between a unit and its price when no connector joins them.
_GAP = re.compile(
    r"[\s:=\-–—|>()*]*(?:(?:voor|for|only|just|slechts|maar|nur|is)[\s:=\-–—|>()*]*)?"
)
_MAX_GAP = 16
_LABEL = re.compile(r"[:=]")
_UNIT_WORDS = {
    "quarter": "quarter hour",
    "half_hour": "half hour",
    "hour": "hour",
    "unspecified": "no unit stated",
}


@dataclass(frozen=True, slots=True)
class _Price:
    amount: float
    unit: str
    start: int
    end: int


def _unit_of(match: re.Match[str]) -> str:
    for unit in ("half_hour", "quarter", "hour"):
        if match.group(unit) is not None:
            return unit
    return "hour"  # the short forms "p/u", "ph"


def _find_prices(text: str) -> list[_Price]:
    """Euro prices in normalised text, each with the unit it is quoted for.

    Pairing, strongest bond first, each unit used once: a unit joined by a connector
    after the price ("€50 per uur", "50,- p/u"); a unit labelling the price with a colon
    or equals sign ("half uur: 50 euro"); then, left to right, the unit right before the
    price ("half uur 50 euro") or right after it ("€50 half uur"), preferring the side
    the previous price used, so that price lists written in either order pair up.
    """
    spans: list[tuple[float, int, int]] = []
    for match in _PRICE.finditer(text):
        whole = match.group("a") or match.group("b") or match.group("c")
        cents = match.group("ac") or match.group("bc")
        amount = int(whole) + (int(cents) / 100 if cents else 0.0)
        spans.append((amount, match.start(), match.end()))
    if not spans:
        return []
    price_starts = [start for _, start, _ in spans]
    units: list[tuple[int, int, str]] = []
    for found in _UNIT.finditer(text):
        # The price starting at or before the unit, and the one after it, must not overlap.
        i = bisect_right(price_starts, found.start()) - 1
        if i >= 0 and spans[i][2] > found.start():
            continue
        if i + 1 < len(spans) and spans[i + 1][1] < found.end():
            continue
        units.append((found.start(), found.end(), _unit_of(found)))
    unit_starts = [u[0] for u in units]
    unit_ends = [u[1] for u in units]

    used: set[int] = set()
    joined: list[tuple[str, int, int] | None] = []
    for _, start, end in spans:
        after = _UNIT_AFTER.match(text, end)
        if after is None:
            joined.append(None)
            continue
        used.update(range(bisect_left(unit_starts, end), bisect_left(unit_starts, after.end())))
        joined.append((_unit_of(after), start, after.end()))

    def gap_ok(start: int, end: int) -> bool:
        return end - start <= _MAX_GAP and _GAP.fullmatch(text, start, end) is not None

    def unit_before(start: int) -> int | None:
        index = bisect_right(unit_ends, start) - 1
        if index < 0 or index in used or not gap_ok(unit_ends[index], start):
            return None
        return index

    def unit_after(end: int) -> int | None:
        index = bisect_left(unit_starts, end)
        if index >= len(units) or index in used or not gap_ok(end, unit_starts[index]):
            return None
        return index

    for position, (_, start, end) in enumerate(spans):
        label = None if joined[position] else unit_before(start)
        if label is not None and _LABEL.search(text, unit_ends[label], start):
            used.add(label)
            joined[position] = (units[label][2], units[label][0], end)

    after_first = False
    for position, (_, start, end) in enumerate(spans):
        if joined[position] is not None:
            continue
        preceding, following = unit_before(start), unit_after(end)
        first, second = (following, preceding) if after_first else (preceding, following)
        index = first if first is not None else second
        if index is None:
            continue
        used.add(index)
        after_first = index == following
        u_start, u_end, unit_name = units[index]
        joined[position] = (unit_name, min(start, u_start), max(end, u_end))

    return [
        _Price(amount, *(pair or ("unspecified", start, end)))
        for (amount, start, end), pair in zip(spans, joined, strict=True)
    ]


# --------------------------------------------------------------------------- loading


_COMMON_KEYS = ("id", "level", "kind", "category", "weight", "description", "description_nl")
_KIND_KEYS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # kind: (level, required keys, optional keys)
    "phrases": ("ad", ("patterns",), ()),
    "low_price": ("ad", ("below_eur",), ("min_eur",)),
    "phone_cities": ("profile", ("min_cities", "within_days"), ()),
    "shared_images_identities": (
        "profile",
        ("min_shared_image_ads", "min_names", "min_age_spread"),
        (),
    ),
    "ads_per_phone": ("profile", ("min_ads_per_phone",), ()),
    "phone_region": ("profile", ("regions",), ()),
    "ad_rate": ("profile", ("rules", "min_share", "min_ads"), ()),
}
_TOP_KEYS = ("version", "threshold", "profile_threshold", "rules")
_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")
_REGION = re.compile(r"[A-Z]{2}")
_DEFAULT_MIN_EUR = 10.0


class _Context:
    """Where an error is: the source, and the rule with its line when known."""

    def __init__(self, source: str, rule_lines: Sequence[int] | None) -> None:
        self.source = source
        self.rule_lines = rule_lines
        self.where = ""

    def at_rule(self, index: int, rule_id: object) -> None:
        name = f"rule {rule_id!r}" if isinstance(rule_id, str) else f"rule #{index + 1}"
        if self.rule_lines is not None and index < len(self.rule_lines):
            name += f" (line {self.rule_lines[index]})"
        self.where = name

    def error(self, message: str) -> IndicatorModelError:
        where = f"{self.where}: " if self.where else ""
        return IndicatorModelError(f"{self.source}: {where}{message}")


def _number(ctx: _Context, data: Mapping[str, object], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ctx.error(f"{key!r} must be a finite number, not {value!r}")
    return float(value)


def _positive(ctx: _Context, data: Mapping[str, object], key: str) -> float:
    value = _number(ctx, data, key)
    if value <= 0:
        raise ctx.error(f"{key!r} must be greater than 0, not {value!r}")
    return value


def _integer(ctx: _Context, data: Mapping[str, object], key: str, minimum: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(f"{key!r} must be a whole number, not {value!r}")
    if value < minimum:
        raise ctx.error(f"{key!r} must be at least {minimum}, not {value!r}")
    return value


def _text(ctx: _Context, data: Mapping[str, object], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(f"{key!r} must be a non-empty string, not {value!r}")
    return value.strip()


def _string_list(ctx: _Context, data: Mapping[str, object], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not value:
        raise ctx.error(f"{key!r} must be a non-empty list")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ctx.error(f"{key!r} must hold non-empty strings, not {item!r}")
    return [str(item) for item in value]


def _check_keys(
    ctx: _Context, data: Mapping[str, object], required: Sequence[str], optional: Sequence[str]
) -> None:
    allowed = set(required) | set(optional)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ctx.error(
            f"unknown key(s) {', '.join(repr(k) for k in unknown)}; allowed: "
            + ", ".join(sorted(allowed))
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise ctx.error(f"missing field(s) {', '.join(repr(k) for k in missing)}")


def _compile(ctx: _Context, pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(_strip_accents(pattern), re.IGNORECASE)
    except re.error as exc:
        raise ctx.error(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    if compiled.search("") is not None:
        raise ctx.error(f"pattern {pattern!r} matches empty text, so it would fire on every ad")
    return compiled


def _params(ctx: _Context, kind: str, data: Mapping[str, object]) -> RuleParams:
    if kind == "phrases":
        return PhrasesParams(tuple(_compile(ctx, p) for p in _string_list(ctx, data, "patterns")))
    if kind == "low_price":
        below = data["below_eur"]
        if not isinstance(below, Mapping) or not below:
            raise ctx.error("'below_eur' must map price units to euro amounts")
        _check_keys(ctx, below, (), PRICE_UNITS)
        limits = {unit: _positive(ctx, below, unit) for unit in PRICE_UNITS if unit in below}
        min_eur = _number(ctx, data, "min_eur") if "min_eur" in data else _DEFAULT_MIN_EUR
        if min_eur < 0:
            raise ctx.error(f"'min_eur' must not be negative, not {min_eur!r}")
        return LowPriceParams(
            quarter=limits.get("quarter"),
            half_hour=limits.get("half_hour"),
            hour=limits.get("hour"),
            unspecified=limits.get("unspecified"),
            min_eur=min_eur,
        )
    if kind == "phone_cities":
        return PhoneCitiesParams(
            min_cities=_integer(ctx, data, "min_cities", 2),
            within_days=_positive(ctx, data, "within_days"),
        )
    if kind == "shared_images_identities":
        return SharedImagesParams(
            min_shared_image_ads=_integer(ctx, data, "min_shared_image_ads", 2),
            min_names=_integer(ctx, data, "min_names", 2),
            min_age_spread=_integer(ctx, data, "min_age_spread", 1),
        )
    if kind == "ads_per_phone":
        return AdsPerPhoneParams(_positive(ctx, data, "min_ads_per_phone"))
    if kind == "phone_region":
        regions = _string_list(ctx, data, "regions")
        for region in regions:
            if not _REGION.fullmatch(region):
                raise ctx.error(f"region {region!r} is not an upper-case ISO 3166 code")
        return PhoneRegionParams(frozenset(regions))
    # ad_rate
    share = _positive(ctx, data, "min_share")
    if share > 1:
        raise ctx.error(f"'min_share' must be at most 1, not {share!r}")
    rule_ids = _string_list(ctx, data, "rules")
    return AdRateParams(tuple(rule_ids), share, _integer(ctx, data, "min_ads", 1))


def _parse_rule(ctx: _Context, index: int, data: object) -> IndicatorRule:
    if not isinstance(data, Mapping):
        ctx.at_rule(index, None)
        raise ctx.error("a rule must be a mapping of fields")
    ctx.at_rule(index, data.get("id"))
    kind = data.get("kind")
    if kind is None:
        raise ctx.error("missing field 'kind'")
    if kind not in _KIND_KEYS:
        raise ctx.error(f"unknown kind {kind!r}; known: {', '.join(sorted(_KIND_KEYS))}")
    kind_level, required, optional = _KIND_KEYS[kind]
    _check_keys(ctx, data, (*_COMMON_KEYS, *required), optional)
    rule_id = _text(ctx, data, "id")
    if not _RULE_ID.fullmatch(rule_id):
        raise ctx.error("'id' must be lower-case letters, digits and underscores")
    level = data["level"]
    if level not in LEVELS:
        raise ctx.error(f"unknown level {level!r}; known: {', '.join(LEVELS)}")
    if level != kind_level:
        raise ctx.error(f"kind {kind!r} is a {kind_level}-level rule, not {level!r}")
    category = data["category"]
    if not isinstance(category, str) or category not in CATEGORIES:
        raise ctx.error(f"unknown category {category!r}; known: {', '.join(sorted(CATEGORIES))}")
    weight = _number(ctx, data, "weight")
    if weight < 0:
        raise ctx.error(f"'weight' must not be negative, not {weight!r}")
    return IndicatorRule(
        id=rule_id,
        level=level,
        kind=kind,
        category=category,
        weight=weight,
        description=_text(ctx, data, "description"),
        description_nl=_text(ctx, data, "description_nl"),
        params=_params(ctx, kind, data),
    )


def _check_cross_rules(ctx: _Context, rules: Sequence[IndicatorRule]) -> None:
    by_id = {r.id: r for r in rules}
    for index, rule in enumerate(rules):
        if not isinstance(rule.params, AdRateParams):
            continue
        ctx.at_rule(index, rule.id)
        for ref in rule.params.rules:
            target = by_id.get(ref)
            if target is None or target.level != "ad":
                raise ctx.error(f"'rules' names {ref!r}, which is not an ad-level rule")
        protected = [ref for ref in rule.params.rules if by_id[ref].protected]
        if protected and not rule.protected:
            raise ctx.error(
                f"aggregates protected-category ad rule(s) {', '.join(map(repr, protected))}, "
                "so it must itself have a protected category (nationality, ethnic_origin, origin)"
            )


def _check_protected(
    ctx: _Context, rules: Sequence[IndicatorRule], level: str, threshold: float, label: str
) -> None:
    """The legal rule: protected indicators can never reach a threshold on their own."""
    ctx.where = ""
    protected = [r for r in rules if r.level == level and r.protected]
    for rule in protected:
        if rule.weight >= threshold:
            raise ctx.error(
                f"rule {rule.id!r} ({rule.category}) weighs {rule.weight:g}, which is not below "
                f"the {label} {threshold:g}: nationality, ethnic-origin and origin indicators "
                "may never be the sole trigger"
            )
    total = math.fsum(r.weight for r in protected)
    if total >= threshold:
        names = ", ".join(repr(r.id) for r in protected)
        raise ctx.error(
            f"protected-category {level} rules {names} together weigh {total:g}, which is not "
            f"below the {label} {threshold:g}: nationality, ethnic-origin and origin indicators "
            "may never reach it on their own"
        )


def _parse(
    data: Mapping[str, object], source: str, rule_lines: Sequence[int] | None, digest: str
) -> IndicatorModel:
    ctx = _Context(source, rule_lines)
    if not isinstance(data, Mapping):
        raise ctx.error("an indicator model must be a mapping of fields")
    _check_keys(ctx, data, _TOP_KEYS, ())
    version = data["version"]
    if not isinstance(version, str) or not version.strip() or any(c.isspace() for c in version):
        raise ctx.error(f"'version' must be a string without spaces, not {version!r}")
    threshold = _positive(ctx, data, "threshold")
    profile_threshold = _positive(ctx, data, "profile_threshold")
    raw_rules = data["rules"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ctx.error("'rules' must be a non-empty list")
    rules: list[IndicatorRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule = _parse_rule(ctx, index, raw)
        if rule.id in seen:
            raise ctx.error(f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
        rules.append(rule)
    _check_cross_rules(ctx, rules)
    _check_protected(ctx, rules, "ad", threshold, "threshold")
    _check_protected(ctx, rules, "profile", profile_threshold, "profile_threshold")
    return IndicatorModel(
        version=version,
        threshold=threshold,
        profile_threshold=profile_threshold,
        rules=tuple(rules),
        digest=digest,
        source=source,
    )


def parse_indicator_model(
    data: Mapping[str, object], *, source: str = "indicator model"
) -> IndicatorModel:
    """Validate a model given as a mapping (as read from YAML); ``IndicatorModelError`` if bad."""
    try:
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        canonical = repr(data)
    return _parse(data, source, None, hashlib.sha256(canonical.encode("utf-8")).hexdigest())


def _rule_lines(source: str, node: yaml.Node) -> list[int] | None:
    """Line of each rule, and refusal of duplicate keys (which YAML would silently merge)."""
    stack: list[yaml.Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                key = str(key_node.value)
                if key in keys:
                    line = key_node.start_mark.line + 1
                    raise IndicatorModelError(f"{source}: line {line}: duplicate key {key!r}")
                keys.add(key)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == "rules" and isinstance(value_node, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value_node.value]
    return None


def indicator_model_from_yaml(raw: bytes, *, source: str = "indicator model") -> IndicatorModel:
    """Validate a model file's bytes (YAML, UTF-8); ``IndicatorModelError`` if bad. Reading
    the file is the caller's (``crawler.indicator_model.load_indicator_model``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IndicatorModelError(f"{source}: cannot read the model: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IndicatorModelError(f"{source}: not valid YAML: {exc}") from exc
    if node is None or not isinstance(data, dict):
        raise IndicatorModelError(f"{source}: an indicator model must be a mapping of fields")
    lines = _rule_lines(source, node)
    return _parse(data, source, lines, hashlib.sha256(raw).hexdigest())


# --------------------------------------------------------------------------- scoring


def _result(
    model: IndicatorModel,
    level: str,
    threshold: float,
    fired: list[FiredIndicator],
    notes: list[str],
) -> IndicatorScore:
    score = math.fsum(f.weight for f in fired)
    over = score >= threshold
    if fired and all(f.protected for f in fired):
        over = False
        notes = [*notes, _PROTECTED_ONLY_NOTE]
    return IndicatorScore(
        model_version=model.version,
        level=level,
        score=score,
        threshold=threshold,
        over_threshold=over,
        fired=tuple(fired),
        note=" ".join(notes),
    )


def _fire(rule: IndicatorRule, evidence: str) -> FiredIndicator:
    return FiredIndicator(rule.id, rule.category, rule.weight, rule.description, evidence)


def _phrase_evidence(
    params: PhrasesParams, fields: Sequence[tuple[str, str, _Normalised]]
) -> str | None:
    snippets: list[str] = []
    for name, original, normalised in fields:
        for pattern in params.patterns:
            for match in pattern.finditer(normalised.text):
                if match.end() == match.start():
                    continue
                said = _snippet(normalised.original(original, match.start(), match.end()))
                entry = f'{name}: "{said}"'
                if entry not in snippets:
                    snippets.append(entry)
                if len(snippets) >= _MAX_SNIPPETS:
                    return "; ".join(snippets)
    return "; ".join(snippets) if snippets else None


def _price_evidence(
    params: LowPriceParams, fields: Sequence[tuple[str, str, _Normalised]]
) -> str | None:
    snippets: list[str] = []
    for name, original, normalised in fields:
        for price in _find_prices(normalised.text):
            limit = params.limit(price.unit)
            if limit is None or not params.min_eur <= price.amount < limit:
                continue
            said = _snippet(normalised.original(original, price.start, price.end))
            snippets.append(
                f'{name}: "{said}" (€{price.amount:g} per {_UNIT_WORDS[price.unit]}, '
                f"below €{limit:g})"
                if price.unit != "unspecified"
                else f'{name}: "{said}" (€{price.amount:g}, no unit stated, below €{limit:g})'
            )
            if len(snippets) >= _MAX_SNIPPETS:
                return "; ".join(snippets)
    return "; ".join(snippets) if snippets else None


def score_ad(model: IndicatorModel, title: str, text: str) -> IndicatorScore:
    """Assess one ad's title and text with the model's ad-level rules."""
    fields = [
        ("title", title, _normalise(title)),
        ("text", text, _normalise(text)),
    ]
    fired: list[FiredIndicator] = []
    for rule in model.ad_rules:
        evidence: str | None = None
        if isinstance(rule.params, PhrasesParams):
            evidence = _phrase_evidence(rule.params, fields)
        elif isinstance(rule.params, LowPriceParams):
            evidence = _price_evidence(rule.params, fields)
        if evidence is not None:
            fired.append(_fire(rule, evidence))
    return _result(model, "ad", model.threshold, fired, [])


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _key(value: str) -> str:
    return normalise_text(value)


def _phones_phrase(facts: ProfileFacts) -> str:
    count = len(facts.phones)
    regions = sorted({r for r in facts.phone_regions if r})
    noun = "phone number" if count == 1 else "phone numbers"
    return f"{count} {noun}" + (f" ({', '.join(regions)})" if regions else "")


def _phone_cities(params: PhoneCitiesParams, facts: ProfileFacts) -> str | None:
    if not facts.phones:
        return None
    points = sorted(
        (_as_utc(a.posted_at), _key(a.city), a.city.strip(), a.site)
        for a in facts.appearances
        if a.posted_at is not None and a.city is not None and _key(a.city)
    )
    window = timedelta(days=params.within_days)
    counts: Counter[str] = Counter()
    best: tuple[int, int, int] | None = None  # distinct cities, first, last
    left = 0
    for right, (moment, city, _, _) in enumerate(points):
        counts[city] += 1
        while moment - points[left][0] > window:
            counts[points[left][1]] -= 1
            if not counts[points[left][1]]:
                del counts[points[left][1]]
            left += 1
        if best is None or len(counts) > best[0]:
            best = (len(counts), left, right)
    if best is None or best[0] < params.min_cities:
        return None
    _, first, last = best
    shown: dict[str, str] = {}
    sites: set[str] = set()
    for _, city, display, site in points[first : last + 1]:
        shown.setdefault(city, display)
        sites.add(site)
    start, end = points[first][0], points[last][0]
    days = max(1, math.ceil((end - start) / timedelta(days=1)))
    day_word = "day" if days == 1 else "days"
    site_word = "site" if len(sites) == 1 else "sites"
    return (
        f"{_phones_phrase(facts)}; {len(shown)} cities within {days} {day_word} "
        f"({start.date().isoformat()} to {end.date().isoformat()}, UTC): "
        f"{', '.join(shown.values())}; on {len(sites)} {site_word}"
    )


def _shared_images(params: SharedImagesParams, facts: ProfileFacts) -> str | None:
    if facts.shared_image_ad_count < params.min_shared_image_ads:
        return None
    names: dict[str, str] = {}
    for name in facts.names:
        if _key(name):
            names.setdefault(_key(name), name.strip())
    spread = max(facts.ages) - min(facts.ages) if facts.ages else 0
    reasons: list[str] = []
    if len(names) >= params.min_names:
        reasons.append(f"{len(names)} names: {', '.join(names.values())}")
    if spread >= params.min_age_spread:
        reasons.append(f"ages {min(facts.ages)} to {max(facts.ages)}")
    if not reasons:
        return None
    return f"{facts.shared_image_ad_count} ads share photos; " + "; ".join(reasons)


def _ads_per_phone(params: AdsPerPhoneParams, facts: ProfileFacts) -> str | None:
    if not facts.phones:
        return None
    rate = facts.ad_count / len(facts.phones)
    if rate < params.min_ads_per_phone:
        return None
    return f"{facts.ad_count} ads for {_phones_phrase(facts)} ({rate:.3g} per number)"


def _phone_region(params: PhoneRegionParams, facts: ProfileFacts) -> str | None:
    hits = [r for r in facts.phone_regions if r is not None and r.upper() in params.regions]
    if not hits:
        return None
    count = len(facts.phones)
    return f"phone region {', '.join(sorted(set(hits)))} ({len(hits)} of {count} numbers)"


def _ad_rate(params: AdRateParams, ad_scores: Sequence[IndicatorScore]) -> str | None:
    if len(ad_scores) < params.min_ads:
        return None
    wanted = set(params.rules)
    hits = sum(1 for s in ad_scores if any(f.rule_id in wanted for f in s.fired))
    share = hits / len(ad_scores)
    if share < params.min_share:
        return None
    return (
        f"{hits} of {len(ad_scores)} ads ({share:.0%}) show {' or '.join(params.rules)}; "
        f"at least {params.min_share:.0%} needed"
    )


def score_profile(
    model: IndicatorModel, facts: ProfileFacts, ad_scores: Sequence[IndicatorScore]
) -> IndicatorScore:
    """Assess a candidate profile from facts about it and the ad scores of its ads.

    Ad scores are aggregated by rule id, which stays stable across model versions; the
    note says when some came from another version than ``model``'s.
    """
    for ad_score in ad_scores:
        if ad_score.level != "ad":
            raise ValueError("score_profile aggregates ad-level scores only")
    fired: list[FiredIndicator] = []
    for rule in model.profile_rules:
        params = rule.params
        evidence: str | None = None
        if isinstance(params, PhoneCitiesParams):
            evidence = _phone_cities(params, facts)
        elif isinstance(params, SharedImagesParams):
            evidence = _shared_images(params, facts)
        elif isinstance(params, AdsPerPhoneParams):
            evidence = _ads_per_phone(params, facts)
        elif isinstance(params, PhoneRegionParams):
            evidence = _phone_region(params, facts)
        elif isinstance(params, AdRateParams):
            evidence = _ad_rate(params, ad_scores)
        if evidence is not None:
            fired.append(_fire(rule, evidence))
    notes: list[str] = []
    others = sorted({s.model_version for s in ad_scores} - {model.version})
    if others:
        notes.append(
            f"Some ad scores come from model version(s) {', '.join(others)}; "
            "they were aggregated by rule id."
        )
    return _result(model, "profile", model.profile_threshold, fired, notes)


def keeps(score: IndicatorScore) -> bool:
    """Whether the assessment clears its threshold (for an ad: whether it may be kept)."""
    return score.over_threshold


# --------------------------------------------------------------------------- explaining


def describe(score: IndicatorScore) -> str:
    """One paragraph for analysts: the score, its threshold, and that it is an assessment."""
    outcome = "over threshold" if score.over_threshold else "not over threshold"
    count = len(score.fired)
    fired = f"{count} indicator{'s' if count != 1 else ''} fired"
    return (
        f"Indicator assessment of this {score.level} by model {score.model_version}: "
        f"score {score.score:.2f} against threshold {score.threshold:.2f}, {outcome} "
        f"({fired}). {_ASSESSMENT_SENTENCE}"
    )


def _explain_lines(score: IndicatorScore) -> Iterator[str]:
    yield describe(score)
    if not score.fired:
        yield "No indicator fired."
    for fired in score.fired:
        yield (
            f"- {fired.rule_id} ({fired.category}, weight {fired.weight:.2f}): "
            f"{fired.description} Observed: {fired.evidence}"
        )
    if score.note:
        yield f"Note: {score.note}"


def explain(score: IndicatorScore) -> str:
    """``describe`` followed by one line per fired indicator with its observed evidence."""
    return "\n".join(_explain_lines(score))
