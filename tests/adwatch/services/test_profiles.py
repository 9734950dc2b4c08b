"""Need-to-know on every read of profiles and ads: list, show, search, export (both
databases). Refusals raise; the CLI tests prove that each refusal is audited."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.ads import search_ads, show_ad
from adwatch.services.profiles import (
    export_profiles,
    list_profiles,
    set_subject_category,
    show_profile,
)
from adwatch.settings import Settings
from crawler.indicator_model import load_indicator_model
from legal_policy.errors import (
    AccessDenied,
    InvalidAssessment,
    JustificationRequired,
    SearchNotAllowed,
)
from storage.models import AuditEntry, ProfileCategoryChange
from tests.conftest import People
from tests.support import Cli, Store

SHARED = "+442079460444"


@pytest.fixture
def two_cases(session_factory: sessionmaker[Session], people: People) -> tuple[int, int]:
    """A two-ad profile in CASE-1 and another in CASE-2 (same phone: linked apart)."""
    first = Store(session_factory, people.legal, "CASE-1")
    second = Store(session_factory, people.legal, "CASE-2")
    first.ad("Utrecht", "Alleen deze week in Utrecht.", (SHARED,))
    mine = first.ad("Breda", "Nu in Breda, bel snel.", (SHARED,))
    second.ad("Zwolle", "Rustig en discreet in Zwolle.", (SHARED,))
    theirs = second.ad("Assen", "Vandaag in Assen.", (SHARED,))
    first.link(people.investigator)
    second.link(people("other-investigator"))
    return first.profile_of(mine), second.profile_of(theirs)


def _search(session: Session, access: object, **keys: object) -> list[int]:
    hits = search_ads(
        session,
        access,  # type: ignore[arg-type]
        default_region="NL",
        master_key=None,
        indicator_model=load_indicator_model(),
        **keys,  # type: ignore[arg-type]
    )
    return [hit.ad_id for hit in hits]


def test_an_analyst_sees_only_the_profiles_and_ads_of_their_own_cases(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    mine, theirs = two_cases
    analyst = people.analyst
    with session_factory.begin() as session:
        listed = list_profiles(session, analyst)
        assert [p.profile_id for p in listed] == [mine]
        assert listed[0].cases == ("CASE-1",) and listed[0].ad_count == 2
        assert show_profile(session, analyst, mine).cases == ("CASE-1",)
        found = _search(session, analyst, phone="020 7946 0444 ".replace("020", "+44 20"))
        assert len(found) == 2
        assert all(show_ad(session, analyst, ad).case == "CASE-1" for ad in found)
    for attempt in (
        lambda s: list_profiles(s, analyst, case_number="CASE-2"),
        lambda s: show_profile(s, analyst, theirs),
        lambda s: _search(s, analyst, phone=SHARED, case_number="CASE-2"),
        lambda s: export_profiles(
            s, analyst, io.StringIO(), profile_ids=[theirs], recipient="case file"
        ),
        lambda s: export_profiles(
            s, analyst, io.StringIO(), case_number="CASE-2", recipient="case file"
        ),
    ):
        with pytest.raises(AccessDenied) as refused, session_factory.begin() as session:
            attempt(session)
        assert refused.value.case == "CASE-2"
    with session_factory.begin() as session:
        other_ads = _search(session, people("other-analyst", "CASE-2 review"), phone=SHARED)
        with pytest.raises(AccessDenied):
            show_ad(session, analyst, other_ads[0])


def test_an_analyst_of_no_case_sees_nothing(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    outsider = people("outsider", "curious")
    with session_factory.begin() as session:
        assert list_profiles(session, outsider) == []
        with pytest.raises(AccessDenied):
            _search(session, outsider, phone=SHARED)
        with pytest.raises(AccessDenied):
            show_profile(session, outsider, two_cases[0])


def test_administrators_and_investigators_see_no_ad_content(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    for who in (people("admin", "just looking"), people("investigator", "just looking")):
        with pytest.raises(AccessDenied), session_factory.begin() as session:
            list_profiles(session, who)
        with pytest.raises(AccessDenied), session_factory.begin() as session:
            show_profile(session, who, two_cases[0])
        with pytest.raises(AccessDenied), session_factory.begin() as session:
            _search(session, who, text="Breda")


def test_a_legal_officer_reads_content_only_as_a_case_member(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    legal = people("legal", "oversight")
    with session_factory.begin() as session:
        assert list_profiles(session, legal) == []
        with pytest.raises(AccessDenied):
            show_profile(session, legal, two_cases[0])
    from legal_policy.registry import add_member

    with session_factory.begin() as session:
        add_member(session, people.admin, "CASE-1", "legal")
    with session_factory.begin() as session:
        assert show_profile(session, people("legal", "oversight"), two_cases[0]).timeline


def test_every_consultation_needs_and_records_a_justification(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    with pytest.raises(JustificationRequired), session_factory.begin() as session:
        list_profiles(session, people("analyst"))
    with session_factory.begin() as session:
        show_profile(session, people("analyst", "CASE-1: who is this"), two_cases[0])
    with session_factory() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "profile.consulted")
        ).one()
        assert entry.actor == "analyst" and entry.justification == "CASE-1: who is this"
        assert entry.cases == "|CASE-1|"


def test_a_nationality_alone_is_never_a_search_key(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    with pytest.raises(SearchNotAllowed), session_factory.begin() as session:
        _search(session, people.analyst, text="Roemeense meisjes")
    with session_factory.begin() as session:
        assert _search(session, people.analyst, text="breda") != []


def test_the_data_subject_category_is_an_audited_assessment_with_history(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    mine, theirs = two_cases
    with session_factory.begin() as session:
        assert show_profile(session, people.analyst, mine).subject_category == "unknown"
        set_subject_category(
            session, people.analyst, mine, "possible_victim", "moved 3 cities in 5 days"
        )
        set_subject_category(session, people.analyst, mine, "other", "a booking agent")
    with pytest.raises(InvalidAssessment, match="unknown category"), session_factory.begin() as s:
        set_subject_category(s, people.analyst, mine, "criminal", "because")
    with pytest.raises(InvalidAssessment, match="reason"), session_factory.begin() as s:
        set_subject_category(s, people.analyst, mine, "suspect", "")
    with pytest.raises(AccessDenied), session_factory.begin() as s:
        set_subject_category(s, people.analyst, theirs, "suspect", "not my case")
    with pytest.raises(AccessDenied), session_factory.begin() as s:
        set_subject_category(s, people.legal, mine, "suspect", "legal officers do not assess")
    with session_factory.begin() as session:
        detail = show_profile(session, people.analyst, mine)
        assert detail.subject_category == "other"
        assert [(c.previous, c.category) for c in detail.category_history] == [
            ("unknown", "possible_victim"),
            ("possible_victim", "other"),
        ]
        assert len(session.scalars(select(ProfileCategoryChange)).all()) == 2


def test_an_export_holds_only_readable_ads_and_is_recorded_with_its_recipient(
    session_factory: sessionmaker[Session], people: People, two_cases: tuple[int, int]
) -> None:
    out = io.StringIO()
    with session_factory.begin() as session:
        written = export_profiles(
            session, people.analyst, out, case_number="CASE-1", recipient="OvJ case file 17"
        )
    assert written == 1
    record = json.loads(out.getvalue())
    assert {ad["case"] for ad in record["ads"]} == {"CASE-1"}
    assert all(SHARED in ad["phones"] for ad in record["ads"])
    with session_factory() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "profiles.exported")
        ).one()
        assert entry.properties["recipient"] == "OvJ case file 17"
        assert entry.justification == "CASE-1: link review"


def test_why_names_each_ads_numbers_case_authorisation_and_the_timelines_zone(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal, "CASE-1")
    own, desk = "+442079460555", "+442079460999"
    store.ad("Utrecht", "Nieuw in Utrecht.", (own, desk))  # written in this order
    second = store.ad("Breda", "Nu in Breda.", (own,))
    store.link(people.investigator)
    profile = store.profile_of(second)
    zone = settings.model_copy(update={"timezone": "America/Chicago"})
    code, out, err = Cli(zone).as_("analyst", "profiles", "show", str(profile), "--why",
                                   "-j", "CASE-1: link review")  # fmt: skip
    assert code == 0, err
    assert "when (America/Chicago)" in out
    assert f"phones: {own}, {desk}" in out and f"phones: {own}\n" in out
    assert "case CASE-1, authorisation " in out and "(order " in out
    assert f"shares phone {own} with ad" in out


def test_why_names_what_joins_ads_that_share_no_number(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal, "CASE-1")
    photo = 0x8F3A_5C21_9D04_E7B6
    first = store.ad("Utrecht", "Nieuw in Utrecht.", ("+442079460111",), photo=photo)
    second = store.ad("Breda", "Nu in Breda.", ("+442079460222",), photo=photo)
    store.ad("Zwolle", "Terug in Zwolle.", ("+442079460222",))
    store.link(people.investigator)
    profile = store.profile_of(first)
    assert store.profile_of(second) == profile
    with session_factory.begin() as session:
        detail = show_profile(session, people.analyst, profile)
    [bridge] = detail.bridges
    assert bridge.startswith(f"ad {first} (+442079460111) and ad {second} (+442079460222): ")
    assert "photo 1 looks like photo 1" in bridge
    code, out, _ = Cli(settings).as_("analyst", "profiles", "show", str(profile), "--why",
                                     "-j", "CASE-1: link review")  # fmt: skip
    assert code == 0 and "what joins ads that share no number" in out
