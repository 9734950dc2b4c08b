"""The building blocks of a model file's schema, and pydantic's errors in the author's words.

Every part of a model file is a strict pydantic model: an unknown key is refused, never
ignored, and ``"1"`` is not a number nor ``true`` a count. ``problem`` turns pydantic's
errors into the one sentence ``IndicatorModelError`` carries, naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

__all__ = [
    "FileModel",
    "NonBlank",
    "NonBlankList",
    "NonNegative",
    "Positive",
    "Share",
    "Text",
    "problem",
    "validate",
]


class FileModel(BaseModel):
    """A part of a model file: strict types, and no key that the part does not define."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
#: A string with something in it, stripped.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: A string with something in it, kept as written.
NonBlank = Annotated[str, StringConstraints(pattern=r"\S")]
NonBlankList = Annotated[list[NonBlank], Field(min_length=1)]

_NUMBER_ERRORS = frozenset({"float_type", "float_parsing", "finite_number"})
_WHOLE_NUMBER_ERRORS = frozenset({"int_type", "int_parsing", "int_from_float"})
_STRING_ERRORS = frozenset({"string_type", "string_too_short", "string_pattern_mismatch"})
_LIST_ERRORS = frozenset({"list_type", "too_short"})
_MAPPING_ERRORS = frozenset({"dict_type", "model_type", "model_attributes_type"})

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: dict[str, object]) -> tuple[M | None, list[ErrorDetails]]:
    """``data`` as ``model``, or ``None`` with pydantic's errors."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, exc.errors()


def problem(errors: Sequence[ErrorDetails], models: Sequence[type[BaseModel]]) -> str:
    """The first problem in ``errors``, as a sentence naming the field.

    ``models`` were validated against parts of one mapping, so that their fields together
    are the keys it may hold. Unknown keys come first, then missing ones, as a file's
    author fixes them: all of one kind at once.
    """
    for kind in ("extra_forbidden", "missing"):
        found = [e for e in errors if e["type"] == kind]
        if not found:
            continue
        parent = found[0]["loc"][:-1]
        keys = [str(e["loc"][-1]) for e in found if e["loc"][:-1] == parent]
        if kind == "missing":
            return f"missing field(s) {', '.join(map(repr, keys))}"
        allowed = sorted({name for m in models for name in _fields_at(m, parent)})
        return f"unknown key(s) {', '.join(map(repr, sorted(keys)))}; allowed: {', '.join(allowed)}"
    return _sentence(errors[0], models)


def _fields_at(model: type[BaseModel], loc: Sequence[int | str]) -> dict[str, FieldInfo]:
    """The fields of the part of ``model`` at ``loc`` (none if it is not a model there)."""
    for name in loc:
        field = model.model_fields.get(str(name))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return {}
        model = annotation
    return model.model_fields


def _choices(field: FieldInfo | None) -> tuple[object, ...]:
    """The values a ``Literal`` field allows (none for any other field)."""
    return get_args(field.annotation) if field is not None else ()


def _sentence(error: ErrorDetails, models: Sequence[type[BaseModel]]) -> str:
    loc, kind, value = error["loc"], error["type"], error["input"]
    ctx = error.get("ctx", {})
    key = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))  # the validator's own sentence
    if kind in _NUMBER_ERRORS:
        return f"{key!r} must be a finite number, not {value!r}"
    if kind in _WHOLE_NUMBER_ERRORS:
        return f"{key!r} must be a whole number, not {value!r}"
    if kind == "greater_than":
        return f"{key!r} must be greater than {ctx['gt']:g}, not {value!r}"
    if kind == "greater_than_equal":
        if ctx["ge"] == 0:
            return f"{key!r} must not be negative, not {value!r}"
        return f"{key!r} must be at least {ctx['ge']:g}, not {value!r}"
    if kind == "less_than_equal":
        return f"{key!r} must be at most {ctx['le']:g}, not {value!r}"
    if kind in _STRING_ERRORS:
        if loc and isinstance(loc[-1], int):
            return f"{key!r} must hold non-empty strings, not {value!r}"
        return f"{key!r} must be a non-empty string, not {value!r}"
    if kind in _LIST_ERRORS:
        return f"{key!r} must be a non-empty list"
    if kind in _MAPPING_ERRORS:
        return f"{key!r} must be a mapping of fields"
    if kind == "literal_error":
        known = [str(v) for m in models for v in _choices(_fields_at(m, loc[:-1]).get(key))]
        listed = ", ".join(sorted(known)) if known else ctx.get("expected", "")
        return f"unknown {key} {value!r}; known: {listed}"
    return f"{key!r}: {error['msg']}" if key else str(error["msg"])
