"""Minimisation in a real crawl: what a legal basis drops or masks appears nowhere afterwards
— not in the database, not in a blob, not in a log, not anywhere in the data directory."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.content import (
    AGENCY_PHONE_DISPLAY,
    AGENCY_PHONE_E164,
    DemoSiteContent,
    generate_demo_content,
)
from adwatch.demo.site import running_demo_site
from adwatch.services.demo import point_demo_profile_at
from adwatch.settings import Settings
from storage.models import Ad, AdImage, AdPhone, Base, Phone, StoredBlob
from tests.conftest import People
from tests.support import authorise, crawl, files_under

SEED = 5
N_ADS = 20


@pytest.fixture
def content(settings: Settings) -> Iterator[DemoSiteContent]:
    with running_demo_site(port=0, seed=SEED, n_ads=N_ADS) as base_url:
        point_demo_profile_at(settings, base_url)
        yield generate_demo_content(seed=SEED, n_ads=N_ADS)


def _needles(content: DemoSiteContent) -> dict[str, str]:
    """Strings that must not survive a basis that pseudonymises phones and drops the page."""
    found: dict[str, str] = {}
    for ad in content.static_ads:
        found[ad.phone_e164] = f"number of {ad.ad_id}"
        found[ad.phone_e164.lstrip("+")] = f"digits of {ad.ad_id}"
        found[ad.phone_display] = f"written number of {ad.ad_id}"
        for review in content.reviews.get(ad.ad_id, ()):
            found[review.text] = f"review under {ad.ad_id}"
    return found


def _database_text(session: Session) -> str:
    """Every value of every table, as text."""
    parts = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(text(f"SELECT * FROM {table.name}")):
            parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


def _files_text(settings: Settings) -> dict[str, bytes]:
    # WARC files are gzipped record by record: searched as written, nothing would match.
    return {
        str(path): gzip.decompress(path.read_bytes())
        if path.name.endswith(".warc.gz")
        else path.read_bytes()
        for path in files_under(settings.data_dir)
    }


def test_masked_pseudonymised_and_dropped_fields_appear_nowhere_after_a_crawl(
    settings: Settings,
    session_factory: sessionmaker[Session],
    content: DemoSiteContent,
    people: People,
) -> None:
    # wpg-13: title and text masked, phones pseudonymised, posted time to the day,
    # images as perceptual hashes only, no raw page.
    authorisation_id = authorise(settings, session_factory, people.legal, legal_basis="wpg-13")
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.status == "finished"
    assert outcome.run.ads_captured == len(content.static_ads)

    needles = _needles(content)
    with session_factory() as session:
        stored = _database_text(session)
        ads = session.scalars(select(Ad)).all()
        assert all(ad.raw_sha256 is None for ad in ads)
        assert all(ad.minimisation["rules"]["phones"] == "pseudonymise" for ad in ads)
        for ad in ads:
            assert ad.posted_at is None or (ad.posted_at.hour, ad.posted_at.minute) == (0, 0)
            assert ad.posted_at is None or ad.posted_at.tzinfo == UTC
        assert all(image.blob_sha256 is None for image in session.scalars(select(AdImage)))
        assert session.scalar(select(StoredBlob.sha256)) is None
        phones = session.scalars(select(Phone.e164)).all()
        assert phones and all(p.startswith("p:") for p in phones)
    for needle, what in needles.items():
        assert needle not in stored, f"{what} is in the database"
    files = _files_text(settings)
    assert any(path.endswith(".warc.gz") for path in files), "the WARC evidence is searched too"
    for path, data in files.items():
        for needle, what in needles.items():
            assert needle.encode() not in data, f"{what} is in {path}"

    # Pseudonyms still link ads of one advertiser inside the case.
    by_phone: dict[str, list[str]] = {}
    for ad in content.static_ads:
        by_phone.setdefault(ad.phone_e164, []).append(ad.ad_id)
    with session_factory.begin() as session:
        from adwatch.services.profiles import list_profiles

        profiles = list_profiles(session, people.analyst, min_ads=2)
    assert profiles, "ads sharing a (pseudonymised) number should still form profiles"
    assert max(len(ids) for ids in by_phone.values()) >= 2


def test_a_pseudonym_is_the_same_inside_a_case_and_differs_across_cases(
    settings: Settings,
    session_factory: sessionmaker[Session],
    content: DemoSiteContent,
    people: People,
) -> None:
    first = authorise(settings, session_factory, people.legal, legal_basis="wpg-10")
    crawl(settings, session_factory, people.investigator, first)
    second = authorise(settings, session_factory, people.legal, legal_basis="wpg-10", case="CASE-2")
    crawl(settings, session_factory, people("other-investigator"), second)
    with session_factory() as session:
        per_case: dict[int, set[str]] = {}
        for case_id, e164 in session.execute(
            select(Ad.case_id, Phone.e164)
            .join(AdPhone, AdPhone.ad_id == Ad.id)
            .join(Phone, Phone.id == AdPhone.phone_id)
        ):
            per_case.setdefault(case_id, set()).add(e164)
    assert len(per_case) == 2
    one, two = per_case.values()
    distinct_numbers = {ad.phone_e164 for ad in content.static_ads}
    if any(AGENCY_PHONE_DISPLAY in ad.text for ad in content.static_ads):
        distinct_numbers.add(AGENCY_PHONE_E164)  # the booking office some ads print
    assert len(one) == len(two) == len(distinct_numbers)
    assert not one & two  # the same numbers, unlinkable across the two cases
