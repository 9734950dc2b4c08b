"""Names, cities and ad vocabulary: one table each, consistent across languages, and
non-explicit; the package itself stays a leaf that imports nothing of the project."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from adwatch.synthetic import vocabulary
from adwatch.synthetic.names import FIRST_NAMES
from adwatch.synthetic.places import CITIES, CITY_NAMES
from adwatch.synthetic.vocabulary import (
    AGENCY_BLOCKS,
    CONTACT_ONE,
    CONTACT_TWO,
    DETAIL_FRAMES,
    INTRO_FRAMES,
    LANGUAGES,
    PERSONAL_WORDS,
    SLOTS,
    SYNONYM_PAIRS,
)

PACKAGE = Path(vocabulary.__file__).parent
PROJECT_PACKAGES = {"adwatch", "crawler", "matching", "legal_policy", "storage", "benchmarks"}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _placeholders(frame: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(frame) if name}


def test_names_and_cities_are_distinct_and_complete() -> None:
    assert len(FIRST_NAMES) == len(set(FIRST_NAMES)) >= 60
    assert len(CITY_NAMES) == len(set(CITY_NAMES)) == len(CITIES) == 20
    assert all(city.country == "NL" and city.province and city.weight >= 1 for city in CITIES)
    # Listed from the biggest draw down: weights never rise.
    weights = [city.weight for city in CITIES]
    assert weights == sorted(weights, reverse=True)


def test_every_table_has_both_languages_alike() -> None:
    for name in vocabulary.__all__:
        table = getattr(vocabulary, name)
        if isinstance(table, dict):
            assert set(table) == set(LANGUAGES), name
            nl, en = table["nl"], table["en"]
            if isinstance(nl, dict):
                assert {k: len(v) for k, v in nl.items()} == {k: len(v) for k, v in en.items()}
            else:
                assert len(nl) == len(en), name


def test_frames_use_only_known_placeholders() -> None:
    for lang in LANGUAGES:
        for frame in DETAIL_FRAMES[lang]:
            assert _placeholders(frame) <= set(SLOTS[lang]), frame
        for frame in INTRO_FRAMES[lang]:
            assert _placeholders(frame) == {"name", "age", "country"}, frame
        assert all(_placeholders(line) == {"phone"} for line in CONTACT_ONE[lang])
        assert all(_placeholders(line) == {"phone", "other"} for line in CONTACT_TWO[lang])


def test_a_number_is_never_the_last_word_of_its_sentence() -> None:
    # A following "Een …" or "One …" must not read as one more spelled-out digit.
    for lang in LANGUAGES:
        for line in (*CONTACT_ONE[lang], *CONTACT_TWO[lang]):
            assert re.search(r"\{(phone|other)\} \w", line), line
            assert not re.search(r"\{(phone|other)\}\W*$", line), line


def test_no_word_is_in_two_synonym_pairs() -> None:
    words = [word for pair in SYNONYM_PAIRS for word in pair]
    assert len(words) == len(set(words))
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in SYNONYM_PAIRS)


def test_personal_words_make_many_sentences() -> None:
    for lang in LANGUAGES:
        words = PERSONAL_WORDS[lang]
        combinations = len(words["opener"]) * len(words["verb"]) * len(words["object"])
        assert combinations * len(words["tail"]) > 20_000


def test_the_vocabulary_stays_non_explicit() -> None:
    texts = " ".join(
        s.casefold() for name in vocabulary.__all__ for s in _strings(getattr(vocabulary, name))
    )
    texts += " " + " ".join(s.casefold() for block in AGENCY_BLOCKS for s in block)
    assert len(texts) > 5_000
    for word in ("sex", "nude", "naakt", "erot", "porn", "xxx"):
        assert word not in texts, word


def test_the_package_imports_nothing_of_the_project_but_itself() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module)
        outside = {m for m in imported if m.split(".")[0] in PROJECT_PACKAGES}
        assert all(m.startswith("adwatch.synthetic") for m in outside), (path.name, outside)
