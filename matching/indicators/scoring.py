"""Scoring ads and candidate profiles with a model's rules.

Every score is an assessment, never a fact (LED art. 7): it records the model version and,
for each rule that fired, the evidence observed. When only protected-category rules fired
(nationality, ethnic origin, origin) the result is never over threshold, whatever the
model says (LED art. 10 and 11(3)): this holds even for a model that skipped validation.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from matching.indicators.kinds import KINDS, AdText, ProfileView
from matching.indicators.records import (
    FiredIndicator,
    IndicatorModel,
    IndicatorRule,
    IndicatorScore,
    ProfileFacts,
)

__all__ = ["ad_score_from_rules", "keeps", "score_ad", "score_profile"]

_PROTECTED_ONLY_NOTE = (
    "Only nationality, ethnic-origin or origin indicators fired; by policy these may never "
    "be the sole trigger, so this result is not over threshold whatever its score."
)


def _fired(rules: Sequence[IndicatorRule], seen: AdText | ProfileView) -> list[FiredIndicator]:
    fired: list[FiredIndicator] = []
    for rule in rules:
        evidence = KINDS[rule.kind].evidence(rule.params, seen)
        if evidence is not None:
            fired.append(
                FiredIndicator(rule.id, rule.category, rule.weight, rule.description, evidence)
            )
    return fired


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


def score_ad(model: IndicatorModel, title: str, text: str) -> IndicatorScore:
    """Assess one ad's title and text with the model's ad-level rules."""
    fired = _fired(model.ad_rules, AdText.of(title, text))
    return _result(model, "ad", model.threshold, fired, [])


def ad_score_from_rules(model: IndicatorModel, rule_ids: Collection[str]) -> IndicatorScore:
    """The ad assessment this model makes when exactly these ad rules fire, without their
    evidence: what a stored ad keeps of its assessment, and all a profile's score reads of it.

    ``ValueError`` names a rule id that is not one of the model's ad rules.
    """
    unknown = set(rule_ids) - {rule.id for rule in model.ad_rules}
    if unknown:
        raise ValueError(f"not ad rules of model {model.version}: {', '.join(sorted(unknown))}")
    fired = [
        FiredIndicator(rule.id, rule.category, rule.weight, rule.description, "")
        for rule in model.ad_rules
        if rule.id in rule_ids
    ]
    return _result(model, "ad", model.threshold, fired, [])


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
    fired = _fired(model.profile_rules, ProfileView(facts, ad_scores))
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
