"""Boilerplate: an agency template is dropped, one advertiser's reposts are not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matching.text.boilerplate as boilerplate_module
from matching.text import (
    TEXT_MATCH_THRESHOLD,
    BoilerplateModel,
    TextLSHIndex,
    distinctive_text,
    normalise_text,
    sentence_key,
    signatures_to_array,
    split_sentences,
    text_signature,
    text_similarity,
)
from tests.matching.text.ad_texts import AGENCY, AGENCY_OWN, LANA, distinctive


def fitted_with_agency() -> BoilerplateModel:
    model = BoilerplateModel(min_owners=5)
    for name, own in AGENCY_OWN.items():
        model.observe(f"phone:{name}", [sentence_key(s) for s in split_sentences(AGENCY + own)])
    return model


def test_agency_template_is_removed_and_its_users_no_longer_look_alike() -> None:
    model = fitted_with_agency()
    noor = distinctive_text(AGENCY + " " + AGENCY_OWN["noor"], model)
    yara = distinctive_text(AGENCY_OWN["yara"] + " " + AGENCY, model)
    for sentence in split_sentences(AGENCY):
        assert model.is_boilerplate(sentence_key(sentence))
        assert sentence not in noor and sentence not in yara
    assert noor == normalise_text(AGENCY_OWN["noor"])
    assert text_similarity(noor, yara) < TEXT_MATCH_THRESHOLD
    assert TextLSHIndex().candidate_pairs(
        np.array([1, 2]), signatures_to_array([text_signature(noor), text_signature(yara)])
    ).shape == (0, 2)
    # Without the model the template dominates: that is what the model is for.
    plain = text_similarity(
        normalise_text(AGENCY + " " + AGENCY_OWN["noor"]),
        normalise_text(AGENCY + " " + AGENCY_OWN["yara"]),
    )
    assert plain > text_similarity(noor, yara) + 20


def test_template_below_min_owners_is_kept() -> None:
    model = BoilerplateModel(min_owners=5)
    for name in ["noor", "yara", "ilse", "fleur"]:
        model.observe(f"phone:{name}", [sentence_key(s) for s in split_sentences(AGENCY)])
    key = sentence_key(split_sentences(AGENCY)[0])
    assert model.owners_of(key) == 4
    assert not model.is_boilerplate(key)


def test_one_owner_reposting_many_times_is_not_boilerplate() -> None:
    model = BoilerplateModel(min_owners=5)
    keys = [sentence_key(s) for s in split_sentences(LANA)]
    for _ in range(500):
        model.observe("phone:lana", keys)
    assert {model.owners_of(k) for k in keys} == {1}
    assert distinctive_text(LANA, model) == distinctive(LANA)


def test_owner_counts_saturate_and_repeats_within_an_ad_count_once() -> None:
    model = BoilerplateModel(min_owners=3)
    model.observe("a", [7, 7, 7])
    assert model.owners_of(7) == 1
    for owner in "bcdefg":
        model.observe(owner, [7])
    assert model.owners_of(7) == 3
    assert model.is_boilerplate(7)
    assert len(model) == 3  # rows stop growing once the key is saturated
    assert model.owners_of(8) == 0


def test_distinctive_sentences_keep_order_and_drop_repeats() -> None:
    model = BoilerplateModel(min_owners=2)
    model.observe("x", [sentence_key("geen sms")])
    model.observe("y", [sentence_key("geen sms")])
    sentences = ["ik ben lana", "geen sms", "ik ben lana", "tot snel"]
    assert model.distinctive_sentences(sentences) == ["ik ben lana", "tot snel"]


def test_min_owners_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        BoilerplateModel(min_owners=1)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.lists(st.integers(0, 40), max_size=6)),
        max_size=60,
    ),
    st.integers(2, 5),
)
def test_boilerplate_counts_match_a_plain_set_model(
    observations: list[tuple[int, list[int]]], min_owners: int
) -> None:
    # Merge every few rows, so that the sorted arrays and the pending dict both serve.
    saved = boilerplate_module._MERGE_ROWS
    boilerplate_module._MERGE_ROWS = 7
    try:
        model = BoilerplateModel(min_owners)
        owners: dict[int, set[int]] = {}
        for owner, keys in observations:
            model.observe(f"owner{owner}", keys)
            for key in keys:
                owners.setdefault(key, set()).add(owner)
        for key in range(41):
            assert model.owners_of(key) == min(len(owners.get(key, ())), min_owners)
    finally:
        boilerplate_module._MERGE_ROWS = saved


def test_agency_template_in_ads_written_without_stops_is_mostly_removed() -> None:
    # The same ads as one run-on line each, the block first or last: it is found in pieces.
    def run_on(name: str) -> str:
        own = AGENCY_OWN[name]
        return normalise_text(AGENCY + " " + own if len(name) % 2 else own + " " + AGENCY)

    model = BoilerplateModel(min_owners=5)
    for name in AGENCY_OWN:
        model.observe(f"phone:{name}", [sentence_key(s) for s in split_sentences(run_on(name))])
    block = normalise_text(AGENCY).split()
    kept = {name: distinctive_text(run_on(name), model) for name in AGENCY_OWN}
    for name, text in kept.items():
        own = normalise_text(AGENCY_OWN[name])
        assert own in text
        # At most the edges of the block survive, where its pieces hold the ad's own words.
        assert len(text.split()) - len(own.split()) <= len(block) // 3
    assert (
        text_similarity(kept["noor"], kept["yara"])
        < text_similarity(run_on("noor"), run_on("yara")) - 10
    )
