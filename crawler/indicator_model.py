"""Reading an indicator model file: the bundled default or a deployment's own. The matcher
validates and applies models but reads no files (``matching.indicators``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from matching.indicators import IndicatorModel, IndicatorModelError, indicator_model_from_yaml

BUNDLED_SOURCE = "bundled indicator_models/default.yaml"


def load_indicator_model(path: Path | None = None) -> IndicatorModel:
    """Read and validate a model file; ``None`` reads the bundled default model (package
    data of ``matching``). ``IndicatorModelError`` names the file when it is unreadable."""
    source = BUNDLED_SOURCE if path is None else str(path)
    try:
        if path is None:
            raw = (resources.files("matching") / "indicator_models" / "default.yaml").read_bytes()
        else:
            raw = path.read_bytes()
    except OSError as exc:
        raise IndicatorModelError(f"{source}: cannot read the model: {exc}") from exc
    return indicator_model_from_yaml(raw, source=source)
