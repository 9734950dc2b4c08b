"""Rule kinds: each fires on what it looks for, and only then; the registry holds them all.

All ad texts here are synthetic and non-explicit; names, cities and numbers are invented.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from matching.indicators import Appearance, keeps
from matching.indicators.kinds import KINDS, AdText
from matching.indicators.records import LEVELS
from tests.matching.indicators.examples import (
    FIRING,
    MODEL,
    NEUTRAL,
    PHONE,
    ad,
    at,
    facts,
    fired_ids,
    profile,
)

# --------------------------------------------------------------------------- ad rules


@pytest.mark.parametrize(("rule_id", "text"), FIRING)
def test_ad_rule_fires_on_its_phrasing(rule_id: str, text: str) -> None:
    score = ad(text)
    assert rule_id in fired_ids(score)
    fired = next(f for f in score.fired if f.rule_id == rule_id)
    assert fired.category == MODEL.rule(rule_id).category
    assert fired.weight == MODEL.rule(rule_id).weight
    assert fired.evidence.startswith('text: "')


@pytest.mark.parametrize("text", NEUTRAL)
def test_neutral_text_fires_nothing(text: str) -> None:
    score = ad(text, title=text)
    assert score.fired == ()
    assert score.score == 0
    assert not keeps(score)


def test_title_is_scored_and_named_in_evidence() -> None:
    score = ad("Vriendelijke dame.", title="NIEUW in de Stad!")
    (fired,) = score.fired
    assert fired.rule_id == "new_in_town"
    assert fired.evidence == 'title: "NIEUW in de Stad"'  # as the poster wrote it


def test_evidence_quotes_original_text_with_accents() -> None:
    score = ad("Lieve   OEKRAÏENSE dame")
    assert score.fired[0].evidence == 'text: "OEKRAÏENSE"'


# --------------------------------------------------------------------------- profiles


def test_three_cities_within_four_days_fires() -> None:
    score = profile(
        facts(
            appearances=(
                Appearance(at(1), "Utrecht", "site-a"),
                Appearance(at(3), "Breda", "site-a"),
                Appearance(at(4), "Zwolle", "site-b"),
            )
        )
    )
    (fired,) = score.fired
    assert fired.rule_id == "phone_in_many_cities"
    assert "3 cities within 3 days" in fired.evidence
    assert "Utrecht, Breda, Zwolle" in fired.evidence
    assert "2026-03-01 to 2026-03-04" in fired.evidence
    assert "on 2 sites" in fired.evidence


def test_three_cities_over_two_months_does_not_fire() -> None:
    score = profile(
        facts(
            appearances=(
                Appearance(at(1, 3), "Utrecht", "site-a"),
                Appearance(at(1, 4), "Breda", "site-a"),
                Appearance(at(1, 5), "Zwolle", "site-a"),
            )
        )
    )
    assert score.fired == ()


def test_same_city_spelled_differently_counts_once() -> None:
    score = profile(
        facts(
            appearances=(
                Appearance(at(1), "Den Haag", "site-a"),
                Appearance(at(2), "den  haag", "site-a"),
                Appearance(at(3), "Breda", "site-a"),
            )
        )
    )
    assert score.fired == ()


def test_city_window_handles_naive_aware_and_missing_times() -> None:
    plus_two = timezone(timedelta(hours=2))
    score = profile(
        facts(
            appearances=(
                Appearance(datetime(2026, 3, 1, 10), "Utrecht", "site-a"),
                Appearance(datetime(2026, 3, 2, 10, tzinfo=plus_two), "Breda", "site-a"),
                Appearance(None, "Arnhem", "site-a"),
                Appearance(at(3), None, "site-a"),
                Appearance(at(4), "Zwolle", "site-a"),
            )
        )
    )
    assert fired_ids(score) == {"phone_in_many_cities"}


def test_cities_without_a_phone_do_not_fire() -> None:
    appearances = tuple(Appearance(at(d), c, "s") for d, c in [(1, "A"), (2, "B"), (3, "C")])
    score = profile(facts(phones=(), phone_regions=(), appearances=appearances))
    assert score.fired == ()


def test_same_photos_under_two_names_fires() -> None:
    score = profile(facts(names=("Anna", "Bella"), shared_image_ad_count=2))
    (fired,) = score.fired
    assert fired.rule_id == "same_photos_other_identity"
    assert "2 ads share photos" in fired.evidence
    assert "2 names: Anna, Bella" in fired.evidence


def test_same_photos_under_ages_far_apart_fires() -> None:
    score = profile(facts(ages=(21, 26), shared_image_ad_count=3))
    assert fired_ids(score) == {"same_photos_other_identity"}
    assert "ages 21 to 26" in score.fired[0].evidence


@pytest.mark.parametrize(
    "changes",
    [
        {"names": ("Anna", "Bella"), "shared_image_ad_count": 0},  # different people
        {"names": ("Anna", "ANNA", "anna "), "shared_image_ad_count": 4},  # one name
        {"ages": (24, 25), "shared_image_ad_count": 4},  # a birthday between ads
    ],
)
def test_same_photos_rule_does_not_fire_without_other_identity(changes: dict[str, Any]) -> None:
    assert profile(facts(**changes)).fired == ()


def test_many_ads_per_phone_fires() -> None:
    score = profile(facts(ad_count=24))
    (fired,) = score.fired
    assert fired.rule_id == "many_ads_per_phone"
    assert fired.evidence == "24 ads for 1 phone number (NL) (24 per number)"


def test_few_ads_per_phone_does_not_fire() -> None:
    two_phones = facts(ad_count=12, phones=(PHONE, "+31612345678"), phone_regions=("NL", "NL"))
    assert profile(facts(ad_count=3)).fired == ()
    assert profile(two_phones).fired == ()


def test_profile_combines_facts_and_ad_rates() -> None:
    ads = (
        ad("Nieuw in de stad. Zij is lief."),
        ad("Alleen deze week! Met vriendin."),
        ad("Vriendelijke dame."),
    )
    score = profile(facts(phone_regions=("RO",), ad_count=3), ads)
    assert fired_ids(score) == {
        "recurring_movement_wording",
        "recurring_third_party_wording",
        "source_country_phone",
    }
    assert score.score == pytest.approx(0.9)
    assert not score.over_threshold
    rate = next(f for f in score.fired if f.rule_id == "recurring_movement_wording")
    assert rate.evidence.startswith("2 of 3 ads (67%)")


# --------------------------------------------------------------------------- the registry


def test_every_kind_is_declared_once_with_its_level_and_fields() -> None:
    assert set(KINDS) == {
        "phrases",
        "low_price",
        "phone_cities",
        "shared_images_identities",
        "ads_per_phone",
        "phone_region",
        "ad_rate",
    }
    assert {r.kind for r in MODEL.rules} == set(KINDS)  # the bundled model uses them all
    for rule in MODEL.rules:
        kind = KINDS[rule.kind]
        assert kind.level == rule.level
        assert isinstance(rule.params, kind.params_type)
    for kind in KINDS.values():
        assert kind.level in LEVELS
        assert kind.fields.model_config.get("extra") == "forbid"
        assert kind.fields.model_config.get("strict") is True


def test_a_kind_refuses_the_parameters_of_another() -> None:
    phrases = MODEL.rule("new_in_town").params
    with pytest.raises(TypeError, match="PhrasesParams are not LowPriceParams"):
        KINDS["low_price"].evidence(phrases, AdText.of("", "€50 per uur"))
