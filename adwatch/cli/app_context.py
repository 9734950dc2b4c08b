"""What every command needs: settings, database, the acting user and consoles, built once
per invocation."""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from rich.console import Console
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from legal_policy.access import AccessContext
from legal_policy.catalogue import LegalBasisCatalogue, load_catalogue
from legal_policy.checkpoints import CheckpointError, append_checkpoint_if_new
from legal_policy.registry import load_access
from storage.db import ensure_schema_current, make_engine, make_session_factory
from storage.models import RetentionSetting

if TYPE_CHECKING:
    from adwatch.services.link_snapshots import LinkSnapshots


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@dataclass
class AppContext:
    """Built in the CLI's entry point; commands receive it through Typer's context."""

    settings: Settings
    console: Console = field(default_factory=Console)
    error_console: Console = field(default_factory=lambda: Console(stderr=True))
    # --as USER; falls back to ADWATCH_USER.
    as_user: str | None = None
    # The command being run (``adwatch profiles show``), for refusals in the audit log.
    command: str = "adwatch"
    # Set once the acting user is known, so that a later refusal records their role.
    acting_role: str | None = None

    @property
    def acting_user(self) -> str | None:
        """Who the command acts as: --as, else ADWATCH_USER."""
        return self.as_user or self.settings.user

    @property
    def via(self) -> str:
        """The channel recorded with every audit entry: the OS login and host behind the CLI."""
        return f"cli:{_login()}@{socket.gethostname()}"

    @cached_property
    def engine(self) -> Engine:
        """The database engine (created on first use)."""
        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        """Sessions on a database whose schema is current."""
        ensure_schema_current(self.engine)
        return make_session_factory(self.engine)

    def link_snapshots(self) -> LinkSnapshots:
        """The linking engine's snapshots under the data directory."""
        # Imported here: it loads the matching engine, which most commands never need.
        from adwatch.services.link_snapshots import open_link_snapshots

        return open_link_snapshots(self.settings.data_dir, self.settings.resolved_secret_key_file)

    def access(self, justification: str | None = None) -> AccessContext:
        """The acting user's access context; unknown or disabled users are refused."""
        with self.session_factory() as session:
            access = load_access(
                session, self.acting_user, justification=justification, via=self.via
            )
        self.acting_role = access.role.value
        return access

    def catalogue(self) -> LegalBasisCatalogue:
        """The legal-basis catalogue with the retention periods legal officers set."""
        catalogue = load_catalogue(self.settings.legal_catalogue)
        with self.session_factory() as session:
            overrides = dict(
                session.execute(select(RetentionSetting.legal_basis, RetentionSetting.days)).all()
            )
        return catalogue.with_retention_days(overrides)

    def checkpoint(self) -> None:
        """Append the audit chain's head to the checkpoint file if this command moved it.

        Runs after the command's transactions committed (and after a refusal was audited);
        a failure here is a warning: the command's change already stands.
        """
        if "session_factory" not in self.__dict__:
            return  # the command never opened the database
        try:
            with self.session_factory() as session:
                append_checkpoint_if_new(
                    session, self.settings.resolved_audit_checkpoint_file, self.command
                )
        except (CheckpointError, OSError, DBAPIError) as exc:
            self.error_console.print(
                f"[yellow]warning:[/yellow] audit checkpoint not written: {exc}", highlight=False
            )

    def close(self) -> None:
        """Release database connections."""
        if "engine" in self.__dict__:
            self.engine.dispose()
