"""Migration 0003 carries existing authorisations, ads and blobs over to cases and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from storage.db import make_engine, upgrade_database

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _naive_if_sqlite(url: str, value: datetime) -> datetime:
    return value.replace(tzinfo=None) if url.startswith("sqlite") else value


def test_existing_rows_get_case_pins_and_expiry(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade_database(url, "0002")
    engine = make_engine(url)
    at = _naive_if_sqlite(url, NOW)
    until = _naive_if_sqlite(url, NOW + timedelta(days=10))
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO sites (id, key, name, base_url, profile_sha256, registered_at) "
                "VALUES (1, 'demo', 'Demo', 'http://127.0.0.1:8765', :sha, :at)"
            ),
            {"sha": "a" * 64, "at": at},
        )
        for auth_id, basis in ((1, "wpg-9"), (2, "wpg-8")):
            db.execute(
                text(
                    "INSERT INTO authorisations (id, case_number, legal_basis, order_reference, "
                    "purpose, officer, dpia_reference, valid_from, valid_until, "
                    "max_pages_per_run, max_runs_per_day, registered_at, registered_by) VALUES "
                    "(:id, 'CASE-OLD', :basis, 'O', 'criminal_investigation', 'off', 'D', :at, "
                    ":until, 10, 1, :at, 'legal')"
                ),
                {"id": auth_id, "basis": basis, "at": at, "until": until},
            )
            db.execute(text("INSERT INTO authorisation_sites VALUES (:id, 1)"), {"id": auth_id})
            db.execute(
                text(
                    "INSERT INTO crawl_runs (id, authorisation_id, site_id, started_by, "
                    "started_at, status, software_version, profile_sha256, pages_fetched, "
                    "ads_captured, ads_unchanged, images_stored, requests_refused, problems) "
                    "VALUES (:id, :id, 1, 'inv', :at, 'finished', 'x', :sha, 1, 1, 0, 1, 0, '[]')"
                ),
                {"id": auth_id, "at": at, "sha": "a" * 64},
            )
            db.execute(
                text(
                    "INSERT INTO ads (id, site_id, run_id, authorisation_id, url, captured_at, "
                    "title, text, raw_sha256, content_sha256) VALUES "
                    "(:id, 1, :id, :id, :url, :at, 't', 'x', :raw, :content)"
                ),
                {
                    "id": auth_id,
                    "url": f"u{auth_id}",
                    "at": at,
                    "raw": "b" * 64,
                    "content": str(auth_id) * 64,
                },
            )
            db.execute(
                text(
                    "INSERT INTO ad_images (ad_id, position, url, blob_sha256, phash, width, "
                    "height) VALUES (:id, 0, 'i', :blob, '0000000000000000', 10, 10)"
                ),
                {"id": auth_id, "blob": "c" * 64},
            )
        db.execute(
            text(
                "INSERT INTO candidate_profiles (id, created_at, updated_at, subject_category) "
                "VALUES (1, :at, :at, 'possible_victim')"
            ),
            {"at": at},
        )
    upgrade_database(url)
    with engine.connect() as db:
        assert db.execute(text("SELECT number FROM cases")).scalars().all() == ["CASE-OLD"]
        case_ids = set(db.execute(text("SELECT case_id FROM authorisations")).scalars())
        assert len(case_ids) == 1
        pins = db.execute(
            text("SELECT profile_sha256, allowed_origins, reviewed_by FROM authorisation_sites")
        ).all()
        assert {(p[0], p[2]) for p in pins} == {("a" * 64, "legal")}
        assert all("http://127.0.0.1:8765" in str(p[1]) for p in pins)
        expiry = dict(db.execute(text("SELECT legal_basis, expires_at FROM ads")).all())

        def aware(value: object) -> datetime:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

        assert aware(expiry["wpg-9"]) == NOW + timedelta(days=10 + 182)
        assert aware(expiry["wpg-8"]) == NOW + timedelta(days=365)
        blobs = db.execute(text("SELECT sha256, kind FROM blobs ORDER BY kind")).all()
        assert [(b[0][0], b[1]) for b in blobs] == [("c", "image"), ("b", "page")]
        assert db.execute(text("SELECT subject_category FROM candidate_profiles")).scalar() == (
            "unknown"
        )
    engine.dispose()
