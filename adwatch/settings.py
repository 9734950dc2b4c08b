"""The one settings object: every ``ADWATCH_`` variable and its default lives here.

Settings are built in entry points (CLI, worker process, tests), never at import time.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


class Settings(BaseSettings):
    """adwatch configuration, read from ``ADWATCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="ADWATCH_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./var"),
        description="Directory for the SQLite database, blob store, logs and local site profiles.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is a SQLite file adwatch.sqlite3 in the data dir.",
    )
    site_profiles_dir: Path | None = Field(
        default=None,
        description="Extra site profiles (*.yaml) that add to or override the bundled ones; "
        "default <data_dir>/site_profiles.",
    )
    operator: str = Field(
        default_factory=_default_operator,
        description="Who is acting, as written to the audit log (default: the login name).",
    )
    default_phone_region: str = Field(
        default="NL", description="Region for phone numbers written without a country code."
    )
    chromium_path: Path = Field(
        default=Path("/usr/bin/chromium"),
        description="Chromium binary for pages that need JavaScript (Debian package).",
    )
    log_level: str = Field(default="INFO", description="Log level of crawl runs.")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'adwatch.sqlite3').resolve()}"

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
