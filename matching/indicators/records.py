"""The indicator model and its results as plain records, and the fixed categories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

Level = Literal["ad", "profile"]
LEVELS: tuple[Level, ...] = get_args(Level)

Category = Literal[
    "movement",
    "availability",
    "control",
    "price",
    "wording",
    "identity",
    "nationality",
    "ethnic_origin",
    "origin",
]
#: Categories a rule may have. Closed so that a typo cannot slip a protected rule past
#: the legal checks under another name.
CATEGORIES: frozenset[str] = frozenset(get_args(Category))

#: Special-category or proxy data (LED art. 10): never the sole trigger of a threshold.
#: Fixed in code, not in the model file, so that editing a model cannot lift it.
PROTECTED_CATEGORIES = frozenset({"nationality", "ethnic_origin", "origin"})


class IndicatorModelError(ValueError):
    """An indicator model file or mapping that cannot be used; the message names the rule."""


class RuleParams:
    """What one kind of rule looks for; each kind in ``kinds`` has its own subclass."""

    __slots__ = ()


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
