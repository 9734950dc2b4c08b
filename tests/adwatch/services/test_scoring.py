"""Profile indicator scores in the real database: each ad's assessment is kept beside its
linking features and reused while the indicator model is the same (SQLite, PostgreSQL).
Texts are synthetic; phone numbers are from fiction ranges."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.scoring import score_profiles
from crawler.indicator_model import load_indicator_model
from matching.indicators import indicator_model_from_yaml
from storage.models import AdLinkFeatures, CandidateProfile
from tests.conftest import People
from tests.support import Store

PHONE = "+442079460101"


def _assessments(session_factory: sessionmaker[Session]) -> dict[int, tuple[str | None, object]]:
    with session_factory() as session:
        return {
            row.ad_id: (row.ad_assessment_digest, row.ad_assessment)
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
    fired = {f["rule_id"] for f in kept[first][1]["fired"]}  # type: ignore[index]
    assert {"new_in_town", "short_stay"} <= fired
    profile_id = store.profile_of(first)
    before = _profile_assessment(session_factory, profile_id)

    # Scoring again reads the kept assessments: the profile's score is unchanged.
    with session_factory.begin() as session:
        score_profiles(session, [profile_id], model)
    assert _profile_assessment(session_factory, profile_id) == before
    assert _assessments(session_factory) == kept

    # A kept assessment that does not read back (hand-edited, damaged) is made again.
    with session_factory.begin() as session:
        session.execute(
            update(AdLinkFeatures)
            .where(AdLinkFeatures.ad_id == first)
            .values(ad_assessment={"score": "not an assessment"})
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
    digest, assessment = _assessments(session_factory)[first]
    assert digest == narrower.digest
    assert assessment["model_version"] == "test-narrow-1"  # type: ignore[index]
    assert [f["rule_id"] for f in assessment["fired"]] == ["just_arrived_only"]  # type: ignore[index]
