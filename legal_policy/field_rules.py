"""What a legal basis lets adwatch keep of each captured field (LED art. 4(1)(c), 20).

Each captured field has a rule: ``keep`` it, ``mask`` it (what masking means depends on the
field), ``pseudonymise`` it (a keyed hash per case: equal inside a case, unlinkable across
cases) or ``drop`` it. Not every rule makes sense for every field; a catalogue that asks for
one that does not, or for a combination that would defeat itself (masking phone numbers in
the text while keeping the raw page that shows them), is refused when it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum


class FieldRule(StrEnum):
    """What happens to one captured field before anything is written."""

    KEEP = "keep"
    MASK = "mask"
    PSEUDONYMISE = "pseudonymise"
    DROP = "drop"


# What each rule means per field, for messages and the README.
MEANINGS: Mapping[str, Mapping[FieldRule, str]] = {
    "title": {
        FieldRule.KEEP: "stored as published",
        FieldRule.MASK: "phone numbers, e-mail addresses and links replaced by placeholders",
        FieldRule.DROP: "not stored",
    },
    "text": {
        FieldRule.KEEP: "stored as published",
        FieldRule.MASK: "phone numbers, e-mail addresses and links replaced by placeholders",
        FieldRule.DROP: "not stored",
    },
    "city": {
        FieldRule.KEEP: "stored",
        FieldRule.DROP: "the city field is not stored (a city the title or text names stays "
        "unless those are masked or dropped)",
    },
    "posted_at": {
        FieldRule.KEEP: "stored to the second",
        FieldRule.MASK: "stored as the day only (00:00 UTC)",
        FieldRule.DROP: "not stored",
    },
    "phones": {
        FieldRule.KEEP: "stored as E.164 beside the form written in the ad",
        FieldRule.PSEUDONYMISE: "stored as a keyed hash per case; links ads inside the case only",
        FieldRule.DROP: "not stored; nothing links by phone",
    },
    "images": {
        FieldRule.KEEP: "stored re-encoded, without metadata (EXIF, GPS, XMP, comments)",
        FieldRule.MASK: "only the perceptual hashes are stored, never the pixels",
        FieldRule.DROP: "neither pixels nor hashes are stored",
    },
    "raw_page": {
        FieldRule.KEEP: "stored without third-party content and without the elements of "
        "fields that are not kept",
        FieldRule.DROP: "not stored",
    },
}


@dataclass(frozen=True, slots=True)
class FieldRules:
    """The rule for each captured field under one legal basis."""

    title: FieldRule = FieldRule.KEEP
    text: FieldRule = FieldRule.KEEP
    city: FieldRule = FieldRule.KEEP
    posted_at: FieldRule = FieldRule.KEEP
    phones: FieldRule = FieldRule.KEEP
    images: FieldRule = FieldRule.KEEP
    raw_page: FieldRule = FieldRule.KEEP

    def as_dict(self) -> dict[str, str]:
        """Field name → rule, in declaration order."""
        return {f.name: getattr(self, f.name).value for f in fields(self)}

    def not_kept(self) -> tuple[str, ...]:
        """Fields whose rule is anything but ``keep``."""
        return tuple(name for name, rule in self.as_dict().items() if rule != FieldRule.KEEP)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(FieldRules))


def parse_field_rules(raw: Mapping[str, str]) -> FieldRules:
    """Field rules from a mapping of field → rule; ``ValueError`` naming what is wrong."""
    unknown = sorted(set(raw) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}; fields are: {', '.join(FIELD_NAMES)}"
        )
    values: dict[str, FieldRule] = {}
    for name, value in raw.items():
        try:
            rule = FieldRule(str(value))
        except ValueError:
            raise ValueError(
                f"{name}: {value!r} is not a rule (keep, mask, pseudonymise, drop)"
            ) from None
        allowed = MEANINGS[name]
        if rule not in allowed:
            choices = ", ".join(r.value for r in allowed)
            raise ValueError(f"{name}: {rule.value!r} is not possible for this field ({choices})")
        values[name] = rule
    rules = FieldRules(**values)
    check_consistent(rules)
    return rules


def check_consistent(rules: FieldRules) -> None:
    """Refuse rules that would keep in one field what another removes."""
    if rules.phones != FieldRule.KEEP:
        for name in ("title", "text"):
            if getattr(rules, name) == FieldRule.KEEP:
                raise ValueError(
                    f"phones: {rules.phones.value} needs {name}: mask or drop, since ads "
                    f"write their numbers in the {name}"
                )
    if rules.raw_page == FieldRule.KEEP:
        for name in ("title", "text", "phones"):
            if getattr(rules, name) != FieldRule.KEEP:
                raise ValueError(
                    f"raw_page: keep needs {name}: keep, since the page shows the {name} "
                    "in places no selector can cut out; use raw_page: drop"
                )
