"""The legal-basis catalogue: which processing regimes adwatch may be used under."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from legal_policy.errors import CatalogueError, UnknownLegalBasis

# Closed list: administrative inspection and disclosure to municipalities are never purposes.
ALLOWED_PURPOSES: frozenset[str] = frozenset({"criminal_investigation"})


class _LegalBasisModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    title: str
    review_days_after_end: int = Field(ge=0, le=3650)


class _CatalogueModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_bases: list[_LegalBasisModel] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class LegalBasis:
    """One processing regime and its retention rule."""

    code: str
    title: str
    review_days_after_end: int


@dataclass(frozen=True, slots=True)
class LegalBasisCatalogue:
    """The legal bases an authorisation may name."""

    bases: tuple[LegalBasis, ...]

    def get(self, code: str) -> LegalBasis:
        """The legal basis with this code, or ``UnknownLegalBasis``."""
        for basis in self.bases:
            if basis.code == code:
                return basis
        known = ", ".join(b.code for b in self.bases)
        raise UnknownLegalBasis(f"unknown legal basis {code!r}; the catalogue has: {known}")


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
    return LegalBasisCatalogue(
        tuple(LegalBasis(b.code, b.title, b.review_days_after_end) for b in model.legal_bases)
    )


def load_catalogue(path: Path | None = None) -> LegalBasisCatalogue:
    """Load the catalogue from ``path``, or the bundled one."""
    if path is not None:
        return parse_catalogue(path.read_text(encoding="utf-8"), str(path))
    bundled = resources.files("legal_policy") / "catalogue" / "legal_bases.yaml"
    return parse_catalogue(bundled.read_text(encoding="utf-8"), "legal_bases.yaml")
