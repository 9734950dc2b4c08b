"""The registry a benchmark needs: an administrator, one case, its investigator and a
legal officer, registered as the legal policy layer registers them."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from legal_policy.access import AccessContext
from legal_policy.registry import (
    add_case,
    add_member,
    add_user,
    bootstrap_administrator,
    load_access,
)


def register_case_people(
    session_factory: sessionmaker[Session], case: str, via: str
) -> tuple[AccessContext, AccessContext]:
    """Register ``case`` with an investigator (a member) and a legal officer; return their
    access contexts (investigator, legal officer)."""
    with session_factory.begin() as session:
        bootstrap_administrator(session, "admin", via=via)
    with session_factory() as session:
        admin = load_access(session, "admin", via=via)
    with session_factory.begin() as session:
        add_user(session, admin, "investigator", "investigator")
        add_user(session, admin, "legal", "legal-officer")
        add_case(session, admin, case)
        add_member(session, admin, case, "investigator")
    with session_factory() as session:
        return (
            load_access(session, "investigator", via=via),
            load_access(session, "legal", via=via),
        )
