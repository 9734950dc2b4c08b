"""Linking through the engine's snapshot under the data directory (SQLite and PostgreSQL).

A snapshot may only ever save time: linking through it gives the profiles a rebuild from
the database gives; a stale, damaged, foreign or hostile file is rebuilt from the
database and never trusted; a purge leaves no deleted ad's data in a snapshot.
Phone numbers are from fiction ranges; texts are synthetic.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.link_snapshots import (
    _MAC_LABEL,
    _MAGIC,
    LinkSnapshots,
    open_link_snapshots,
)
from adwatch.services.purge import run_purge
from adwatch.settings import Settings
from legal_policy.catalogue import load_catalogue
from matching.features import FEATURES_REVISION
from storage.blobstore import BlobStore
from storage.models import AdLinkFeatures, ProfileMembership
from tests.conftest import People
from tests.support import Store

LINKING_LOG = "adwatch.services.linking"

WORDS = [
    "rustig",
    "discreet",
    "vriendelijk",
    "nieuw",
    "centrum",
    "station",
    "parkeren",
    "afspraak",
    "avond",
    "ochtend",
    "weekend",
    "koffie",
    "douche",
    "sfeervol",
    "schoon",
    "privé",
    "ontvangst",
    "hotel",
    "bezoek",
    "alleen",
]
TEMPLATE = "Boek via onze receptie, wij zijn dagelijks bereikbaar."


def _ads(seed: int, count: int) -> list[tuple[str, str, tuple[str, ...], int | None]]:
    """Synthetic ads of a few advertisers: shared numbers, photo copies, reused texts and
    an agency template, in an order that makes later batches join and merge profiles."""
    rng = random.Random(seed)
    advertisers = [
        (
            f"+4420794601{n:02d}",
            " ".join(rng.choice(WORDS) for _ in range(14)) + f" kamer {n}.",
            rng.getrandbits(64),
        )
        for n in range(12)
    ]
    ads = []
    for _ in range(count):
        phone, own_text, photo = rng.choice(advertisers)
        phones: tuple[str, ...] = (phone,) if rng.random() < 0.6 else ()
        text = own_text if rng.random() < 0.7 else " ".join(rng.sample(WORDS, 8)) + "."
        if rng.random() < 0.3:
            text += " " + TEMPLATE
        picture = photo ^ (1 << rng.randrange(64)) if rng.random() < 0.5 else None
        if rng.random() < 0.05:  # a bridge between two advertisers
            phones = tuple(dict.fromkeys((phone, rng.choice(advertisers)[0])))
        city = rng.choice(["Utrecht", "Breda", "Zwolle", "Assen", "Venlo"])
        ads.append((city, text, phones, picture))
    return ads


def _partition(store: Store, ad_ids: list[int]) -> set[frozenset[int]]:
    """Profiles as sets of positions in the ad sequence (comparable across cases)."""
    groups: dict[int, set[int]] = {}
    for position, ad_id in enumerate(ad_ids):
        groups.setdefault(store.profile_of(ad_id), set()).add(position)
    return {frozenset(group) for group in groups.values()}


def _snapshots(settings: Settings) -> LinkSnapshots:
    return open_link_snapshots(settings.data_dir, settings.resolved_secret_key_file)


@pytest.mark.parametrize("compact_share", [0.1, 100.0], ids=["new-bases", "log-frames"])
def test_linking_through_snapshots_equals_rebuilding_every_time(
    session_factory: sessionmaker[Session],
    people: People,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    compact_share: float,
) -> None:
    """Four crawls' ads linked through the snapshot (the held engine on even batches, the
    files on odd ones) and by rebuilding each time give the same profiles. With a small
    ``compact_share`` every linking writes a new base; with a large one, log frames."""
    snapshots = LinkSnapshots(
        settings.data_dir / "linking",
        settings.resolved_secret_key_file,
        compact_share=compact_share,
    )
    with_snapshots = Store(session_factory, people.legal, "CASE-1")
    rebuilt = Store(session_factory, people.legal, "CASE-2")
    ads = _ads(seed=5, count=60)
    kept: list[int] = []
    fresh: list[int] = []
    caplog.set_level(logging.INFO, logger=LINKING_LOG)
    for batch in range(4):
        for city, text, phones, photo in ads[batch * 15 : (batch + 1) * 15]:
            kept.append(with_snapshots.ad(city, text, phones, photo))
            fresh.append(rebuilt.ad(city, text, phones, photo))
        caplog.clear()
        if batch % 2:
            snapshots.forget()  # odd batches read base and log, as a new process would
        with_snapshots.link(people.investigator, snapshots)
        rebuilds = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
        # Only the first linking builds the engine; later ones read the snapshot.
        expected = (
            f"linking scope [{with_snapshots.case_id}]: rebuilding the engine from the "
            "database (no snapshot)"
        )
        assert rebuilds == ([expected] if batch == 0 else [])
        rebuilt.link(people("other-investigator"))
        assert _partition(with_snapshots, kept) == _partition(rebuilt, fresh)
    assert snapshots.path_of([with_snapshots.case_id]).stat().st_mode & 0o077 == 0
    log = snapshots.log_path_of([with_snapshots.case_id])
    assert log.exists() == (compact_share > 1)
    if log.exists():
        assert log.stat().st_mode & 0o077 == 0
    assert not snapshots.path_of([rebuilt.case_id]).exists()
    # Every linked ad keeps what linking compared, under the current feature revision.
    with session_factory() as session:
        revisions = session.scalars(select(AdLinkFeatures.revision)).all()
    assert revisions == [FEATURES_REVISION] * 120


def test_a_snapshot_that_no_longer_matches_the_database_is_rebuilt(
    session_factory: sessionmaker[Session],
    people: People,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An insider with SQL access moves an ad to another profile, and a linking
    transaction rolls back after writing its snapshot: both make the snapshot stale."""
    snapshots = _snapshots(settings)
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    other = store.ad("Zwolle", "Rustig en discreet.", ("+442079460202",))
    store.link(people.investigator, snapshots)
    with session_factory.begin() as session:
        session.execute(
            update(ProfileMembership)
            .where(ProfileMembership.ad_id == first)
            .values(profile_id=store.profile_of(other))
        )
    caplog.set_level(logging.INFO, logger=LINKING_LOG)
    grows = store.ad("Breda", "Nu in Breda.", ("+442079460202",))
    store.link(people.investigator, snapshots)
    assert "(snapshot is stale)" in caplog.text
    # Linking starts from the database as it now is: the profile the new ad touches is
    # re-clustered, and the ad moved in without evidence is split off again. (A stale
    # engine would have left all three in one profile.)
    assert store.profile_of(grows) == store.profile_of(other) != store.profile_of(first)

    late = store.ad("Assen", "Terug in Assen.", ("+442079460303",))
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        from adwatch.services.linking import link_unlinked_ads

        link_unlinked_ads(session, people.investigator, [store.case_id], snapshots=snapshots)
        raise RuntimeError("the crawl's transaction fails after linking")
    caplog.clear()
    outcome = store.link(people.investigator, snapshots)
    assert outcome.ads_linked == 1 and "(snapshot is stale)" in caplog.text
    assert store.profile_of(late) != store.profile_of(first)


def test_a_merge_that_moves_stored_memberships_leaves_the_snapshot_current(
    session_factory: sessionmaker[Session],
    people: People,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The snapshot's end checksum is worked out from what a linking wrote, not summed
    over the scope again: after a merge moves stored memberships it must still agree with
    the database, read back by a new process (held engine and files alike)."""
    snapshots = _snapshots(settings)
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    second = store.ad("Zwolle", "Rustig en discreet.", ("+442079460202",))
    store.ad("Gouda", "Ook in Gouda.", ("+442079460202",))
    store.link(people.investigator, snapshots)
    assert store.profile_of(first) != store.profile_of(second)
    store.ad("Breda", "Nu in Breda.", ("+442079460101", "+442079460202"))
    store.link(people.investigator, snapshots)
    assert store.profile_of(first) == store.profile_of(second)  # memberships moved
    caplog.set_level(logging.INFO, logger=LINKING_LOG)
    for forget in (False, True):
        if forget:
            snapshots.forget()
        store.ad("Assen", "Terug in Assen.", ("+442079460101",))
        store.link(people.investigator, snapshots)
        assert "rebuilding" not in caplog.text


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[:-100], "fails its integrity check"),
        (lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:], "unreadable snapshot header"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "fails its integrity check"),
        (lambda data: b"not a snapshot at all", "not a snapshot file"),
        (lambda data: b"", "not a snapshot file"),
    ],
    ids=["truncated", "flipped-header-bit", "flipped-mac-bit", "foreign-file", "empty"],
)
def test_a_damaged_snapshot_is_rebuilt_not_trusted(
    session_factory: sessionmaker[Session],
    people: People,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    damage: object,
    reason: str,
) -> None:
    snapshots = _snapshots(settings)
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    store.link(people.investigator, snapshots)
    path = snapshots.path_of([store.case_id])
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    snapshots.forget()  # as a new process would: read the files
    caplog.set_level(logging.INFO, logger=LINKING_LOG)
    second = store.ad("Breda", "Nu in Breda.", ("+442079460101",))
    store.link(people.investigator, snapshots)
    assert "rebuilding the engine" in caplog.text
    assert reason in caplog.text
    assert store.profile_of(second) == store.profile_of(first)


def test_a_snapshot_with_code_in_it_is_refused_even_with_a_valid_mac(
    session_factory: sessionmaker[Session],
    people: People,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Someone who holds the secret key writes a snapshot that would run a command when
    unpickled: the unpickler admits only the engine's own classes, so nothing runs."""
    snapshots = _snapshots(settings)
    store = Store(session_factory, people.legal)
    store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    store.link(people.investigator, snapshots)
    path = snapshots.path_of([store.case_id])
    header = path.read_bytes()[len(_MAGIC) :].split(b"\n", 1)[0] + b"\n"
    witness = tmp_path / "ran"

    class Hostile:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {witness}",))

    import hmac

    from legal_policy.pseudonyms import load_or_create_key

    body = header + pickle.dumps(Hostile())
    key = hmac.new(load_or_create_key(settings.resolved_secret_key_file), _MAC_LABEL, "sha256")
    path.write_bytes(_MAGIC + body + hmac.new(key.digest(), body, "sha256").digest())
    snapshots.forget()
    caplog.set_level(logging.INFO, logger=LINKING_LOG)
    store.ad("Breda", "Nu in Breda.", ("+442079460101",))
    store.link(people.investigator, snapshots)
    assert "(unreadable snapshot)" in caplog.text
    assert not witness.exists()


def test_features_of_ads_linked_before_they_were_kept_are_computed_at_the_next_linking(
    session_factory: sessionmaker[Session], people: People, settings: Settings
) -> None:
    """Ads linked before revision 0011 (or by another feature revision) have no usable
    features: the rebuild computes and keeps them, and linking goes on as before."""
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    old = store.ad("Zwolle", "Rustig en discreet.", ("+442079460202",))
    store.link(people.investigator)
    with session_factory.begin() as session:
        session.execute(
            update(AdLinkFeatures)
            .where(AdLinkFeatures.ad_id == old)
            .values(revision="an older revision")
        )
        session.execute(AdLinkFeatures.__table__.delete().where(AdLinkFeatures.ad_id == first))
    second = store.ad("Breda", "Nu in Breda.", ("+442079460101",))
    store.link(people.investigator, _snapshots(settings))
    assert store.profile_of(second) == store.profile_of(first)
    with session_factory() as session:
        kept = dict(session.execute(select(AdLinkFeatures.ad_id, AdLinkFeatures.revision)).all())
    assert kept == dict.fromkeys((first, old, second), FEATURES_REVISION)


def test_a_purge_leaves_no_deleted_ad_in_any_snapshot(
    session_factory: sessionmaker[Session], people: People, settings: Settings
) -> None:
    """Snapshots hold distinctive text: after the purge the expired ads' words are in no
    snapshot file, and closing a case deletes its snapshot."""
    from datetime import UTC, datetime, timedelta

    snapshots = _snapshots(settings)
    store = Store(session_factory, people.legal)
    soon = datetime.now(UTC) + timedelta(hours=1)
    store.ad("Utrecht", "Vergeten woord vlinderstruik hier.", ("+442079460101",), expires_at=soon)
    kept = store.ad("Breda", "Blijvend woord kastanjeboom daar.", ("+442079460101",))
    other = Store(session_factory, people.legal, "CASE-2")
    other.ad("Zwolle", "Ander woord zonnebloem ginds.", ("+442079460202",))
    store.link(people.investigator, snapshots)
    other.link(people("other-investigator"), snapshots)
    path = snapshots.path_of([store.case_id])
    assert b"vlinderstruik" in path.read_bytes()

    def purge(**options: object) -> None:
        run_purge(
            session_factory,
            people.legal,
            load_catalogue(),
            blob_store=BlobStore(settings.blob_dir),
            log_dir=settings.log_dir,
            now=datetime.now(UTC) + timedelta(days=1),
            default_region="NL",
            snapshots=snapshots,
            **options,  # type: ignore[arg-type]
        )

    purge(dry_run=True)
    assert b"vlinderstruik" in path.read_bytes()  # a dry run changes nothing
    purge()
    data = path.read_bytes()
    assert b"vlinderstruik" not in data and b"kastanjeboom" in data
    assert store.profile_of(kept)

    other_path = snapshots.path_of([other.case_id])
    assert other_path.exists()
    purge(case_number="CASE-2", reason="case closed by the prosecutor")
    assert not other_path.exists()


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda data: data[:-7], "snapshot log is truncated"),
        (lambda data: data[:-40] + bytes([data[-40] ^ 4]) + data[-39:], "log fails its integrity"),
        (lambda data: b"junk" + data, "not a snapshot log"),
    ],
    ids=["truncated", "flipped-bit", "foreign-file"],
)
def test_a_damaged_log_is_rebuilt_not_trusted(
    session_factory: sessionmaker[Session],
    people: People,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    damage: object,
    reason: str,
) -> None:
    snapshots = LinkSnapshots(
        settings.data_dir / "linking", settings.resolved_secret_key_file, compact_share=100.0
    )
    store = Store(session_factory, people.legal)
    first = store.ad("Utrecht", "Alleen deze week in Utrecht.", ("+442079460101",))
    store.link(people.investigator, snapshots)
    store.ad("Zwolle", "Rustig en discreet.", ("+442079460202",))
    store.link(people.investigator, snapshots)
    log = snapshots.log_path_of([store.case_id])
    log.write_bytes(damage(log.read_bytes()))  # type: ignore[operator]
    snapshots.forget()
    caplog.set_level(logging.INFO, logger=LINKING_LOG)
    second = store.ad("Breda", "Nu in Breda.", ("+442079460101",))
    store.link(people.investigator, snapshots)
    assert reason in caplog.text
    assert store.profile_of(second) == store.profile_of(first)


def test_a_new_base_is_written_once_the_log_outgrows_its_share(
    session_factory: sessionmaker[Session], people: People, settings: Settings
) -> None:
    snapshots = LinkSnapshots(
        settings.data_dir / "linking", settings.resolved_secret_key_file, compact_share=0.5
    )
    store = Store(session_factory, people.legal)
    for n in range(4):
        store.ad("Utrecht", f"Advertentie {n}.", (f"+4420794601{n:02d}",))
    store.link(people.investigator, snapshots)  # a base of 4 ads
    log = snapshots.log_path_of([store.case_id])
    store.ad("Breda", "Nog een.", ("+442079460190",))
    store.link(people.investigator, snapshots)  # 1 logged ad <= 0.5 x 5: a frame
    assert log.exists()
    for n, city in enumerate(["Assen", "Venlo", "Emmen", "Gouda"]):
        store.ad(city, f"Nog een in {city}.", (f"+44207946019{n + 1}",))
    store.link(people.investigator, snapshots)  # 1 + 4 logged ads > 0.5 x 9: a new base
    assert not log.exists()
    snapshots.forget()
    store.ad("Zwolle", "Weer terug.", ("+442079460192",))  # joins the Emmen ad
    assert store.link(people.investigator, snapshots).profiles_grown == 1


def test_one_snapshot_store_per_data_directory_however_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's crawls name the data directory resolved, its purge as configured:
    both must reach the same held engine, or a purge would leave one in memory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    relative = open_link_snapshots(Path("var"), Path("var/secret.key"))
    absolute = open_link_snapshots(tmp_path / "var", tmp_path / "var" / "secret.key")
    assert relative is absolute
    assert relative.directory == tmp_path.resolve() / "var" / "linking"
