"""Euro prices in ad text, each with the unit it is quoted for (quarter, half hour, hour).

The parser reads folded text (``folding.fold``); offsets are into that text.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

__all__ = ["PRICE_UNITS", "UNIT_WORDS", "Price", "find_prices"]

#: ``unspecified`` is a price written without a recognisable unit.
PRICE_UNITS = ("quarter", "half_hour", "hour", "unspecified")
#: How evidence names each unit.
UNIT_WORDS = {
    "quarter": "quarter hour",
    "half_hour": "half hour",
    "hour": "hour",
    "unspecified": "no unit stated",
}

# A euro amount: "€50", "€ 50,-", "eur 50", "50 euro", "50€", "50,00 eur", "50,-".
_PRICE = re.compile(
    r"(?:€|\beur(?:o'?s?)?\b)\s*(?P<a>\d{1,4})(?:[.,](?P<ac>\d{2}))?(?:\s*,\s*-+)?(?![.,]?\d)"
    r"|(?<![\w.,])(?P<b>\d{1,4})(?:[.,](?P<bc>\d{2}))?(?:\s*,\s*-+)?\s*(?:€|eur(?:o'?s?)?\b)"
    r"|(?<![\w.,€])(?P<c>\d{1,4})\s*,\s*-+(?!\d)"
)
_HALF_HOUR = (
    r"(?:(?:een|a|one)\s*)?half(?:\s*an)?\s*(?:uur(?:tje)?|hour|hr)\b|halfuur(?:tje)?\b"
    r"|\b1\s*[/\u2044]\s*2\s*(?:uur|hour|u|h)\b|\b30\s*min\w*"
)
_QUARTER = r"(?:een\s*)?kwartier(?:tje)?\b|\b15\s*min\w*|\b(?:a\s*)?quarter(?:\s*of\s*an)?\s*hour\b"
_HOUR = r"\b(?:(?:1|een|one|an?)\s*)?(?:uur(?:tje)?|hour|hr)\b|\b60\s*min\w*"
_UNIT = re.compile(rf"\b(?P<half_hour>{_HALF_HOUR})|\b(?P<quarter>{_QUARTER})|(?P<hour>{_HOUR})")
# A unit joined to the price that precedes it: "per uur", "p/u", "/h", "voor een half uur".
_UNIT_AFTER = re.compile(
    r"\s*(?:(?:per|p\s*/|p\.|/|voor|for|a|an|the|each|elk|ieder)\s*"
    rf"(?:(?P<half_hour>{_HALF_HOUR})|(?P<quarter>{_QUARTER})|(?P<hour>{_HOUR}|[uh]\b))"
    r"|p\.?\s*(?P<short>[uh])\b)"
)
# What may stand between a unit and its price when no connector joins them.
_GAP = re.compile(
    r"[\s:=\-–—|>()*]*(?:(?:voor|for|only|just|slechts|maar|nur|is)[\s:=\-–—|>()*]*)?"
)
_MAX_GAP = 16
_LABEL = re.compile(r"[:=]")


@dataclass(frozen=True, slots=True)
class Price:
    """An amount in euro, its unit, and where the two stand in the text."""

    amount: float
    unit: str
    start: int
    end: int


def _unit_of(match: re.Match[str]) -> str:
    for unit in ("half_hour", "quarter", "hour"):
        if match.group(unit) is not None:
            return unit
    return "hour"  # the short forms "p/u", "ph"


def find_prices(text: str) -> list[Price]:
    """Euro prices in folded text, each with the unit it is quoted for.

    Pairing, strongest bond first, each unit used once: a unit joined by a connector
    after the price ("€50 per uur", "50,- p/u"); a unit labelling the price with a colon
    or equals sign ("half uur: 50 euro"); then, left to right, the unit right before the
    price ("half uur 50 euro") or right after it ("€50 half uur"), preferring the side
    the previous price used, so that price lists written in either order pair up.
    """
    spans: list[tuple[float, int, int]] = []
    for match in _PRICE.finditer(text):
        whole = match.group("a") or match.group("b") or match.group("c")
        cents = match.group("ac") or match.group("bc")
        amount = int(whole) + (int(cents) / 100 if cents else 0.0)
        spans.append((amount, match.start(), match.end()))
    if not spans:
        return []
    price_starts = [start for _, start, _ in spans]
    units: list[tuple[int, int, str]] = []
    for found in _UNIT.finditer(text):
        # The price starting at or before the unit, and the one after it, must not overlap.
        i = bisect_right(price_starts, found.start()) - 1
        if i >= 0 and spans[i][2] > found.start():
            continue
        if i + 1 < len(spans) and spans[i + 1][1] < found.end():
            continue
        units.append((found.start(), found.end(), _unit_of(found)))
    unit_starts = [u[0] for u in units]
    unit_ends = [u[1] for u in units]

    used: set[int] = set()
    joined: list[tuple[str, int, int] | None] = []
    for _, start, end in spans:
        after = _UNIT_AFTER.match(text, end)
        if after is None:
            joined.append(None)
            continue
        used.update(range(bisect_left(unit_starts, end), bisect_left(unit_starts, after.end())))
        joined.append((_unit_of(after), start, after.end()))

    def gap_ok(start: int, end: int) -> bool:
        return end - start <= _MAX_GAP and _GAP.fullmatch(text, start, end) is not None

    def unit_before(start: int) -> int | None:
        index = bisect_right(unit_ends, start) - 1
        if index < 0 or index in used or not gap_ok(unit_ends[index], start):
            return None
        return index

    def unit_after(end: int) -> int | None:
        index = bisect_left(unit_starts, end)
        if index >= len(units) or index in used or not gap_ok(end, unit_starts[index]):
            return None
        return index

    for position, (_, start, end) in enumerate(spans):
        label = None if joined[position] else unit_before(start)
        if label is not None and _LABEL.search(text, unit_ends[label], start):
            used.add(label)
            joined[position] = (units[label][2], units[label][0], end)

    after_first = False
    for position, (_, start, end) in enumerate(spans):
        if joined[position] is not None:
            continue
        preceding, following = unit_before(start), unit_after(end)
        first, second = (following, preceding) if after_first else (preceding, following)
        index = first if first is not None else second
        if index is None:
            continue
        used.add(index)
        after_first = index == following
        u_start, u_end, unit_name = units[index]
        joined[position] = (unit_name, min(start, u_start), max(end, u_end))

    return [
        Price(amount, *(pair or ("unspecified", start, end)))
        for (amount, start, end), pair in zip(spans, joined, strict=True)
    ]
