"""The user and case registry, and the access context built from it (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.access import CaseRef
from legal_policy.errors import (
    AccessDenied,
    IdentityRequired,
    InvalidRegistryChange,
    UnknownCase,
    UnknownUser,
    UserDisabled,
)
from legal_policy.registry import (
    add_case,
    add_member,
    add_user,
    bootstrap_administrator,
    combine_cases,
    linking_scopes,
    list_cases,
    list_users,
    load_access,
    remove_member,
    separate_cases,
    set_user_disabled,
)
from legal_policy.roles import GRANTS, Permission, Reach, Role
from storage.models import AuditEntry, Case, User
from tests.conftest import People


def test_the_first_administrator_bootstraps_an_empty_registry_once(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        bootstrap_administrator(session, "first-admin", via="test")
    with pytest.raises(AccessDenied, match="already has users"), session_factory.begin() as s:
        bootstrap_administrator(s, "second-admin", via="test")
    with session_factory() as session:
        assert session.scalars(select(User.name)).all() == ["first-admin"]
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "user.bootstrapped"))
        assert entry is not None and entry.actor == "first-admin"


def test_only_administrators_manage_users_and_cases(
    session_factory: sessionmaker[Session], people: People
) -> None:
    for outsider in (people.legal, people.analyst, people.investigator):
        with pytest.raises(AccessDenied), session_factory.begin() as session:
            add_user(session, outsider, "mallory", "administrator")
        with pytest.raises(AccessDenied), session_factory.begin() as session:
            add_case(session, outsider, "CASE-9")
        with pytest.raises(AccessDenied), session_factory.begin() as session:
            add_member(session, outsider, "CASE-2", outsider.user)
    with session_factory() as session:
        assert session.scalar(select(User.id).where(User.name == "mallory")) is None
        assert session.scalar(select(Case.id).where(Case.number == "CASE-9")) is None


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [
        ("Bob", "analyst", "not valid"),
        ("b", "analyst", "not valid"),
        ("bob smith", "analyst", "not valid"),
        ("bob", "superuser", "unknown role"),
        ("analyst", "analyst", "already exists"),
    ],
)
def test_bad_user_registrations_are_refused(
    session_factory: sessionmaker[Session], people: People, name: str, role: str, message: str
) -> None:
    with pytest.raises(InvalidRegistryChange, match=message), session_factory.begin() as s:
        add_user(s, people.admin, name, role)


def test_unknown_and_disabled_users_cannot_act(
    session_factory: sessionmaker[Session], people: People
) -> None:
    with session_factory() as session:
        with pytest.raises(IdentityRequired):
            load_access(session, None)
        with pytest.raises(UnknownUser):
            load_access(session, "ghost")
    with session_factory.begin() as session:
        set_user_disabled(session, people.admin, "analyst", disabled=True)
    with session_factory() as session, pytest.raises(UserDisabled):
        load_access(session, "analyst")
    with session_factory.begin() as session:
        set_user_disabled(session, people.admin, "analyst", disabled=False)
    assert people.analyst.role is Role.ANALYST


def test_the_last_active_administrator_cannot_be_disabled(
    session_factory: sessionmaker[Session], people: People
) -> None:
    refused = pytest.raises(InvalidRegistryChange, match="last active administrator")
    with refused, session_factory.begin() as session:
        set_user_disabled(session, people.admin, "admin", disabled=True)


def test_membership_gives_need_to_know_and_ends_with_the_case(
    session_factory: sessionmaker[Session], people: People
) -> None:
    analyst = people.analyst
    assert [case.number for case in analyst.cases] == ["CASE-1"]
    assert analyst.case_filter(Permission.READ_CONTENT) == {analyst.cases[0].id}
    with session_factory.begin() as session:
        remove_member(session, people.admin, "CASE-1", "analyst")
    assert people.analyst.cases == ()
    with session_factory.begin() as session:
        add_member(session, people.admin, "CASE-1", "analyst")
        session.scalars(
            select(Case).where(Case.number == "CASE-1")
        ).one().closed_at = session.scalars(select(User.created_at)).first()
    assert people.analyst.cases == ()  # a closed case gives nobody need-to-know


def test_administrators_are_never_case_members(
    session_factory: sessionmaker[Session], people: People
) -> None:
    refused = pytest.raises(InvalidRegistryChange, match="see no ad content")
    with refused, session_factory.begin() as session:
        add_member(session, people.admin, "CASE-1", "admin")
    with pytest.raises(UnknownCase), session_factory.begin() as session:
        add_member(session, people.admin, "CASE-404", "analyst")


def test_roles_grant_what_the_law_allows() -> None:
    # Content only inside one's own cases; administrators never; legal officers oversee.
    assert Permission.READ_CONTENT not in GRANTS[Role.ADMINISTRATOR]
    assert Permission.READ_CONTENT not in GRANTS[Role.INVESTIGATOR]
    for role in Role:
        reach = GRANTS[role].get(Permission.READ_CONTENT)
        assert reach in (None, Reach.OWN_CASES)
    assert GRANTS[Role.LEGAL_OFFICER][Permission.PURGE] is Reach.ALL_CASES
    assert GRANTS[Role.INVESTIGATOR][Permission.START_CRAWL] is Reach.OWN_CASES


def test_access_checks_name_the_case_they_refuse(people: People) -> None:
    other = CaseRef(999, "CASE-X")
    with pytest.raises(AccessDenied, match="not a member of case CASE-X") as refused:
        people.analyst.require(Permission.READ_CONTENT, other)
    assert refused.value.case == "CASE-X"
    with pytest.raises(AccessDenied, match="may not read ads"):
        people.admin.case_filter(Permission.READ_CONTENT)
    assert people.legal.case_filter(Permission.READ_CONTENT) == frozenset()
    assert people.legal.case_filter(Permission.READ_AUDIT) is None


def test_listing_users_and_cases_follows_the_role(
    session_factory: sessionmaker[Session], people: People
) -> None:
    with session_factory() as session:
        names = {u.name: u for u in list_users(session, people.admin)}
        assert names["analyst"].cases == ("CASE-1",)
        with pytest.raises(AccessDenied):
            list_users(session, people.analyst)
        assert [c.number for c in list_cases(session, people.analyst)] == ["CASE-1"]
        assert [c.number for c in list_cases(session, people.legal)] == ["CASE-1", "CASE-2"]


def test_combination_scopes_are_transitive_and_end_with_separation(
    session_factory: sessionmaker[Session], people: People
) -> None:
    with session_factory.begin() as session:
        add_case(session, people.admin, "CASE-3")
        combine_cases(session, people.legal, "CASE-1", "CASE-2", "same phone")
        combine_cases(session, people.legal, "CASE-2", "CASE-3", "same photo")
    with session_factory() as session:
        ids = dict(session.execute(select(Case.number, Case.id)).all())
        scopes = linking_scopes(session, ids.values())
        assert scopes[ids["CASE-1"]] == frozenset(ids.values())
    with session_factory.begin() as session:
        separate_cases(session, people.legal, "CASE-2", "CASE-3", "resolved")
        with pytest.raises(InvalidRegistryChange, match="not combined"):
            separate_cases(session, people.legal, "CASE-1", "CASE-3", "never were")
    with session_factory() as session:
        scopes = linking_scopes(session, ids.values())
        assert scopes[ids["CASE-3"]] == frozenset({ids["CASE-3"]})
        assert scopes[ids["CASE-1"]] == frozenset({ids["CASE-1"], ids["CASE-2"]})
