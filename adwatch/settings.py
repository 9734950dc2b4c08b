"""The one settings object: every ``ADWATCH_`` variable and its default lives here.

Settings are built in entry points (CLI, worker process, tests), never at import time. An
``ADWATCH_`` variable that is not a setting is refused (``unknown_environment_settings``),
so that a misspelt or retired one never looks as if it were honoured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crawler.config import CrawlerConfig

ENV_PREFIX = "ADWATCH_"
# Settings that were retired, and what replaced them.
RETIRED = {
    "ADWATCH_OPERATOR": "identity now comes from the user registry: use ADWATCH_USER "
    "(or --as USER) with a user added by `adwatch user add`",
}


class Settings(BaseSettings):
    """adwatch configuration, read from ``ADWATCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    data_dir: Path = Field(
        default=Path("./var"),
        description="Directory for the SQLite database, blob store, logs and local site profiles.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is a SQLite file adwatch.sqlite3 in the data dir.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="URL `adwatch db upgrade` migrates with (PostgreSQL: the schema owner), "
        "when the application's own role may not alter the audit table; default database_url.",
    )
    user: str | None = Field(
        default=None,
        description="The registered user the CLI acts as (same as --as USER).",
    )
    legal_catalogue: Path | None = Field(
        default=None,
        description="A deployment's legal-basis catalogue (YAML); default the bundled one.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="Key for per-case pseudonyms of phone numbers (created on first use, "
        "mode 0600); default <data_dir>/secret.key.",
    )
    audit_checkpoint_file: Path | None = Field(
        default=None,
        description="Audit checkpoints kept outside the database; default "
        "<data_dir>/audit-checkpoints.jsonl.",
    )
    site_profiles_dir: Path | None = Field(
        default=None,
        description="Extra site profiles (*.yaml) that add to or override the bundled ones; "
        "default <data_dir>/site_profiles.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for distributed crawls (scrapy-redis): the frontier and duplicate "
        "filter of a run live there, and `adwatch worker --run RUN` processes share it.",
    )
    default_phone_region: str = Field(
        default="NL", description="Region for phone numbers written without a country code."
    )
    timezone: str = Field(
        default="Europe/Amsterdam",
        description="IANA time zone in which times written without an offset are read "
        "(`adwatch match` input, as ad sites show local times).",
    )
    chromium_path: Path = Field(
        default=Path("/usr/bin/chromium"),
        description="Chromium binary for pages that need JavaScript (Debian package).",
    )
    log_level: str = Field(default="INFO", description="Log level of crawl runs.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (for example Europe/Amsterdam)"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """``timezone`` as a zone object."""
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'adwatch.sqlite3').resolve()}"

    @property
    def resolved_migration_database_url(self) -> str:
        """The URL migrations run with."""
        return self.migration_database_url or self.resolved_database_url

    @property
    def blob_dir(self) -> Path:
        """Root of the content-addressed blob store."""
        return self.data_dir / "blobs"

    @property
    def log_dir(self) -> Path:
        """Where crawl runs write their Scrapy logs."""
        return self.data_dir / "logs"

    @property
    def resolved_site_profiles_dir(self) -> Path:
        """Directory of local site profiles."""
        return self.site_profiles_dir or self.data_dir / "site_profiles"

    @property
    def resolved_secret_key_file(self) -> Path:
        """The pseudonym key file."""
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def resolved_audit_checkpoint_file(self) -> Path:
        """The audit checkpoint file."""
        return self.audit_checkpoint_file or self.data_dir / "audit-checkpoints.jsonl"

    def crawler_config(self, site_profiles_dir: Path | None = None) -> CrawlerConfig:
        """What crawl runs need, with absolute paths (the worker may start elsewhere)."""
        return CrawlerConfig(
            database_url=self.resolved_database_url,
            data_dir=self.data_dir.resolve(),
            site_profiles_dir=(site_profiles_dir or self.resolved_site_profiles_dir).resolve(),
            secret_key_file=self.resolved_secret_key_file.resolve(),
            audit_checkpoint_file=self.resolved_audit_checkpoint_file.resolve(),
            legal_catalogue=self.legal_catalogue.resolve() if self.legal_catalogue else None,
            default_phone_region=self.default_phone_region,
            chromium_path=self.chromium_path,
            log_level=self.log_level,
            redis_url=self.redis_url,
        )


def unknown_environment_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One message per ``ADWATCH_`` variable that is not a setting (retired or misspelt)."""
    environ = os.environ if environ is None else environ
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        hint = RETIRED.get(name, "see the README's table of settings")
        problems.append(f"{name} is not an adwatch setting: {hint}")
    return problems
