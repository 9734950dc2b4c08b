"""One linking path: the profiles a crawl links are the profiles ``adwatch match`` links
from an export of the same stored ads (real crawls of both demo styles on loopback; both
databases). The JSON-LD style is crawled keeping the site's help-desk line that each ad's
description holds after the advertiser's own number: a hub, never an ad's author."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.content import HELP_DESK_PHONE_E164
from adwatch.demo.site import running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.services.offline_match import match_jsonl
from adwatch.settings import Settings
from matching.engine import MatchConfig
from storage.blobstore import BlobStore
from storage.models import Ad, AdImage, AdPhone, Phone, ProfileMembership, Site
from tests.conftest import People
from tests.crawler.test_profile_crawl import SITE as JSONLD_SITE
from tests.crawler.test_profile_crawl import write_profile
from tests.support import authorise, crawl

Partition = set[frozenset[str]]


@pytest.fixture(params=["demo", JSONLD_SITE])
def crawled(
    request: pytest.FixtureRequest,
    settings: Settings,
    session_factory: sessionmaker[Session],
    people: People,
) -> Iterator[str]:
    """A finished, linked crawl of one demo style; yields its site key."""
    site: str = request.param
    style = "classic" if site == "demo" else "jsonld"
    with running_demo_server(port=0, seed=11, n_ads=40, style=style) as server:
        if site == "demo":
            point_demo_profile_at(settings, server.base_url)
        else:
            write_profile(settings, server.base_url)
            # Keep the help-desk line in each description, as a careless profile would.
            profile = settings.resolved_site_profiles_dir / f"{JSONLD_SITE}.yaml"
            text = profile.read_text(encoding="utf-8")
            assert 'exclude: ["p.hulp", "aside.gerelateerd"]' in text
            text = text.replace('["p.hulp", "aside.gerelateerd"]', '["aside.gerelateerd"]')
            profile.write_text(text, encoding="utf-8")
        authorisation_id = authorise(settings, session_factory, people.legal, site=site)
        outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id, site)
    assert outcome.run.status == "finished", outcome.run.problems
    yield site


def export_stored_ads(
    session_factory: sessionmaker[Session], blobs: BlobStore, folder: Path
) -> Path:
    """The stored ads as ``adwatch match`` input: fields as stored, the stored numbers in
    the order the ad wrote them, the kept image files beside the export."""
    (folder / "images").mkdir(parents=True)
    with session_factory() as session:
        phones: dict[int, list[str]] = defaultdict(list)
        for ad_id, e164 in session.execute(
            select(AdPhone.ad_id, Phone.e164)
            .join(Phone, Phone.id == AdPhone.phone_id)
            .order_by(AdPhone.ad_id, AdPhone.position)
        ):
            phones[ad_id].append(e164)
        images: dict[int, list[str]] = defaultdict(list)
        for ad_id, blob in session.execute(
            select(AdImage.ad_id, AdImage.blob_sha256).order_by(AdImage.ad_id, AdImage.position)
        ):
            name = f"images/{blob}.img"
            (folder / name).write_bytes(blobs.get(blob))
            images[ad_id].append(name)
        lines = [
            json.dumps(
                {
                    "ad_id": str(ad.id),
                    "site": site,
                    "url": ad.url,
                    "city": ad.city,
                    "posted_at": ad.posted_at.isoformat() if ad.posted_at else None,
                    "title": ad.title or "",
                    "text": ad.text or "",
                    "images": images[ad.id],
                    "phones": phones[ad.id],
                }
            )
            for ad, site in session.execute(
                select(Ad, Site.key).join(Site, Site.id == Ad.site_id).order_by(Ad.id)
            )
        ]
    source = folder / "ads.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source


def stored_partition(session_factory: sessionmaker[Session]) -> Partition:
    members: dict[int, set[str]] = defaultdict(set)
    with session_factory() as session:
        for ad_id, profile_id in session.execute(
            select(ProfileMembership.ad_id, ProfileMembership.profile_id)
        ):
            members[profile_id].add(str(ad_id))
    return {frozenset(ads) for ads in members.values()}


def offline_partition(output: Path) -> Partition:
    members: dict[int, set[str]] = defaultdict(set)
    for row in map(json.loads, output.read_text(encoding="utf-8").splitlines()):
        members[row["profile_id"]].add(row["ad_id"])
    return {frozenset(ads) for ads in members.values()}


def test_crawl_time_linking_equals_adwatch_match_on_the_same_ads(
    crawled: str, settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    source = export_stored_ads(session_factory, BlobStore(settings.blob_dir), tmp_path / "x")
    outcome = match_jsonl(
        source,
        tmp_path / "profiles.jsonl",
        default_region=settings.default_phone_region,
        workers=1,
    )
    assert outcome.problems == []

    crawl_time = stored_partition(session_factory)
    with session_factory() as session:
        stored = len(session.scalars(select(Ad.id)).all())
    assert sum(map(len, crawl_time)) == outcome.ads_linked == stored > 20
    assert any(len(profile) > 1 for profile in crawl_time)  # the test is not trivial
    assert offline_partition(tmp_path / "profiles.jsonl") == crawl_time
    # Both record the linkage model that made each membership.
    version = MatchConfig().version
    with session_factory() as session:
        assert set(session.scalars(select(ProfileMembership.linkage_version))) == {version}
    lines = (tmp_path / "profiles.jsonl").read_text().splitlines()
    assert {json.loads(x)["linkage_version"] for x in lines} == {version}
    with session_factory() as session:
        dhashes = session.scalars(select(AdImage.dhashes)).all()
    # Each kept image has the dHash of its photo and of each variant, to confirm matches.
    assert dhashes and all(d is not None and len(d) == 6 for d in dhashes)

    if crawled == JSONLD_SITE:
        # Every ad printed the help desk: it linked nothing and was nobody's author.
        exported = [json.loads(x) for x in source.read_text().splitlines()]
        assert all(HELP_DESK_PHONE_E164 in ad["phones"][1:] for ad in exported)
        rows = [json.loads(x) for x in (tmp_path / "profiles.jsonl").read_text().splitlines()]
        assert all(
            HELP_DESK_PHONE_E164 not in e.get("phone", "")
            for row in rows
            for e in row["evidence"]
            if e["kind"] == "phone"
        )
        assert any(e["kind"] == "hub_phone" for row in rows for e in row["evidence"])
