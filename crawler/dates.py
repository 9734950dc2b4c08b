"""Reading an ad's posted time as a site writes it: ISO 8601, a strptime pattern, or
relative to the moment of capture ("3 uur geleden", "gisteren 14:05", "2 days ago").

The relative reader is small and exact on purpose: it knows a fixed Dutch and English
vocabulary and refuses everything else (the caller reports the field as unreadable),
rather than guessing as general date parsers do. Times without an offset are read in the
site's time zone; every result is an aware datetime in UTC, to the second.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["ISO_8601", "RELATIVE", "parse_posted_at", "parse_relative"]

ISO_8601: Final = "iso"
RELATIVE: Final = "relative"

# Unit words, Dutch and English, singular and plural, and the usual abbreviations.
_UNITS: Final[dict[str, str]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds", "seconde", "seconden"), "second"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "minuut", "minuten"), "minute"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours", "u", "uur", "uren"), "hour"),
    **dict.fromkeys(("d", "day", "days", "dag", "dagen"), "day"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks", "weken"), "week"),
    **dict.fromkeys(("month", "months", "maand", "maanden", "mnd"), "month"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years", "jaar", "jaren"), "year"),
}
_SECONDS: Final[dict[str, int]] = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
}
# "een"/"één"/"a"/"an"/"one" mean 1 ("een uur geleden", "an hour ago").
_ONE: Final = ("een", "één", "a", "an", "one")
_AGO: Final = re.compile(
    rf"^(?P<count>\d{{1,4}}|{'|'.join(_ONE)})\s*(?P<unit>[a-zé]+)\.?\s+(?:geleden|ago)$"
)
# Days named relative to today, optionally with a time ("gisteren om 14:05").
_DAYS_BACK: Final[dict[str, int]] = {
    "vandaag": 0,
    "today": 0,
    "gisteren": 1,
    "yesterday": 1,
    "eergisteren": 2,
}
_NAMED_DAY: Final = re.compile(
    r"^(?P<day>[a-z]+)(?:\s*,?\s*(?:om|at)?\s*(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?:\s*uur)?)?$"
)
_JUST_NOW: Final = frozenset(("zojuist", "net", "nu", "just now", "now", "a moment ago"))


def parse_posted_at(
    raw: str, formats: Sequence[str], zone: ZoneInfo, now: datetime
) -> datetime | None:
    """``raw`` read with the first of ``formats`` that fits, in UTC; ``None`` if none does.

    A format is ``iso``, ``relative`` or a strptime pattern; ``now`` (aware) is the moment
    of capture that relative times count back from.
    """
    text = " ".join(raw.split())
    for date_format in formats:
        if date_format == RELATIVE:
            value = parse_relative(text, zone, now)
        elif date_format == ISO_8601:
            value = _parse_iso(text, zone)
        else:
            value = _parse_pattern(text, date_format, zone)
        if value is not None:
            return value.astimezone(UTC).replace(microsecond=0)
    return None


def parse_relative(text: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """A relative time ("3 uur geleden", "gisteren 14:05", "2 weeks ago") counted back from
    ``now``; ``None`` for anything outside the vocabulary.

    A day without a time ("gisteren") is that day at 00:00 in ``zone``: the site said no
    more than the day.
    """
    text = " ".join(text.lower().split()).rstrip(".")
    if text in _JUST_NOW:
        return now
    if match := _AGO.match(text):
        unit = _UNITS.get(match["unit"])
        if unit is None:
            return None
        count = 1 if match["count"] in _ONE else int(match["count"])
        if unit in _SECONDS:
            return now - timedelta(seconds=count * _SECONDS[unit])
        months = count * (12 if unit == "year" else 1)
        return _months_before(now.astimezone(zone), months)
    if (match := _NAMED_DAY.match(text)) and match["day"] in _DAYS_BACK:
        day = now.astimezone(zone).date() - timedelta(days=_DAYS_BACK[match["day"]])
        at = time(0, 0)
        if match["hour"] is not None:
            hour, minute = int(match["hour"]), int(match["minute"])
            if hour > 23 or minute > 59:
                return None
            at = time(hour, minute)
        return datetime.combine(day, at, tzinfo=zone)
    return None


def _months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (the day clamped)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _parse_iso(text: str, zone: ZoneInfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _parse_pattern(text: str, pattern: str, zone: ZoneInfo) -> datetime | None:
    try:
        value = datetime.strptime(text, pattern)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)
