"""Shared fixtures: real SQLite and PostgreSQL databases, settings, the demo site on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from storage.db import make_engine, make_session_factory, upgrade_database

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_admin_connection():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=3
    )


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    """Whether PostgreSQL answers; on CI its absence is a failure, not a skip."""
    try:
        _postgres_admin_connection().close()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
        return False
    return True


@pytest.fixture
def postgres_url(postgres_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    if not postgres_available:
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    name = f"adwatch_test_{uuid.uuid4().hex[:12]}"
    with _postgres_admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with _postgres_admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'adwatch.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A migrated database on each backend."""
    upgrade_database(empty_database_url)
    return empty_database_url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own data directory and database."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        site_profiles_dir=tmp_path / "site_profiles",
        operator="test-investigator",
    )


@pytest.fixture
def session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's migrated database."""
    engine = make_engine(settings.resolved_database_url)
    yield make_session_factory(engine)
    engine.dispose()
