"""Folding: text as phrase rules see it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.indicators import fold_for_phrases
from matching.indicators.folding import fold


def test_fold_for_phrases_folds_case_accents_and_space() -> None:
    assert fold_for_phrases("  Nieuw\tIN de  Stád\n") == "nieuw in de stad"
    assert fold_for_phrases("Ｎｉｅｕｗ") == "nieuw"
    assert fold_for_phrases("She’s") == "she's"


def test_folded_text_quotes_what_the_poster_wrote() -> None:
    folded = fold("Lieve   OEKRAÏENSE\tdame")
    start = folded.text.index("oekraiense dame")
    assert folded.original(start, len(folded.text)) == "OEKRAÏENSE\tdame"
    assert folded.original(3, 3) == ""


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_folding_is_idempotent_and_keeps_offsets_in_order(text: str) -> None:
    folded = fold(text)
    assert fold_for_phrases(folded.text) == folded.text
    assert len(folded.origin) == len(folded.text)
    assert list(folded.origin) == sorted(folded.origin)
    assert all(0 <= i < len(text) for i in folded.origin)
