"""Who may do what: the four roles and the permissions each grants (Wpg art. 6, Bpg 2:1).

This table is the one place that decides access; the CLI, the crawler, linking and the web
ask it through an ``AccessContext`` and never decide on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    """The roles of the user registry; every user has exactly one."""

    INVESTIGATOR = "investigator"
    ANALYST = "analyst"
    LEGAL_OFFICER = "legal-officer"
    ADMINISTRATOR = "administrator"
    # Not a person: adwatch's own scheduler, for the duties the law puts on the system
    # itself (the daily purge). It cannot be given to a user.
    SYSTEM = "system"


class Permission(StrEnum):
    """Actions the law distinguishes; each is granted per role, for all cases or own ones."""

    MANAGE_USERS = "manage users"
    VIEW_USERS = "view users"
    MANAGE_CASES = "manage cases and their members"
    VIEW_CASES = "view cases"
    MANAGE_AUTHORISATIONS = "register, amend, review and revoke authorisations"
    VIEW_AUTHORISATIONS = "view authorisations"
    START_CRAWL = "start crawl runs"
    VIEW_RUNS = "view crawl runs"
    READ_CONTENT = "read ads and candidate profiles"
    ASSESS_PROFILES = "assess candidate profiles"
    EXPORT_CONTENT = "export ads and candidate profiles"
    COMBINE_CASES = "combine and separate cases"
    SET_RETENTION = "set retention periods"
    PURGE = "purge expired data and closed cases"
    READ_AUDIT = "read and export the audit log"
    VERIFY_AUDIT = "verify the audit log"


class Reach(StrEnum):
    """How far a granted permission reaches."""

    ALL_CASES = "all cases"
    OWN_CASES = "cases the user is a member of"


# Need-to-know: content is read only inside one's own cases, whatever the role; legal
# officers oversee every case without reading its ads; administrators see no ad content.
GRANTS: Mapping[Role, Mapping[Permission, Reach]] = {
    Role.INVESTIGATOR: {
        Permission.START_CRAWL: Reach.OWN_CASES,
        Permission.VIEW_RUNS: Reach.OWN_CASES,
        Permission.VIEW_AUTHORISATIONS: Reach.OWN_CASES,
        Permission.VIEW_CASES: Reach.OWN_CASES,
    },
    Role.ANALYST: {
        Permission.READ_CONTENT: Reach.OWN_CASES,
        Permission.ASSESS_PROFILES: Reach.OWN_CASES,
        Permission.EXPORT_CONTENT: Reach.OWN_CASES,
        Permission.VIEW_RUNS: Reach.OWN_CASES,
        Permission.VIEW_AUTHORISATIONS: Reach.OWN_CASES,
        Permission.VIEW_CASES: Reach.OWN_CASES,
    },
    Role.LEGAL_OFFICER: {
        Permission.MANAGE_AUTHORISATIONS: Reach.ALL_CASES,
        Permission.VIEW_AUTHORISATIONS: Reach.ALL_CASES,
        Permission.VIEW_RUNS: Reach.ALL_CASES,
        Permission.VIEW_CASES: Reach.ALL_CASES,
        Permission.VIEW_USERS: Reach.ALL_CASES,
        Permission.COMBINE_CASES: Reach.ALL_CASES,
        Permission.SET_RETENTION: Reach.ALL_CASES,
        Permission.PURGE: Reach.ALL_CASES,
        Permission.READ_AUDIT: Reach.ALL_CASES,
        Permission.VERIFY_AUDIT: Reach.ALL_CASES,
        Permission.READ_CONTENT: Reach.OWN_CASES,
        Permission.EXPORT_CONTENT: Reach.OWN_CASES,
    },
    Role.SYSTEM: {
        Permission.PURGE: Reach.ALL_CASES,
    },
    Role.ADMINISTRATOR: {
        Permission.MANAGE_USERS: Reach.ALL_CASES,
        Permission.VIEW_USERS: Reach.ALL_CASES,
        Permission.MANAGE_CASES: Reach.ALL_CASES,
        Permission.VIEW_CASES: Reach.ALL_CASES,
        Permission.VERIFY_AUDIT: Reach.ALL_CASES,
    },
}


PERSON_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.SYSTEM)


def parse_role(value: str) -> Role:
    """The role of a person named ``value``; ``ValueError`` listing the roles otherwise."""
    try:
        role = Role(value.strip().lower())
    except ValueError:
        role = None
    if role is None or role is Role.SYSTEM:
        known = ", ".join(role.value for role in PERSON_ROLES)
        raise ValueError(f"unknown role {value!r}; roles are: {known}") from None
    return role


def roles_with(permission: Permission) -> tuple[Role, ...]:
    """The roles that grant ``permission`` (for messages that say who could)."""
    return tuple(role for role, grants in GRANTS.items() if permission in grants)
