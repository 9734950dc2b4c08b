"""Shared examples for the indicator tests: the bundled model, ad texts that fire each
rule or none, price notations, and a profile to vary.

All ad texts here are synthetic and non-explicit; names, cities and numbers are invented.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crawler.indicator_model import load_indicator_model
from matching.indicators import IndicatorScore, ProfileFacts, score_ad, score_profile

MODEL = load_indicator_model()


def fired_ids(score: IndicatorScore) -> set[str]:
    return {f.rule_id for f in score.fired}


def ad(text: str, title: str = "") -> IndicatorScore:
    return score_ad(MODEL, title, text)


# --------------------------------------------------------------------------- ad rules

FIRING = [
    # (rule, text) — Dutch and English for each rule
    ("new_in_town", "Hoi! Nieuw in de stad, kom gezellig langs."),
    ("new_in_town", "Net binnen in Utrecht, lieve dame."),
    ("new_in_town", "Vandaag aangekomen, eerste dagen in Nederland."),
    ("new_in_town", "Hello, I am new in town and friendly."),
    ("new_in_town", "Just arrived, first days in the Netherlands."),
    ("short_stay", "Alleen deze week in Breda."),
    ("short_stay", "Ik ben hier maar een paar dagen."),
    ("short_stay", "Only this week in Zwolle."),
    ("short_stay", "Here for a few days only."),
    ("available_24_7", "Bereikbaar 24/7 voor een afspraak."),
    ("available_24_7", "Dag en nacht beschikbaar."),
    ("available_24_7", "24 uur per dag open."),
    ("available_24_7", "Always available, 7 days a week."),
    ("third_person", "Zij is lief en spreekt Engels."),
    ("third_person", "Mijn vriendin ontvangt je graag."),
    ("third_person", "Haar naam is Anna."),
    ("third_person", "She is sweet and speaks English."),
    ("third_person", "She's waiting for your call."),
    ("third_person", "This girl is friendly."),
    ("with_friend", "Ik werk samen met mijn vriendin."),
    ("with_friend", "Met vriendin in de stad."),
    ("with_friend", "I work together with my friend."),
    ("with_friend", "Two ladies, one appointment."),
    ("no_rush_all_wishes", "Alle wensen zijn bespreekbaar."),
    ("no_rush_all_wishes", "Geen haast, neem je tijd."),
    ("no_rush_all_wishes", "No rush, take your time."),
    ("no_rush_all_wishes", "Everything is possible."),
    ("source_country_nationality", "Lieve Roemeense dame."),
    ("source_country_nationality", "Bulgaarse meid, vriendelijk."),
    ("source_country_nationality", "Moldavische vrouw."),
    ("source_country_nationality", "Oekraïense dame."),
    ("source_country_nationality", "Sweet Romanian lady."),
    ("source_country_nationality", "I am from Moldova."),
]

NEUTRAL = [
    "Vriendelijke dame, afspraak via telefoon.",
    "Mooie woning in het centrum van Utrecht, nieuw gerenoveerd.",
    "Ik werk al jaren in deze stad en ontvang in een rustige omgeving.",
    "Friendly lady, appointments by phone, discreet location.",
    "The weekly market is in the city centre.",
    "Prices on request.",
    "",
]


# --------------------------------------------------------------------------- prices

LOW_PRICES = [
    "€50 per uur",
    "€ 50,- p/u",
    "50 euro per uur",
    "50€/u",
    "EUR 50 per hour",
    "50,- per uur",
    "€50,00 ph",
    "Half uur: 40 euro",
    "30 min €45",
    "€45 for half an hour",
    "1 hour 80 eur",
    "Kwartier 30,-",
    "€45 voor een half uur",
    "Prijzen: €50 half uur, €150 1 uur",
    "1 uur maar 55 euro",
    "€70\nHalf uur: 40 euro",  # the label binds 40, not the unitless 70 before it
    "€100 half uur\n€70 1 uur",  # price-first list: 70 is the hour
]

NORMAL_PRICES = [
    "€150 per uur",
    "Half uur 100 euro, 1 uur 150 euro",
    "€100 half uur €160 1 uur",
    "€90 half uur, €150 1 uur",  # 90 is the half hour, not the hour
    "half uur 90 euro 1 uur 150 euro",
    "Half uur: 90 euro\n1 uur: 150 euro",
    "€5 per uur",  # below min_eur: not a price worth reading
    "€50",  # no unit: the default model does not judge it
    "€1.000 per uur",
    "Woning 50 m2, 3 kamers",
    "Bel tussen 10 en 22 uur",
]


# --------------------------------------------------------------------------- profiles

PHONE = "+40712034567"  # fictional


def at(day: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def facts(**changes: Any) -> ProfileFacts:
    base: dict[str, Any] = {
        "ad_count": 3,
        "phones": (PHONE,),
        "phone_regions": ("NL",),
        "appearances": (),
        "names": ("Anna",),
        "ages": (24,),
        "shared_image_ad_count": 0,
    }
    base.update(changes)
    return ProfileFacts(**base)


def profile(f: ProfileFacts, ad_scores: tuple[IndicatorScore, ...] = ()) -> IndicatorScore:
    return score_profile(MODEL, f, ad_scores)
