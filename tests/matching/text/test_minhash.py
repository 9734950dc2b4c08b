"""MinHash signatures: fixed across machines, batched like single, estimating Jaccard."""

from __future__ import annotations

import itertools
import random
from hashlib import blake2b

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.text import (
    EMPTY_SLOT,
    MIN_TOKENS,
    NUM_PERM,
    empty_signature_rows,
    narrow_signatures,
    normalise_text,
    signature_similarity,
    signatures_to_array,
    text_signature,
    text_signatures,
    widen_signatures,
)
from tests.matching.text.ad_texts import BELLA, LANA, MIRA, SOFIA


def test_signature_is_fixed_across_processes_and_versions() -> None:
    # Derived from blake2b only: a change here invalidates every stored signature.
    signature = text_signature(normalise_text(BELLA))
    assert len(signature) == 4 * NUM_PERM
    assert blake2b(signature, digest_size=8).hexdigest() == EXPECTED_BELLA_DIGEST
    assert np.frombuffer(signature, dtype="<u4")[:3].tolist() == EXPECTED_BELLA_SLOTS


EXPECTED_BELLA_DIGEST = "d99e7bff5f88e764"
EXPECTED_BELLA_SLOTS = [33800615, 365710451, 27383786]


def test_short_and_empty_texts_have_no_signature() -> None:
    assert text_signature("") == b""
    assert text_signature(" ".join(["woord"] * (MIN_TOKENS - 1))) == b""
    assert text_signature(" ".join(f"w{i}" for i in range(MIN_TOKENS))) != b""


def test_batched_signatures_equal_single_ones() -> None:
    texts = [normalise_text(t) for t in (LANA, "te kort", MIRA, "", BELLA, SOFIA)] * 300
    assert text_signatures(texts) == [text_signature(t) for t in texts]


def test_signature_similarity_estimates_bigram_jaccard() -> None:
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(60)]
    for _ in range(30):
        a = [rng.choice(vocabulary) for _ in range(rng.randint(20, 80))]
        b = list(a)
        for _ in range(rng.randint(0, 40)):
            b[rng.randrange(len(b))] = rng.choice(vocabulary)
        exact = len(bigram_set(a) & bigram_set(b)) / len(bigram_set(a) | bigram_set(b))
        estimate = signature_similarity(text_signature(" ".join(a)), text_signature(" ".join(b)))
        assert abs(estimate - exact) < 0.16  # ~4 standard deviations at 128 permutations


def bigram_set(words: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(words))


@given(st.text(alphabet="abcde ", min_size=0, max_size=120))
def test_signature_similarity_of_identical_signatures_is_one(text: str) -> None:
    signature = text_signature(text)
    assert signature_similarity(signature, signature) == (1.0 if signature else 0.0)


def test_signatures_to_array_flags_empty_rows() -> None:
    signature = text_signature(normalise_text(LANA))
    array = signatures_to_array([signature, b""])
    assert array.shape == (2, NUM_PERM) and array.dtype == np.uint32
    assert array[0].astype("<u4").tobytes() == signature
    assert (array[1] == EMPTY_SLOT).all()
    with pytest.raises(ValueError):
        signatures_to_array([b"\x00" * 12])


def test_narrowed_signatures_keep_their_low_16_bits_and_widen_for_the_index() -> None:
    signature = text_signature(normalise_text(LANA))
    narrow, signed = narrow_signatures([signature, b""])
    assert narrow.dtype == np.uint16 and narrow.shape == (2, NUM_PERM)
    assert signed.tolist() == [True, False]
    low = signatures_to_array([signature])[0] & 0xFFFF
    assert narrow[0].tolist() == low.tolist()
    wide = widen_signatures(narrow, signed)
    assert wide.dtype == np.uint32
    assert wide[0].tolist() == low.tolist()
    assert (wide[1] == EMPTY_SLOT).all()
    assert empty_signature_rows(wide).tolist() == [False, True]
