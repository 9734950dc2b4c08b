"""SQLAlchemy 2 models of adwatch's core records.

The schema changes only through Alembic migrations (``alembic/versions``);
``tests/storage/test_migrations.py`` proves models and migrations agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Site(Base):
    """A preselected ad site, described by a site profile file."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(500))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """A person who uses adwatch, with the one role that decides what they may do."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Case(Base):
    """A criminal investigation: the unit of need-to-know, linking and retention."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class CaseMember(Base):
    """A user who needs to know the data of a case."""

    __tablename__ = "case_members"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    added_by: Mapped[str] = mapped_column(String(100))


class CaseCombination(Base):
    """Two cases whose data may be linked together (LED art. 25 "combination"), until
    separated again."""

    __tablename__ = "case_combinations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_a_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    case_b_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    combined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    combined_by: Mapped[str] = mapped_column(String(100))
    separated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    separated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    separation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RetentionSetting(Base):
    """A legal officer's retention period for a legal basis, overriding the catalogue's."""

    __tablename__ = "retention_settings"

    legal_basis: Mapped[str] = mapped_column(String(50), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    set_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)


class Authorisation(Base):
    """A recorded legal basis for crawling named sites during a period, for one case."""

    __tablename__ = "authorisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # As registered; ``case`` is the registry's record of it.
    case_number: Mapped[str] = mapped_column(String(100), index=True)
    legal_basis: Mapped[str] = mapped_column(String(50))
    order_reference: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(50))
    officer: Mapped[str] = mapped_column(String(200))
    dpia_reference: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    max_pages_per_run: Mapped[int] = mapped_column(Integer, default=500)
    max_runs_per_day: Mapped[int] = mapped_column(Integer, default=4)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    registered_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Systematic-collection monitor: crawls refused from ``paused_at`` until a review.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pause_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The monitor's figures at the last review; thresholds count from here.
    monitor_baseline: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    monitor_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    monitor_reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Ads scoring below this (ad-level indicator model) are not kept; None: the model's.
    indicator_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    # robots.txt is obeyed unless the authorisation records why not (the order's words).
    robots_exception: Mapped[str | None] = mapped_column(Text, nullable=True)

    case: Mapped[Case] = relationship()
    site_pins: Mapped[list[AuthorisationSite]] = relationship(
        back_populates="authorisation", cascade="all, delete-orphan"
    )
    sites: Mapped[list[Site]] = relationship(secondary="authorisation_sites", viewonly=True)


class AuthorisationSite(Base):
    """A site an authorisation covers, pinned to the profile and origins a legal officer
    reviewed: a crawl under a changed profile is refused until the pin is amended."""

    __tablename__ = "authorisation_sites"

    authorisation_id: Mapped[int] = mapped_column(
        ForeignKey("authorisations.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    profile_sha256: Mapped[str] = mapped_column(String(64))
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by: Mapped[str] = mapped_column(String(100))

    authorisation: Mapped[Authorisation] = relationship(back_populates="site_pins")
    site: Mapped[Site] = relationship()


class CrawlRun(Base):
    """One crawl of one site under one authorisation, with its counts and problems."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    authorisation_id: Mapped[int] = mapped_column(ForeignKey("authorisations.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    started_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    # Why a run ended early ("authorisation revoked", ...), with status "stopped".
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    software_version: Mapped[str] = mapped_column(String(50))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    ads_captured: Mapped[int] = mapped_column(Integer, default=0)
    ads_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    images_stored: Mapped[int] = mapped_column(Integer, default=0)
    requests_refused: Mapped[int] = mapped_column(Integer, default=0)
    # Ads the indicator filter left behind: counted, nothing else of them kept.
    ads_below_threshold: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # When purge removed the run's log files and the ad URLs in its problems.
    logs_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    authorisation: Mapped[Authorisation] = relationship()
    site: Mapped[Site] = relationship()


class Ad(Base):
    """One captured version of an ad, minimised under its legal basis before it was stored.

    A field the basis drops is NULL; the ``minimisation`` record says which fields were
    removed or masked and how many items (never their content).
    """

    __tablename__ = "ads"
    # Per case: two cases crawling one site each keep their own copy of an ad.
    __table_args__ = (UniqueConstraint("case_id", "site_id", "url", "content_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    authorisation_id: Mapped[int] = mapped_column(ForeignKey("authorisations.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    legal_basis: Mapped[str] = mapped_column(String(50))
    # Retention: purge deletes the ad (and what only it uses) from this moment on.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    city: Mapped[str | None] = mapped_column(String(200), nullable=True)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    raw_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    minimisation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A recrawl that finds the version unchanged records only that it was still there.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The indicator model's score of the ad when it was kept (an assessment).
    indicator_score: Mapped[float | None] = mapped_column(Float, nullable=True)

    site: Mapped[Site] = relationship()
    images: Mapped[list[AdImage]] = relationship(
        back_populates="ad", cascade="all, delete-orphan", order_by="AdImage.position"
    )
    phone_links: Mapped[list[AdPhone]] = relationship(
        back_populates="ad", cascade="all, delete-orphan"
    )


class AdImage(Base):
    """An image of an ad: the blob holding its bytes and its perceptual hash."""

    __tablename__ = "ad_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    ad_id: Mapped[int] = mapped_column(ForeignKey("ads.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2000))
    # NULL when the legal basis keeps only the perceptual hashes of images ("mask").
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    phash: Mapped[str] = mapped_column(String(16), index=True)
    # pHashes (hex) of the mirror image and centre crops: re-posts land near one of them.
    phash_variants: Mapped[list[str]] = mapped_column(JSON, default=list)
    # dHashes of the image and of each variant, in that order (hex): they confirm a pHash
    # match near the radius. NULL for images stored before revision 0010.
    dhashes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)

    ad: Mapped[Ad] = relationship(back_populates="images")


class StoredBlob(Base):
    """A blob in the store as one case holds it: what it is, and until when it may be kept.

    The store is content-addressed, so two cases may hold the same bytes; the file is
    deleted when the last case's row for it goes.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    legal_basis: Mapped[str] = mapped_column(String(50))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The latest expiry of the ads that use it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Phone(Base):
    """A phone number in E.164 form."""

    __tablename__ = "phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    region: Mapped[str] = mapped_column(String(2))


class AdPhone(Base):
    """A phone number as it appears in an ad (raw form kept beside the normalised one)."""

    __tablename__ = "ad_phones"

    ad_id: Mapped[int] = mapped_column(ForeignKey("ads.id", ondelete="CASCADE"), primary_key=True)
    phone_id: Mapped[int] = mapped_column(ForeignKey("phones.id"), primary_key=True, index=True)
    raw: Mapped[str] = mapped_column(String(200))
    # Where the ad wrote it among its numbers (0 first): linking takes the first number
    # that is not a hub as the ad's author. Rows from before revision 0010 all hold 0.
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    ad: Mapped[Ad] = relationship(back_populates="phone_links")
    phone: Mapped[Phone] = relationship()


class CandidateProfile(Base):
    """A group of ads that are probably posted by or for the same person or advertiser."""

    __tablename__ = "candidate_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # LED art. 6: the category of data subject; unknown until an analyst sets it, with a
    # reason (``profile_category_changes`` keeps the history).
    subject_category: Mapped[str] = mapped_column(String(30), default="unknown")
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidate_profiles.id"), nullable=True
    )
    # LED art. 7: an assessment, never a fact; the model version says by which rules.
    indicator_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    indicator_model_version: Mapped[str | None] = mapped_column(String(50), nullable=True)
    # Threshold, fired indicators with their evidence, and the model's note.
    indicator_assessment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    memberships: Mapped[list[ProfileMembership]] = relationship(back_populates="profile")


class PageValidator(Base):
    """What a site said about a URL last time (ETag, Last-Modified), per case, so that a
    recrawl asks "changed since?" and does not fetch an unchanged page or image again."""

    __tablename__ = "page_validators"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # What the URL held: the ad version (pages) or the blob (images) it gave.
    ad_id: Mapped[int | None] = mapped_column(
        ForeignKey("ads.id", ondelete="CASCADE"), nullable=True, index=True
    )
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Schedule(Base):
    """A recurring crawl of one site under one authorisation, fired by the scheduler as
    the investigator who made it; it stops, and says why, when the authorisation ends."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    authorisation_id: Mapped[int] = mapped_column(ForeignKey("authorisations.id"), index=True)
    site_key: Mapped[str] = mapped_column(String(64))
    # "cron" (a five-field expression) or "every" (seconds between runs).
    trigger: Mapped[str] = mapped_column(String(10))
    expression: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"), nullable=True)


class WarcFile(Base):
    """A WARC file a run wrote: the evidence of what was requested and kept."""

    __tablename__ = "warc_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # Relative to the data directory.
    path: Mapped[str] = mapped_column(String(500), unique=True)
    records: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the file is closed (rotation or run end).
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# APScheduler 3's job store, as its SQLAlchemyJobStore defines it; created by a migration
# like every table (the job store then finds it and creates nothing).
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class IdCounter(Base):
    """The next id of a kind that must never be given out twice, even after the rows that
    held the ids were purged (profile ids are quoted in the audit log and case notes)."""

    __tablename__ = "id_counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer)


class ProfileEventRecord(Base):
    """A profile created, grown, merged or split by linking, with the reason in words."""

    __tablename__ = "profile_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("candidate_profiles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    other_profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidate_profiles.id"), nullable=True
    )
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProfileCategoryChange(Base):
    """An analyst's assessment of a profile's data-subject category, with the reason."""

    __tablename__ = "profile_category_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(
        ForeignKey("candidate_profiles.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(30))
    previous: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProfileMembership(Base):
    """Why an ad belongs to a profile: the evidence that linked it, as data."""

    __tablename__ = "profile_memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("candidate_profiles.id"), index=True)
    ad_id: Mapped[int] = mapped_column(ForeignKey("ads.id", ondelete="CASCADE"), unique=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The linkage model that made it (``MatchConfig.version``); NULL before revision 0010.
    linkage_version: Mapped[str | None] = mapped_column(String(40), nullable=True)

    profile: Mapped[CandidateProfile] = relationship(back_populates="memberships")
    ad: Mapped[Ad] = relationship()


class AdLinkFeatures(Base):
    """What linking compares of an ad, kept so that later linking need not compute it again.

    Written when the ad is first linked. The distinctive text depends on the boilerplate
    seen by then and stays as it was; ``owner_key`` and ``sentence_keys`` rebuild the
    boilerplate model without reading ad text. Deleted with the ad.
    """

    __tablename__ = "ad_link_features"

    ad_id: Mapped[int] = mapped_column(ForeignKey("ads.id", ondelete="CASCADE"), primary_key=True)
    # ``matching.features.FEATURES_REVISION`` that computed them.
    revision: Mapped[str] = mapped_column(String(40))
    # Author key of the boilerplate model (a 64-bit hash, as 16 hex digits).
    owner_key: Mapped[str] = mapped_column(String(16))
    # Sentence keys, little-endian uint64.
    sentence_keys: Mapped[bytes] = mapped_column(LargeBinary)
    distinctive_text: Mapped[str] = mapped_column(Text)
    distinctive_share: Mapped[float] = mapped_column(Float)
    # MinHash signature, little-endian uint32 (empty when the text is too short).
    text_signature: Mapped[bytes] = mapped_column(LargeBinary)
    # The ad rules that fired when the indicator model of this digest assessed the ad
    # (rule ids, space-separated, in the model's order; empty: none fired). A profile's
    # score needs no more of it; the ad is assessed again when the model changes.
    ad_assessment_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ad_fired_rules: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditEntry(Base):
    """One link of the hash-chained audit log."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    justification: Mapped[str | None] = mapped_column(Text, nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The cases the entry concerns, as "|A|B|" for filtering; covered by the hash.
    cases: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


Index("ix_ads_site_url", Ad.site_id, Ad.url)
