"""Scores in words for analysts: always said to be an assessment, with the evidence seen."""

from __future__ import annotations

from collections.abc import Iterator

from matching.indicators.records import IndicatorScore

__all__ = ["describe", "explain"]

_ASSESSMENT_SENTENCE = (
    "This score is an automated assessment by an indicator model, not an established "
    "fact about any person; the evidence listed is what was observed."
)


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
