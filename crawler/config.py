"""What a crawl run needs to know, built by the front door from its settings.

The crawler never reads ``adwatch.settings``: the front door hands it a ``CrawlerConfig``.
The worker process receives it as JSON on its standard input (the database URL may hold a
password, and a command line is visible to every user through ``ps``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class CrawlerConfig:
    """Paths, database and defaults of crawl runs; every path absolute."""

    database_url: str
    data_dir: Path
    site_profiles_dir: Path
    secret_key_file: Path
    audit_checkpoint_file: Path
    legal_catalogue: Path | None = None
    default_phone_region: str = "NL"
    chromium_path: Path = Path("/usr/bin/chromium")
    log_level: str = "INFO"
    redis_url: str | None = None

    @property
    def blob_dir(self) -> Path:
        """Root of the content-addressed blob store."""
        return self.data_dir / "blobs"

    @property
    def log_dir(self) -> Path:
        """Run logs (``run-N.log``, ``run-N.worker.log``)."""
        return self.data_dir / "logs"

    @property
    def warc_dir(self) -> Path:
        """WARC files of the runs."""
        return self.data_dir / "warc"

    def to_json(self) -> str:
        """One line of JSON (for the worker's standard input)."""
        data: dict[str, Any] = asdict(self)
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> CrawlerConfig:
        """The inverse of ``to_json``; unknown keys are refused."""
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown crawler configuration keys: {', '.join(unknown)}")
        paths = {"data_dir", "site_profiles_dir", "secret_key_file", "audit_checkpoint_file"}
        for name in paths | {"chromium_path"}:
            raw[name] = Path(raw[name])
        if raw.get("legal_catalogue"):
            raw["legal_catalogue"] = Path(raw["legal_catalogue"])
        return cls(**raw)
