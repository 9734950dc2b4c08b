"""Scoring: thresholds, the model version on every score, and the legal guard that no
protected indicator is ever the sole trigger.

All ad texts here are synthetic and non-explicit.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.indicators import (
    Appearance,
    IndicatorModel,
    IndicatorRule,
    IndicatorScore,
    PhrasesParams,
    ProfileFacts,
    ad_score_from_rules,
    explain,
    keeps,
    score_ad,
    score_profile,
)
from tests.matching.indicators.examples import (
    FIRING,
    LOW_PRICES,
    MODEL,
    ad,
    at,
    facts,
    fired_ids,
    profile,
)


def test_two_indicators_reach_the_threshold() -> None:
    score = ad("Nieuw in de stad, alleen deze week. Zij is lief.")
    assert fired_ids(score) == {"new_in_town", "short_stay", "third_person"}
    assert score.score == pytest.approx(1.5)
    assert score.over_threshold and keeps(score)


def test_one_weak_indicator_stays_below_threshold() -> None:
    score = ad("Nieuw in de stad.")
    assert score.score == pytest.approx(0.5)
    assert not score.over_threshold
    assert score.note == ""


def test_source_country_phone_alone_is_never_over_threshold() -> None:
    score = profile(facts(phone_regions=("RO",)))
    (fired,) = score.fired
    assert fired.rule_id == "source_country_phone"
    assert fired.category == "origin" and fired.protected
    assert fired.evidence == "phone region RO (1 of 1 numbers)"
    assert not score.over_threshold
    assert "never be the sole trigger" in score.note


def test_profile_over_threshold_with_movement_and_identity() -> None:
    appearances = tuple(
        Appearance(at(d), c, "s") for d, c in [(1, "Utrecht"), (2, "Breda"), (4, "Zwolle")]
    )
    score = profile(
        facts(appearances=appearances, names=("Anna", "Bella"), shared_image_ad_count=2)
    )
    assert score.over_threshold and keeps(score)
    assert score.model_version == MODEL.version
    assert score.level == "profile"
    assert score.threshold == MODEL.profile_threshold


def test_profile_notes_ad_scores_from_other_versions() -> None:
    old = ad("Nieuw in de stad.")
    old = IndicatorScore("2025.01-1", "ad", old.score, 1.0, False, old.fired, "")
    score = profile(facts(), (old, ad("Vriendelijke dame.")))
    assert "2025.01-1" in score.note
    assert score.model_version == MODEL.version


def test_profile_refuses_profile_scores_as_ad_scores() -> None:
    with pytest.raises(ValueError, match="ad-level"):
        profile(facts(), (profile(facts()),))


# --------------------------------------------------------------------------- legal guard


def test_nationality_mention_alone_is_never_over_threshold() -> None:
    score = ad("Roemeense, Bulgaarse, Moldavian, Ukrainian dame.")
    assert fired_ids(score) == {"source_country_nationality"}
    assert not score.over_threshold and not keeps(score)
    assert "never be the sole trigger" in score.note
    assert "never be the sole trigger" in explain(score)


def _rule(rule_id: str, category: str, weight: float, pattern: str) -> IndicatorRule:
    return IndicatorRule(
        id=rule_id,
        level="ad",
        kind="phrases",
        category=category,
        weight=weight,
        description=f"{rule_id} description.",
        description_nl=f"{rule_id} omschrijving.",
        params=PhrasesParams((re.compile(pattern),)),
    )


def test_runtime_guard_holds_even_for_a_model_that_bypassed_validation() -> None:
    # Built directly, so load-time validation never saw it: scoring must still refuse.
    unlawful = IndicatorModel(
        version="test-unlawful",
        threshold=1.0,
        profile_threshold=1.0,
        rules=(
            _rule("nationality_heavy", "nationality", 5.0, r"\broemeense\b"),
            _rule("origin_heavy", "origin", 5.0, r"\broemenie\b"),
            _rule("new", "movement", 0.1, r"\bnieuw\b"),
        ),
    )
    only_protected = score_ad(unlawful, "", "Roemeense dame uit Roemenie")
    assert only_protected.score == pytest.approx(10.0)
    assert not only_protected.over_threshold
    assert "sole trigger" in only_protected.note
    with_other = score_ad(unlawful, "", "Nieuw: Roemeense dame")
    assert with_other.over_threshold
    assert with_other.note == ""


# --------------------------------------------------------------------------- properties

INDICATOR_PHRASES = [text for _, text in FIRING] + LOW_PRICES


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=300),
    title=st.text(max_size=60),
    phrase=st.sampled_from(INDICATOR_PHRASES),
)
def test_adding_an_indicator_phrase_never_lowers_the_score(
    text: str, title: str, phrase: str
) -> None:
    before = score_ad(MODEL, title, text)
    after = score_ad(MODEL, title, text + "\n" + phrase)
    assert after.score >= before.score
    assert fired_ids(after) >= fired_ids(before)


@settings(max_examples=300, deadline=None)
@given(text=st.text(), title=st.text())
def test_scoring_never_crashes_on_arbitrary_text(text: str, title: str) -> None:
    score = score_ad(MODEL, title, text)
    assert score.model_version == MODEL.version
    assert score.score >= 0
    if score.fired and all(f.protected for f in score.fired):
        assert not score.over_threshold
    explain(score)


_zones = st.sampled_from([None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
_appearances = st.builds(
    Appearance,
    posted_at=st.none() | st.datetimes(timezones=_zones),
    city=st.none() | st.text(max_size=12),
    site=st.text(max_size=8),
)


@st.composite
def _facts(draw: st.DrawFn) -> ProfileFacts:
    phones = draw(st.lists(st.text(max_size=12), max_size=3))
    regions = draw(
        st.lists(
            st.none() | st.sampled_from(["NL", "RO", "BG", "DE"]),
            min_size=len(phones),
            max_size=len(phones),
        )
    )
    return ProfileFacts(
        ad_count=draw(st.integers(0, 200)),
        phones=tuple(phones),
        phone_regions=tuple(regions),
        appearances=tuple(draw(st.lists(_appearances, max_size=20))),
        names=tuple(draw(st.lists(st.text(max_size=10), max_size=5))),
        ages=tuple(draw(st.lists(st.integers(16, 80), max_size=5))),
        shared_image_ad_count=draw(st.integers(0, 20)),
    )


@settings(max_examples=200, deadline=None)
@given(f=_facts(), texts=st.lists(st.text(max_size=80), max_size=5))
def test_profile_scoring_never_crashes(f: ProfileFacts, texts: list[str]) -> None:
    score = score_profile(MODEL, f, [score_ad(MODEL, "", t) for t in texts])
    assert score.model_version == MODEL.version
    assert score.level == "profile"
    if score.fired and all(x.protected for x in score.fired):
        assert not score.over_threshold


def test_a_kept_assessment_reads_back_as_the_score_of_its_rules() -> None:
    score = ad("Nieuw in de stad, alleen deze week. Zij is lief.")
    assert score.fired
    again = ad_score_from_rules(MODEL, [fired.rule_id for fired in score.fired])
    assert (again.score, again.over_threshold, again.model_version) == (
        score.score,
        score.over_threshold,
        score.model_version,
    )
    assert [f.rule_id for f in again.fired] == [f.rule_id for f in score.fired]
    with pytest.raises(ValueError, match="not ad rules of model"):
        ad_score_from_rules(MODEL, ["no_such_rule"])
