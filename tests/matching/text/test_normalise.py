"""Normalisation: contacts stripped, case and accents folded, sentences split and keyed."""

from __future__ import annotations

from hashlib import blake2b

from hypothesis import given
from hypothesis import strategies as st

from matching.text import normalise_text, sentence_key, split_sentences


def test_normalise_folds_case_width_and_accents() -> None:
    assert normalise_text("Ｃafé  ÉLÈVE\tnaïve Straße") == "cafe eleve naive strasse"


def test_normalise_removes_urls_mails_and_phone_like_digits() -> None:
    text = (
        "Bel +31 6 00 00 00 00 of 06-0000.0000, mail lana@example.nl, "
        "zie https://example.nl/p?id=12 en www.example.com/profiel. Prijs 150 euro, 25 jaar"
    )
    assert normalise_text(text) == "bel of mail zie en prijs 150 euro 25 jaar"


@given(st.text(max_size=200))
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert once == once.strip() and "  " not in once


def test_split_sentences_on_punctuation_bullets_and_emoji() -> None:
    text = (
        "Nieuw in Utrecht!! Alleen deze week 💋 Ik ben Lana.\n- Geen sms\n* Prijs 1.5 uur "
        "150 euro ♥ Kusjes • zie www.example.nl/lana. Tot snel?"
    )
    assert split_sentences(text) == [
        "nieuw in utrecht",
        "alleen deze week",
        "ik ben lana",
        "geen sms",
        "prijs 1 5 uur 150 euro",
        "kusjes",
        "zie",
        "tot snel",
    ]


def test_split_sentences_drops_empty_parts() -> None:
    assert split_sentences("...!!\n\n 💋💋 * ") == []


def test_sentence_key_is_a_fixed_unsigned_64_bit_value() -> None:
    key = sentence_key("ik ben lana")
    assert key == int.from_bytes(blake2b(b"ik ben lana", digest_size=8).digest(), "little")
    assert 0 <= key < 2**64
    assert sentence_key("ik ben lana") != sentence_key("ik ben mira")


# A passage of 40 words written without stops, as some ads are (synthetic, plain words).
_PASSAGE = (
    "welkom bij ons bureau met de beste service in de hele regio al onze dames zijn "
    "gecontroleerd en betrouwbaar bel de receptie voor beschikbaarheid en prijzen wij zijn "
    "dagelijks geopend van tien tot twee uur en ook in het weekend"
)


def test_a_sentence_of_up_to_24_words_is_not_cut() -> None:
    sentence = " ".join(_PASSAGE.split()[:24])
    assert split_sentences(sentence) == [sentence]


def test_a_run_on_passage_gives_the_same_pieces_wherever_it_starts() -> None:
    words = _PASSAGE.split()
    assert len(words) == 40
    seen = []
    for prefix in ["", "hoi", "hoi ik ben", "hallo lieve mensen ik ben nieuw hier en"]:
        pieces = split_sentences(f"{prefix} {_PASSAGE}")
        assert " ".join(pieces) == f"{prefix} {_PASSAGE}".strip()
        assert all(len(piece.split()) <= 32 for piece in pieces)
        seen.append({piece for piece in pieces if piece in _PASSAGE})
    shared = set.intersection(*seen)
    # After the first cut the pieces resynchronise: most of the passage is shared pieces.
    assert sum(len(piece.split()) for piece in shared) >= 20


@given(st.lists(st.sampled_from(["de", "een", "bureau", "ik", "ben", "noor", "zee"]), max_size=90))
def test_cutting_a_run_on_text_loses_and_adds_no_word(words: list[str]) -> None:
    text = " ".join(words)
    assert " ".join(split_sentences(text)) == text
