"""Shared fixtures: real SQLite and PostgreSQL databases, settings, the demo site on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from legal_policy.access import AccessContext
from legal_policy.registry import (
    add_case,
    add_member,
    add_user,
    bootstrap_administrator,
    load_access,
)
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
    )


@pytest.fixture
def session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's migrated database."""
    engine = make_engine(settings.resolved_database_url)
    yield make_session_factory(engine)
    engine.dispose()


CASE = "CASE-1"
OTHER_CASE = "CASE-2"


@dataclass(frozen=True)
class People:
    """A registry with one user per role, two cases and their members.

    ``investigator`` and ``analyst`` are members of CASE-1; ``other-analyst`` and
    ``other-investigator`` of CASE-2;
    ``outsider`` is an analyst of no case; ``legal`` is a legal officer of no case.
    """

    session_factory: sessionmaker[Session]

    def __call__(self, name: str, justification: str | None = None) -> AccessContext:
        """The access context of a registered user, as the front door builds it."""
        with self.session_factory() as session:
            return load_access(session, name, justification=justification, via="test")

    @property
    def admin(self) -> AccessContext:
        return self("admin")

    @property
    def investigator(self) -> AccessContext:
        return self("investigator")

    @property
    def analyst(self) -> AccessContext:
        return self("analyst", "CASE-1: link review")

    @property
    def legal(self) -> AccessContext:
        return self("legal")


@pytest.fixture
def people(session_factory: sessionmaker[Session]) -> People:
    """Users of every role and two cases in the test's database."""
    with session_factory.begin() as session:
        bootstrap_administrator(session, "admin", via="test")
    admin = load_access_now(session_factory, "admin")
    with session_factory.begin() as session:
        for name, role in (
            ("investigator", "investigator"),
            ("analyst", "analyst"),
            ("other-analyst", "analyst"),
            ("other-investigator", "investigator"),
            ("outsider", "analyst"),
            ("legal", "legal-officer"),
        ):
            add_user(session, admin, name, role)
        add_case(session, admin, CASE)
        add_case(session, admin, OTHER_CASE)
        for member in ("investigator", "analyst"):
            add_member(session, admin, CASE, member)
        add_member(session, admin, OTHER_CASE, "other-analyst")
        add_member(session, admin, OTHER_CASE, "other-investigator")
    return People(session_factory)


def load_access_now(session_factory: sessionmaker[Session], name: str) -> AccessContext:
    with session_factory() as session:
        return load_access(session, name, via="test")
