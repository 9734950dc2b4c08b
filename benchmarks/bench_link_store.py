"""New ads into a large store, through the database: what a crawl's linking costs.

Run: ``.venv/bin/python -m benchmarks.bench_link_store [--ads 1000000] [--new 1000]
[--databases sqlite postgresql]``.

The store is filled for real: ``--ads`` ads of the labelled feature corpus
(``benchmarks.corpus.generate_features``; fiction ``+999`` numbers, simulated photo
hashes, rendered texts with agency blocks and site footers) are written to a migrated
database as the crawler stores them (ads, phones, images) with the features linking
keeps per ad and the profiles the matching engine made of them. Then, as after a crawl,
``--new`` more ads of the same corpus are stored without profile and linked by
``adwatch.services.linking.link_unlinked_ads`` in one transaction, commit included:

* **cold**: no engine snapshot yet; the engine is rebuilt from the stored features (what
  the first crawl after an upgrade, or after a snapshot went stale, costs);
* **held**: the process linked last (the scheduler does): the engine it holds is used,
  the new ads linked, a frame appended to the snapshot's log;
* **files**: a new process (a crawl from the command line): the snapshot's base and log
  are read and verified, the new ads linked, a frame appended.

Three batches of each; medians are reported, with every run.

PostgreSQL runs at 127.0.0.1:5432 as ``postgres`` (a database is created and dropped);
SQLite and the snapshots live in a temporary directory. Peak memory is the process's
resident peak, the in-memory corpus and the engine that made the stored profiles
included.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from adwatch.services.link_snapshots import open_link_snapshots
from adwatch.services.linking import feature_row, link_unlinked_ads
from adwatch.services.scoring import kept_fired_rules
from benchmarks.corpus import CorpusConfig, FeatureColumns, generate_features
from benchmarks.metrics import QualityReport, align_table, evaluate_linkage
from benchmarks.registry import register_case_people
from crawler.indicator_model import load_indicator_model
from legal_policy.access import AccessContext
from legal_policy.authorisation_store import NewAuthorisation, SiteRef, register_authorisation
from legal_policy.catalogue import load_catalogue
from matching.engine import MatchingEngine
from matching.features import TextObservation, build_features
from matching.indicators import IndicatorModel, score_ad
from matching.records import AdFeatures, AdInput
from matching.text import BoilerplateModel
from storage.db import make_engine, make_session_factory, upgrade_database
from storage.models import (
    Ad,
    AdImage,
    AdLinkFeatures,
    AdPhone,
    CandidateProfile,
    CrawlRun,
    IdCounter,
    Phone,
    ProfileMembership,
)

TARGET_SECONDS = 10.0
WARM_BATCHES = 3  # per kind: held, then files
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
CASE = "BENCH-1"
_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class StoreRun:
    """Figures of one database."""

    database: str
    ads: int
    new_ads: int
    fill_seconds: float
    cold_seconds: float
    held_seconds: float
    held_runs: tuple[float, ...]
    files_seconds: float
    files_runs: tuple[float, ...]
    snapshot_mib: float
    peak_mib: float


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(corpus: FeatureColumns, start: int, stop: int) -> list[AdInput]:
    """Ads of the corpus as stored (ad ``i`` has database id ``i + 1``)."""
    return [
        AdInput(
            ad_id=str(i + 1),
            site=CASE.lower(),
            url=f"http://bench.test/ad/{i + 1}",
            city=None,
            posted_at=None,
            title="",
            text=corpus.full_text(i),
            images=corpus.images(i),
        )
        for i in range(start, stop)
    ]


@dataclass(slots=True)
class LinkedStore:
    """The first ads with their features, observations and the profiles the engine made."""

    features: list[AdFeatures]
    observations: list[TextObservation]
    # Each ad's indicator assessment, as linking keeps it (``IndicatorScore.as_dict``).
    assessments: list[str]
    profile_of: dict[str, int]
    evidence: dict[str, list[dict[str, object]]]
    seconds: float
    # The stored profiles against the corpus's advertisers.
    quality: QualityReport


def link_in_memory(corpus: FeatureColumns, ads: int) -> LinkedStore:
    """Features of the first ``ads`` ads (one boilerplate model, as crawls build it) and
    their profiles, made by the matching engine as crawl-time linking would."""
    started = time.perf_counter()
    model = BoilerplateModel()
    features: list[AdFeatures] = []
    observations: list[TextObservation] = []
    for start in range(0, ads, 100_000):
        part = _inputs(corpus, start, min(ads, start + 100_000))
        phones = {ad.ad_id: corpus.phones(int(ad.ad_id) - 1) for ad in part}
        features.extend(
            build_features(part, known_phones=phones, boilerplate=model, observations=observations)
        )
    engine = MatchingEngine()
    result = engine.add_parts(features[start : start + 100_000] for start in range(0, ads, 100_000))
    profile_of = {m.ad_id: m.profile_id for m in result.memberships}
    evidence = {m.ad_id: [e.as_dict() for e in m.evidence] for m in result.memberships}
    predicted = np.fromiter((profile_of[str(i + 1)] for i in range(ads)), np.int64, ads)
    quality = evaluate_linkage(corpus.labels[:ads], predicted)
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        assessments = [
            score
            for part in pool.imap(
                _assess, ((corpus, s, min(ads, s + 10_000)) for s in range(0, ads, 10_000))
            )
            for score in part
        ]
    return LinkedStore(
        features,
        observations,
        assessments,
        profile_of,
        evidence,
        time.perf_counter() - started,
        quality,
    )


def _assess(task: tuple[FeatureColumns, int, int]) -> list[str]:
    """The ad rules that fire on ads ``start`` to ``stop``, as kept (in a worker process)."""
    corpus, start, stop = task
    model = _indicator_model()
    return [kept_fired_rules(score_ad(model, "", corpus.full_text(i))) for i in range(start, stop)]


@lru_cache(maxsize=1)
def _indicator_model() -> IndicatorModel:
    return load_indicator_model()


def _registry(session_factory: sessionmaker[Session]) -> tuple[AccessContext, dict[str, int]]:
    """A case, an investigator and an authorisation with one site, as a legal officer
    registers them; returns the investigator and the ids an ad row needs."""
    investigator, legal = register_case_people(session_factory, CASE, "bench")
    now = datetime.now(UTC)
    site = CASE.lower()
    ref = SiteRef(site, site, "http://bench.test", "0" * 64, frozenset({"http://bench.test:80"}))
    with session_factory.begin() as session:
        authorisation = register_authorisation(
            session,
            legal,
            NewAuthorisation(
                case_number=CASE,
                legal_basis="wpg-9",
                order_reference="ORDER-BENCH",
                purpose="criminal_investigation",
                officer="bench officer",
                dpia_reference="DPIA-BENCH",
                valid_from=now - timedelta(hours=1),
                valid_until=now + timedelta(days=1),
                sites=(ref,),
            ),
            load_catalogue(),
        )
        run = CrawlRun(
            authorisation_id=authorisation.id,
            site_id=authorisation.site_pins[0].site_id,
            started_by="investigator",
            software_version="bench",
            profile_sha256="0" * 64,
        )
        session.add(run)
        session.flush()
        ids = {
            "site_id": authorisation.site_pins[0].site_id,
            "run_id": run.id,
            "authorisation_id": authorisation.id,
            "case_id": authorisation.case_id,
        }
    return investigator, ids


class _Phones:
    """Phone rows, created as the store needs them."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.pending: list[dict[str, Any]] = []

    def id_of(self, e164: str) -> int:
        found = self.ids.get(e164)
        if found is None:
            found = self.ids[e164] = len(self.ids) + 1
            self.pending.append({"id": found, "e164": e164, "region": "ZZ"})
        return found


def store_ads(
    session: Session,
    corpus: FeatureColumns,
    start: int,
    stop: int,
    ids: dict[str, int],
    phones: _Phones,
) -> None:
    """Ads ``start`` to ``stop`` of the corpus as the crawler's store pipeline writes them."""
    now = datetime.now(UTC)
    for chunk in range(start, stop, _CHUNK):
        end = min(stop, chunk + _CHUNK)
        ads, images, links = [], [], []
        for i in range(chunk, end):
            ad_id = i + 1
            ads.append(
                {
                    "id": ad_id,
                    **ids,
                    "legal_basis": "wpg-9",
                    "expires_at": now + timedelta(days=180),
                    "url": f"http://bench.test/ad/{ad_id}",
                    "captured_at": now,
                    "title": "",
                    "text": corpus.full_text(i),
                    "city": None,
                    "posted_at": None,
                    "content_sha256": f"{ad_id:064x}",
                    "minimisation": {},
                }
            )
            for position, e164 in enumerate(corpus.phones(i)):
                links.append(
                    {
                        "ad_id": ad_id,
                        "phone_id": phones.id_of(e164),
                        "raw": e164,
                        "position": position,
                    }
                )
            for position, image in enumerate(corpus.images(i)):
                images.append(
                    {
                        "ad_id": ad_id,
                        "position": position,
                        "url": f"http://bench.test/img/{ad_id}-{position}.jpg",
                        "blob_sha256": None,
                        "phash": f"{image.phash:016x}",
                        "phash_variants": [f"{v:016x}" for v in image.variants],
                        "dhashes": [f"{v:016x}" for v in image.dhashes],
                        "width": 320,
                        "height": 400,
                    }
                )
        session.execute(insert(Ad), ads)
        if phones.pending:
            session.execute(insert(Phone), phones.pending)
            phones.pending = []
        if links:
            session.execute(insert(AdPhone), links)
        if images:
            session.execute(insert(AdImage), images)


def store_links(session: Session, linked: LinkedStore) -> None:
    """The features and profiles of the linked ads, as linking writes them."""
    now = datetime.now(UTC)
    profiles = sorted(set(linked.profile_of.values()))
    for start in range(0, len(profiles), _CHUNK):
        session.execute(
            insert(CandidateProfile),
            [
                {"id": p, "created_at": now, "updated_at": now, "indicator_assessment": {}}
                for p in profiles[start : start + _CHUNK]
            ],
        )
    counter = session.get(IdCounter, "candidate_profiles")
    if counter is None:
        session.add(IdCounter(name="candidate_profiles", next_value=profiles[-1] + 1))
    else:
        counter.next_value = max(counter.next_value, profiles[-1] + 1)
    version = MatchingEngine().config.version
    digest = _indicator_model().digest
    for start in range(0, len(linked.features), _CHUNK):
        part = linked.features[start : start + _CHUNK]
        seen = linked.observations[start : start + _CHUNK]
        session.execute(
            insert(AdLinkFeatures),
            [
                {**feature_row(f, o), "ad_assessment_digest": digest, "ad_fired_rules": a}
                for f, o, a in zip(
                    part, seen, linked.assessments[start : start + _CHUNK], strict=True
                )
            ],
        )
        session.execute(
            insert(ProfileMembership),
            [
                {
                    "profile_id": linked.profile_of[f.ad_id],
                    "ad_id": int(f.ad_id),
                    "linked_at": now,
                    "evidence": linked.evidence[f.ad_id],
                    "linkage_version": version,
                }
                for f in part
            ],
        )


def _postgres_database() -> Iterator[str]:
    import psycopg

    name = f"adwatch_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(
    database: str, corpus: FeatureColumns, linked: LinkedStore, ads: int, new_ads: int
) -> StoreRun:
    """Fill one database with ``ads`` linked ads, then link ``new_ads`` at a time."""
    with tempfile.TemporaryDirectory(prefix="adwatch-bench-") as directory:
        data_dir = Path(directory)
        urls = (
            iter([f"sqlite:///{data_dir / 'adwatch.sqlite3'}"])
            if database == "sqlite"
            else _postgres_database()
        )
        url = next(urls)
        try:
            upgrade_database(url)
            engine = make_engine(url)
            session_factory = make_session_factory(engine)
            investigator, ids = _registry(session_factory)
            phones = _Phones()
            started = time.perf_counter()
            with session_factory.begin() as session:
                store_ads(session, corpus, 0, ads, ids, phones)
                store_links(session, linked)
            if database == "postgresql":
                with session_factory.begin() as session:
                    for table in ("ads", "phones", "candidate_profiles"):
                        session.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))"
                            )
                        )
                    session.execute(text("ANALYZE"))
            fill_seconds = time.perf_counter() - started
            print(f"  {database}: {ads:,} ads stored in {fill_seconds:.0f} s", flush=True)

            snapshots = open_link_snapshots(data_dir, data_dir / "secret.key")
            timings = []
            for batch in range(1 + 2 * WARM_BATCHES):
                kind = "cold" if batch == 0 else "held" if batch <= WARM_BATCHES else "files"
                if kind == "files":
                    snapshots.forget()
                start = ads + batch * new_ads
                with session_factory.begin() as session:
                    store_ads(session, corpus, start, start + new_ads, ids, phones)
                started = time.perf_counter()
                with session_factory.begin() as session:
                    outcome = link_unlinked_ads(
                        session, investigator, [ids["case_id"]], snapshots=snapshots
                    )
                timings.append(time.perf_counter() - started)
                assert outcome.ads_linked == new_ads, outcome
                print(f"  {database}: {new_ads:,} new ads linked ({kind}) in "
                      f"{timings[-1]:.2f} s", flush=True)  # fmt: skip
            files = (snapshots.path_of([ids["case_id"]]), snapshots.log_path_of([ids["case_id"]]))
            snapshot_mib = sum(p.stat().st_size for p in files if p.exists()) / 2**20
            engine.dispose()
        finally:
            for _ in urls:  # drops the PostgreSQL database
                pass
    return StoreRun(
        database=database,
        ads=ads,
        new_ads=new_ads,
        fill_seconds=round(fill_seconds, 1),
        cold_seconds=round(timings[0], 2),
        held_seconds=round(statistics.median(timings[1 : 1 + WARM_BATCHES]), 2),
        held_runs=tuple(round(t, 2) for t in timings[1 : 1 + WARM_BATCHES]),
        files_seconds=round(statistics.median(timings[1 + WARM_BATCHES :]), 2),
        files_runs=tuple(round(t, 2) for t in timings[1 + WARM_BATCHES :]),
        snapshot_mib=round(snapshot_mib),
        peak_mib=round(_peak_mib()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ads", type=int, default=1_000_000, help="ads in the store")
    parser.add_argument("--new", type=int, default=1000, help="new ads per linking")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    total = args.ads + (1 + 2 * WARM_BATCHES) * args.new
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}", flush=True)  # fmt: skip
    corpus = generate_features(CorpusConfig(n_ads=total, seed=args.seed))
    linked = link_in_memory(corpus, args.ads)
    print(f"store of {args.ads:,} ads featured and linked in memory in "
          f"{linked.seconds:.0f} s", flush=True)  # fmt: skip
    q = linked.quality
    print(f"its profiles against the corpus's advertisers: pairwise P {q.pairwise_precision:.4f}"
          f" / R {q.pairwise_recall:.4f}, B-cubed F1 {q.bcubed_f1:.4f}, {q.profiles:,} profiles,"
          f" {q.impure_profiles:,} impure", flush=True)  # fmt: skip
    runs = [measure(db, corpus, linked, args.ads, args.new) for db in args.databases]
    header = ["database", "ads", "new", "fill s", "cold s", "held s", "held runs",
              "files s", "files runs", "snapshot MiB", "peak MiB"]  # fmt: skip
    rows = [
        [r.database, f"{r.ads:,}", f"{r.new_ads:,}", f"{r.fill_seconds}", f"{r.cold_seconds}",
         f"{r.held_seconds}", " ".join(map(str, r.held_runs)), f"{r.files_seconds}",
         " ".join(map(str, r.files_runs)), f"{r.snapshot_mib}", f"{r.peak_mib}"]
        for r in runs
    ]  # fmt: skip
    print(align_table(header, rows))
    for r in runs:
        for kind, seconds in (("held", r.held_seconds), ("files", r.files_seconds)):
            verdict = "met" if seconds <= TARGET_SECONDS else "MISSED"
            print(f"{r.database}, {kind}: {r.new_ads:,} new ads into {r.ads:,}: {seconds} s "
                  f"(target <= {TARGET_SECONDS:.0f} s): {verdict}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))


if __name__ == "__main__":
    main()
