"""Verification: paraphrases of one ad score high, other ads of the genre do not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.text import (
    TEXT_MATCH_THRESHOLD,
    TextLSHIndex,
    signature_similarity,
    text_signature,
    text_similarities,
    text_similarity,
)
from tests.matching.text.ad_texts import (
    BELLA,
    BELLA_REWRITTEN,
    LANA,
    LANA_REWRITTEN,
    MIRA,
    SOFIA,
    distinctive,
)

# --- paraphrase and unrelated ads ----------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(LANA, LANA_REWRITTEN), (BELLA, BELLA_REWRITTEN)])
def test_rewritten_ads_are_similar_and_lsh_candidates(first: str, second: str) -> None:
    a, b = distinctive(first), distinctive(second)
    assert text_similarity(a, b) >= TEXT_MATCH_THRESHOLD
    index = TextLSHIndex()
    index.add(1, text_signature(a))
    assert index.query(text_signature(b)) == {1}


@pytest.mark.parametrize(
    ("first", "second"),
    [(LANA, MIRA), (BELLA, SOFIA), (LANA_REWRITTEN, MIRA), (SOFIA, BELLA_REWRITTEN)],
)
def test_unrelated_ads_of_the_same_genre_are_not_similar(first: str, second: str) -> None:
    a, b = distinctive(first), distinctive(second)
    assert text_similarity(a, b) < TEXT_MATCH_THRESHOLD
    assert signature_similarity(text_signature(a), text_signature(b)) < 0.2


def test_text_similarity_of_empty_text_is_zero() -> None:
    assert text_similarity("", "") == 0.0
    assert text_similarity("ik ben lana", "") == 0.0


def test_text_similarity_honours_the_cutoff() -> None:
    a, b = distinctive(LANA), distinctive(MIRA)
    assert text_similarity(a, b, score_cutoff=95) == 0.0
    assert text_similarity(a, a, score_cutoff=95) == 100.0


words = st.sampled_from(
    ["ik", "ben", "lana", "nieuw", "in", "utrecht", "discreet", "rustig", "deze", "week", "bel"]
)
texts = st.lists(words, max_size=30).map(" ".join)


@given(texts, texts)
def test_text_similarity_is_symmetric_and_bounded(a: str, b: str) -> None:
    score = text_similarity(a, b)
    assert 0.0 <= score <= 100.0
    assert score == text_similarity(b, a)


@given(texts.filter(bool))
def test_identical_texts_score_100(text: str) -> None:
    assert text_similarity(text, text) == 100.0


@given(
    st.lists(
        st.tuples(st.text(st.sampled_from("ab cde"), max_size=30), st.text(max_size=30)),
        max_size=20,
    ),
    st.sampled_from([0.0, 50.0, 85.0]),
)
@settings(max_examples=60, deadline=None)
def test_batched_similarities_equal_single_ones(
    pairs: list[tuple[str, str]], cutoff: float
) -> None:
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    batched = text_similarities(left, right, score_cutoff=cutoff).tolist()
    single = [text_similarity(a, b, score_cutoff=cutoff) for a, b in pairs]
    assert batched == pytest.approx(single, abs=1e-3)


def test_batched_similarities_need_aligned_lists() -> None:
    with pytest.raises(ValueError, match="left texts"):
        text_similarities(["a"], [])
