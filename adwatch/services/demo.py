"""The demo: its registry (users, case) and the bundled ``demo`` site profile pointed at
wherever the demo site runs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.settings import Settings
from legal_policy.errors import AccessDenied
from legal_policy.registry import (
    add_case,
    add_member,
    add_user,
    bootstrap_administrator,
    get_case,
    load_access,
    registry_is_empty,
)
from storage.models import Case, CaseMember, User

DEMO_OVERRIDE_MARKER = "# written by adwatch for a demo site on another port"


DEMO_SITES = ("demo", "demo-js")


def write_demo_profile(directory: Path, base_url: str) -> Path:
    """Write the ``demo`` and ``demo-js`` site profiles for a demo site at ``base_url`` into
    ``directory`` (where they override the bundled ones); returns the ``demo`` one's path."""
    directory.mkdir(parents=True, exist_ok=True)
    for key in DEMO_SITES:
        bundled = resources.files("crawler") / "site_profiles" / f"{key}.yaml"
        config = yaml.safe_load(bundled.read_text(encoding="utf-8"))
        config["base_url"] = base_url
        (directory / f"{key}.yaml").write_text(
            DEMO_OVERRIDE_MARKER + "\n" + yaml.safe_dump(config, sort_keys=False),
            encoding="utf-8",
        )
    return directory / "demo.yaml"


def point_demo_profile_at(settings: Settings, base_url: str) -> None:
    """Write local ``demo``/``demo-js`` profile overrides for ``base_url`` (tests and
    hand-run demos against ``adwatch demo-site``), or remove stale ones when the bundled
    profiles fit."""
    bundled = resources.files("crawler") / "site_profiles" / "demo.yaml"
    config = yaml.safe_load(bundled.read_text(encoding="utf-8"))
    directory = settings.resolved_site_profiles_dir
    if config["base_url"].rstrip("/") == base_url.rstrip("/"):
        for key in DEMO_SITES:
            target = directory / f"{key}.yaml"
            if target.exists() and target.read_text(encoding="utf-8").startswith(
                DEMO_OVERRIDE_MARKER
            ):
                target.unlink()
        return
    write_demo_profile(directory, base_url)


DEMO_CASE = "DEMO-1"
DEMO_ADMIN = "demo-admin"
DEMO_USERS = (
    ("demo-investigator", "investigator"),
    ("demo-analyst", "analyst"),
    ("demo-legal", "legal-officer"),
)


def ensure_demo_registry(session_factory: sessionmaker[Session], via: str) -> None:
    """Register the demo's users and case (idempotent; every change audited).

    An empty registry is bootstrapped with ``demo-admin``; a registry that has other users
    but no ``demo-admin`` belongs to someone else and is refused.
    """
    with session_factory.begin() as session:
        if registry_is_empty(session):
            bootstrap_administrator(session, DEMO_ADMIN, via)
        elif session.scalar(select(User.id).where(User.name == DEMO_ADMIN)) is None:
            raise AccessDenied(
                "this data directory already has users, and none is demo-admin: run the demo "
                "in a data directory of its own (ADWATCH_DATA_DIR)"
            )
    with session_factory() as session:
        admin = load_access(session, DEMO_ADMIN, via=via)
    with session_factory.begin() as session:
        for name, role in DEMO_USERS:
            if session.scalar(select(User.id).where(User.name == name)) is None:
                add_user(session, admin, name, role)
        if session.scalar(select(Case.id).where(Case.number == DEMO_CASE)) is None:
            add_case(session, admin, DEMO_CASE, "synthetic demo case")
        case = get_case(session, DEMO_CASE)
        for name in ("demo-investigator", "demo-analyst"):
            user_id = session.scalar(select(User.id).where(User.name == name))
            if session.get(CaseMember, (case.id, user_id)) is None:
                add_member(session, admin, DEMO_CASE, name)
