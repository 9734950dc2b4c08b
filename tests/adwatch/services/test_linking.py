"""Linking stored ads into profiles in the real database (SQLite and PostgreSQL).

Ads are written with the ORM as the crawler's pipeline writes them; linking runs the
matching engine over them. Phone numbers are from fiction ranges.
"""

from __future__ import annotations

import pytest
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.combination import combine_and_relink, separate_and_relink
from adwatch.services.link_snapshots import open_link_snapshots
from adwatch.services.profiles import show_profile
from adwatch.settings import Settings
from legal_policy.audit_log import verify_stored_chain
from legal_policy.errors import AccessDenied, InvalidRegistryChange
from storage.models import (
    Ad,
    AuditEntry,
    CandidateProfile,
    ProfileEventRecord,
    ProfileMembership,
)
from tests.conftest import People
from tests.support import Store

PHOTO = 0x8F3A5C219D04E7B6


def test_incremental_linking_keeps_ids_merges_with_reason_and_explains(
    session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal)

    def link(_: object):  # type: ignore[no-untyped-def]
        return store.link(people.investigator)

    first = store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    second = store.ad("Breda", "Nu in Breda, bel snel.", ("+442079460101",))
    other = store.ad("Zwolle", "Rustig en discreet.", ("+442079460202",), photo=PHOTO)
    outcome = link(session_factory)
    assert (outcome.ads_linked, outcome.profiles_created) == (3, 2)
    profile = store.profile_of(first)
    assert store.profile_of(second) == profile
    other_profile = store.profile_of(other)

    # A later crawl: one ad joins by phone, one by photo alone, one bridges both profiles.
    grows = store.ad("Arnhem", "Terug in Arnhem.", ("+442079460101",))
    by_photo = store.ad("Assen", "Nieuwe foto's.", (), photo=PHOTO ^ 0b101)
    assert link(session_factory).profiles_grown == 2
    assert store.profile_of(grows) == profile
    assert store.profile_of(by_photo) == other_profile

    bridge = store.ad("Venlo", "Twee nummers.", ("+442079460101", "+442079460202"))
    outcome = link(session_factory)
    assert outcome.profiles_merged == 1
    assert {store.profile_of(a) for a in (first, second, grows, other, by_photo, bridge)} == {
        profile
    }
    with session_factory() as session:
        absorbed = session.get(CandidateProfile, other_profile)
        assert absorbed is not None and absorbed.merged_into_id == profile
        event = session.scalar(
            select(ProfileEventRecord).where(ProfileEventRecord.kind == "merged")
        )
        assert event is not None and event.profile_id == profile
        assert f"profile {other_profile} merged into {profile}" in event.reason

    with session_factory.begin() as session:
        detail = show_profile(session, people.analyst, profile)
    assert [a.city for a in detail.timeline] == [
        "Utrecht", "Breda", "Zwolle", "Arnhem", "Assen", "Venlo"
    ]  # fmt: skip
    why = {a.ad_id: " ".join(a.reasons) for a in detail.timeline}
    assert "shares phone +442079460101" in why[second]
    assert "looks like photo 1" in why[by_photo] and "distance 2" in why[by_photo]
    assert any(kind == "merged" for _, kind, _ in detail.events)
    assert detail.indicator_model_version  # every profile carries its assessment's model

    with session_factory() as session:
        assert verify_stored_chain(session).ok
        actions = session.scalars(select(AuditEntry.action)).all()
        assert actions.count("profiles.linked") == 3
        assert "profile.consulted" in actions


def test_linking_with_nothing_new_changes_nothing(
    session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal)
    store.ad("Utrecht", "Alleen deze week.", ("+442079460101",))
    store.link(people.investigator)
    outcome = store.link(people.investigator)
    assert outcome.ads_linked == 0
    with session_factory() as session:
        assert len(session.scalars(select(CandidateProfile)).all()) == 1


def _profiles_spanning_cases(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        rows = session.execute(
            select(ProfileMembership.profile_id, func.count(distinct(Ad.case_id)))
            .join(Ad, Ad.id == ProfileMembership.ad_id)
            .group_by(ProfileMembership.profile_id)
            .having(func.count(distinct(Ad.case_id)) > 1)
        ).all()
    return len(rows)


def test_ads_of_two_cases_never_share_a_profile_until_combined_and_again_after_separation(
    session_factory: sessionmaker[Session], people: People, settings: Settings
) -> None:
    snapshots = open_link_snapshots(settings.data_dir, settings.resolved_secret_key_file)
    first = Store(session_factory, people.legal, "CASE-1")
    second = Store(session_factory, people.legal, "CASE-2")
    shared = "+442079460333"
    a1 = first.ad("Utrecht", "Alleen deze week.", (shared,))
    a2 = first.ad("Breda", "Nu in Breda.", (shared,))
    b1 = second.ad("Zwolle", "Rustig en discreet.", (shared,), photo=PHOTO)
    b2 = second.ad("Assen", "Nieuwe foto's.", (), photo=PHOTO ^ 0b11)
    first.link(people.investigator, snapshots)
    second.link(people("other-investigator"), snapshots)
    one, two = first.case_id, second.case_id
    assert snapshots.path_of([one]).exists() and snapshots.path_of([two]).exists()
    # The same number in both cases: still two profiles, one per case.
    assert first.profile_of(a1) == first.profile_of(a2)
    assert second.profile_of(b1) == second.profile_of(b2)
    assert first.profile_of(a1) != second.profile_of(b1)
    assert _profiles_spanning_cases(session_factory) == 0

    # Only a legal officer combines, with a reason.
    with pytest.raises(AccessDenied), session_factory.begin() as session:
        combine_and_relink(session, people.analyst, "CASE-1", "CASE-2", "overlap", "NL", snapshots)
    with pytest.raises(InvalidRegistryChange, match="reason"), session_factory.begin() as session:
        combine_and_relink(session, people.legal, "CASE-1", "CASE-2", " ", "NL", snapshots)
    with session_factory.begin() as session:
        outcome = combine_and_relink(
            session, people.legal, "CASE-1", "CASE-2", "same phone in both cases", "NL", snapshots
        )
    assert outcome.profiles_merged == 1
    # The cases' own snapshots went with the combination; the combined scope has one.
    assert not snapshots.path_of([one]).exists() and not snapshots.path_of([two]).exists()
    assert snapshots.path_of([one, two]).exists()
    kept = first.profile_of(a1)
    assert {first.profile_of(a) for a in (a1, a2)} | {second.profile_of(b) for b in (b1, b2)} == {
        kept
    }
    # New ads of either case now link across the combination.
    b3 = second.ad("Venlo", "Terug in Venlo.", (shared,))
    second.link(people("other-investigator"), snapshots)
    assert second.profile_of(b3) == kept
    # An analyst of CASE-1 sees the profile with CASE-1's ads only, and is told of the rest.
    with session_factory.begin() as session:
        detail = show_profile(session, people.analyst, kept)
    assert {a.ad_id for a in detail.timeline} == {a1, a2}
    assert detail.ads_in_other_cases == 3

    with session_factory.begin() as session:
        separate_and_relink(
            session, people.legal, "CASE-1", "CASE-2", "overlap resolved", "NL", snapshots
        )
    assert _profiles_spanning_cases(session_factory) == 0
    assert not snapshots.path_of([one, two]).exists()
    assert snapshots.path_of([one]).exists() and snapshots.path_of([two]).exists()
    assert first.profile_of(a1) == first.profile_of(a2) == kept
    assert len({second.profile_of(b) for b in (b1, b2, b3)}) == 1
    assert second.profile_of(b1) != kept
    with session_factory() as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert "combination" in actions and "combination.reversed" in actions
        assert actions.count("profiles.relinked") >= 3
        split = session.scalars(
            select(ProfileEventRecord.reason).where(ProfileEventRecord.kind == "split")
        ).all()
        assert any("separated again: overlap resolved" in reason for reason in split)
        assert verify_stored_chain(session).ok
