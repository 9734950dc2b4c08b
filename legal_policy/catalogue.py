"""The legal-basis catalogue: which regimes adwatch may be used under, with each regime's
retention and field rules, and the thresholds of the systematic-collection monitor.

The catalogue is a file (``catalogue/legal_bases.yaml`` or a deployment's own); retention
periods set by a legal officer (``adwatch retention set``) are stored in the database and
override the file's, within the legal maximum the file states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from legal_policy.errors import CatalogueError, UnknownLegalBasis
from legal_policy.field_rules import FieldRules, parse_field_rules

# Closed list: administrative inspection and disclosure to municipalities are never purposes.
ALLOWED_PURPOSES: frozenset[str] = frozenset({"criminal_investigation"})


class RetentionStart(StrEnum):
    """Where a retention period is counted from."""

    AUTHORISATION_END = "authorisation_end"
    CAPTURE = "capture"


class _RetentionModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int = Field(ge=0, le=3650)
    counted_from: RetentionStart
    max_days: int = Field(ge=0, le=3650)


class _LegalBasisModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    title: str
    retention: _RetentionModel
    fields: dict[str, str]

    @field_validator("fields")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
        parse_field_rules(value)  # ValueError names the field
        return value


class _MonitorModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days_running: int = Field(ge=1)
    ads_kept: int = Field(ge=1)
    distinct_profiles: int = Field(ge=1)
    cross_site_links: int = Field(ge=1)
    pause_crawls_when_crossed: bool


class _CatalogueModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    systematic_collection: _MonitorModel
    legal_bases: list[_LegalBasisModel] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long data under a legal basis is kept, and the legal ceiling for changing it."""

    days: int
    counted_from: RetentionStart
    max_days: int


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """One processing regime: its retention and what it lets adwatch keep of each field."""

    code: str
    title: str
    retention: RetentionRule
    fields: FieldRules


@dataclass(frozen=True, slots=True)
class MonitorThresholds:
    """Growth since the last review that makes collection "systematic" enough to review."""

    days_running: int
    ads_kept: int
    distinct_profiles: int
    cross_site_links: int
    pause_crawls_when_crossed: bool

    def as_dict(self) -> dict[str, int]:
        """The four measured thresholds by name."""
        return {
            "days_running": self.days_running,
            "ads_kept": self.ads_kept,
            "distinct_profiles": self.distinct_profiles,
            "cross_site_links": self.cross_site_links,
        }


@dataclass(frozen=True, slots=True)
class LegalBasisCatalogue:
    """The legal bases an authorisation may name, and the monitor's thresholds."""

    bases: tuple[LegalBasis, ...]
    monitor: MonitorThresholds
    source: str = "legal_bases.yaml"
    digest: str = ""

    def get(self, code: str) -> LegalBasis:
        """The legal basis with this code, or ``UnknownLegalBasis``."""
        for basis in self.bases:
            if basis.code == code:
                return basis
        known = ", ".join(b.code for b in self.bases)
        raise UnknownLegalBasis(f"unknown legal basis {code!r}; the catalogue has: {known}")

    def with_retention_days(self, overrides: dict[str, int]) -> LegalBasisCatalogue:
        """The catalogue with retention periods set by legal officers (code → days)."""
        bases = tuple(
            replace(b, retention=replace(b.retention, days=overrides[b.code]))
            if b.code in overrides
            else b
            for b in self.bases
        )
        return replace(self, bases=bases)


def parse_catalogue(text: str, source: str) -> LegalBasisCatalogue:
    """Parse and validate catalogue YAML; errors name the source and the field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source}: not valid YAML: {exc}") from exc
    try:
        model = _CatalogueModel.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise CatalogueError(f"{source}: {problems}") from exc
    codes = [b.code for b in model.legal_bases]
    if len(codes) != len(set(codes)):
        raise CatalogueError(f"{source}: legal basis codes must be unique")
    for number, basis in enumerate(model.legal_bases):
        if basis.retention.days > basis.retention.max_days:
            raise CatalogueError(
                f"{source}: legal_bases.{number}.retention.days: {basis.retention.days} is over "
                f"the legal maximum max_days {basis.retention.max_days}"
            )
    monitor = model.systematic_collection
    return LegalBasisCatalogue(
        tuple(
            LegalBasis(
                b.code,
                b.title,
                RetentionRule(b.retention.days, b.retention.counted_from, b.retention.max_days),
                parse_field_rules(b.fields),
            )
            for b in model.legal_bases
        ),
        MonitorThresholds(
            monitor.days_running,
            monitor.ads_kept,
            monitor.distinct_profiles,
            monitor.cross_site_links,
            monitor.pause_crawls_when_crossed,
        ),
        source,
        hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def load_catalogue(path: Path | None = None) -> LegalBasisCatalogue:
    """Load the catalogue from ``path``, or the bundled one."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogueError(f"{path}: cannot be read: {exc.strerror}") from None
        return parse_catalogue(text, str(path))
    bundled = resources.files("legal_policy") / "catalogue" / "legal_bases.yaml"
    return parse_catalogue(bundled.read_text(encoding="utf-8"), "legal_bases.yaml")
