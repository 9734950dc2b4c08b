"""Retention per legal basis: expiry arithmetic, the legal officer's periods, and what each
change does to the stored ads and blobs (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from legal_policy.access import AccessContext
from legal_policy.authorisation_store import revoke_authorisation
from legal_policy.catalogue import (
    LegalBasisCatalogue,
    RetentionRule,
    RetentionStart,
    load_catalogue,
)
from legal_policy.errors import AccessDenied, InvalidRetention, UnknownLegalBasis
from legal_policy.retention import (
    ad_expiry,
    authorisation_end,
    effective_catalogue,
    expiry_of,
    hold_blob,
    refresh_expiry,
    retention_overview,
    set_retention,
)
from storage.blobstore import sha256_hex
from storage.models import Ad, AuditEntry, Authorisation, RetentionSetting, StoredBlob
from tests.conftest import People
from tests.support import Store

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
BY_END = RetentionRule(days=182, counted_from=RetentionStart.AUTHORISATION_END, max_days=182)
BY_CAPTURE = RetentionRule(days=365, counted_from=RetentionStart.CAPTURE, max_days=365)
PHOTO = sha256_hex(b"synthetic photo held for retention tests")


# --- arithmetic ------------------------------------------------------------------------------


def test_expiry_counts_from_the_authorisations_end_or_from_capture() -> None:
    """Under an end-counted rule every capture of an authorisation expires together, 182
    days after it ended; under a capture-counted rule each ad expires a year after its own
    capture."""
    ended = T0 + timedelta(days=30)
    for captured in (T0, T0 + timedelta(days=29)):
        assert expiry_of(BY_END, ended=ended, captured_at=captured) == ended + timedelta(days=182)
        assert expiry_of(BY_CAPTURE, ended=ended, captured_at=captured) == captured + timedelta(
            days=365
        )


def test_an_authorisation_ends_at_its_revocation_when_that_comes_first() -> None:
    """Revocation before the end of validity ends the authorisation then; a revocation after
    validity already ended changes nothing."""
    valid_until = T0 + timedelta(days=30)
    assert authorisation_end(valid_until, None) == valid_until
    assert authorisation_end(valid_until, T0 + timedelta(days=3)) == T0 + timedelta(days=3)
    assert authorisation_end(valid_until, valid_until + timedelta(days=3)) == valid_until


def test_ad_expiry_follows_the_catalogue_entry_of_the_authorisations_basis() -> None:
    """wpg-9 keeps data 182 days after the authorisation ends (or was revoked); wpg-8 a year
    from capture; an authorisation under a basis the catalogue lacks is refused."""
    catalogue = load_catalogue()
    valid_until = T0 + timedelta(days=30)
    captured = T0 + timedelta(days=2)

    def under(basis: str, revoked_at: datetime | None = None) -> Authorisation:
        return Authorisation(legal_basis=basis, valid_until=valid_until, revoked_at=revoked_at)

    assert ad_expiry(catalogue, under("wpg-9"), captured) == valid_until + timedelta(days=182)
    revoked = T0 + timedelta(days=5)
    assert ad_expiry(catalogue, under("wpg-9", revoked), captured) == revoked + timedelta(days=182)
    assert ad_expiry(catalogue, under("wpg-8"), captured) == captured + timedelta(days=365)
    with pytest.raises(UnknownLegalBasis, match="gdpr-6"):
        ad_expiry(catalogue, under("gdpr-6"), captured)


# --- stored ads and blobs --------------------------------------------------------------------


def _expiries(session_factory: sessionmaker[Session]) -> dict[str, object]:
    """Every ad's and every hold's expiry, the periods set, and the audit log's length."""
    with session_factory() as session:
        return {
            "ads": dict(session.execute(select(Ad.id, Ad.expires_at)).all()),
            "blobs": {
                (b.sha256, b.case_id): b.expires_at for b in session.scalars(select(StoredBlob))
            },
            "settings": [
                (r.legal_basis, r.days, r.set_by, r.reason)
                for r in session.scalars(select(RetentionSetting))
            ],
            "audit": len(session.scalars(select(AuditEntry.id)).all()),
        }


def _ad_expiry(session_factory: sessionmaker[Session], ad_id: int) -> datetime:
    with session_factory() as session:
        return session.scalars(select(Ad.expires_at).where(Ad.id == ad_id)).one()


def _valid_until(session_factory: sessionmaker[Session], store: Store) -> datetime:
    with session_factory() as session:
        authorisation = session.get(Authorisation, store.ids[0])
        assert authorisation is not None
        return authorisation.valid_until


def _hold(store: Store, sha256: str, expires_at: datetime) -> None:
    with store.session_factory.begin() as session:
        hold_blob(session, sha256=sha256, case_id=store.case_id, kind="image", size=10,
                  legal_basis=store.legal_basis, expires_at=expires_at)  # fmt: skip


def _set(
    session_factory: sessionmaker[Session],
    access: AccessContext,
    basis: str,
    days: int,
    reason: str | None = "review period set by the public prosecutor",
) -> int:
    with session_factory.begin() as session:
        return set_retention(session, access, load_catalogue(), basis, days, reason)


def _catalogue(session_factory: sessionmaker[Session]) -> LegalBasisCatalogue:
    with session_factory() as session:
        return effective_catalogue(session, load_catalogue())


def test_a_blob_is_held_until_the_latest_expiry_of_its_users(
    session_factory: sessionmaker[Session], people: People
) -> None:
    """Holding a blob again for a later expiry extends the hold; an earlier one never
    shortens it; each case holds the same bytes separately."""
    one = Store(session_factory, people.legal, "CASE-1")
    two = Store(session_factory, people.legal, "CASE-2")
    _hold(one, PHOTO, T0 + timedelta(days=10))
    _hold(one, PHOTO, T0 + timedelta(days=20))
    _hold(one, PHOTO, T0 + timedelta(days=5))
    _hold(two, PHOTO, T0 + timedelta(days=1))
    with session_factory() as session:
        holds = {b.case_id: b.expires_at for b in session.scalars(select(StoredBlob))}
    assert holds == {one.case_id: T0 + timedelta(days=20), two.case_id: T0 + timedelta(days=1)}


def test_revoking_an_authorisation_brings_the_expiry_of_its_ads_and_blobs_forward(
    session_factory: sessionmaker[Session], people: People
) -> None:
    """After a revocation the authorisation's ads, and the blobs they use, expire 182 days
    after the revocation instead of after the end of validity; another authorisation's ads
    keep their expiry."""
    revoked = Store(session_factory, people.legal, "CASE-1",
                    valid_until=datetime.now(UTC) + timedelta(days=90))  # fmt: skip
    other = Store(session_factory, people.legal, "CASE-2",
                  valid_until=datetime.now(UTC) + timedelta(days=90))  # fmt: skip
    ads = [revoked.ad("Utrecht", "Utrecht, rustig.", photo=1, blob=PHOTO),
           revoked.ad("Breda", "Breda, korte tijd.")]  # fmt: skip
    other_ad = other.ad("Zwolle", "Zwolle, centrum.")
    _hold(revoked, PHOTO, datetime.now(UTC))
    with session_factory.begin() as session:
        assert refresh_expiry(session, _catalogue(session_factory)) == 3
    end = _valid_until(session_factory, revoked)
    assert {_ad_expiry(session_factory, i) for i in ads} == {end + timedelta(days=182)}
    other_expiry = _ad_expiry(session_factory, other_ad)

    with session_factory.begin() as session:
        row = revoke_authorisation(session, people.legal, revoked.ids[0], "order withdrawn",
                                   _catalogue(session_factory))  # fmt: skip
        revoked_at = row.revoked_at
    assert revoked_at is not None
    assert {_ad_expiry(session_factory, i) for i in ads} == {revoked_at + timedelta(days=182)}
    assert _ad_expiry(session_factory, other_ad) == other_expiry
    with session_factory() as session:
        hold = session.get(StoredBlob, (PHOTO, revoked.case_id))
    assert hold is not None and hold.expires_at == revoked_at + timedelta(days=182)


def test_set_retention_gives_every_ad_and_blob_under_the_basis_its_new_expiry(
    session_factory: sessionmaker[Session], people: People
) -> None:
    """A legal officer shortens wpg-9 to 90 days: every wpg-9 ad, of every case, and the
    blobs they use now expire 90 days after their authorisation ended; wpg-8 ads keep theirs.
    The change is audited with the previous and new period and the reason, and the next
    change records this one as its previous."""
    soon = datetime.now(UTC) + timedelta(days=10)
    later = datetime.now(UTC) + timedelta(days=40)
    case_1 = Store(session_factory, people.legal, "CASE-1", valid_until=soon)
    case_2 = Store(session_factory, people.legal, "CASE-2", valid_until=later)
    daily = Store(session_factory, people.legal, "CASE-2", legal_basis="wpg-8")
    daily.count = 100  # its ads' URLs must not repeat those of the other store in CASE-2
    first = case_1.ad("Utrecht", "Utrecht, rustig.", photo=1, blob=PHOTO)
    second = case_2.ad("Zwolle", "Zwolle, centrum.")
    kept = daily.ad("Assen", "Assen, parkeerplaats.", expires_at=T0)
    _hold(case_1, PHOTO, soon + timedelta(days=182))

    assert _set(session_factory, people.legal, "wpg-9", 90) == 2

    with session_factory() as session:
        expiry = {i: _ad_expiry(session_factory, i) for i in (first, second, kept)}
        hold = session.get(StoredBlob, (PHOTO, case_1.case_id))
        assert hold is not None
        setting = session.get(RetentionSetting, "wpg-9")
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.set")
        ).one()
    assert expiry[first] == _valid_until(session_factory, case_1) + timedelta(days=90)
    assert expiry[second] == _valid_until(session_factory, case_2) + timedelta(days=90)
    assert expiry[kept] == T0
    assert hold.expires_at == expiry[first]
    assert setting is not None and (setting.days, setting.set_by) == (90, "legal")
    assert setting.reason == "review period set by the public prosecutor"
    assert entry.actor == "legal" and entry.subject == "legal_basis:wpg-9"
    assert entry.justification == "review period set by the public prosecutor"
    assert entry.properties["days"] == 90 and entry.properties["previous_days"] == 182
    assert entry.properties["ads_recomputed"] == 2
    assert _catalogue(session_factory).get("wpg-9").retention.days == 90

    _set(session_factory, people.legal, "wpg-9", 120, "extended for the review")
    with session_factory() as session:
        latest = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.set").order_by(AuditEntry.seq)
        ).all()[-1]
    assert (latest.properties["days"], latest.properties["previous_days"]) == (120, 90)


def test_set_retention_of_a_capture_counted_basis_recomputes_each_ad_from_its_capture(
    session_factory: sessionmaker[Session], people: People
) -> None:
    """wpg-8 counts from capture: after setting it to 200 days, each ad expires 200 days
    after its own capture, and a blob two ads use is held until the later of the two."""
    store = Store(session_factory, people.legal, "CASE-1", legal_basis="wpg-8")
    early = store.ad("Utrecht", "Utrecht, rustig.", photo=1, blob=PHOTO)
    late = store.ad("Breda", "Breda, korte tijd.", photo=1, blob=PHOTO)
    captured = {early: T0, late: T0 + timedelta(days=20)}
    with session_factory.begin() as session:
        for ad_id, at in captured.items():
            session.execute(update(Ad).where(Ad.id == ad_id).values(captured_at=at))
    _hold(store, PHOTO, T0)

    assert _set(session_factory, people.legal, "wpg-8", 200) == 2

    for ad_id, at in captured.items():
        assert _ad_expiry(session_factory, ad_id) == at + timedelta(days=200)
    with session_factory() as session:
        hold = session.get(StoredBlob, (PHOTO, store.case_id))
    assert hold is not None and hold.expires_at == T0 + timedelta(days=220)


@pytest.mark.parametrize(
    ("who", "basis", "days", "reason", "error", "message"),
    [
        ("analyst", "wpg-9", 90, "shorter", AccessDenied, "set retention periods"),
        ("investigator", "wpg-9", 90, "shorter", AccessDenied, "set retention periods"),
        ("admin", "wpg-9", 90, "shorter", AccessDenied, "set retention periods"),
        ("legal", "wpg-9", 90, None, InvalidRetention, "needs a reason"),
        ("legal", "wpg-9", 90, "  ", InvalidRetention, "needs a reason"),
        ("legal", "wpg-9", 183, "longer", InvalidRetention, "legal maximum"),
        ("legal", "wpg-8", 366, "longer", InvalidRetention, "legal maximum"),
        ("legal", "wpg-9", -1, "negative", InvalidRetention, "outside"),
        ("legal", "gdpr-6", 90, "unknown", UnknownLegalBasis, "unknown legal basis"),
    ],
)
def test_set_retention_refuses_and_changes_nothing(
    session_factory: sessionmaker[Session],
    people: People,
    who: str,
    basis: str,
    days: int,
    reason: str | None,
    error: type[Exception],
    message: str,
) -> None:
    """Only a legal officer may set a period, with a reason, for a basis in the catalogue,
    within its legal maximum; a refusal changes no expiry, period or audit entry."""
    store = Store(session_factory, people.legal, "CASE-1")
    store.ad("Utrecht", "Utrecht, rustig.", photo=1, blob=PHOTO)
    _hold(store, PHOTO, T0)
    before = _expiries(session_factory)
    with pytest.raises(error, match=message):
        _set(session_factory, people(who), basis, days, reason)
    assert _expiries(session_factory) == before


def test_retention_overview_shows_each_basis_its_period_who_set_it_and_the_data_it_holds(
    session_factory: sessionmaker[Session], people: People
) -> None:
    """Every catalogue basis is listed with its period, legal maximum and starting point;
    a period a legal officer set shows who set it and why; the counts are the ads stored
    under each basis and how many of them have expired. Only legal officers see it."""
    now = datetime.now(UTC)
    case_9 = Store(session_factory, people.legal, "CASE-1")
    case_8 = Store(session_factory, people.legal, "CASE-2", legal_basis="wpg-8")
    case_9.ad("Utrecht", "Utrecht, rustig.", expires_at=now - timedelta(days=1))
    case_9.ad("Breda", "Breda, korte tijd.", expires_at=now + timedelta(days=1))
    case_8.ad("Zwolle", "Zwolle, centrum.", expires_at=now + timedelta(days=1))
    _set(session_factory, people.legal, "wpg-9", 150, "as ordered")

    with session_factory() as session:
        rows = {r.legal_basis: r for r in retention_overview(session, people.legal,
                                                             load_catalogue(), now)}  # fmt: skip
        with pytest.raises(AccessDenied):
            retention_overview(session, people.analyst, load_catalogue(), now)
    assert set(rows) == {basis.code for basis in load_catalogue().bases}
    wpg9, wpg8 = rows["wpg-9"], rows["wpg-8"]
    assert (wpg9.days, wpg9.catalogue_days, wpg9.max_days) == (150, 182, 182)
    assert (wpg9.set_by, wpg9.reason, wpg9.counted_from) == ("legal", "as ordered",
                                                             "authorisation_end")  # fmt: skip
    assert (wpg8.days, wpg8.set_by, wpg8.counted_from) == (365, None, "capture")
    # set_retention recomputed wpg-9's expiries: both ads now expire 150 days after the end.
    assert (wpg9.ads_kept, wpg9.ads_expired) == (2, 0)
    assert (wpg8.ads_kept, wpg8.ads_expired) == (1, 0)
    with session_factory() as session:
        later = now + timedelta(days=400)
        rows = {r.legal_basis: r for r in retention_overview(session, people.legal,
                                                             load_catalogue(), later)}  # fmt: skip
    assert (rows["wpg-9"].ads_expired, rows["wpg-8"].ads_expired) == (2, 1)
