"""Rule kinds: for each, what it looks for, how a model file writes it, and how it fires.

A kind is declared once, in ``KINDS``: the level it scores, the record of its parameters,
the pydantic model of its own fields in a model file, and the function that finds its
evidence. Loading and scoring look a kind up there and nowhere else; adding a kind is a
block in this module and its entry in ``KINDS``.

Evidence is observed fact (what the ad says, where the phone was seen); the rule's weight
and the model's threshold make it an assessment.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, field_validator

from matching.indicators.folding import FoldedText, fold, fold_for_phrases, strip_accents
from matching.indicators.prices import UNIT_WORDS, find_prices
from matching.indicators.records import IndicatorScore, Level, ProfileFacts, RuleParams
from matching.indicators.schema import FileModel, NonBlankList, NonNegative, Positive, Share

__all__ = [
    "KINDS",
    "AdRateParams",
    "AdText",
    "AdsPerPhoneParams",
    "LowPriceParams",
    "PhoneCitiesParams",
    "PhoneRegionParams",
    "PhrasesParams",
    "ProfileView",
    "RuleKind",
    "SharedImagesParams",
]

P = TypeVar("P", bound=RuleParams)
S = TypeVar("S")

_MAX_EVIDENCE_CHARS = 80
_MAX_SNIPPETS = 3


@dataclass(frozen=True, slots=True)
class AdText:
    """What ad rules read: an ad's fields (title, text), each folded, by name."""

    fields: tuple[tuple[str, FoldedText], ...]

    @classmethod
    def of(cls, title: str, text: str) -> AdText:
        return cls((("title", fold(title)), ("text", fold(text))))


@dataclass(frozen=True, slots=True)
class ProfileView:
    """What profile rules read: facts about a candidate profile and its ads' scores."""

    facts: ProfileFacts
    ad_scores: Sequence[IndicatorScore]


class Parameters(FileModel, Generic[P]):
    """A kind's own fields in a model file, beside those every rule has."""

    def params(self) -> P:
        """The fields as the kind's parameters record."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class RuleKind(Generic[P, S]):
    """One kind of rule: the level it scores, its parameters, their fields in a model file,
    and ``evaluate``, which returns the evidence that fires the rule or ``None``."""

    level: Level
    params_type: type[P]
    fields: type[Parameters[P]]
    evaluate: Callable[[P, S], str | None]

    def evidence(self, params: RuleParams, seen: S) -> str | None:
        """What in ``seen`` fires a rule of this kind with ``params``, or ``None``."""
        if not isinstance(params, self.params_type):
            raise TypeError(f"{type(params).__name__} are not {self.params_type.__name__}")
        return self.evaluate(params, seen)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_EVIDENCE_CHARS:
        text = text[: _MAX_EVIDENCE_CHARS - 1] + "…"
    return text


# --------------------------------------------------------------------------- phrases


@dataclass(frozen=True, slots=True)
class PhrasesParams(RuleParams):
    """Ad rule that fires when any of its patterns occurs in the folded title or text."""

    patterns: tuple[re.Pattern[str], ...]


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(strip_accents(pattern), re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    if compiled.search("") is not None:
        raise ValueError(f"pattern {pattern!r} matches empty text, so it would fire on every ad")
    return compiled


class _PhrasesFields(Parameters[PhrasesParams]):
    patterns: NonBlankList

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            _compile(pattern)
        return patterns

    def params(self) -> PhrasesParams:
        return PhrasesParams(tuple(_compile(pattern) for pattern in self.patterns))


def _phrase_evidence(params: PhrasesParams, ad: AdText) -> str | None:
    snippets: list[str] = []
    for name, folded in ad.fields:
        for pattern in params.patterns:
            for match in pattern.finditer(folded.text):
                if match.end() == match.start():
                    continue
                said = _snippet(folded.original(match.start(), match.end()))
                entry = f'{name}: "{said}"'
                if entry not in snippets:
                    snippets.append(entry)
                if len(snippets) >= _MAX_SNIPPETS:
                    return "; ".join(snippets)
    return "; ".join(snippets) if snippets else None


# --------------------------------------------------------------------------- low_price


@dataclass(frozen=True, slots=True)
class LowPriceParams(RuleParams):
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


class _PriceLimits(FileModel):
    quarter: Positive | None = None
    half_hour: Positive | None = None
    hour: Positive | None = None
    unspecified: Positive | None = None


class _LowPriceFields(Parameters[LowPriceParams]):
    below_eur: _PriceLimits
    min_eur: NonNegative = 10.0

    @field_validator("below_eur", mode="before")
    @classmethod
    def _some_limit(cls, value: object) -> object:
        if not isinstance(value, Mapping) or not value:
            raise ValueError("'below_eur' must map price units to euro amounts")
        return dict(value)

    def params(self) -> LowPriceParams:
        limits = self.below_eur
        return LowPriceParams(
            quarter=limits.quarter,
            half_hour=limits.half_hour,
            hour=limits.hour,
            unspecified=limits.unspecified,
            min_eur=self.min_eur,
        )


def _price_evidence(params: LowPriceParams, ad: AdText) -> str | None:
    snippets: list[str] = []
    for name, folded in ad.fields:
        for price in find_prices(folded.text):
            limit = params.limit(price.unit)
            if limit is None or not params.min_eur <= price.amount < limit:
                continue
            said = _snippet(folded.original(price.start, price.end))
            snippets.append(
                f'{name}: "{said}" (€{price.amount:g} per {UNIT_WORDS[price.unit]}, '
                f"below €{limit:g})"
                if price.unit != "unspecified"
                else f'{name}: "{said}" (€{price.amount:g}, no unit stated, below €{limit:g})'
            )
            if len(snippets) >= _MAX_SNIPPETS:
                return "; ".join(snippets)
    return "; ".join(snippets) if snippets else None


# --------------------------------------------------------------------------- profile facts


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _key(value: str) -> str:
    return fold_for_phrases(value)


def _phones_phrase(facts: ProfileFacts) -> str:
    count = len(facts.phones)
    regions = sorted({r for r in facts.phone_regions if r})
    noun = "phone number" if count == 1 else "phone numbers"
    return f"{count} {noun}" + (f" ({', '.join(regions)})" if regions else "")


# --------------------------------------------------------------------------- phone_cities


@dataclass(frozen=True, slots=True)
class PhoneCitiesParams(RuleParams):
    """Profile rule: its phone(s) seen in ``min_cities`` cities within ``within_days``."""

    min_cities: int
    within_days: float


class _PhoneCitiesFields(Parameters[PhoneCitiesParams]):
    min_cities: Annotated[int, Field(ge=2)]
    within_days: Positive

    def params(self) -> PhoneCitiesParams:
        return PhoneCitiesParams(self.min_cities, self.within_days)


def _phone_cities(params: PhoneCitiesParams, profile: ProfileView) -> str | None:
    facts = profile.facts
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


# ------------------------------------------------------------------ shared_images_identities


@dataclass(frozen=True, slots=True)
class SharedImagesParams(RuleParams):
    """Profile rule: the same photos under several names, or under ages far apart."""

    min_shared_image_ads: int
    min_names: int
    min_age_spread: int


class _SharedImagesFields(Parameters[SharedImagesParams]):
    min_shared_image_ads: Annotated[int, Field(ge=2)]
    min_names: Annotated[int, Field(ge=2)]
    min_age_spread: Annotated[int, Field(ge=1)]

    def params(self) -> SharedImagesParams:
        return SharedImagesParams(self.min_shared_image_ads, self.min_names, self.min_age_spread)


def _shared_images(params: SharedImagesParams, profile: ProfileView) -> str | None:
    facts = profile.facts
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


# --------------------------------------------------------------------------- ads_per_phone


@dataclass(frozen=True, slots=True)
class AdsPerPhoneParams(RuleParams):
    """Profile rule: at least ``min_ads_per_phone`` ads per phone number."""

    min_ads_per_phone: float


class _AdsPerPhoneFields(Parameters[AdsPerPhoneParams]):
    min_ads_per_phone: Positive

    def params(self) -> AdsPerPhoneParams:
        return AdsPerPhoneParams(self.min_ads_per_phone)


def _ads_per_phone(params: AdsPerPhoneParams, profile: ProfileView) -> str | None:
    facts = profile.facts
    if not facts.phones:
        return None
    rate = facts.ad_count / len(facts.phones)
    if rate < params.min_ads_per_phone:
        return None
    return f"{facts.ad_count} ads for {_phones_phrase(facts)} ({rate:.3g} per number)"


# --------------------------------------------------------------------------- phone_region


@dataclass(frozen=True, slots=True)
class PhoneRegionParams(RuleParams):
    """Profile rule: a phone number from one of ``regions`` (ISO 3166 codes)."""

    regions: frozenset[str]


_REGION = re.compile(r"[A-Z]{2}")


class _PhoneRegionFields(Parameters[PhoneRegionParams]):
    regions: NonBlankList

    @field_validator("regions")
    @classmethod
    def _iso_codes(cls, regions: list[str]) -> list[str]:
        for region in regions:
            if not _REGION.fullmatch(region):
                raise ValueError(f"region {region!r} is not an upper-case ISO 3166 code")
        return regions

    def params(self) -> PhoneRegionParams:
        return PhoneRegionParams(frozenset(self.regions))


def _phone_region(params: PhoneRegionParams, profile: ProfileView) -> str | None:
    facts = profile.facts
    hits = [r for r in facts.phone_regions if r is not None and r.upper() in params.regions]
    if not hits:
        return None
    count = len(facts.phones)
    return f"phone region {', '.join(sorted(set(hits)))} ({len(hits)} of {count} numbers)"


# --------------------------------------------------------------------------- ad_rate


@dataclass(frozen=True, slots=True)
class AdRateParams(RuleParams):
    """Profile rule: share of the profile's ads on which any of ``rules`` fired.

    ``rules`` must name ad-level rules of the same model, checked when it is loaded.
    """

    rules: tuple[str, ...]
    min_share: float
    min_ads: int


class _AdRateFields(Parameters[AdRateParams]):
    rules: NonBlankList
    min_share: Share
    min_ads: Annotated[int, Field(ge=1)]

    def params(self) -> AdRateParams:
        return AdRateParams(tuple(self.rules), self.min_share, self.min_ads)


def _ad_rate(params: AdRateParams, profile: ProfileView) -> str | None:
    ad_scores = profile.ad_scores
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


# --------------------------------------------------------------------------- the registry

# Each kind is named apart so that mypy checks that its parameters, fields and evaluator
# agree; inside a mapping of RuleKind[Any, Any] it would not.
_PHRASES = RuleKind("ad", PhrasesParams, _PhrasesFields, _phrase_evidence)
_LOW_PRICE = RuleKind("ad", LowPriceParams, _LowPriceFields, _price_evidence)
_PHONE_CITIES = RuleKind("profile", PhoneCitiesParams, _PhoneCitiesFields, _phone_cities)
_SHARED_IMAGES = RuleKind("profile", SharedImagesParams, _SharedImagesFields, _shared_images)
_ADS_PER_PHONE = RuleKind("profile", AdsPerPhoneParams, _AdsPerPhoneFields, _ads_per_phone)
_PHONE_REGION = RuleKind("profile", PhoneRegionParams, _PhoneRegionFields, _phone_region)
_AD_RATE = RuleKind("profile", AdRateParams, _AdRateFields, _ad_rate)

#: Every kind a model file may use, by the name it writes in ``kind:``.
KINDS: Mapping[str, RuleKind[Any, Any]] = MappingProxyType(
    {
        "phrases": _PHRASES,
        "low_price": _LOW_PRICE,
        "phone_cities": _PHONE_CITIES,
        "shared_images_identities": _SHARED_IMAGES,
        "ads_per_phone": _ADS_PER_PHONE,
        "phone_region": _PHONE_REGION,
        "ad_rate": _AD_RATE,
    }
)
