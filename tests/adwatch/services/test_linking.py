"""Linking stored ads into profiles in the real database (SQLite and PostgreSQL).

Ads are written with the ORM as the crawler's pipeline writes them; linking runs the
matching engine over them. Phone numbers are from fiction ranges.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.linking import link_unlinked_ads
from adwatch.services.profiles import show_profile
from legal_policy.access import AccessContext
from legal_policy.audit_log import verify_stored_chain
from legal_policy.authorisation_store import NewAuthorisation, SiteRef, register_authorisation
from legal_policy.catalogue import load_catalogue
from storage.models import (
    Ad,
    AdImage,
    AdPhone,
    AuditEntry,
    CandidateProfile,
    CrawlRun,
    Phone,
    ProfileEventRecord,
    ProfileMembership,
)

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PHOTO = 0x8F3A5C219D04E7B6


class Store:
    """Writes ads the way the crawler's snapshot pipeline does."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        now = datetime.now(UTC)
        with session_factory.begin() as session:
            authorisation = register_authorisation(
                session,
                NewAuthorisation(
                    case_number="TEST-2",
                    legal_basis="wpg-9",
                    order_reference="ORDER-T2",
                    purpose="criminal_investigation",
                    officer="test officer",
                    dpia_reference="DPIA-T2",
                    valid_from=now - timedelta(hours=1),
                    valid_until=now + timedelta(days=1),
                    sites=(SiteRef("demo", "Demo", "http://127.0.0.1:8765", "0" * 64),),
                ),
                "legal officer",
                load_catalogue(),
            )
            site_id = authorisation.sites[0].id
            run = CrawlRun(
                authorisation_id=authorisation.id,
                site_id=site_id,
                started_by="tester",
                software_version="test",
                profile_sha256="0" * 64,
            )
            session.add(run)
            session.flush()
            self.ids = (authorisation.id, site_id, run.id)
        self.count = 0

    def ad(
        self, city: str, text: str, phones: tuple[str, ...] = (), photo: int | None = None
    ) -> int:
        authorisation_id, site_id, run_id = self.ids
        self.count += 1
        with self.session_factory.begin() as session:
            ad = Ad(
                site_id=site_id,
                run_id=run_id,
                authorisation_id=authorisation_id,
                url=f"http://127.0.0.1:8765/ad/{self.count}",
                title=f"Nieuw in {city}",
                text=text,
                city=city,
                posted_at=START + timedelta(days=self.count),
                raw_sha256="1" * 64,
                content_sha256=f"{self.count:064d}",
            )
            if photo is not None:
                ad.images.append(
                    AdImage(
                        position=0,
                        url="http://127.0.0.1:8765/img/1.jpg",
                        blob_sha256="2" * 64,
                        phash=f"{photo:016x}",
                        phash_variants=[],
                        width=640,
                        height=480,
                    )
                )
            for e164 in phones:
                phone = session.scalar(select(Phone).where(Phone.e164 == e164))
                if phone is None:
                    phone = Phone(e164=e164, region="GB")
                    session.add(phone)
                    session.flush()
                ad.phone_links.append(AdPhone(phone_id=phone.id, raw=e164))
            session.add(ad)
            session.flush()
            return ad.id

    def profile_of(self, ad_id: int) -> int:
        with self.session_factory() as session:
            profile_id = session.scalar(
                select(ProfileMembership.profile_id).where(ProfileMembership.ad_id == ad_id)
            )
            assert profile_id is not None
            return profile_id


def link(session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    with session_factory.begin() as session:
        return link_unlinked_ads(session, "tester")


def test_incremental_linking_keeps_ids_merges_with_reason_and_explains(
    session_factory: sessionmaker[Session],
) -> None:
    store = Store(session_factory)
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
        detail = show_profile(session, AccessContext("analyst", "case TEST-2 review"), profile)
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


def test_linking_with_nothing_new_changes_nothing(session_factory: sessionmaker[Session]) -> None:
    store = Store(session_factory)
    store.ad("Utrecht", "Alleen deze week.", ("+442079460101",))
    link(session_factory)
    outcome = link(session_factory)
    assert outcome.ads_linked == 0
    with session_factory() as session:
        assert len(session.scalars(select(CandidateProfile)).all()) == 1
