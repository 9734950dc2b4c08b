"""Posted times as sites write them: ISO 8601, strptime patterns in the site's time zone,
and the exact Dutch and English relative reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adwatch.demo.jsonld_site import posted_text
from crawler.dates import parse_posted_at, parse_relative

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# A Monday in November (CET, UTC+1), 10:51:30 UTC.
NOW = datetime(2026, 11, 30, 10, 51, 30, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 uur geleden", NOW - timedelta(hours=3)),
        ("3u geleden", NOW - timedelta(hours=3)),
        ("een uur geleden", NOW - timedelta(hours=1)),
        ("1 minuut geleden", NOW - timedelta(minutes=1)),
        ("25 minuten geleden", NOW - timedelta(minutes=25)),
        ("2 dagen geleden", NOW - timedelta(days=2)),
        ("1 week geleden", NOW - timedelta(weeks=1)),
        ("3 weken geleden", NOW - timedelta(weeks=3)),
        ("Zojuist", NOW),
        ("3 hours ago", NOW - timedelta(hours=3)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("5m ago", NOW - timedelta(minutes=5)),
        ("2 days ago.", NOW - timedelta(days=2)),
        ("just now", NOW),
        # Calendar months, counted in the site's zone: 30 Sep 11:51:30 CEST is 09:51:30 UTC.
        ("2 maanden geleden", utc(2026, 9, 30, 9, 51, 30)),
        ("1 year ago", utc(2025, 11, 30, 10, 51, 30)),
        # Named days are local dates; 21:05 on 29 Nov in Amsterdam is 20:05 UTC.
        ("gisteren om 21:05", utc(2026, 11, 29, 20, 5)),
        ("gisteren, 21.05 uur", utc(2026, 11, 29, 20, 5)),
        ("yesterday at 9:05", utc(2026, 11, 29, 8, 5)),
        ("vandaag 09:12", utc(2026, 11, 30, 8, 12)),
        ("today", utc(2026, 11, 29, 23, 0)),  # the day only: its first minute, local time
        ("eergisteren", utc(2026, 11, 27, 23, 0)),
    ],
)
def test_relative_times_count_back_from_the_capture(text: str, expected: datetime) -> None:
    assert parse_posted_at(text, ["relative"], AMSTERDAM, NOW) == expected


def test_months_back_keep_the_day_within_the_month() -> None:
    # 31 March 14:00 in Amsterdam (summer time) is a month after 28 February 14:00 (winter).
    end_of_march = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    value = parse_relative("1 maand geleden", AMSTERDAM, end_of_march)
    assert value == datetime(2026, 2, 28, 14, 0, tzinfo=AMSTERDAM) == utc(2026, 2, 28, 13, 0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3 uur",  # no "geleden": a duration, not a time
        "over 3 uur",
        "3 hours from now",
        "3 lichtjaren geleden",
        "gisteren om 25:00",
        "morgen",
        "vorige week",
        "geplaatst 3 uur geleden",  # the site's words around it are the profile's regex's job
    ],
)
def test_anything_outside_the_vocabulary_is_not_read(text: str) -> None:
    assert parse_posted_at(text, ["relative"], AMSTERDAM, NOW) is None


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        # Naive times are read in the site's zone: summer (UTC+2) and winter (UTC+1).
        ("14-07-2026 21:05", "%d-%m-%Y %H:%M", utc(2026, 7, 14, 19, 5)),
        ("14-11-2026 21:05", "%d-%m-%Y %H:%M", utc(2026, 11, 14, 20, 5)),
        # An offset in the text wins over the zone.
        ("14-11-2026 21:05 +0000", "%d-%m-%Y %H:%M %z", utc(2026, 11, 14, 21, 5)),
    ],
)
def test_strptime_patterns_in_the_sites_zone(text: str, pattern: str, expected: datetime) -> None:
    assert parse_posted_at(text, [pattern], AMSTERDAM, NOW) == expected


def test_iso_times_keep_their_offset_and_naive_ones_take_the_zone() -> None:
    assert parse_posted_at("2026-11-14T21:05:00+01:00", ["iso"], AMSTERDAM, NOW) == utc(
        2026, 11, 14, 20, 5
    )
    assert parse_posted_at("2026-11-14T21:05:00Z", ["iso"], AMSTERDAM, NOW) == utc(
        2026, 11, 14, 21, 5
    )
    assert parse_posted_at("2026-07-14 21:05", ["iso"], AMSTERDAM, NOW) == utc(2026, 7, 14, 19, 5)
    assert parse_posted_at("14 juli", ["iso"], AMSTERDAM, NOW) is None


def test_formats_are_tried_in_order() -> None:
    formats = ["relative", "%d-%m-%Y %H:%M"]
    assert parse_posted_at("3 uur geleden", formats, AMSTERDAM, NOW) == NOW - timedelta(hours=3)
    assert parse_posted_at("14-11-2026 21:05", formats, AMSTERDAM, NOW) == utc(2026, 11, 14, 20, 5)
    assert parse_posted_at("14 november", formats, AMSTERDAM, NOW) is None


def test_results_are_utc_to_the_second() -> None:
    now = NOW.replace(microsecond=654321)
    value = parse_posted_at("2 uur geleden", ["relative"], AMSTERDAM, now)
    assert value is not None and value.tzinfo is UTC and value.microsecond == 0


UNIT_WORDS = {
    "second": ("seconde", "seconden", "sec", "second", "seconds"),
    "minute": ("minuut", "minuten", "min", "minute", "minutes", "m"),
    "hour": ("uur", "uren", "u", "hour", "hours", "hr", "h"),
    "day": ("dag", "dagen", "day", "days", "d"),
    "week": ("week", "weken", "weeks", "w"),
}
SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


@given(
    count=st.integers(min_value=0, max_value=9999),
    unit_and_word=st.sampled_from([(u, w) for u, words in UNIT_WORDS.items() for w in words]),
    ago=st.sampled_from(["geleden", "ago"]),
    spaces=st.sampled_from([" ", "  ", "\t", " \n "]),
)
def test_every_count_and_unit_word_is_read_exactly(
    count: int, unit_and_word: tuple[str, str], ago: str, spaces: str
) -> None:
    unit, word = unit_and_word
    text = f"{count}{spaces}{word}{spaces}{ago}"
    expected = NOW - timedelta(seconds=count * SECONDS[unit])
    assert parse_posted_at(text, ["relative"], AMSTERDAM, NOW) == expected


@given(age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)))
def test_the_demo_sites_posted_times_are_read_back_to_their_unit(age: timedelta) -> None:
    """What the JSON-LD demo site writes, the bundled profile's formats read back."""
    posted = (NOW - age).replace(microsecond=0)
    age = NOW - posted
    shown = posted_text(posted, NOW).removeprefix("geplaatst ").removeprefix("op ")
    value = parse_posted_at(shown, ["relative", "%d-%m-%Y %H:%M"], AMSTERDAM, NOW)
    assert value is not None
    if age < timedelta(days=7):  # "N minuten/uur/dagen geleden": floor to that unit
        unit = next(
            u
            for limit, u in (
                (timedelta(minutes=1), timedelta(minutes=1)),  # "zojuist"
                (timedelta(hours=1), timedelta(minutes=1)),
                (timedelta(days=1), timedelta(hours=1)),
                (timedelta(days=7), timedelta(days=1)),
            )
            if age < limit
        )
        assert timedelta(0) <= value - posted < unit
    else:  # a local date and time, to the minute
        assert value == posted.replace(second=0)
