"""What every command needs: settings, database and console, built once per invocation."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from storage.db import ensure_schema_current, make_engine, make_session_factory


@dataclass
class AppContext:
    """Built in the CLI's entry point; commands receive it through Typer's context."""

    settings: Settings
    console: Console = field(default_factory=Console)
    error_console: Console = field(default_factory=lambda: Console(stderr=True))

    @cached_property
    def engine(self) -> Engine:
        """The database engine (created on first use)."""
        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions on a database whose schema is current."""
        ensure_schema_current(self.engine)
        return make_session_factory(self.engine)

    def close(self) -> None:
        """Release database connections."""
        if "engine" in self.__dict__:
            self.engine.dispose()
