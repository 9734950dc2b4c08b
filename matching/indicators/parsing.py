"""Reading an indicator model from a file's bytes or a mapping, refused whole if it is wrong.

Pydantic checks every part of the file (``schema``; a kind's own fields are declared with
the kind in ``kinds``). What no single part can show is checked here over the whole model:
duplicate rule ids, ``ad_rate`` rules that aggregate what is not an ad rule, and the legal
limit on protected categories. Every error names the source, the rule (id or position,
and its line in a YAML file) and the field. Reading the file is the caller's
(``crawler.indicator_model``): ``matching`` reads no files.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import yaml
from pydantic import AfterValidator, BeforeValidator, Field

from matching.indicators.kinds import KINDS, AdRateParams
from matching.indicators.records import (
    Category,
    IndicatorModel,
    IndicatorModelError,
    IndicatorRule,
    Level,
)
from matching.indicators.schema import FileModel, NonNegative, Positive, Text, problem, validate

__all__ = ["indicator_model_from_yaml", "parse_indicator_model"]

_RULE_ID = re.compile(r"[a-z][a-z0-9_]*")


def _one_word(version: object) -> object:
    if not isinstance(version, str) or not version.strip() or any(c.isspace() for c in version):
        raise ValueError(f"'version' must be a string without spaces, not {version!r}")
    return version


def _rule_id(rule_id: str) -> str:
    if not _RULE_ID.fullmatch(rule_id):
        raise ValueError("'id' must be lower-case letters, digits and underscores")
    return rule_id


class _ModelFields(FileModel):
    """The top of a model file; each rule is read on its own, by its kind."""

    version: Annotated[str, BeforeValidator(_one_word)]
    threshold: Positive
    profile_threshold: Positive
    rules: Annotated[list[object], Field(min_length=1)]


class _RuleFields(FileModel):
    """The fields every rule has, whatever its kind."""

    id: Annotated[Text, AfterValidator(_rule_id)]
    level: Level
    kind: str
    category: Category
    weight: NonNegative
    description: Text
    description_nl: Text


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a model comes from, and the line of each of its rules when known."""

    name: str
    rule_lines: Sequence[int] | None

    def error(self, message: str) -> IndicatorModelError:
        return IndicatorModelError(f"{self.name}: {message}")

    def rule_error(self, index: int, rule_id: object, message: str) -> IndicatorModelError:
        where = f"rule {rule_id!r}" if isinstance(rule_id, str) else f"rule #{index + 1}"
        if self.rule_lines is not None and index < len(self.rule_lines):
            where += f" (line {self.rule_lines[index]})"
        return self.error(f"{where}: {message}")


def _parse_rule(source: _Source, index: int, raw: object) -> IndicatorRule:
    if not isinstance(raw, Mapping):
        raise source.rule_error(index, None, "a rule must be a mapping of fields")
    rule_id = raw.get("id")
    name = raw.get("kind")
    if name is None:
        raise source.rule_error(index, rule_id, "missing field 'kind'")
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        known = ", ".join(sorted(KINDS))
        raise source.rule_error(index, rule_id, f"unknown kind {name!r}; known: {known}")
    common = {k: v for k, v in raw.items() if k in _RuleFields.model_fields}
    own = {k: v for k, v in raw.items() if k not in _RuleFields.model_fields}
    fields, errors = validate(_RuleFields, common)
    parameters, own_errors = validate(kind.fields, own)
    if fields is None or parameters is None:
        message = problem([*errors, *own_errors], (_RuleFields, kind.fields))
        raise source.rule_error(index, rule_id, message)
    if fields.level != kind.level:
        message = f"kind {name!r} is a {kind.level}-level rule, not {fields.level!r}"
        raise source.rule_error(index, rule_id, message)
    return IndicatorRule(
        id=fields.id,
        level=fields.level,
        kind=fields.kind,
        category=fields.category,
        weight=fields.weight,
        description=fields.description,
        description_nl=fields.description_nl,
        params=parameters.params(),
    )


def _check_cross_rules(source: _Source, rules: Sequence[IndicatorRule]) -> None:
    by_id = {r.id: r for r in rules}
    for index, rule in enumerate(rules):
        if not isinstance(rule.params, AdRateParams):
            continue
        for ref in rule.params.rules:
            target = by_id.get(ref)
            if target is None or target.level != "ad":
                message = f"'rules' names {ref!r}, which is not an ad-level rule"
                raise source.rule_error(index, rule.id, message)
        protected = [ref for ref in rule.params.rules if by_id[ref].protected]
        if protected and not rule.protected:
            raise source.rule_error(
                index,
                rule.id,
                f"aggregates protected-category ad rule(s) {', '.join(map(repr, protected))}, "
                "so it must itself have a protected category (nationality, ethnic_origin, origin)",
            )


def _check_protected(
    source: _Source, rules: Sequence[IndicatorRule], level: str, threshold: float, label: str
) -> None:
    """The legal rule: protected indicators can never reach a threshold on their own."""
    protected = [r for r in rules if r.level == level and r.protected]
    for rule in protected:
        if rule.weight >= threshold:
            raise source.error(
                f"rule {rule.id!r} ({rule.category}) weighs {rule.weight:g}, which is not below "
                f"the {label} {threshold:g}: nationality, ethnic-origin and origin indicators "
                "may never be the sole trigger"
            )
    total = math.fsum(r.weight for r in protected)
    if total >= threshold:
        names = ", ".join(repr(r.id) for r in protected)
        raise source.error(
            f"protected-category {level} rules {names} together weigh {total:g}, which is not "
            f"below the {label} {threshold:g}: nationality, ethnic-origin and origin indicators "
            "may never reach it on their own"
        )


def _parse(data: object, source: _Source, digest: str) -> IndicatorModel:
    if not isinstance(data, Mapping):
        raise source.error("an indicator model must be a mapping of fields")
    top, errors = validate(_ModelFields, dict(data))
    if top is None:
        raise source.error(problem(errors, (_ModelFields,)))
    rules: list[IndicatorRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(top.rules):
        rule = _parse_rule(source, index, raw)
        if rule.id in seen:
            raise source.rule_error(index, rule.id, f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
        rules.append(rule)
    _check_cross_rules(source, rules)
    _check_protected(source, rules, "ad", top.threshold, "threshold")
    _check_protected(source, rules, "profile", top.profile_threshold, "profile_threshold")
    return IndicatorModel(
        version=top.version,
        threshold=top.threshold,
        profile_threshold=top.profile_threshold,
        rules=tuple(rules),
        digest=digest,
        source=source.name,
    )


def parse_indicator_model(
    data: Mapping[str, object], *, source: str = "indicator model"
) -> IndicatorModel:
    """Validate a model given as a mapping (as read from YAML); ``IndicatorModelError`` if bad."""
    try:
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        canonical = repr(data)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return _parse(data, _Source(source, None), digest)


def _rule_lines(source: str, node: yaml.Node) -> list[int] | None:
    """Line of each rule, and refusal of duplicate keys (which YAML would silently merge)."""
    stack: list[yaml.Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in current.value:
                key = str(key_node.value)
                if key in keys:
                    line = key_node.start_mark.line + 1
                    raise IndicatorModelError(f"{source}: line {line}: duplicate key {key!r}")
                keys.add(key)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == "rules" and isinstance(value_node, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value_node.value]
    return None


def indicator_model_from_yaml(raw: bytes, *, source: str = "indicator model") -> IndicatorModel:
    """Validate a model file's bytes (YAML, UTF-8); ``IndicatorModelError`` if bad. Reading
    the file is the caller's (``crawler.indicator_model.load_indicator_model``)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IndicatorModelError(f"{source}: cannot read the model: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IndicatorModelError(f"{source}: not valid YAML: {exc}") from exc
    if node is None or not isinstance(data, dict):
        raise IndicatorModelError(f"{source}: an indicator model must be a mapping of fields")
    lines = _rule_lines(source, node)
    return _parse(data, _Source(source, lines), hashlib.sha256(raw).hexdigest())
