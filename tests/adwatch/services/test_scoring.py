"""Profile indicator scores in the real database: each ad's assessment is kept beside its
linking features and reused while the indicator model is the same (SQLite, PostgreSQL).
Texts are synthetic; phone numbers are from fiction ranges."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.scoring import score_profiles
from crawler.indicator_model import load_indicator_model
from matching.indicators import indicator_model_from_yaml
from storage.models import AdLinkFeatures, CandidateProfile, ProfileMembership
from tests.conftest import People
from tests.support import Store

PHONE = "+442079460101"


def _assessments(
    session_factory: sessionmaker[Session],
) -> dict[int, tuple[str | None, str | None]]:
    with session_factory() as session:
        return {
            row.ad_id: (row.ad_assessment_digest, row.ad_fired_rules)
            for row in session.scalars(select(AdLinkFeatures))
        }


def _profile_assessment(session_factory: sessionmaker[Session], profile_id: int) -> object:
    with session_factory() as session:
        profile = session.get(CandidateProfile, profile_id)
        assert profile is not None
        return profile.indicator_score, profile.indicator_assessment


def test_each_ad_is_assessed_once_and_its_kept_assessment_gives_the_same_profile_score(
    session_factory: sessionmaker[Session], people: People
) -> None:
    model = load_indicator_model()
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Net aangekomen, alleen deze week in Utrecht.", (PHONE,))
    store.ad("Breda", "Rustig adres in Breda.", (PHONE,))
    store.link(people.investigator)
    kept = _assessments(session_factory)
    assert {digest for digest, _ in kept.values()} == {model.digest}
    fired = kept[first][1]
    assert fired is not None and {"new_in_town", "short_stay"} <= set(fired.split())
    profile_id = store.profile_of(first)
    before = _profile_assessment(session_factory, profile_id)

    # Scoring again reads the kept assessments: the profile's score is unchanged.
    with session_factory.begin() as session:
        score_profiles(session, [profile_id], model)
    assert _profile_assessment(session_factory, profile_id) == before
    assert _assessments(session_factory) == kept

    # A kept assessment that does not read back (hand-edited: a rule the model lacks) or
    # that is missing (dropped by migration 0012) is made again from the ad's text.
    for damage in ("no_such_rule new_in_town", None):
        with session_factory.begin() as session:
            session.execute(
                update(AdLinkFeatures)
                .where(AdLinkFeatures.ad_id == first)
                .values(ad_fired_rules=damage)
            )
            score_profiles(session, [profile_id], model)
        assert _assessments(session_factory) == kept
        assert _profile_assessment(session_factory, profile_id) == before


def test_a_changed_indicator_model_assesses_every_ad_again(
    session_factory: sessionmaker[Session], people: People
) -> None:
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Net aangekomen in Utrecht.", (PHONE,))
    store.link(people.investigator)
    narrower = indicator_model_from_yaml(
        b"""
version: test-narrow-1
threshold: 0.5
profile_threshold: 0.5
rules:
  - id: just_arrived_only
    level: ad
    kind: phrases
    category: movement
    weight: 0.5
    description: The ad says the person has just arrived.
    description_nl: De advertentie zegt dat de persoon net is aangekomen.
    patterns:
      - '\\bnet aangekomen\\b'
""",
        source="test",
    )
    with session_factory.begin() as session:
        score_profiles(session, [store.profile_of(first)], narrower)
    digest, fired = _assessments(session_factory)[first]
    assert digest == narrower.digest
    assert fired == "just_arrived_only"


def test_photo_sharing_is_read_from_the_stored_evidence_on_both_databases(
    session_factory: sessionmaker[Session], people: People
) -> None:
    from adwatch.services.scoring import _SHARES_A_PHOTO

    store = Store(session_factory, people.legal)
    by_photo = store.ad("Utrecht", 'Lief "kind": "image" en rustig.', photo=0x8F3A5C219D04E7B6)
    store.ad("Breda", "Rustig adres in Breda.", photo=0x8F3A5C219D04E7B6)
    by_phone = store.ad("Gouda", 'Nieuw "kind": "image" hier.', (PHONE,))
    store.ad("Delft", "Alleen deze week.", (PHONE,))
    store.link(people.investigator)
    with session_factory() as session:
        rows = session.execute(select(ProfileMembership.ad_id, _SHARES_A_PHOTO)).all()
    shares = {ad_id: shared for ad_id, shared in rows}
    assert bool(shares[by_photo]) is True
    assert bool(shares[by_phone]) is False  # ad text never reaches the evidence
