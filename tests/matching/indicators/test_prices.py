"""Prices: euro amounts in every notation, paired with the unit they are quoted for."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.indicators import fold_for_phrases
from matching.indicators.prices import PRICE_UNITS, find_prices
from tests.matching.indicators.examples import LOW_PRICES, NORMAL_PRICES, ad, fired_ids


@pytest.mark.parametrize("text", LOW_PRICES)
def test_low_price_fires_on_price_notations(text: str) -> None:
    score = ad(text)
    assert fired_ids(score) == {"low_price"}, text
    assert "below €" in score.fired[0].evidence


@pytest.mark.parametrize("text", NORMAL_PRICES)
def test_low_price_does_not_fire_on_normal_prices(text: str) -> None:
    assert "low_price" not in fired_ids(ad(text)), text


def test_low_price_evidence_names_amount_and_unit() -> None:
    (fired,) = ad("Half uur: 40 euro").fired
    assert fired.evidence == 'text: "Half uur: 40 euro" (€40 per half hour, below €60)'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€40 half uur\n€90 1 uur", ["€40 per half hour", "€90 per hour"]),
        ("Half uur 40 euro, 1 uur 90 euro", ["€40 per half hour", "€90 per hour"]),
        ("Een kwartier: 30 euro", ["€30 per quarter hour"]),
    ],
)
def test_price_lists_pair_units_in_either_order(text: str, expected: list[str]) -> None:
    (fired,) = ad(text).fired
    for part in expected:
        assert part in fired.evidence


def prices(text: str) -> list[tuple[float, str]]:
    return [(p.amount, p.unit) for p in find_prices(fold_for_phrases(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Half uur: 40 euro, 1 uur 90 euro", [(40, "half_hour"), (90, "hour")]),
        ("€100 half uur\n€70 1 uur", [(100, "half_hour"), (70, "hour")]),
        ("€ 45,50 per kwartier", [(45.5, "quarter")]),
        ("Alles 30,-", [(30, "unspecified")]),
        ("Woning 50 m2, bel tussen 10 en 22 uur", []),
    ],
)
def test_prices_are_read_with_their_units(text: str, expected: list[tuple[float, str]]) -> None:
    assert prices(text) == expected


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="€eurohalfkwtir 0123456789,.-/:p\n", max_size=80))
def test_every_price_is_a_span_of_the_text_with_a_known_unit(text: str) -> None:
    folded = fold_for_phrases(text)
    for price in find_prices(folded):
        assert 0 <= price.start < price.end <= len(folded)
        assert price.unit in PRICE_UNITS
        assert 0 <= price.amount < 10_000
