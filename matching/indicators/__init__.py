"""Trafficking indicators: a versioned, declarative model that scores ads and profiles.

In the spirit of the police's score model, an ad is kept only when the indicators it
shows add up to the model's threshold; a candidate profile is scored the same way from
plain facts about it (cities and dates, phones, names, shared photos) and from the ad
scores of its ads. The rules are data (``indicator_models/*.yaml``), validated on load:
phrase patterns are written against folded text (case-folded, accents stripped,
whitespace collapsed), numeric rules carry their parameters.

Every score is an *assessment*, never a fact (LED art. 7): it records the model version
and, for each indicator that fired, the observed evidence it rests on. Nationality,
ethnic origin and origin (source-country phone) indicators are protected: the model is
refused unless they can never reach a threshold on their own, and scoring enforces the
same at run time (LED art. 10 and 11(3): no profiling on such data alone).

The modules: ``records`` (the model and its results), ``folding`` (text as phrase rules
see it), ``prices`` (euro prices and their units), ``kinds`` (each rule kind: its
parameters, its fields in a model file, its evaluator, in one registry), ``schema`` and
``parsing`` (loading a model with pydantic), ``scoring`` and ``explaining``.
"""

from matching.indicators.explaining import describe, explain
from matching.indicators.folding import fold_for_phrases
from matching.indicators.kinds import (
    AdRateParams,
    AdsPerPhoneParams,
    LowPriceParams,
    PhoneCitiesParams,
    PhoneRegionParams,
    PhrasesParams,
    SharedImagesParams,
)
from matching.indicators.parsing import indicator_model_from_yaml, parse_indicator_model
from matching.indicators.records import (
    CATEGORIES,
    PROTECTED_CATEGORIES,
    Appearance,
    FiredIndicator,
    IndicatorModel,
    IndicatorModelError,
    IndicatorRule,
    IndicatorScore,
    ProfileFacts,
)
from matching.indicators.scoring import ad_score_from_rules, keeps, score_ad, score_profile

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
    "ad_score_from_rules",
    "describe",
    "explain",
    "fold_for_phrases",
    "indicator_model_from_yaml",
    "keeps",
    "parse_indicator_model",
    "score_ad",
    "score_profile",
]
