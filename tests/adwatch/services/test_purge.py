"""Purge on SQLite and PostgreSQL: what has expired goes (rows, blob files, run logs), what has
not stays, a receipt without content is audited, and purging again changes nothing.

Ads are written as the crawler's store pipeline writes them (``tests.support.Store``, with
image files put through the real ``BlobStore`` and held with ``hold_blob``), or captured by
real crawls of the demo site on loopback. Phone numbers are from the Ofcom drama range.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import running_demo_server
from adwatch.services.combination import combine_and_relink
from adwatch.services.demo import point_demo_profile_at
from adwatch.services.link_snapshots import open_link_snapshots
from adwatch.services.profiles import set_subject_category
from adwatch.services.purge import PurgeOutcome, run_purge
from adwatch.settings import Settings
from crawler.run_control import start_crawl_run
from legal_policy.access import AccessContext
from legal_policy.audit_log import verify_stored_chain
from legal_policy.errors import AccessDenied, CaseClosed, InvalidRetention, UnknownCase
from legal_policy.purge import ORPHAN_GRACE_SECONDS
from legal_policy.retention import hold_blob
from storage.blobstore import BlobStore, sha256_hex
from storage.models import (
    Ad,
    AuditEntry,
    Base,
    CandidateProfile,
    Case,
    CaseCombination,
    CaseMember,
    CrawlRun,
    Phone,
    ProfileCategoryChange,
    ProfileEventRecord,
    ProfileMembership,
    StoredBlob,
    User,
    WarcFile,
)
from tests.conftest import People
from tests.support import Store, authorise, catalogue_of, crawl, files_under

# --- helpers ---------------------------------------------------------------------------------


def table_contents(
    session_factory: sessionmaker[Session], *, skip: tuple[str, ...] = ("audit_entries",)
) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table (as sorted text tuples), to compare before and after."""
    contents: dict[str, list[tuple[str, ...]]] = {}
    with session_factory() as session:
        for table in Base.metadata.sorted_tables:
            if table.name not in skip:
                rows = session.execute(select(table)).all()
                contents[table.name] = sorted(tuple(_text(value) for value in row) for row in rows)
    return contents


def database_text(session_factory: sessionmaker[Session]) -> str:
    """Everything the database holds, audit log included, as one searchable text."""
    return json.dumps(table_contents(session_factory, skip=()), ensure_ascii=False)


def _text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def audit_actions(session_factory: sessionmaker[Session]) -> list[AuditEntry]:
    """The audit log, oldest first."""
    with session_factory() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def receipts(session_factory: sessionmaker[Session]) -> list[AuditEntry]:
    """The deletion receipts in the audit log, oldest first."""
    return [e for e in audit_actions(session_factory) if e.action == "purge.receipt"]


def purge_as(
    settings: Settings,
    session_factory: sessionmaker[Session],
    access: AccessContext,
    now: datetime,
    **options: Any,
) -> PurgeOutcome:
    """``run_purge`` as the CLI calls it, with the catalogue in force."""
    return run_purge(
        session_factory,
        access,
        catalogue_of(settings, session_factory),
        blob_store=BlobStore(settings.blob_dir),
        log_dir=settings.log_dir,
        now=now,
        default_region=settings.default_phone_region,
        **{
            "snapshots": open_link_snapshots(settings.data_dir, settings.resolved_secret_key_file),
            **options,
        },
    )


def file_snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` with its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in files_under(root)}


def cited_ads(evidence: list[dict[str, Any]]) -> set[int]:
    """The ads a membership's evidence names."""
    return {int(item["other_ad_id"]) for item in evidence if item.get("other_ad_id")}


def ads_named_in_event_reasons(session_factory: sessionmaker[Session]) -> set[int]:
    """Every ad a profile event's reason names ("… ad 12 shares phone …")."""
    with session_factory() as session:
        reasons = session.scalars(select(ProfileEventRecord.reason)).all()
    return {int(number) for reason in reasons for number in re.findall(r"\bad (\d+)\b", reason)}


def case_id(session_factory: sessionmaker[Session], number: str) -> int:
    """The id of a registered case."""
    with session_factory() as session:
        return session.scalars(select(Case.id).where(Case.number == number)).one()


def held_files(session_factory: sessionmaker[Session], case_id: int) -> set[str]:
    """The blobs a case holds."""
    with session_factory() as session:
        return set(session.scalars(select(StoredBlob.sha256).where(StoredBlob.case_id == case_id)))


def case_rows(session_factory: sessionmaker[Session], case_id: int) -> dict[str, object]:
    """What the database holds of one case: ads, memberships, profiles, holds, runs."""
    with session_factory() as session:
        ads = session.scalars(select(Ad).where(Ad.case_id == case_id).order_by(Ad.id)).all()
        ad_ids = [ad.id for ad in ads]
        memberships = session.scalars(
            select(ProfileMembership)
            .where(ProfileMembership.ad_id.in_(ad_ids))
            .order_by(ProfileMembership.ad_id)
        ).all()
        profiles = session.scalars(
            select(CandidateProfile)
            .where(CandidateProfile.id.in_({m.profile_id for m in memberships}))
            .order_by(CandidateProfile.id)
        ).all()
        runs = session.scalars(
            select(CrawlRun).where(CrawlRun.id.in_({ad.run_id for ad in ads})).order_by(CrawlRun.id)
        ).all()
        return {
            "ads": [(a.id, a.url, a.text, a.content_sha256, a.expires_at) for a in ads],
            "memberships": [(m.ad_id, m.profile_id, m.evidence, m.linked_at) for m in memberships],
            "profiles": [(p.id, p.indicator_assessment, p.updated_at) for p in profiles],
            "holds": sorted(held_files(session_factory, case_id)),
            "runs": [(r.id, r.problems, r.logs_purged_at) for r in runs],
        }


# --- a store of ads, some expired ------------------------------------------------------------

# Phones (Ofcom drama range), by who uses them.
SHARED_PHONE = "+442079460111"  # CASE-1: two live ads and one expired ad
GONE_PHONE = "+442079460112"  # CASE-1: only the expired ad of the mixed profile
EMPTY_PHONE = "+442079460121"  # CASE-1: only the two expired ads of a profile left empty
OTHER_PHONE = "+442079460131"  # CASE-2: live
BRIDGED_PHONE = "+442079460133"  # CASE-2: live, joined to OTHER_PHONE by an expired ad only
BRIDGE_PHONE = "+442079460132"  # CASE-2: only that expired bridging ad
HOLDER_PHONE = "+442079460141"  # CASE-2: three live ads
STUB_PHONE = "+442079460142"  # CASE-2: three expired ads, and the live ad joining them

# Perceptual hashes far apart from each other (no photo links between them).
PHASH = (0x8F3A5C219D04E7B6, 0x1C77E0A94B3D2F85, 0x63D1B8F07A2C594E, 0xF0E4297C3B8D16A5)


@dataclass
class Estate:
    """Ads of two cases with their blobs, and what the test expects of each."""

    case_1: Store
    case_2: Store
    now: datetime
    expired_ads: set[int] = field(default_factory=set)
    live_ads: set[int] = field(default_factory=set)
    # What the expired ads said: texts, cities (each used by expired ads only), URLs, phones.
    expired_content: set[str] = field(default_factory=set)
    gone_files: set[Path] = field(default_factory=set)
    kept_files: set[Path] = field(default_factory=set)
    mixed_profile: int = 0
    emptied_profiles: set[int] = field(default_factory=set)
    stub_profile: int = 0

    def store(self, blobs: BlobStore, case: Store, city: str, text: str, phones: tuple[str, ...],
              *, expired: bool, photo: tuple[int, bytes] | None = None) -> int:  # fmt: skip
        """One ad as the crawler stores it: its image file in the blob store, held by its
        case until the ad expires."""
        expires_at = self.now + (timedelta(days=-1) if expired else timedelta(days=30))
        sha256 = blobs.put(photo[1]) if photo else None
        ad_id = case.ad(
            city, text, phones, photo[0] if photo else None, expires_at=expires_at, blob=sha256
        )
        with case.session_factory.begin() as session:
            if photo is not None and sha256 is not None:
                hold_blob(
                    session,
                    sha256=sha256,
                    case_id=case.case_id,
                    kind="image",
                    size=len(photo[1]),
                    legal_basis=case.legal_basis,
                    expires_at=expires_at,
                )
            url = session.scalars(select(Ad.url).where(Ad.id == ad_id)).one()
        if expired:
            self.expired_ads.add(ad_id)
            self.expired_content.update({text, url, city, *phones})
        else:
            self.live_ads.add(ad_id)
        return ad_id


@pytest.fixture
def estate(settings: Settings, session_factory: sessionmaker[Session], people: People) -> Estate:
    """CASE-1 and CASE-2 with expired and live ads, linked into profiles over two crawls.

    CASE-1: a profile of two live ads and an expired one (which alone carries GONE_PHONE
    and shares its photo with a live ad); a profile of two expired ads, assessed by an
    analyst; an expired ad alone, whose photo CASE-2 holds too.
    CASE-2: two live ads joined only by a later, expired ad (a bridge); a profile of three
    expired ads in three cities merged, by a later live ad, into a profile of three live
    ads (the expired ads' profile lives on as a stub).
    """
    blobs = BlobStore(settings.blob_dir)
    case_1 = Store(session_factory, people.legal, "CASE-1")
    case_2 = Store(session_factory, people.legal, "CASE-2")
    estate = Estate(case_1, case_2, datetime.now(UTC))
    mixed = (PHASH[0], b"synthetic photo: mixed profile, used by a live and an expired ad")
    only_expired = (PHASH[1], b"synthetic photo: only an expired ad uses it")
    shared = (PHASH[2], b"synthetic photo: both cases hold it")
    live_only = (PHASH[3], b"synthetic photo: only a live ad uses it")
    put = estate.store

    kept = put(blobs, case_1, "Utrecht", "Alleen deze week in Utrecht, bel gerust.",
               (SHARED_PHONE,), expired=False, photo=live_only)  # fmt: skip
    put(blobs, case_1, "Breda", "Nu ook in Breda voor korte tijd.", (SHARED_PHONE,),
        expired=False, photo=mixed)  # fmt: skip
    put(blobs, case_1, "Vlieland", "Eilandbezoek Vlieland, twee nummers bellen.",
        (SHARED_PHONE, GONE_PHONE), expired=True, photo=mixed)  # fmt: skip
    emptied = put(blobs, case_1, "Terschelling", "Zomer op Terschelling, discreet.",
                  (EMPTY_PHONE,), expired=True, photo=only_expired)  # fmt: skip
    put(blobs, case_1, "Ameland", "Ameland weekend, afspraak via sms.", (EMPTY_PHONE,),
        expired=True)  # fmt: skip
    alone = put(blobs, case_1, "Texel", "Texel strandhuis, alleen vandaag.", (),
                expired=True, photo=shared)  # fmt: skip
    case_1.link(people.investigator)
    estate.mixed_profile = case_1.profile_of(kept)
    estate.emptied_profiles = {case_1.profile_of(emptied), case_1.profile_of(alone)}
    with session_factory.begin() as session:
        set_subject_category(
            session, people.analyst, case_1.profile_of(emptied), "possible_victim", "in review"
        )

    other = put(blobs, case_2, "Zwolle", "Rustig adres in Zwolle centrum.", (OTHER_PHONE,),
                expired=False, photo=shared)  # fmt: skip
    bridged = put(blobs, case_2, "Assen", "Assen, ruime parkeerplaats.", (BRIDGED_PHONE,),
                  expired=False)  # fmt: skip
    for city in ("Emmen", "Hoorn", "Edam"):
        put(blobs, case_2, city, f"{city}, ook in het weekend.", (HOLDER_PHONE,), expired=False)
    for city in ("Harlingen", "Dokkum", "Sneek"):
        stub = put(blobs, case_2, city, f"Net aangekomen in {city}, bel snel.", (STUB_PHONE,),
                   expired=True)  # fmt: skip
    case_2.link(people("other-investigator"))
    estate.stub_profile = case_2.profile_of(stub)
    assert case_2.profile_of(other) != case_2.profile_of(bridged)
    # A later crawl: an expired ad bridges two profiles; a live ad joins the expired three.
    put(blobs, case_2, "Schiermonnikoog", "Schiermonnikoog, beide nummers werken.",
        (BRIDGE_PHONE, OTHER_PHONE, BRIDGED_PHONE), expired=True)  # fmt: skip
    put(blobs, case_2, "Alkmaar", "Alkmaar, twee nummers.", (STUB_PHONE, HOLDER_PHONE),
        expired=False)  # fmt: skip
    assert case_2.link(people("other-investigator")).profiles_merged == 2
    with session_factory() as session:
        stub_row = session.get(CandidateProfile, estate.stub_profile)
        assert stub_row is not None and stub_row.merged_into_id is not None
        # The stub's assessment still quotes where its (soon expired) ads were placed.
        assert "Harlingen" in json.dumps(stub_row.indicator_assessment)
    # Phones some live ad still uses are not facts of the expired ads alone.
    estate.expired_content -= {SHARED_PHONE, OTHER_PHONE, BRIDGED_PHONE, STUB_PHONE}
    estate.gone_files = {blobs.path_for(sha256_hex(only_expired[1]))}
    estate.kept_files = {blobs.path_for(sha256_hex(d)) for _, d in (mixed, shared, live_only)}
    return estate


def test_purge_removes_everything_expired_and_keeps_everything_else(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """Expired ads go with their images, phone links, memberships, the phones only they
    used, the profiles they leave empty (with events and assessments) and the blob files no
    case holds any more; live ads and their files stay, and so does the other case's hold on
    a shared file; profiles that keep live ads are re-linked and cite no deleted ad, in
    evidence or in event reasons; nothing an expired ad said is left in the database."""
    with session_factory() as session:
        live_before = {
            ad.id: (ad.url, ad.text, ad.expires_at, ad.content_sha256)
            for ad in session.scalars(select(Ad).where(Ad.id.in_(estate.live_ads)))
        }
        profile_ids_before = set(session.scalars(select(CandidateProfile.id)))

    outcome = purge_as(settings, session_factory, people.legal, estate.now)

    counts = outcome.receipt.counts
    assert counts["ads"] == len(estate.expired_ads) == 8
    assert counts["phones"] == 3  # GONE, EMPTY and BRIDGE
    assert counts["blobs"] == 1 and outcome.files_deleted == 1 and outcome.files_missing == 0
    assert counts["category_changes"] == 1
    # Both stubs merged into profiles that lost ads: the expired three's, and the bridge's.
    assert counts["event_reasons_withdrawn"] >= 1 and counts["assessments_cleared"] == 2
    with session_factory() as session:
        assert {
            ad.id: (ad.url, ad.text, ad.expires_at, ad.content_sha256)
            for ad in session.scalars(select(Ad))
        } == live_before
        assert set(session.scalars(select(ProfileMembership.ad_id))) == estate.live_ads
        assert set(session.scalars(select(Phone.e164))) == {
            SHARED_PHONE, OTHER_PHONE, BRIDGED_PHONE, HOLDER_PHONE, STUB_PHONE
        }  # fmt: skip
        # Profiles left empty went, with their events and the analyst's assessment.
        profiles = set(session.scalars(select(CandidateProfile.id)))
        assert not profiles & estate.emptied_profiles
        assert not session.scalars(select(ProfileCategoryChange)).all()
        events_of = set(session.scalars(select(ProfileEventRecord.profile_id)))
        assert not events_of & estate.emptied_profiles
        # A profile id, once deleted, is never given to a new profile.
        assert not (profiles - profile_ids_before) & estate.emptied_profiles
        # The mixed profile lives on with its two live ads only.
        mixed = set(
            session.scalars(
                select(ProfileMembership.ad_id).where(
                    ProfileMembership.profile_id == estate.mixed_profile
                )
            )
        )
        assert len(mixed) == 2 and mixed <= estate.live_ads
        # The stub of the expired ads lives on (merged into a live profile), unassessed.
        stub = session.get(CandidateProfile, estate.stub_profile)
        assert stub is not None and stub.merged_into_id in profiles
        assert stub.indicator_assessment == {} and stub.indicator_score is None
        # The bridge went, so its two live ads no longer share a profile.
        zwolle, assen = (
            session.scalars(
                select(ProfileMembership.profile_id)
                .join(Ad, Ad.id == ProfileMembership.ad_id)
                .where(Ad.city == city)
            ).one()
            for city in ("Zwolle", "Assen")
        )
        assert zwolle != assen
        for membership in session.scalars(select(ProfileMembership)):
            assert cited_ads(membership.evidence) <= estate.live_ads - {membership.ad_id}
        # CASE-1 let go of the shared photo; CASE-2 holds it still.
        holds = {(b.sha256, b.case_id) for b in session.scalars(select(StoredBlob))}
        assert {sha for sha, _ in holds} == {path.name for path in estate.kept_files}
        shared = sha256_hex(b"synthetic photo: both cases hold it")
        assert (shared, estate.case_1.case_id) not in holds
        assert (shared, estate.case_2.case_id) in holds
        assert verify_stored_chain(session).ok
    assert ads_named_in_event_reasons(session_factory) <= estate.live_ads
    for path in estate.gone_files:
        assert not path.exists()
    blobs = BlobStore(settings.blob_dir)
    for path in estate.kept_files:
        assert blobs.get(path.name)  # present and intact
    everything = database_text(session_factory)
    leaked = {fact for fact in estate.expired_content if fact in everything}
    assert not leaked


def test_receipt_holds_counts_and_digests_never_content(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """The deletion receipt is one audit entry by the legal officer with counts and SHA-256
    digests an auditor can check against a list of deleted items; it quotes nothing an
    expired ad said (no text, city, URL or phone)."""
    with session_factory() as session:
        fingerprints = session.scalars(
            select(Ad.content_sha256).where(Ad.id.in_(estate.expired_ads))
        ).all()

    purge_as(settings, session_factory, people.legal, estate.now, reason="monthly purge")

    [receipt] = receipts(session_factory)
    assert receipt.actor == "legal" and receipt.justification == "monthly purge"
    assert receipt.properties["scope"] == "expired" and receipt.properties["case"] is None
    assert receipt.cases == "|CASE-1|CASE-2|"
    counts = receipt.properties["counts"]
    assert counts["ads"] == 8 and counts["blobs"] == 1 and counts["phones"] == 3
    assert counts["profiles"] >= len(estate.emptied_profiles)

    def digest(values: list[str]) -> str:
        return hashlib.sha256(b"".join(f"{v}\n".encode() for v in sorted(values))).hexdigest()

    assert receipt.properties["ads_digest"] == digest(list(fingerprints))
    assert receipt.properties["blobs_digest"] == digest([p.name for p in estate.gone_files])
    written = json.dumps(
        [receipt.properties, receipt.subject, receipt.justification], ensure_ascii=False
    )
    assert not {fact for fact in estate.expired_content if fact in written}
    assert not re.search(r"\+\d{8,}", written)  # no phone number of any kind


def test_second_purge_changes_nothing(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """Purge is idempotent: run again, it deletes and re-links nothing, leaves every table
    and file as it was, and its receipt (the only new audit entry) counts zero."""
    purge_as(settings, session_factory, people.legal, estate.now)
    tables = table_contents(session_factory)
    files = file_snapshot(settings.data_dir)
    entries = len(audit_actions(session_factory))

    again = purge_as(settings, session_factory, people.legal, estate.now)

    assert not again.receipt.deleted_anything
    assert set(again.receipt.counts.values()) == {0}
    assert (again.files_deleted, again.files_missing, again.orphans_deleted) == (0, 0, 0)
    assert table_contents(session_factory) == tables
    assert file_snapshot(settings.data_dir) == files
    log = audit_actions(session_factory)
    assert [e.action for e in log[entries:]] == ["purge.receipt"]


def test_dry_run_deletes_nothing_and_counts_what_would_go(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """A dry run changes no table, file or audit entry, and counts exactly what the real
    purge then deletes."""
    tables = table_contents(session_factory, skip=())
    files = file_snapshot(settings.data_dir)

    dry = purge_as(settings, session_factory, people.legal, estate.now, dry_run=True)

    assert dry.dry_run and dry.receipt.counts["ads"] == len(estate.expired_ads)
    assert table_contents(session_factory, skip=()) == tables
    assert file_snapshot(settings.data_dir) == files
    real = purge_as(settings, session_factory, people.legal, estate.now)
    assert real.receipt.counts == dry.receipt.counts
    assert real.receipt.ads_digest == dry.receipt.ads_digest


def test_purge_is_refused_to_all_but_legal_officers_and_needs_a_reason_to_close_a_case(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """Analysts, investigators and administrators may not purge; closing a case needs a
    reason and a registered case. Each refusal leaves every table and file unchanged."""
    tables = table_contents(session_factory, skip=())
    files = file_snapshot(settings.data_dir)
    for access in (people.analyst, people.investigator, people.admin):
        with pytest.raises(AccessDenied, match="purge"):
            purge_as(settings, session_factory, access, estate.now)
    for reason in (None, "  "):
        with pytest.raises(InvalidRetention, match="reason"):
            purge_as(settings, session_factory, people.legal, estate.now, case_number="CASE-1",
                     reason=reason)  # fmt: skip
    with pytest.raises(UnknownCase):
        purge_as(settings, session_factory, people.legal, estate.now, case_number="CASE-9",
                 reason="case closed by the prosecutor")  # fmt: skip
    assert table_contents(session_factory, skip=()) == tables
    assert file_snapshot(settings.data_dir) == files


def test_purge_case_removes_all_of_the_case_and_leaves_the_other_untouched(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """``purge --case`` deletes every ad of the case, expired or not, the blobs only it held
    and its members, and closes it; the other case keeps every row and file, including the
    photo both held. Run again, it changes nothing."""
    case_1, case_2 = estate.case_1.case_id, estate.case_2.case_id
    other_before = case_rows(session_factory, case_2)
    members_before = table_contents(session_factory)["case_members"]

    outcome = purge_as(settings, session_factory, people.legal, datetime.now(UTC),
                       case_number="CASE-1", reason="case closed by the prosecutor")  # fmt: skip

    assert outcome.receipt.scope == "case" and outcome.receipt.case == "CASE-1"
    assert outcome.receipt.counts["case_memberships"] == 2  # investigator and analyst
    assert case_rows(session_factory, case_2) == other_before
    with session_factory() as session:
        assert not session.scalars(select(Ad).where(Ad.case_id == case_1)).all()
        assert not held_files(session_factory, case_1)
        members = session.execute(select(CaseMember.case_id, User.name).join(User)).all()
        assert {(c, name) for c, name in members} == {
            (case_2, "other-analyst"), (case_2, "other-investigator")
        }  # fmt: skip
        case = session.scalars(select(Case).where(Case.number == "CASE-1")).one()
        assert case.closed_at is not None and case.closed_by == "legal"
    assert len(members_before) == 4
    files = {path.name for path in files_under(settings.blob_dir)}
    assert files == held_files(session_factory, case_2)  # the shared photo stays
    entries = audit_actions(session_factory)
    closed = [e for e in entries if e.action == "case.closed"]
    assert len(closed) == 1 and closed[0].justification == "case closed by the prosecutor"
    assert entries[-1].action == "purge.receipt" and entries[-1].cases == "|CASE-1|"

    tables = table_contents(session_factory)
    again = purge_as(settings, session_factory, people.legal, datetime.now(UTC),
                     case_number="CASE-1", reason="case closed by the prosecutor")  # fmt: skip
    assert not again.receipt.deleted_anything
    assert table_contents(session_factory) == tables


def test_closing_a_combined_case_relinks_the_other_case(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    """When a case combined with another closes, the other case's profiles are re-linked
    without it: an ad of the closed case no longer joins them, and no evidence cites it."""
    case_1 = Store(session_factory, people.legal, "CASE-1")
    case_2 = Store(session_factory, people.legal, "CASE-2")
    first = case_2.ad("Zwolle", "Zwolle centrum, rustig adres.", (OTHER_PHONE,))
    bridge = case_1.ad("Kampen", "Kampen, twee nummers.", (OTHER_PHONE, BRIDGED_PHONE))
    second = case_2.ad("Assen", "Assen, ruime parkeerplaats.", (BRIDGED_PHONE,))
    case_1.link(people.investigator)
    case_2.link(people("other-investigator"))
    with session_factory.begin() as session:
        combine_and_relink(session, people.legal, "CASE-1", "CASE-2", "same group", "NL", None)
    assert case_2.profile_of(first) == case_2.profile_of(second) == case_1.profile_of(bridge)

    purge_as(settings, session_factory, people.legal, datetime.now(UTC), case_number="CASE-1",
             reason="case closed by the prosecutor")  # fmt: skip

    assert case_2.profile_of(first) != case_2.profile_of(second)
    with session_factory() as session:
        for membership in session.scalars(select(ProfileMembership)):
            assert bridge not in cited_ads(membership.evidence)
        [combination] = session.scalars(select(CaseCombination)).all()
        assert combination.separated_at is not None
    assert bridge not in ads_named_in_event_reasons(session_factory)


@pytest.fixture
def split_by_purge(session_factory: sessionmaker[Session], people: People) -> tuple[Store, int]:
    """A profile of two live ads joined only by an expired one, and an expired ad alone in
    the newest profile; returns the store and that newest profile's id."""
    store = Store(session_factory, people.legal, "CASE-1")
    past = datetime.now(UTC) - timedelta(days=1)
    store.ad("Utrecht", "Utrecht centrum, rustig.", (OTHER_PHONE,))
    store.ad("Breda", "Breda, ruime parkeerplaats.", (BRIDGED_PHONE,))
    store.ad("Kampen", "Kampen, twee nummers.", (OTHER_PHONE, BRIDGED_PHONE), expires_at=past)
    store.link(people.investigator)
    newest = store.ad("Urk", "Urk, alleen vandaag.", (GONE_PHONE,), expires_at=past)
    store.link(people.investigator)
    return store, store.profile_of(newest)


def test_a_profile_split_by_purge_gets_an_id_never_used_before(
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
    split_by_purge: tuple[Store, int],
) -> None:
    """Re-linking after a purge splits a profile whose bridge expired; the part split off
    gets a new id, not the id of a profile the purge deleted (audit entries name profiles
    by id: a reused id would lend one person's history to another)."""
    _, deleted = split_by_purge
    with session_factory() as session:
        highest = max(session.scalars(select(CandidateProfile.id)))
    assert highest == deleted

    purge_as(settings, session_factory, people.legal, datetime.now(UTC))

    with session_factory() as session:
        profiles = session.scalars(
            select(ProfileMembership.profile_id).order_by(ProfileMembership.ad_id)
        ).all()
    assert len(set(profiles)) == 2, "the two live ads were split apart"
    assert deleted not in profiles and max(profiles) > highest


def test_a_profile_created_after_a_purge_gets_an_id_never_used_before(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    """After a purge deleted the newest profile, the next crawl's new profile does not take
    its id."""
    store = Store(session_factory, people.legal, "CASE-1")
    store.ad("Utrecht", "Utrecht centrum, rustig.", (OTHER_PHONE,))
    store.link(people.investigator)
    expired = store.ad("Urk", "Urk, alleen vandaag.", (GONE_PHONE,),
                       expires_at=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
    store.link(people.investigator)
    deleted = store.profile_of(expired)
    purge_as(settings, session_factory, people.legal, datetime.now(UTC))

    fresh = store.ad("Hoorn", "Hoorn, nieuw nummer.", (HOLDER_PHONE,))
    store.link(people.investigator)

    assert store.profile_of(fresh) > deleted


def test_stray_blob_files_are_swept_after_the_grace_period_only(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """A blob file no case holds (a crawl that died between writing it and committing its
    row) is swept once older than the grace period; a recent one, a held one, and any file
    during a dry run are left alone."""
    blobs = BlobStore(settings.blob_dir)
    old_stray = blobs.path_for(blobs.put(b"synthetic stray: written, never registered"))
    new_stray = blobs.path_for(blobs.put(b"synthetic stray: written a moment ago"))
    old_temp = old_stray.parent / ".tmp-abandoned"
    old_temp.write_bytes(b"half a synthetic blob")
    long_ago = time.time() - ORPHAN_GRACE_SECONDS - 60
    for path in (old_stray, old_temp, *estate.kept_files):
        os.utime(path, (long_ago, long_ago))

    dry = purge_as(settings, session_factory, people.legal, estate.now, dry_run=True)
    assert dry.orphans_deleted == 0 and old_stray.exists() and old_temp.exists()
    outcome = purge_as(settings, session_factory, people.legal, estate.now)

    assert outcome.orphans_deleted == 2
    assert not old_stray.exists() and not old_temp.exists()
    assert new_stray.exists()
    assert all(path.exists() for path in estate.kept_files)


def test_a_file_a_live_ad_uses_is_never_deleted_even_if_no_case_holds_it(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    """Defence in depth for evidence: when a live ad uses a file whose hold went missing
    (a bug elsewhere), neither the release of an expired ad's hold on the same bytes nor
    the sweep of stray files deletes it."""
    blobs = BlobStore(settings.blob_dir)
    photo = blobs.put(b"synthetic photo: one expired use, one live use without a hold")
    expired = datetime.now(UTC) - timedelta(days=1)
    case_1 = Store(session_factory, people.legal, "CASE-1")
    case_2 = Store(session_factory, people.legal, "CASE-2")
    case_1.ad("Urk", "Urk, alleen vandaag.", photo=PHASH[0], expires_at=expired, blob=photo)
    live = case_2.ad("Zwolle", "Zwolle centrum.", photo=PHASH[0], blob=photo)
    with session_factory.begin() as session:
        hold_blob(session, sha256=photo, case_id=case_1.case_id, kind="image", size=60,
                  legal_basis="wpg-9", expires_at=expired)  # fmt: skip
    long_ago = time.time() - ORPHAN_GRACE_SECONDS - 60
    os.utime(blobs.path_for(photo), (long_ago, long_ago))

    outcome = purge_as(settings, session_factory, people.legal, datetime.now(UTC))

    assert outcome.receipt.counts["blob_holds"] == 1 and outcome.receipt.counts["blobs"] == 0
    assert outcome.orphans_deleted == 0
    assert blobs.get(photo)
    with session_factory() as session:
        assert session.scalars(select(Ad.id)).all() == [live]


# --- real crawls: blobs and run logs ---------------------------------------------------------

SEED = 11
N_ADS = 12


@dataclass(frozen=True)
class Crawled:
    """Two crawls of the same demo content on two loopback sites: CASE-1's under an
    authorisation ending tomorrow, CASE-2's under one ending in sixty days."""

    expiring_origin: str
    expiring_run: int
    lasting_run: int
    expiring_authorisation: int
    purge_at: datetime  # after CASE-1's data expired, before CASE-2's
    investigator: AccessContext  # as it was before any purge


@pytest.fixture
def crawled(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> Iterator[Crawled]:
    """Both crawls done, with their images (identical bytes: one file, held by both cases),
    pages and run logs on disk."""
    now = datetime.now(UTC)
    with (
        running_demo_server(port=0, seed=SEED, n_ads=N_ADS, faults=True) as first,
        running_demo_server(port=0, seed=SEED, n_ads=N_ADS, faults=True) as second,
    ):
        point_demo_profile_at(settings, first.base_url)
        expiring = authorise(settings, session_factory, people.legal, case="CASE-1",
                             valid_until=now + timedelta(days=1))  # fmt: skip
        investigator = people.investigator
        run_1, _ = crawl(settings, session_factory, investigator, expiring)
        point_demo_profile_at(settings, second.base_url)
        lasting = authorise(settings, session_factory, people.legal, case="CASE-2",
                            valid_until=now + timedelta(days=60))  # fmt: skip
        run_2, _ = crawl(settings, session_factory, people("other-investigator"), lasting)
    assert run_1.run.ads_captured > 0 and run_2.run.ads_captured == run_1.run.ads_captured
    assert run_1.run.problems, "the faulty ads are reported with their URLs"
    yield Crawled(
        expiring_origin=first.base_url,
        expiring_run=run_1.run.run_id,
        lasting_run=run_2.run.run_id,
        expiring_authorisation=expiring,
        purge_at=now + timedelta(days=1 + 182, hours=1),
        investigator=investigator,
    )


def _run_logs(settings: Settings, run_id: int) -> set[str]:
    return {p.name for p in files_under(settings.log_dir) if p.name.startswith(f"run-{run_id}.")}


def _warcs(settings: Settings, session_factory: sessionmaker[Session], run_id: int) -> set[str]:
    """A run's WARC files on disk, which must be the ones registered."""
    names = {p.name for p in files_under(settings.data_dir / "warc")}
    on_disk = {name for name in names if name.startswith(f"run-{run_id}-")}
    with session_factory() as session:
        paths = session.scalars(select(WarcFile.path).where(WarcFile.run_id == run_id)).all()
    assert on_disk == {Path(path).name for path in paths}
    return on_disk


def test_purge_after_a_crawl_expires_deletes_its_ads_blobs_and_run_logs(
    settings: Settings, session_factory: sessionmaker[Session], people: People, crawled: Crawled
) -> None:
    """Once CASE-1's authorisation ended 182 days ago its crawl's ads, the pages and images
    only it held and its run logs are gone, and its run record keeps no ad URL; nothing in
    the data directory names its site any more. CASE-2's crawl, not expired, keeps every
    row and file, the images both cases held included. A second purge changes nothing."""
    case_1, case_2 = case_id(session_factory, "CASE-1"), case_id(session_factory, "CASE-2")
    expired_ads = case_rows(session_factory, case_1)["ads"]
    other_before = case_rows(session_factory, case_2)
    assert expired_ads and other_before["ads"]
    held_1, held_2 = held_files(session_factory, case_1), held_files(session_factory, case_2)
    assert held_1 & held_2, "identical images are one file both cases hold"
    assert _run_logs(settings, crawled.expiring_run) == {
        f"run-{crawled.expiring_run}.log", f"run-{crawled.expiring_run}.worker.log"
    }  # fmt: skip
    lasting_logs = _run_logs(settings, crawled.lasting_run)
    assert lasting_logs
    expiring_warcs = _warcs(settings, session_factory, crawled.expiring_run)
    lasting_warcs = _warcs(settings, session_factory, crawled.lasting_run)
    assert expiring_warcs and lasting_warcs
    assert isinstance(expired_ads, list)
    expired_urls = {url for _, url, *_ in expired_ads}

    outcome = purge_as(settings, session_factory, people.legal, crawled.purge_at)

    counts = outcome.receipt.counts
    assert counts["ads"] == len(expired_ads) and counts["runs_scrubbed"] == 1
    assert counts["run_logs"] == 2 and counts["blobs"] == len(held_1 - held_2)
    assert case_rows(session_factory, case_2) == other_before
    assert not case_rows(session_factory, case_1)["ads"]
    assert not held_files(session_factory, case_1)
    assert {p.name for p in files_under(settings.blob_dir)} == held_2
    assert not _run_logs(settings, crawled.expiring_run)
    assert _run_logs(settings, crawled.lasting_run) == lasting_logs
    assert counts["warc_files"] == len(expiring_warcs)
    assert not _warcs(settings, session_factory, crawled.expiring_run)
    assert _warcs(settings, session_factory, crawled.lasting_run) == lasting_warcs
    with session_factory() as session:
        run = session.get(CrawlRun, crawled.expiring_run)
        assert run is not None and run.problems == [] and run.logs_purged_at is not None
    netloc = urlsplit(crawled.expiring_origin).netloc.encode()
    for path in files_under(settings.data_dir):
        assert netloc not in path.read_bytes(), path
    everything = database_text(session_factory)
    assert not {url for url in expired_urls if url in everything}

    tables = table_contents(session_factory)
    files = file_snapshot(settings.data_dir)
    again = purge_as(settings, session_factory, people.legal, crawled.purge_at)
    assert not again.receipt.deleted_anything
    assert table_contents(session_factory) == tables
    assert file_snapshot(settings.data_dir) == files


def test_purge_case_after_a_crawl_removes_its_files_and_refuses_crawls(
    settings: Settings, session_factory: sessionmaker[Session], people: People, crawled: Crawled
) -> None:
    """Closing CASE-1 removes its crawl's ads, run logs and the files only it held, even
    though none had expired; crawling for it is refused afterwards, even to someone who
    still holds an access context from before; CASE-2 keeps every row and file."""
    case_1, case_2 = case_id(session_factory, "CASE-1"), case_id(session_factory, "CASE-2")
    other_before = case_rows(session_factory, case_2)
    held_2 = held_files(session_factory, case_2)
    lasting_logs = _run_logs(settings, crawled.lasting_run)
    expiring_warcs = _warcs(settings, session_factory, crawled.expiring_run)
    lasting_warcs = _warcs(settings, session_factory, crawled.lasting_run)

    outcome = purge_as(settings, session_factory, people.legal, datetime.now(UTC),
                       case_number="CASE-1", reason="case closed by the prosecutor")  # fmt: skip

    assert outcome.receipt.counts["run_logs"] == 2
    assert outcome.receipt.counts["warc_files"] == len(expiring_warcs) > 0
    assert not _warcs(settings, session_factory, crawled.expiring_run)
    assert _warcs(settings, session_factory, crawled.lasting_run) == lasting_warcs
    assert not case_rows(session_factory, case_1)["ads"]
    assert case_rows(session_factory, case_2) == other_before
    assert {p.name for p in files_under(settings.blob_dir)} == held_2
    assert not _run_logs(settings, crawled.expiring_run)
    assert _run_logs(settings, crawled.lasting_run) == lasting_logs
    with pytest.raises(CaseClosed):
        start_crawl_run(
            settings,
            session_factory,
            crawled.investigator,
            authorisation_id=crawled.expiring_authorisation,
            site_key="demo",
            catalogue=catalogue_of(settings, session_factory),
        )
    with pytest.raises(CaseClosed):
        authorise(settings, session_factory, people.legal, case="CASE-1")
    with session_factory() as session:
        assert session.scalars(select(CrawlRun.id).order_by(CrawlRun.id)).all() == [
            crawled.expiring_run, crawled.lasting_run
        ]  # fmt: skip


def test_purge_scrubs_deleted_content_from_the_sqlite_file(
    settings: Settings, session_factory: sessionmaker[Session], people: People, estate: Estate
) -> None:
    """On SQLite, deleted rows must not linger in the database file's free pages or its
    write-ahead log, where anyone with the file could read them back."""
    url = settings.resolved_database_url
    if not url.startswith("sqlite"):
        pytest.skip("PostgreSQL keeps dead rows until VACUUM, which the DBA schedules")
    purge_as(settings, session_factory, people.legal, estate.now)
    path = Path(url.removeprefix("sqlite:///"))
    raw = b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )
    assert not {fact for fact in estate.expired_content if fact.encode() in raw}
