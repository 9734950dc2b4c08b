"""Loading a model: the bundled default, and every malformed model refused with an error
that names the source, the rule, its line and the field."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crawler.indicator_model import load_indicator_model
from matching.indicators import IndicatorModelError, parse_indicator_model, score_ad
from tests.matching.indicators.examples import MODEL, fired_ids

# --------------------------------------------------------------------------- default model


def test_bundled_default_loads_with_version_and_digest() -> None:
    assert MODEL.version == "2026.11-1"
    assert re.fullmatch(r"[0-9a-f]{64}", MODEL.digest)
    assert {r.id for r in MODEL.ad_rules} == {
        "new_in_town",
        "short_stay",
        "available_24_7",
        "third_person",
        "with_friend",
        "no_rush_all_wishes",
        "low_price",
        "source_country_nationality",
    }
    assert {r.id for r in MODEL.profile_rules} == {
        "phone_in_many_cities",
        "same_photos_other_identity",
        "many_ads_per_phone",
        "recurring_movement_wording",
        "recurring_third_party_wording",
        "source_country_phone",
    }
    assert MODEL.rule("source_country_nationality").category == "nationality"
    assert MODEL.rule("source_country_phone").category == "origin"


def test_default_model_keeps_protected_rules_below_thresholds() -> None:
    ad_protected = sum(r.weight for r in MODEL.ad_rules if r.protected)
    profile_protected = sum(r.weight for r in MODEL.profile_rules if r.protected)
    assert 0 < ad_protected < MODEL.threshold
    assert 0 < profile_protected < MODEL.profile_threshold


def test_load_with_explicit_path_matches_bundled(tmp_path: Path) -> None:
    bundled = Path(__file__).parents[3] / "matching" / "indicator_models" / "default.yaml"
    copy_path = tmp_path / "model.yaml"
    copy_path.write_bytes(bundled.read_bytes())
    loaded = load_indicator_model(copy_path)
    assert loaded.version == MODEL.version
    assert loaded.digest == MODEL.digest
    assert loaded.source == str(copy_path)


# --------------------------------------------------------------------------- validation


def minimal_model() -> dict[str, Any]:
    return {
        "version": "test-1",
        "threshold": 1.0,
        "profile_threshold": 1.0,
        "rules": [
            {
                "id": "new_in_town",
                "level": "ad",
                "kind": "phrases",
                "category": "movement",
                "weight": 0.6,
                "description": "New in town.",
                "description_nl": "Nieuw in de stad.",
                "patterns": [r"\bnieuw in de stad\b"],
            },
            {
                "id": "nationality",
                "level": "ad",
                "kind": "phrases",
                "category": "nationality",
                "weight": 0.4,
                "description": "Nationality.",
                "description_nl": "Nationaliteit.",
                "patterns": [r"\broemeense\b"],
            },
            {
                "id": "low_price",
                "level": "ad",
                "kind": "low_price",
                "category": "price",
                "weight": 0.5,
                "description": "Low price.",
                "description_nl": "Lage prijs.",
                "below_eur": {"hour": 100},
            },
            {
                "id": "origin_phone",
                "level": "profile",
                "kind": "phone_region",
                "category": "origin",
                "weight": 0.5,
                "description": "Origin phone.",
                "description_nl": "Nummer uit bronland.",
                "regions": ["RO"],
            },
            {
                "id": "movement_rate",
                "level": "profile",
                "kind": "ad_rate",
                "category": "movement",
                "weight": 0.5,
                "description": "Recurring movement.",
                "description_nl": "Terugkerende verplaatsing.",
                "rules": ["new_in_town"],
                "min_share": 0.5,
                "min_ads": 2,
            },
        ],
    }


def test_minimal_model_is_valid() -> None:
    model = parse_indicator_model(minimal_model())
    assert model.version == "test-1"
    assert len(model.rules) == 5
    assert parse_indicator_model(minimal_model()).digest == model.digest


def rule_named(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    rule: dict[str, Any] = next(r for r in data["rules"] if r["id"] == rule_id)
    return rule


def _set(rule_id: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        rule_named(data, rule_id)[key] = value

    return change


def _drop(rule_id: str, key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del rule_named(data, rule_id)[key]

    return change


def _add_rule(**rule: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["rules"].append(rule)

    return change


def _protected(rule_id: str, category: str, weight: float, level: str = "ad") -> dict[str, Any]:
    common = {
        "id": rule_id,
        "level": level,
        "category": category,
        "weight": weight,
        "description": "Protected.",
        "description_nl": "Beschermd.",
    }
    if level == "ad":
        return {**common, "kind": "phrases", "patterns": [r"\bbulgaarse\b"]}
    return {**common, "kind": "phone_region", "regions": ["BG"]}


BAD_MODELS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top key", lambda d: d.update(extra=1), r"unknown key\(s\) 'extra'"),
    ("missing version", lambda d: d.pop("version"), r"missing field\(s\) 'version'"),
    ("version with spaces", lambda d: d.update(version="v 1"), "'version' must be a string"),
    ("zero threshold", lambda d: d.update(threshold=0), "'threshold' must be greater than 0"),
    ("bool threshold", lambda d: d.update(threshold=True), "'threshold' must be a finite number"),
    ("no rules", lambda d: d.update(rules=[]), "'rules' must be a non-empty list"),
    ("rule not a mapping", lambda d: d["rules"].append("x"), "rule #6: a rule must be a mapping"),
    ("unknown rule key", _set("new_in_town", "patern", "x"), "rule 'new_in_town'.*'patern'"),
    ("missing weight", _drop("new_in_town", "weight"), r"'new_in_town'.*missing.*'weight'"),
    ("missing kind", _drop("new_in_town", "kind"), "'new_in_town': missing field 'kind'"),
    ("missing dutch", _drop("low_price", "description_nl"), "'low_price'.*'description_nl'"),
    ("bad regex", _set("new_in_town", "patterns", ["(nieuw"]), "'new_in_town'.*not a valid"),
    ("empty regex", _set("new_in_town", "patterns", ["x*"]), "'new_in_town'.*matches empty"),
    ("no patterns", _set("new_in_town", "patterns", []), "'patterns' must be a non-empty"),
    ("negative weight", _set("low_price", "weight", -0.1), "'low_price'.*must not be negative"),
    ("text weight", _set("low_price", "weight", "high"), "'low_price'.*finite number"),
    ("unknown level", _set("low_price", "level", "site"), "'low_price'.*unknown level 'site'"),
    ("level mismatch", _set("low_price", "level", "profile"), "'low_price'.*ad-level rule"),
    ("unknown kind", _set("low_price", "kind", "magic"), "'low_price'.*unknown kind 'magic'"),
    ("unknown category", _set("low_price", "category", "race"), "'low_price'.*unknown category"),
    ("bad id", _set("low_price", "id", "Low Price"), "lower-case letters"),
    (
        "duplicate id",
        lambda d: d["rules"].append(copy.deepcopy(d["rules"][0])),
        "duplicate rule id 'new_in_town'",
    ),
    ("price unit", _set("low_price", "below_eur", {"day": 5}), r"'low_price'.*'day'"),
    ("price limit", _set("low_price", "below_eur", {"hour": 0}), "'hour' must be greater"),
    ("price limits not a mapping", _set("low_price", "below_eur", [60]), "'below_eur' must map"),
    ("price as text", _set("low_price", "below_eur", {"hour": "60"}), "'hour' must be a finite"),
    ("string threshold", lambda d: d.update(threshold="1"), "'threshold' must be a finite number"),
    ("fractional count", _set("movement_rate", "min_ads", 2.0), "'min_ads' must be a whole number"),
    ("bool count", _set("movement_rate", "min_ads", True), "'min_ads' must be a whole number"),
    ("count too small", _set("movement_rate", "min_ads", 0), "'min_ads' must be at least 1, not 0"),
    (
        "unknown keys listed together, with what is allowed",
        lambda d: d.update(b=1, a=2),
        r"unknown key\(s\) 'a', 'b'; allowed: profile_threshold, rules, threshold, version",
    ),
    (
        "missing fields listed together",
        lambda d: [d.pop("version"), d.pop("threshold")],
        r"missing field\(s\) 'version', 'threshold'",
    ),
    ("blank description", _set("low_price", "description", "  "), "'description' must be a non"),
    ("profile kind on an ad", _set("origin_phone", "level", "ad"), "'phone_region' is a profile-"),
    ("bad region", _set("origin_phone", "regions", ["ro"]), "'origin_phone'.*ISO 3166"),
    ("region as bool", _set("origin_phone", "regions", [False]), "'origin_phone'.*non-empty str"),
    ("rate unknown rule", _set("movement_rate", "rules", ["nope"]), "'movement_rate'.*'nope'"),
    ("rate share", _set("movement_rate", "min_share", 1.5), "'min_share' must be at most 1"),
    (
        "rate over protected rule in open category",
        _set("movement_rate", "rules", ["nationality"]),
        "'movement_rate'.*aggregates protected.*'nationality'",
    ),
    (
        "nationality rule alone reaches threshold",
        _set("nationality", "weight", 1.0),
        "rule 'nationality' \\(nationality\\) weighs 1, which is not below the threshold 1",
    ),
    (
        "two protected ad rules together reach threshold",
        _add_rule(**_protected("second_nationality", "nationality", 0.6)),
        "'nationality', 'second_nationality' together weigh 1",
    ),
    (
        "ethnic origin and nationality together reach threshold",
        _add_rule(**_protected("ethnicity", "ethnic_origin", 0.7)),
        "together weigh 1.1, which is not below the threshold",
    ),
    (
        "origin phone alone reaches profile threshold",
        _set("origin_phone", "weight", 1.2),
        "rule 'origin_phone' \\(origin\\) weighs 1.2, which is not below the profile_threshold",
    ),
    (
        "two protected profile rules together reach profile threshold",
        _add_rule(**_protected("origin_phone_2", "origin", 0.5, level="profile")),
        "protected-category profile rules 'origin_phone', 'origin_phone_2' together weigh 1",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [pytest.param(change, message, id=name) for name, change, message in BAD_MODELS],
)
def test_bad_models_are_refused(change: Callable[[dict[str, Any]], None], message: str) -> None:
    data = minimal_model()
    change(data)
    with pytest.raises(IndicatorModelError, match=message):
        parse_indicator_model(data, source="test.yaml")


def test_protected_weights_just_below_threshold_are_accepted() -> None:
    data = minimal_model()
    rule_named(data, "nationality")["weight"] = 0.3
    data["rules"].append(_protected("ethnicity", "ethnic_origin", 0.6))
    model = parse_indicator_model(data)
    assert sum(r.weight for r in model.ad_rules if r.protected) == pytest.approx(0.9)


def test_unspecified_price_limit_is_configurable() -> None:
    data = minimal_model()
    rule_named(data, "low_price")["below_eur"] = {"unspecified": 40}
    model = parse_indicator_model(data)
    assert fired_ids(score_ad(model, "", "Alles 30,-")) == {"low_price"}
    assert fired_ids(score_ad(model, "", "Alles 60,-")) == set()


YAML_TOP = "version: '1'\nthreshold: 1\nprofile_threshold: 1\nrules:\n"


def test_load_names_file_line_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        YAML_TOP + "  - id: only_nationality\n"
        "    level: ad\n"
        "    kind: phrases\n"
        "    category: nationality\n"
        "    weight: 0.5\n"
        "    description: x\n"
        "    description_nl: x\n"
        "    patterns: ['\\bx\\b']\n"
        "  - id: broken\n"
        "    level: ad\n"
        "    kind: phrases\n"
        "    category: wording\n"
        "    weight: 0.5\n"
        "    description: x\n"
        "    description_nl: x\n"
        "    patterns: ['(']\n",
        encoding="utf-8",
    )
    with pytest.raises(
        IndicatorModelError, match=rf"{re.escape(str(path))}: rule 'broken' \(line 13\)"
    ):
        load_indicator_model(path)


def test_load_refuses_duplicate_yaml_keys(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("version: '1'\nthreshold: 1\nthreshold: 5\n", encoding="utf-8")
    with pytest.raises(IndicatorModelError, match="line 3: duplicate key 'threshold'"):
        load_indicator_model(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [("version: [1\n", "not valid YAML"), ("- 1\n- 2\n", "must be a mapping"), ("", "mapping")],
)
def test_load_refuses_non_models(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(IndicatorModelError, match=message):
        load_indicator_model(path)


def test_load_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(IndicatorModelError, match="cannot read"):
        load_indicator_model(tmp_path / "absent.yaml")


def test_load_names_line_and_field_of_a_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        YAML_TOP + "  - id: cheap\n"
        "    level: ad\n"
        "    kind: low_price\n"
        "    category: price\n"
        "    weight: 0.5\n"
        "    description: x\n"
        "    description_nl: x\n"
        "    below_eur: {hour: 60, day: 5}\n",
        encoding="utf-8",
    )
    message = (
        f"{path}: rule 'cheap' (line 5): unknown key(s) 'day'; "
        "allowed: half_hour, hour, quarter, unspecified"
    )
    with pytest.raises(IndicatorModelError, match=re.escape(message)):
        load_indicator_model(path)
