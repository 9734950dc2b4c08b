"""Text as phrase rules see it: case-folded, accents stripped, whitespace collapsed.

Evidence quotes what the poster wrote, not the folded text, so folding keeps the offset
of every folded character in the original. This is the indicators' own folding, for
their hand-written patterns; ``matching.text`` normalises for near-duplicate detection.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["FoldedText", "fold", "fold_for_phrases", "strip_accents"]


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """One character case-folded, compatibility-decomposed and without accents."""
    if char in "\u2018\u2019\u02bc\u0060\u00b4":
        return "'"
    decomposed = unicodedata.normalize("NFKD", char)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKD", stripped.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


@dataclass(frozen=True, slots=True)
class FoldedText:
    """``source`` folded into ``text``; ``origin[i]`` is the index in ``source`` of ``text[i]``."""

    source: str
    text: str
    origin: tuple[int, ...]

    def original(self, start: int, end: int) -> str:
        """What the poster wrote for ``text[start:end]``."""
        if start >= end:
            return ""
        return self.source[self.origin[start] : self.origin[end - 1] + 1]


def fold(source: str) -> FoldedText:
    """``source`` as phrase rules see it, with the way back to what was written."""
    chars: list[str] = []
    origin: list[int] = []
    space_at: int | None = None
    for index, char in enumerate(source):
        for out in _fold_char(char):
            if out.isspace():
                if space_at is None:
                    space_at = index
                continue
            if space_at is not None and chars:
                chars.append(" ")
                origin.append(space_at)
            space_at = None
            chars.append(out)
            origin.append(index)
    return FoldedText(source, "".join(chars), tuple(origin))


def fold_for_phrases(text: str) -> str:
    """Text as indicator patterns see it: case-folded, accents stripped, spaces collapsed."""
    return fold(text).text


def strip_accents(pattern: str) -> str:
    """A pattern without accents, so that it matches folded text as its author wrote it."""
    decomposed = unicodedata.normalize("NFKD", pattern)
    return "".join(c for c in decomposed if not unicodedata.combining(c))
