"""The user and case registry: who exists, in which role, and who needs to know which case.

Every change is audited in the caller's transaction. The first administrator may be added
to an empty registry without acting as anyone (bootstrap); after that only administrators
manage users, cases and memberships, and only legal officers combine cases.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from legal_policy.access import AccessContext, CaseRef
from legal_policy.audit import AuditEvent
from legal_policy.audit_log import record_event
from legal_policy.errors import (
    AccessDenied,
    CaseClosed,
    IdentityRequired,
    InvalidRegistryChange,
    UnknownCase,
    UnknownUser,
    UserDisabled,
)
from legal_policy.roles import Permission, Reach, Role, parse_role
from storage.models import Case, CaseCombination, CaseMember, User
from storage.types import utcnow

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
# No "|": the audit log stores an entry's cases as "|A|B|".
CASE_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user as ``user list`` shows them."""

    name: str
    role: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    cases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """A case as ``case list`` shows it."""

    number: str
    title: str
    created_at: datetime
    closed_at: datetime | None
    members: tuple[str, ...]
    combined_with: tuple[str, ...]


# --- identity -----------------------------------------------------------------------


def load_access(
    session: Session,
    user_name: str | None,
    *,
    justification: str | None = None,
    via: str = "cli",
) -> AccessContext:
    """The access context of a registered, active user; refuses anyone else."""
    name = (user_name or "").strip()
    if not name:
        raise IdentityRequired(
            "this command acts as a registered user: give --as USER (or set ADWATCH_USER)"
        )
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUser(f"no user {name!r} in the registry (see `adwatch user list`)")
    if user.disabled_at is not None:
        raise UserDisabled(f"user {name!r} was disabled on {user.disabled_at:%Y-%m-%d}")
    cases = session.execute(
        select(Case.id, Case.number)
        .join(CaseMember, CaseMember.case_id == Case.id)
        .where(CaseMember.user_id == user.id, Case.closed_at.is_(None))
        .order_by(Case.number)
    ).all()
    return AccessContext(
        user=user.name,
        role=Role(user.role),
        cases=tuple(CaseRef(case_id, number) for case_id, number in cases),
        justification=justification,
        via=via,
    )


def registry_is_empty(session: Session) -> bool:
    """True before the first user is added."""
    return session.scalar(select(func.count(User.id))) == 0


# --- users --------------------------------------------------------------------------


def bootstrap_administrator(session: Session, name: str, via: str) -> User:
    """Add the first administrator to an empty registry (audited as a bootstrap)."""
    if not registry_is_empty(session):
        raise AccessDenied(
            "the registry already has users: only an administrator may add users (give --as ADMIN)"
        )
    user = _new_user(session, name, Role.ADMINISTRATOR, created_by=name)
    record_event(
        session,
        AuditEvent(
            action="user.bootstrapped",
            actor=name,
            subject=f"user:{name}",
            properties={"role": Role.ADMINISTRATOR.value, "via": via},
        ),
    )
    return user


def add_user(session: Session, access: AccessContext, name: str, role: str) -> User:
    """Register a user in a role (administrators only)."""
    access.require(Permission.MANAGE_USERS)
    user = _new_user(session, name, _role(role), created_by=access.user)
    record_event(
        session, access.event("user.added", f"user:{user.name}", properties={"new_role": role})
    )
    return user


def set_user_disabled(session: Session, access: AccessContext, name: str, disabled: bool) -> User:
    """Disable (or enable again) a user; a disabled user can no longer act."""
    access.require(Permission.MANAGE_USERS)
    user = _user(session, name)
    if disabled == (user.disabled_at is not None):
        state = "disabled" if disabled else "active"
        raise InvalidRegistryChange(f"user {name!r} is already {state}")
    if disabled and user.role == Role.ADMINISTRATOR:
        active_admins = session.scalar(
            select(func.count(User.id)).where(
                User.role == Role.ADMINISTRATOR.value, User.disabled_at.is_(None)
            )
        )
        if (active_admins or 0) <= 1:
            raise InvalidRegistryChange(
                f"{name!r} is the last active administrator; add another one first"
            )
    user.disabled_at = utcnow() if disabled else None
    user.disabled_by = access.user if disabled else None
    action = "user.disabled" if disabled else "user.enabled"
    record_event(session, access.event(action, f"user:{user.name}"))
    return user


def list_users(session: Session, access: AccessContext) -> list[UserSummary]:
    """Every user with role, state and cases (administrators and legal officers)."""
    access.require(Permission.VIEW_USERS)
    memberships: dict[int, list[str]] = defaultdict(list)
    for user_id, number in session.execute(
        select(CaseMember.user_id, Case.number)
        .join(Case, Case.id == CaseMember.case_id)
        .order_by(Case.number)
    ):
        memberships[user_id].append(number)
    return [
        UserSummary(
            user.name,
            user.role,
            user.created_at,
            user.created_by,
            user.disabled_at,
            tuple(memberships[user.id]),
        )
        for user in session.scalars(select(User).order_by(User.name))
    ]


def _new_user(session: Session, name: str, role: Role, *, created_by: str) -> User:
    if not USER_NAME.match(name):
        raise InvalidRegistryChange(
            f"user name {name!r} is not valid: 2-100 lowercase letters, digits, '.', '_' or '-'"
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise InvalidRegistryChange(f"user {name!r} already exists")
    user = User(name=name, role=role.value, created_at=utcnow(), created_by=created_by)
    session.add(user)
    session.flush()
    return user


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as exc:
        raise InvalidRegistryChange(str(exc)) from None


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUser(f"no user {name!r} in the registry")
    return user


# --- cases --------------------------------------------------------------------------


def get_case(session: Session, number: str) -> Case:
    """The case with this number, or ``UnknownCase``."""
    case = session.scalar(select(Case).where(Case.number == number.strip()))
    if case is None:
        raise UnknownCase(f"no case {number!r} in the registry (see `adwatch case list`)")
    return case


def open_case(session: Session, number: str) -> Case:
    """The case with this number if it is still open; ``CaseClosed`` otherwise."""
    case = get_case(session, number)
    if case.closed_at is not None:
        raise CaseClosed(
            f"case {case.number} was closed on {case.closed_at:%Y-%m-%d}", case=case.number
        )
    return case


def case_ref(case: Case) -> CaseRef:
    """The access-decision view of a case row."""
    return CaseRef(case.id, case.number)


def add_case(session: Session, access: AccessContext, number: str, title: str = "") -> Case:
    """Register a case (administrators only)."""
    access.require(Permission.MANAGE_CASES)
    number = number.strip()
    if not CASE_NUMBER.match(number):
        raise InvalidRegistryChange(
            f"case number {number!r} is not valid: up to 100 letters, digits, '.', '_', '/' "
            "or '-', starting with a letter or digit"
        )
    if session.scalar(select(Case.id).where(Case.number == number)) is not None:
        raise InvalidRegistryChange(f"case {number!r} already exists")
    case = Case(number=number, title=title.strip(), created_at=utcnow(), created_by=access.user)
    session.add(case)
    session.flush()
    record_event(session, access.event("case.added", f"case:{number}", cases=[number]))
    return case


def add_member(session: Session, access: AccessContext, number: str, user_name: str) -> None:
    """Give a user need-to-know of a case (administrators only)."""
    access.require(Permission.MANAGE_CASES)
    case = open_case(session, number)
    user = _user(session, user_name)
    if user.disabled_at is not None:
        raise InvalidRegistryChange(f"user {user_name!r} is disabled", case=case.number)
    if user.role == Role.ADMINISTRATOR:
        raise InvalidRegistryChange(
            "administrators are not made case members: they manage the registry and see no "
            "ad content",
            case=case.number,
        )
    if session.get(CaseMember, (case.id, user.id)) is not None:
        raise InvalidRegistryChange(
            f"{user_name} is already a member of case {case.number}", case=case.number
        )
    session.add(
        CaseMember(case_id=case.id, user_id=user.id, added_at=utcnow(), added_by=access.user)
    )
    session.flush()
    record_event(
        session,
        access.event(
            "case.member_added",
            f"case:{case.number}",
            properties={"member": user.name, "member_role": user.role},
            cases=[case.number],
        ),
    )


def remove_member(session: Session, access: AccessContext, number: str, user_name: str) -> None:
    """End a user's need-to-know of a case (administrators only)."""
    access.require(Permission.MANAGE_CASES)
    case = get_case(session, number)
    user = _user(session, user_name)
    membership = session.get(CaseMember, (case.id, user.id))
    if membership is None:
        raise InvalidRegistryChange(
            f"{user_name} is not a member of case {case.number}", case=case.number
        )
    session.delete(membership)
    session.flush()
    record_event(
        session,
        access.event(
            "case.member_removed",
            f"case:{case.number}",
            properties={"member": user.name},
            cases=[case.number],
        ),
    )


def list_cases(session: Session, access: AccessContext) -> list[CaseSummary]:
    """The cases the user may see: all for administrators and legal officers, else their own."""
    access.require(Permission.VIEW_CASES)
    query = select(Case).order_by(Case.number)
    if access.reach(Permission.VIEW_CASES) is Reach.OWN_CASES:
        query = query.join(CaseMember, CaseMember.case_id == Case.id).where(
            CaseMember.user_id == select(User.id).where(User.name == access.user).scalar_subquery()
        )
    members: dict[int, list[str]] = defaultdict(list)
    for case_id, name in session.execute(
        select(CaseMember.case_id, User.name)
        .join(User, User.id == CaseMember.user_id)
        .order_by(User.name)
    ):
        members[case_id].append(name)
    numbers = dict(session.execute(select(Case.id, Case.number)).all())
    partners: dict[int, set[str]] = defaultdict(set)
    for combination in _active_combinations(session):
        partners[combination.case_a_id].add(numbers[combination.case_b_id])
        partners[combination.case_b_id].add(numbers[combination.case_a_id])
    return [
        CaseSummary(
            case.number,
            case.title,
            case.created_at,
            case.closed_at,
            tuple(members[case.id]),
            tuple(sorted(partners[case.id])),
        )
        for case in session.scalars(query)
    ]


# --- combination (LED art. 25) ------------------------------------------------------


def combine_cases(
    session: Session, access: AccessContext, number_a: str, number_b: str, reason: str
) -> CaseCombination:
    """Allow linking across two cases, with a reason; audited as a "combination"."""
    access.require(Permission.COMBINE_CASES)
    case_a, case_b = _case_pair(session, number_a, number_b, reason)
    if _find_active(session, case_a.id, case_b.id) is not None:
        raise InvalidRegistryChange(
            f"cases {case_a.number} and {case_b.number} are already combined", case=case_a.number
        )
    combination = CaseCombination(
        case_a_id=case_a.id,
        case_b_id=case_b.id,
        reason=reason.strip(),
        combined_at=utcnow(),
        combined_by=access.user,
    )
    session.add(combination)
    session.flush()
    record_event(
        session,
        access.event(
            "combination",
            f"combination:{combination.id}",
            properties={"cases": [case_a.number, case_b.number]},
            cases=[case_a.number, case_b.number],
            justification=reason.strip(),
        ),
    )
    return combination


def separate_cases(
    session: Session, access: AccessContext, number_a: str, number_b: str, reason: str
) -> CaseCombination:
    """Reverse a combination: the cases' ads are linked apart again."""
    access.require(Permission.COMBINE_CASES)
    case_a, case_b = _case_pair(session, number_a, number_b, reason, require_open=False)
    combination = _find_active(session, case_a.id, case_b.id)
    if combination is None:
        raise InvalidRegistryChange(
            f"cases {case_a.number} and {case_b.number} are not combined", case=case_a.number
        )
    combination.separated_at = utcnow()
    combination.separated_by = access.user
    combination.separation_reason = reason.strip()
    record_event(
        session,
        access.event(
            "combination.reversed",
            f"combination:{combination.id}",
            properties={"cases": [case_a.number, case_b.number]},
            cases=[case_a.number, case_b.number],
            justification=reason.strip(),
        ),
    )
    return combination


def linking_scopes(session: Session, case_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    """For each given case, the cases whose ads may be linked with its own.

    A case links only with itself, and with the cases it is combined with (transitively).
    """
    parent: dict[int, int] = {}

    def find(item: int) -> int:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for combination in _active_combinations(session):
        parent[find(combination.case_a_id)] = find(combination.case_b_id)
    groups: dict[int, set[int]] = defaultdict(set)
    for case_id in list(parent):
        groups[find(case_id)].add(case_id)
    return {
        case_id: frozenset(groups.get(find(case_id), {case_id}) | {case_id}) for case_id in case_ids
    }


def _active_combinations(session: Session) -> list[CaseCombination]:
    return list(
        session.scalars(
            select(CaseCombination)
            .where(CaseCombination.separated_at.is_(None))
            .order_by(CaseCombination.id)
        )
    )


def _find_active(session: Session, a: int, b: int) -> CaseCombination | None:
    for combination in _active_combinations(session):
        if {combination.case_a_id, combination.case_b_id} == {a, b}:
            return combination
    return None


def _case_pair(
    session: Session, number_a: str, number_b: str, reason: str, *, require_open: bool = True
) -> tuple[Case, Case]:
    if len(reason.strip()) < 3:
        raise InvalidRegistryChange("a combination or its reversal needs a reason (--reason)")
    fetch = open_case if require_open else get_case
    case_a, case_b = fetch(session, number_a), fetch(session, number_b)
    if case_a.id == case_b.id:
        raise InvalidRegistryChange("a case cannot be combined with itself", case=case_a.number)
    return case_a, case_b
