"""Engine and session factory; migrations applied through Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "alembic"
# Writers wait this long for SQLite's write lock before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS = 60
# Execution option marking a connection whose transactions will write.
WRITE_OPTION = "adwatch_writes"


class SchemaNotReady(Exception):
    """The database's schema is not the one this adwatch needs (behind, or newer)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or read (unreachable server, corrupt file)."""


def make_engine(database_url: str, *, sync_every_commit: bool = True) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL, a busy timeout and write-locking
    write transactions.

    ``sync_every_commit=False`` (the crawl worker's many small stores): SQLite syncs its
    WAL at checkpoints rather than at every commit. A killed process still loses nothing
    committed; a power cut may undo the last few stores, never half of one, and never an
    audit entry: those come from engines that sync every commit, which makes all that was
    committed before them durable too (the WAL is written in order).

    Statement parameters never appear in errors or logs (they hold ad content). On SQLite a
    writing transaction (``SessionFactory.begin``) begins IMMEDIATE: one that reads before
    it writes (the audit chain's head, say) holds the write lock from its first read, so
    two processes can neither fork the chain nor fail upgrading a stale read snapshot.
    Reading transactions begin DEFERRED and block nobody.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Take transaction control from the driver; "begin" below starts them.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # Deleted content is overwritten, not left readable in free pages.
            cursor.execute("PRAGMA secure_delete=ON")
            if not sync_every_commit:
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):  # type: ignore[no-untyped-def]
            writes = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


class SessionFactory(sessionmaker[Session]):
    """Sessions for reading (``factory()``) and for writing (``factory.begin()`` or
    ``factory.writer()``); on SQLite a writing session holds the write lock from its first
    statement."""

    def writer(self) -> Session:
        """A session whose transactions write (begin IMMEDIATE on SQLite)."""
        bind = self.kw["bind"]
        return self(bind=bind.execution_options(**{WRITE_OPTION: True}))

    @contextmanager
    def begin(self) -> Iterator[Session]:  # type: ignore[override]
        """A writing session in a transaction that commits at the end (rolls back on error)."""
        with self.writer() as session, session.begin():
            yield session


def make_session_factory(engine: Engine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit."""
    return SessionFactory(engine, expire_on_commit=False)


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration pointing at the project's migrations and this database."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise SchemaNotReady(
            f"migrations not found at {MIGRATIONS_DIR}: install adwatch from its source tree"
        )
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats % specially (URL-encoded passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; a database newer than the code is refused."""
    engine = make_engine(database_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    _refuse_unknown_revision(current, database_url)
    try:
        command.upgrade(alembic_config(database_url), revision)
    except DBAPIError as exc:
        raise DatabaseUnavailable(describe_dbapi_error(exc)) from None
    except CommandError as exc:
        raise SchemaNotReady(f"cannot migrate: {exc}") from None


def head_revision(database_url: str) -> str | None:
    """The newest migration shipped with this version of adwatch."""
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None when it was never migrated."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise DatabaseUnavailable(describe_dbapi_error(exc)) from None


def ensure_schema_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one of this adwatch."""
    current = current_revision(engine)
    url = engine.url.render_as_string(hide_password=False)
    _refuse_unknown_revision(current, url)
    head = head_revision(url)
    if current != head:
        raise SchemaNotReady(
            f"database schema is at {current or 'nothing'}, this adwatch needs {head}: "
            "run `adwatch db upgrade`"
        )


def _refuse_unknown_revision(current: str | None, database_url: str) -> None:
    if current is None:
        return
    script = ScriptDirectory.from_config(alembic_config(database_url))
    known = {revision.revision for revision in script.walk_revisions()}
    if current not in known:
        raise SchemaNotReady(
            f"database schema is at {current}, newer than this adwatch knows (its newest is "
            f"{script.get_current_head()}): use the adwatch version that migrated it"
        )


def describe_dbapi_error(error: DBAPIError) -> str:
    """The driver's first line, without SQL or parameters."""
    message = str(error.orig or error).strip()
    first = message.splitlines()[0] if message else type(error.orig or error).__name__
    return f"database unavailable or unreadable: {first}"
