"""Explaining: every score is said to be an assessment, with its model version."""

from __future__ import annotations

from matching.indicators import describe, explain
from tests.matching.indicators.examples import MODEL, ad, facts, profile


def test_every_score_records_the_model_version() -> None:
    for score in (ad(""), ad("Nieuw in de stad"), profile(facts())):
        assert score.model_version == MODEL.version
        assert MODEL.version in describe(score)


def test_describe_and_explain_say_assessment_not_fact() -> None:
    score = ad("Nieuw in de stad, alleen deze week.")
    summary = describe(score)
    assert "assessment" in summary and "not an established fact" in summary
    assert "score 0.90 against threshold 1.00, not over threshold" in summary
    lines = explain(score).splitlines()
    assert lines[0] == summary
    assert lines[1].startswith("- new_in_town (movement, weight 0.50): ")
    assert lines[1].endswith('Observed: text: "Nieuw in de stad"')
    assert "No indicator fired." in explain(ad("Vriendelijke dame."))
