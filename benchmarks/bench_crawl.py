"""The crawler on loopback: throughput against bare Scrapy, rendering, memory, recrawl cost.

Run: ``.venv/bin/python -m benchmarks.bench_crawl [--ads 9100] [--rendered-ads 600]
[--skip-rendered] [--concurrency 16] [--rendered-concurrency 4] [--recrawl-ads 1000]
[--seed 7] [--samples DIR] [--profile-worker DIR] [--json FILE]`` from the repository root.
The defaults take about 9 minutes on 2 cores: 9,100 static ads are 10,010 pages (the memory
run over 10,000 pages); ``--ads 0 --recrawl-ads 0 --rendered-ads 9100`` is the rendered
run over 10,010 pages (about 35 minutes).

Everything runs against the synthetic demo site (``adwatch.demo.site``) on 127.0.0.1 with
politeness off: the site profiles are overridden with ``download_delay_seconds: 0`` and
``concurrent_requests`` set to ``--concurrency`` (16, the profile schema's maximum; rendered
runs: ``--rendered-concurrency``, pages open in Chromium at a time). Before any timed run the
site draws every photo the run will ask for, so no run pays for drawing them. The site's
``ThreadingHTTPServer`` runs in this process, on the same two cores, and may itself limit
the rate: that is why the bare spider is measured against the same server, right before the
pipeline, and why the CPU time of both sides is printed.

* Throughput: a bare Scrapy spider (subprocess; same list, ad and image URLs, same CSS
  selectors as the ``demo`` profile, same concurrency, no delay, stores nothing) and then
  ``adwatch.services.crawling.crawl_and_link`` (worker process: allowlist, robots,
  extraction, indicators with threshold 0 so every ad is kept — the worst case —,
  minimisation, images checked and hashed, WARC evidence, SQLite, then linking). Pages are
  list and ad pages; images are counted apart. "End to end" is the wall clock from launch
  to return (process start, policy checks and linking included); "crawl" is Scrapy's
  ``elapsed_time_seconds`` (spider opened to closed).
* Rendered: the same pipeline on the JavaScript-only pages (``demo-js``: Chromium through
  scrapy-playwright; list and ad pages rendered, images fetched plainly).
* Memory: while each pipeline run goes, the summed ``VmRSS`` and ``Pss`` of this process's
  descendants (the crawl worker and its compute and store processes; for rendered runs
  also the Playwright driver and Chromium) are sampled every 0.5 s from ``/proc``; the
  table gives them at the first page, at 10 %, 50 % and 100 % of the pages, and the peak.
  Flat means that a least-squares line through the samples after 10 % of the pages grows
  by less than ``FLAT_GROWTH`` of the level at 10 %. RSS counts pages shared between
  processes once per process (the worker's forked pipeline processes share most of theirs
  with it; Chromium's processes share theirs), so the tables also show the proportional
  set size (PSS), in total and by kind of process, and the static run's verdict is on PSS.
* Recrawl: a first and a second crawl of an unchanged site with ``--recrawl-ads`` ads; the
  bytes are the response bodies the site sent during each.

``--profile-worker DIR`` runs every crawl worker under cProfile (through a
``sitecustomize`` put on the worker's ``PYTHONPATH`` by this script alone) and prints where
its time went; the times of such a run are not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from adwatch.demo.site import DemoServer, running_demo_server
from adwatch.services.crawling import CrawlAndLinkOutcome, crawl_and_link
from adwatch.services.demo import DEMO_OVERRIDE_MARKER, point_demo_profile_at
from adwatch.settings import Settings
from benchmarks.metrics import align_table
from benchmarks.registry import register_case_people
from crawler.context import COMPUTE_PROCESS_NAME, STORE_PROCESS_NAME
from crawler.site_profile import get_site_profile
from legal_policy.access import AccessContext
from legal_policy.authorisation_store import NewAuthorisation, register_authorisation
from legal_policy.catalogue import LegalBasisCatalogue, load_catalogue
from legal_policy.retention import effective_catalogue
from storage.db import make_engine, make_session_factory, upgrade_database

# The targets.
TARGET_RATIO = 0.5  # pipeline pages/s over bare Scrapy pages/s
TARGET_RENDERED_PER_SECOND = 5.0  # on 2 cores
TARGET_RECRAWL_SHARE = 0.10  # second crawl's bytes over the first's
# "Flat": the trend after warm-up (10 % of the pages) adds less than this share.
FLAT_GROWTH = 0.10

# The demo site serves one ad in eight as a JavaScript-only page.
JS_SHARE = 8
SAMPLE_SECONDS = 0.5
MIB = 1024 * 1024
CASE = "BENCH-1"
VIA = "bench_crawl"


# --- machine -----------------------------------------------------------------------------


def machine() -> str:
    """CPU model, usable cores, RAM, OS, and the versions that set the speed."""
    model = platform.processor() or platform.machine()
    memory = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return (
        f"{model}, {len(os.sched_getaffinity(0))} cores, {memory} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, Scrapy {version('scrapy')}, "
        f"scrapy-playwright {version('scrapy-playwright')}, {chromium_version()}"
    )


def chromium_version(path: str = "/usr/bin/chromium") -> str:
    """``Chromium N`` as the binary reports it, or a note that it is missing."""
    try:
        found = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "no Chromium"
    return found.stdout.strip() or "Chromium (version unknown)"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the demo site -----------------------------------------------------------------------


def site_size_for(ads: int, *, javascript: bool) -> int:
    """The ``n_ads`` of a demo site whose static (or JavaScript-only) ads number ``ads``."""
    if javascript:
        return ads * JS_SHARE
    n_ads = ads
    while n_ads - round(n_ads / JS_SHARE) < ads:
        n_ads += 1
    return n_ads


def warm_images(server: DemoServer, *, javascript: bool) -> int:
    """Render (once, untimed) every photo of the ads a crawl will visit; returns how many."""
    content = server.content
    ads = content.js_ads if javascript else content.static_ads
    names = {name for ad in ads for name in ad.image_names}
    for name in names:
        content.images[name]
    return len(names)


@dataclass(frozen=True, slots=True)
class Traffic:
    """What the demo site answered during one run."""

    list_pages: int = 0
    ad_pages: int = 0
    images: int = 0
    other: int = 0
    not_modified: int = 0
    body_bytes: int = 0

    @property
    def pages(self) -> int:
        """List and ad pages asked for."""
        return self.list_pages + self.ad_pages


@dataclass(frozen=True, slots=True)
class _Tally:
    answers: Counter[tuple[str, int]]
    body_bytes: int


def _tally(server: DemoServer) -> _Tally:
    # Taken between runs only, when no request is being answered.
    return _Tally(Counter(server.answers), server.bytes_sent)


def traffic_since(server: DemoServer, before: _Tally) -> Traffic:
    """The site's answers since ``before``, by kind of URL."""
    counts: Counter[str] = Counter()
    for (path, status), number in (Counter(server.answers) - before.answers).items():
        if path in ("/ads", "/ads/js"):
            counts["list_pages"] += number
        elif path.startswith("/ad/"):
            counts["ad_pages"] += number
        elif path.startswith("/images/"):
            counts["images"] += number
        else:
            counts["other"] += number
        if status == 304:
            counts["not_modified"] += number
    return Traffic(**counts, body_bytes=server.bytes_sent - before.body_bytes)


# --- the pipeline's surroundings: settings, registry, authorisation ----------------------


@dataclass(slots=True)
class CrawlEnvironment:
    """A data directory with a migrated SQLite database, a case, its investigator and a
    legal officer, and the demo profiles pointed at the running site."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    investigator: AccessContext
    legal: AccessContext
    catalogue: LegalBasisCatalogue

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def set_politeness(settings: Settings, concurrency: int) -> None:
    """Politeness off in the local ``demo`` and ``demo-js`` overrides: no delay between
    requests, ``concurrency`` requests (rendered pages) at a time."""
    for key in ("demo", "demo-js"):
        path = settings.resolved_site_profiles_dir / f"{key}.yaml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["download_delay_seconds"] = 0
        config["concurrent_requests"] = concurrency
        path.write_text(
            DEMO_OVERRIDE_MARKER + "\n" + yaml.safe_dump(config, sort_keys=False),
            encoding="utf-8",
        )


def make_environment(root: Path, base_url: str, concurrency: int) -> CrawlEnvironment:
    """Settings and a registry in ``root``, as the tests build them (``tests/conftest.py``)."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'adwatch.sqlite3'}",
        site_profiles_dir=root / "site_profiles",
        legal_catalogue=None,
        redis_url=None,
        log_level="INFO",
    )
    upgrade_database(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    session_factory = make_session_factory(engine)
    investigator, legal = register_case_people(session_factory, CASE, VIA)
    with session_factory() as session:
        catalogue = effective_catalogue(session, load_catalogue(settings.legal_catalogue))
    point_demo_profile_at(settings, base_url)
    set_politeness(settings, concurrency)
    return CrawlEnvironment(settings, engine, session_factory, investigator, legal, catalogue)


def authorise(environment: CrawlEnvironment, site_key: str, max_pages: int) -> int:
    """Register an authorisation for the site as its profile reads now; returns its id.

    Its indicator threshold is 0: every ad is kept, images and all (the worst case)."""
    settings = environment.settings
    ref = get_site_profile(site_key, settings.resolved_site_profiles_dir).site_ref()
    now = datetime.now(UTC)
    with environment.session_factory.begin() as session:
        row = register_authorisation(
            session,
            environment.legal,
            NewAuthorisation(
                case_number=CASE,
                legal_basis="wpg-9",
                order_reference="BENCH-ORDER",
                purpose="criminal_investigation",
                officer="benchmark officer",
                dpia_reference="BENCH-DPIA",
                valid_from=now - timedelta(hours=1),
                valid_until=now + timedelta(days=1),
                sites=(ref,),
                max_pages_per_run=max_pages,
                max_runs_per_day=10,
                indicator_threshold=0.0,
            ),
            environment.catalogue,
        )
        return row.id


@contextmanager
def environment_for(server: DemoServer, concurrency: int) -> Iterator[CrawlEnvironment]:
    """A fresh environment in a temporary directory, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="adwatch-bench-crawl-"))
    environment = make_environment(root, server.base_url, concurrency)
    try:
        yield environment
    finally:
        environment.close()
        shutil.rmtree(root, ignore_errors=True)


# --- memory ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Direct children of a process (every thread's ``children`` file)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _proc_mib(path: str, field: str) -> float:
    """A ``kB`` field of a ``/proc`` file in MiB (0 once the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _rss_mib(pid: int) -> float:
    """``VmRSS`` of a process in MiB (0 once it is gone)."""
    return _proc_mib(f"/proc/{pid}/status", "VmRSS:")


def _pss_mib(pid: int) -> float:
    """Proportional set size of a process in MiB: shared pages split between their users."""
    return _proc_mib(f"/proc/{pid}/smaps_rollup", "Pss:")


def process_role(pid: int) -> str:
    """What a process below the worker is: the Playwright driver, or Chromium's browser
    process, renderers, GPU or utility processes (by their ``--type``)."""
    try:
        # Chromium rewrites its command line into one string: split on spaces as well.
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        argv = []
    if not argv:
        return "exiting"
    name = Path(argv[0].decode(errors="replace")).name
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        comm = ""
    if comm in (COMPUTE_PROCESS_NAME, STORE_PROCESS_NAME):
        return comm.replace("adwatch-", "pipeline: ")
    if name == "node":
        return "playwright driver"
    kinds = [a.split(b"=", 1)[1].decode(errors="replace") for a in argv if a.startswith(b"--type=")]
    if "crashpad" in name:
        return "chromium crashpad handler"
    if "chrom" in name:
        return f"chromium {kinds[0] if kinds else 'browser'}"
    return name


@dataclass(frozen=True, slots=True)
class MemorySample:
    """One reading: seconds since sampling began, pages done, RSS of the worker alone, RSS
    and PSS of the worker with every process below it (Chromium, the Playwright driver),
    and that PSS by kind of process."""

    seconds: float
    pages: int
    worker_mib: float
    tree_mib: float
    tree_pss_mib: float
    processes: int
    pss_by_role: dict[str, float] = field(default_factory=dict)
    processes_by_role: dict[str, int] = field(default_factory=dict)


class TreeMemorySampler:
    """Samples the RSS of this process's descendants in a background thread.

    The crawl worker is this process's only child while a pipeline run goes; its
    descendants are the browser's processes. Shared pages are counted once per process
    (RSS, not PSS), so the tree's figure overstates what Chromium really holds.
    """

    def __init__(self, pages: Callable[[], int], interval: float = SAMPLE_SECONDS) -> None:
        self.pages = pages
        self.interval = interval
        self.samples: list[MemorySample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = 0.0

    def __enter__(self) -> TreeMemorySampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """Read the RSS of every descendant once (nothing when there is none)."""
        children = _children(os.getpid())
        if not children:
            return
        pages = self.pages()
        worker = _rss_mib(children[0])
        rss, count, queue = 0.0, 0, list(children)
        by_role: defaultdict[str, float] = defaultdict(float)
        processes: Counter[str] = Counter()
        while queue:
            pid = queue.pop()
            rss += _rss_mib(pid)
            role = "crawl worker" if pid == children[0] else process_role(pid)
            by_role[role] += _pss_mib(pid)
            processes[role] += 1
            count += 1
            queue += _children(pid)
        seconds = time.perf_counter() - self._started
        pss = sum(by_role.values())
        self.samples.append(
            MemorySample(seconds, pages, worker, rss, pss, count, dict(by_role), dict(processes))
        )


@dataclass(frozen=True, slots=True)
class MemoryProfile:
    """Memory (MiB) at the first page, at 10 %, 50 % and 100 % of the pages, and the peak;
    the trend after 10 % as a least-squares slope, and whether that is flat.

    "100 %" is the last sample taken before the last page was done: after it the worker
    closes the browser and writes its record, and that teardown is not the crawl's memory.
    """

    pages: int
    samples: int
    start: float
    at_10: float
    at_50: float
    at_100: float
    peak: float
    mib_per_1000_pages: float
    growth_share: float

    @property
    def flat(self) -> bool:
        """No growth trend after warm-up (see ``FLAT_GROWTH``)."""
        return self.growth_share < FLAT_GROWTH


def worker_rss(sample: MemorySample) -> float:
    """The crawl worker's own RSS."""
    return sample.worker_mib


def tree_rss(sample: MemorySample) -> float:
    """The RSS of the worker and every process below it."""
    return sample.tree_mib


def tree_pss(sample: MemorySample) -> float:
    """The PSS of the worker and every process below it."""
    return sample.tree_pss_mib


def memory_profile(
    samples: Sequence[MemorySample],
    pages: int,
    measure: Callable[[MemorySample], float] = tree_rss,
) -> MemoryProfile | None:
    """Summarise the samples of a run of ``pages`` pages by one ``measure``."""
    during = [s for s in samples if 1 <= s.pages < pages] or [s for s in samples if s.pages]
    if not during or pages < 1:
        return None

    def at(share: float) -> float:
        return measure(next((s for s in during if s.pages >= share * pages), during[-1]))

    warm = [(s.pages, measure(s)) for s in during if s.pages >= 0.1 * pages]
    slope = _slope(warm)
    level = at(0.1)
    span = warm[-1][0] - warm[0][0] if warm else 0
    return MemoryProfile(
        pages=pages,
        samples=len(during),
        start=measure(during[0]),
        at_10=level,
        at_50=at(0.5),
        at_100=measure(during[-1]),
        peak=max(measure(s) for s in samples),
        mib_per_1000_pages=slope * 1000,
        growth_share=slope * span / level if level else 0.0,
    )


def _slope(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of RSS over pages (0 with fewer than two distinct page counts)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


def role_table(samples: Sequence[MemorySample], pages: int) -> str:
    """PSS (MiB) of each kind of process at 10 %, 50 % and 100 % of the pages, and its trend."""
    roles = sorted({role for sample in samples for role in sample.pss_by_role})
    header = ["process (PSS, MiB)", "at most", "10 %", "50 %", "100 %", "peak", "MiB/1k pages"]
    rows = []
    for role in roles:

        def measure(sample: MemorySample, role: str = role) -> float:
            return sample.pss_by_role.get(role, 0.0)

        profile = memory_profile(samples, pages, measure)
        if profile is not None and profile.peak >= 1:
            most = max(sample.processes_by_role.get(role, 0) for sample in samples)
            rows.append(
                [
                    role,
                    f"{most} process{'es' if most > 1 else ''}",
                    _mib(profile.at_10),
                    _mib(profile.at_50),
                    _mib(profile.at_100),
                    _mib(profile.peak),
                    f"{profile.mib_per_1000_pages:+.1f}",
                ]
            )
    return align_table(header, rows)


def write_samples(samples: Sequence[MemorySample], path: Path) -> None:
    """The samples as CSV: time, pages, RSS and PSS figures, PSS of each kind of process."""
    roles = sorted({role for sample in samples for role in sample.pss_by_role})
    columns = ["seconds", "pages", "worker_rss_mib", "tree_rss_mib", "tree_pss_mib", "processes"]
    lines = [",".join([*columns, *(f"pss_mib:{role}" for role in roles)])]
    for sample in samples:
        values: list[float] = [sample.seconds, sample.pages, sample.worker_mib, sample.tree_mib]
        values += [sample.tree_pss_mib, sample.processes]
        values += [sample.pss_by_role.get(role, 0.0) for role in roles]
        lines.append(
            ",".join(f"{value:.1f}" if isinstance(value, float) else str(value) for value in values)
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- CPU ---------------------------------------------------------------------------------


def children_cpu() -> float:
    """CPU seconds of the child processes that ended so far (and their waited-for children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the pipeline ------------------------------------------------------------------------


@dataclass(slots=True)
class PipelineRun:
    """One ``crawl_and_link`` run: its counts, times, the site's answers and memory."""

    site_key: str
    status: str
    pages: int
    ads_captured: int
    ads_unchanged: int
    images_stored: int
    problems: int
    seconds: float
    crawl_seconds: float
    linking_seconds: float
    traffic: Traffic
    # CPU seconds of the worker (with its browser), and of this process while the worker ran
    # (the demo site's threads, mostly).
    worker_cpu: float = 0.0
    site_cpu: float = 0.0
    samples: list[MemorySample] = field(default_factory=list)

    @property
    def pages_per_second(self) -> float:
        """End to end: worker start, crawl, linking."""
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def crawl_pages_per_second(self) -> float:
        """Scrapy's crawl alone (spider opened to closed)."""
        return self.pages / self.crawl_seconds if self.crawl_seconds else 0.0


_ELAPSED = re.compile(r"'elapsed_time_seconds': ([0-9.]+)")


def scrapy_elapsed(log_file: Path) -> float:
    """Scrapy's ``elapsed_time_seconds`` from a run's log (0 when it is not there)."""
    try:
        found = _ELAPSED.findall(log_file.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return 0.0
    return float(found[-1]) if found else 0.0


def run_pipeline(
    environment: CrawlEnvironment,
    server: DemoServer,
    authorisation_id: int,
    site_key: str,
    *,
    sample_memory: bool = True,
) -> PipelineRun:
    """Crawl and link once as the investigator, timing it and sampling memory."""
    pages_done = 0
    crawl_ended = 0.0
    site_cpu = 0.0

    def on_progress(event: dict[str, Any]) -> None:
        nonlocal pages_done, crawl_ended, site_cpu
        if event.get("event") == "page":
            pages_done = int(event.get("pages", pages_done))
        elif event.get("event") == "finished":
            crawl_ended = time.perf_counter()
            site_cpu = time.process_time() - own_cpu

    before = _tally(server)
    own_cpu, worker_cpu = time.process_time(), children_cpu()
    sampler = TreeMemorySampler(lambda: pages_done)
    started = time.perf_counter()
    if sample_memory:
        with sampler:
            outcome = _crawl(environment, authorisation_id, site_key, on_progress)
    else:
        outcome = _crawl(environment, authorisation_id, site_key, on_progress)
    seconds = time.perf_counter() - started
    run = outcome.run
    return PipelineRun(
        site_key=site_key,
        status=run.status,
        pages=run.pages_fetched,
        ads_captured=run.ads_captured,
        ads_unchanged=run.ads_unchanged,
        images_stored=run.images_stored,
        problems=len(run.problems),
        seconds=seconds,
        crawl_seconds=scrapy_elapsed(Path(run.log_file)),
        linking_seconds=time.perf_counter() - crawl_ended if crawl_ended else 0.0,
        traffic=traffic_since(server, before),
        worker_cpu=children_cpu() - worker_cpu,
        site_cpu=site_cpu,
        samples=sampler.samples,
    )


def _crawl(
    environment: CrawlEnvironment,
    authorisation_id: int,
    site_key: str,
    on_progress: Callable[[dict[str, Any]], None],
) -> CrawlAndLinkOutcome:
    return crawl_and_link(
        environment.settings.crawler_config(),
        environment.session_factory,
        environment.investigator,
        authorisation_id=authorisation_id,
        site_key=site_key,
        catalogue=environment.catalogue,
        on_progress=on_progress,
    )


# --- the bare Scrapy spider --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BareRun:
    """One run of the bare spider."""

    pages: int
    images: int
    seconds: float
    crawl_seconds: float
    traffic: Traffic
    # CPU seconds of the spider's process, and of this process (the demo site's threads).
    spider_cpu: float = 0.0
    site_cpu: float = 0.0

    @property
    def pages_per_second(self) -> float:
        """Process start to exit."""
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def crawl_pages_per_second(self) -> float:
        """Spider opened to closed."""
        return self.pages / self.crawl_seconds if self.crawl_seconds else 0.0


def demo_selectors() -> dict[str, str]:
    """The bundled ``demo`` profile's selectors for ad links, next pages and images."""
    bundled = resources.files("crawler") / "site_profiles" / "demo.yaml"
    config = yaml.safe_load(bundled.read_text(encoding="utf-8"))
    return {
        "ad_links": config["links"]["ad_links"],
        "next_page": config["links"]["next_page"],
        "images": config["fields"]["images"],
        "start": config["start_paths"][0],
    }


def bare_spider_main(base_url: str, concurrency: int) -> dict[str, float]:
    """Crawl the demo site with a minimal spider in this process; returns its counts."""
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess
    from scrapy.http import Response

    selectors = demo_selectors()

    class BareSpider(Spider):
        """List pages to ad pages to images; keeps nothing."""

        name = "bare"
        pages = 0
        images = 0

        async def start(self) -> Any:
            yield Request(base_url + selectors["start"], callback=self.parse_list)

        def parse_list(self, response: Response) -> Iterator[Request]:
            self.pages += 1
            for href in response.css(selectors["ad_links"]).getall():
                yield response.follow(href, self.parse_ad)
            for href in response.css(selectors["next_page"]).getall():
                yield response.follow(href, self.parse_list)

        def parse_ad(self, response: Response) -> Iterator[Request]:
            self.pages += 1
            for src in response.css(selectors["images"]).getall():
                # As adwatch: a photo in several ads is fetched for each of them.
                yield response.follow(src, self.parse_image, dont_filter=True)

        def parse_image(self, response: Response) -> None:
            self.images += 1

    process = CrawlerProcess(
        {
            "BOT_NAME": "bare",
            "USER_AGENT": "adwatch-benchmark-bare/1",
            "ROBOTSTXT_OBEY": True,
            "DOWNLOAD_DELAY": 0,
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "RETRY_TIMES": 1,
            "DOWNLOAD_TIMEOUT": 30,
            "LOG_LEVEL": "WARNING",
        }
    )
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler)
    process.start()
    spider = crawler.spider
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return {
        "pages": getattr(spider, "pages", 0),
        "images": getattr(spider, "images", 0),
        "crawl_seconds": float(stats.get("elapsed_time_seconds", 0.0)),
    }


def run_bare_spider(server: DemoServer, concurrency: int) -> BareRun:
    """The bare spider in its own process (Twisted's reactor runs once per process)."""
    command = [sys.executable, "-m", "benchmarks.bench_crawl", "--bare-spider", server.base_url]
    command += ["--concurrency", str(concurrency)]
    before = _tally(server)
    own_cpu, spider_cpu = time.process_time(), children_cpu()
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    own_cpu, spider_cpu = time.process_time() - own_cpu, children_cpu() - spider_cpu
    if finished.returncode != 0:
        raise RuntimeError(f"the bare spider failed:\n{finished.stdout}\n{finished.stderr}")
    counts = json.loads(finished.stdout.strip().splitlines()[-1])
    return BareRun(
        pages=int(counts["pages"]),
        images=int(counts["images"]),
        seconds=seconds,
        crawl_seconds=float(counts["crawl_seconds"]),
        traffic=traffic_since(server, before),
        spider_cpu=spider_cpu,
        site_cpu=own_cpu,
    )


# --- profiling the worker (benchmark only) -----------------------------------------------

# Put first on the worker's PYTHONPATH by ``--profile-worker``: it profiles ``crawler.worker``
# processes (the product is untouched) and leaves each profile in BENCH_CRAWL_PROFILE_DIR.
_PROFILE_HOOK = """\
import atexit, cProfile, os, sys

if "crawler.worker" in getattr(sys, "orig_argv", ()) and os.environ.get("BENCH_CRAWL_PROFILE_DIR"):
    _profile = cProfile.Profile()
    _profile.enable()

    def _dump_profile():
        _profile.disable()
        directory = os.environ["BENCH_CRAWL_PROFILE_DIR"]
        _profile.dump_stats(os.path.join(directory, f"worker-{os.getpid()}.prof"))

    atexit.register(_dump_profile)
"""


def install_worker_profiler(directory: Path) -> None:
    """Make every crawl worker started from now on write a cProfile file into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    hook_dir = directory / "hook"
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(_PROFILE_HOOK, encoding="utf-8")
    paths = [str(hook_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ["BENCH_CRAWL_PROFILE_DIR"] = str(directory)


def print_worker_profiles(directory: Path, limit: int = 30) -> None:
    """The functions that took the most time, own and cumulative, per worker profile."""
    import pstats

    for path in sorted(directory.glob("worker-*.prof")):
        print(f"\nprofile {path}")
        stats = pstats.Stats(str(path))
        stats.sort_stats("tottime").print_stats(limit)
        stats.sort_stats("cumulative").print_stats(limit)


# --- the measurements --------------------------------------------------------------------


@dataclass(slots=True)
class ThroughputResult:
    """Bare spider and pipeline on the same static site."""

    ads: int
    concurrency: int
    images_warmed: int
    bare: BareRun
    pipeline: PipelineRun

    @property
    def ratio(self) -> float:
        """Pipeline pages/s over bare pages/s, end to end."""
        return self.pipeline.pages_per_second / self.bare.pages_per_second

    @property
    def crawl_ratio(self) -> float:
        """The same for the crawls alone."""
        return self.pipeline.crawl_pages_per_second / self.bare.crawl_pages_per_second


def measure_throughput(ads: int, concurrency: int, seed: int) -> ThroughputResult:
    """Bare spider, then the pipeline (with memory sampled), on a site of ``ads`` static ads."""
    with running_demo_server(seed=seed, n_ads=site_size_for(ads, javascript=False)) as server:
        warmed = warm_images(server, javascript=False)
        bare = run_bare_spider(server, concurrency)
        with environment_for(server, concurrency) as environment:
            authorisation_id = authorise(environment, "demo", max_pages=2 * ads + 1000)
            pipeline = run_pipeline(environment, server, authorisation_id, "demo")
    return ThroughputResult(len(server.content.static_ads), concurrency, warmed, bare, pipeline)


@dataclass(frozen=True, slots=True)
class RenderedResult:
    """The pipeline on JavaScript-only ads, and how many photos those ads show."""

    ads: int
    image_uses: int
    run: PipelineRun


def measure_rendered(ads: int, concurrency: int, seed: int) -> RenderedResult:
    """The pipeline on ``ads`` JavaScript-only ads, rendered in Chromium."""
    with running_demo_server(seed=seed, n_ads=site_size_for(ads, javascript=True)) as server:
        warm_images(server, javascript=True)
        image_uses = sum(len(ad.image_names) for ad in server.content.js_ads)
        with environment_for(server, concurrency) as environment:
            authorisation_id = authorise(environment, "demo-js", max_pages=2 * ads + 1000)
            run = run_pipeline(environment, server, authorisation_id, "demo-js")
    return RenderedResult(len(server.content.js_ads), image_uses, run)


@dataclass(frozen=True, slots=True)
class RecrawlResult:
    """Two crawls of one unchanged site."""

    ads: int
    first: PipelineRun
    second: PipelineRun

    @property
    def share(self) -> float:
        """The second crawl's body bytes over the first's."""
        first = self.first.traffic.body_bytes
        return self.second.traffic.body_bytes / first if first else 0.0


def measure_recrawl(ads: int, concurrency: int, seed: int) -> RecrawlResult:
    """A first crawl of a site of ``ads`` static ads, then a second of the same site."""
    with running_demo_server(seed=seed, n_ads=site_size_for(ads, javascript=False)) as server:
        warm_images(server, javascript=False)
        with environment_for(server, concurrency) as environment:
            authorisation_id = authorise(environment, "demo", max_pages=2 * ads + 1000)
            first = run_pipeline(environment, server, authorisation_id, "demo", sample_memory=False)
            second = run_pipeline(
                environment, server, authorisation_id, "demo", sample_memory=False
            )
    return RecrawlResult(len(server.content.static_ads), first, second)


# --- report ------------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value:,.0f}"


def throughput_table(result: ThroughputResult) -> str:
    """Bare spider against the pipeline."""
    header = ["run", "pages", "images", "wall s", "pages/s", "crawl s", "pages/s (crawl)"]
    header += ["crawler CPU s", "site CPU s"]
    bare, pipeline = result.bare, result.pipeline
    rows = [
        [
            "bare Scrapy spider",
            f"{bare.pages:,}",
            f"{bare.images:,}",
            f"{bare.seconds:.1f}",
            f"{bare.pages_per_second:.1f}",
            f"{bare.crawl_seconds:.1f}",
            f"{bare.crawl_pages_per_second:.1f}",
            f"{bare.spider_cpu:.1f}",
            f"{bare.site_cpu:.1f}",
        ],
        [
            "adwatch pipeline",
            f"{pipeline.pages:,}",
            f"{pipeline.traffic.images:,}",
            f"{pipeline.seconds:.1f}",
            f"{pipeline.pages_per_second:.1f}",
            f"{pipeline.crawl_seconds:.1f}",
            f"{pipeline.crawl_pages_per_second:.1f}",
            f"{pipeline.worker_cpu:.1f}",
            f"{pipeline.site_cpu:.1f}",
        ],
        [
            "pipeline / bare",
            "",
            "",
            "",
            f"{result.ratio:.2f}",
            "",
            f"{result.crawl_ratio:.2f}",
            "",
            "",
        ],
    ]
    return align_table(header, rows)


def memory_table(rows: Sequence[tuple[str, MemoryProfile | None]]) -> str:
    """RSS at the points of a run, in MiB."""
    header = ["run", "pages", "first page", "10 %", "50 %", "100 %", "peak", "MiB/1k pages"]
    header.append("verdict")
    lines = []
    for name, profile in rows:
        if profile is None:
            lines.append([name, *([""] * 7), "no samples"])
            continue
        lines.append(
            [
                name,
                f"{profile.pages:,}",
                _mib(profile.start),
                _mib(profile.at_10),
                _mib(profile.at_50),
                _mib(profile.at_100),
                _mib(profile.peak),
                f"{profile.mib_per_1000_pages:+.1f}",
                f"{'flat' if profile.flat else 'grows'} ({profile.growth_share:+.0%})",
            ]
        )
    return align_table(header, lines)


def recrawl_table(result: RecrawlResult) -> str:
    """What the site sent to each crawl."""
    header = ["crawl", "pages", "images", "304", "ads new", "ads unchanged", "body bytes", "s"]
    rows = []
    for name, run in (("first", result.first), ("second", result.second)):
        rows.append(
            [
                name,
                f"{run.traffic.pages:,}",
                f"{run.traffic.images:,}",
                f"{run.traffic.not_modified:,}",
                f"{run.ads_captured:,}",
                f"{run.ads_unchanged:,}",
                f"{run.traffic.body_bytes:,}",
                f"{run.seconds:.1f}",
            ]
        )
    return align_table(header, rows)


def summary_table(figures: dict[str, Any]) -> str:
    """Each measure beside its target."""
    rows = []
    throughput = figures.get("throughput")
    if throughput:
        rows.append(
            [
                "pipeline / bare Scrapy, pages/s end to end",
                f"{throughput['ratio']:.2f} ({throughput['pipeline_pages_per_second']:.1f} / "
                f"{throughput['bare_pages_per_second']:.1f})",
                f">= {TARGET_RATIO}",
                _met(throughput["ratio"] >= TARGET_RATIO),
            ]
        )
        rows.append(
            [
                "pipeline / bare Scrapy, pages/s while crawling",
                f"{throughput['crawl_ratio']:.2f}",
                f"(>= {TARGET_RATIO})",
                _met(throughput["crawl_ratio"] >= TARGET_RATIO),
            ]
        )
    rendered = figures.get("rendered")
    if rendered:
        rows.append(
            [
                "rendered pages/s end to end (while crawling)",
                f"{rendered['pages_per_second']:.1f} ({rendered['crawl_pages_per_second']:.1f})",
                f">= {TARGET_RENDERED_PER_SECOND:.0f} on 2 cores",
                _met(rendered["pages_per_second"] >= TARGET_RENDERED_PER_SECOND),
            ]
        )
    for key, name in (("memory_static", "static"), ("memory_rendered", "rendered")):
        memory = figures.get(key)
        if memory:
            rows.append(
                [
                    f"memory, {name}, {memory['pages']:,} pages (MiB 10/50/100 %, peak)",
                    f"{memory['at_10']:,.0f} / {memory['at_50']:,.0f} / {memory['at_100']:,.0f},"
                    f" {memory['peak']:,.0f}",
                    "flat",
                    _met(memory["growth_share"] < FLAT_GROWTH),
                ]
            )
    recrawl = figures.get("recrawl")
    if recrawl:
        rows.append(
            [
                f"recrawl of {recrawl['ads']:,} unchanged ads, bytes second / first",
                f"{recrawl['share']:.1%} ({recrawl['second_bytes']:,} / "
                f"{recrawl['first_bytes']:,})",
                f"<= {TARGET_RECRAWL_SHARE:.0%}",
                _met(recrawl["share"] <= TARGET_RECRAWL_SHARE),
            ]
        )
    return align_table(["measure", "result", "target", "met"], rows)


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


# --- entry point -------------------------------------------------------------------------


def report_throughput(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Bare spider against the pipeline, and the pipeline's memory, on static pages."""
    print(
        f"\nthroughput and memory, static pages: --ads {args.ads:,}, concurrency "
        f"{args.concurrency}, no delay, seed {args.seed}",
        flush=True,
    )
    result = measure_throughput(args.ads, args.concurrency, args.seed)
    pipeline = result.pipeline
    print(throughput_table(result))
    print(
        f"pipeline: status {pipeline.status}, {pipeline.ads_captured:,} ads and "
        f"{pipeline.images_stored:,} images stored, {pipeline.problems} problems, linking "
        f"and bookkeeping after the crawl {pipeline.linking_seconds:.1f} s; "
        f"{result.images_warmed:,} photos drawn beforehand",
        flush=True,
    )
    # The worker forks its compute and store processes, which share its pages until
    # either writes them: RSS counts those pages once per process, PSS shares them out.
    static = memory_profile(pipeline.samples, pipeline.pages, tree_pss)
    rows = [
        ("static: worker + pipeline processes (RSS, MiB)", memory_profile(
            pipeline.samples, pipeline.pages, tree_rss)),
        ("static: worker + pipeline processes (PSS, MiB)", static),
    ]  # fmt: skip
    print(memory_table(rows), flush=True)
    print(role_table(pipeline.samples, pipeline.pages), flush=True)
    if args.samples:
        write_samples(pipeline.samples, args.samples / "static.csv")
    figures["throughput"] = {
        "ads": result.ads,
        "concurrency": args.concurrency,
        "bare": asdict(result.bare),
        "pipeline_pages": pipeline.pages,
        "pipeline_seconds": pipeline.seconds,
        "pipeline_crawl_seconds": pipeline.crawl_seconds,
        "pipeline_cpu": pipeline.worker_cpu,
        "bare_pages_per_second": result.bare.pages_per_second,
        "pipeline_pages_per_second": pipeline.pages_per_second,
        "ratio": result.ratio,
        "crawl_ratio": result.crawl_ratio,
    }
    figures["memory_static"] = asdict(static) if static else None


def report_rendered(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """The pipeline on rendered pages: rate and memory, by kind of process."""
    print(
        f"\nrendered pages (Chromium): --rendered-ads {args.rendered_ads:,}, concurrency "
        f"{args.rendered_concurrency}, no delay, seed {args.seed}",
        flush=True,
    )
    result = measure_rendered(args.rendered_ads, args.rendered_concurrency, args.seed)
    rendered = result.run
    print(
        f"{rendered.pages:,} rendered pages ({rendered.traffic.list_pages:,} list, "
        f"{rendered.traffic.ad_pages:,} ad) in {rendered.seconds:.1f} s end to end "
        f"({rendered.pages_per_second:.1f} pages/s), crawl {rendered.crawl_seconds:.1f} s "
        f"({rendered.crawl_pages_per_second:.1f} pages/s); status {rendered.status}, "
        f"{rendered.ads_captured:,} ads and {rendered.images_stored:,} images stored, "
        f"{rendered.problems:,} problems (each refused tracker and beacon is one); "
        f"crawler CPU {rendered.worker_cpu:.1f} s, site CPU {rendered.site_cpu:.1f} s\n"
        f"photo requests answered by the site: {rendered.traffic.images:,} for "
        f"{result.image_uses:,} photos on the ads (Chromium loads a rendered page's photos "
        "too; those it drops when the page closes show on stderr as broken pipes)",
        flush=True,
    )
    tree = memory_profile(rendered.samples, rendered.pages)
    proportional = memory_profile(rendered.samples, rendered.pages, tree_pss)
    worker = memory_profile(rendered.samples, rendered.pages, worker_rss)
    rows = [
        ("rendered: worker + browser (RSS, MiB)", tree),
        ("rendered: worker + browser (PSS, MiB)", proportional),
        ("rendered: worker alone (RSS, MiB)", worker),
    ]
    print(memory_table(rows), flush=True)
    print(role_table(rendered.samples, rendered.pages), flush=True)
    if args.samples:
        write_samples(rendered.samples, args.samples / "rendered.csv")
    figures["rendered"] = {
        "ads": result.ads,
        "image_uses": result.image_uses,
        "image_requests": rendered.traffic.images,
        "concurrency": args.rendered_concurrency,
        "pages": rendered.pages,
        "seconds": rendered.seconds,
        "crawl_seconds": rendered.crawl_seconds,
        "pages_per_second": rendered.pages_per_second,
        "crawl_pages_per_second": rendered.crawl_pages_per_second,
    }
    figures["memory_rendered"] = asdict(tree) if tree else None
    figures["memory_rendered_pss"] = asdict(proportional) if proportional else None
    figures["memory_rendered_worker"] = asdict(worker) if worker else None


def report_recrawl(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Two crawls of an unchanged site, and what the site sent to each."""
    print(
        f"\nrecrawl of an unchanged site: --recrawl-ads {args.recrawl_ads:,}, concurrency "
        f"{args.concurrency}, seed {args.seed}",
        flush=True,
    )
    recrawl = measure_recrawl(args.recrawl_ads, args.concurrency, args.seed)
    print(recrawl_table(recrawl), flush=True)
    figures["recrawl"] = {
        "ads": recrawl.ads,
        "first_bytes": recrawl.first.traffic.body_bytes,
        "second_bytes": recrawl.second.traffic.body_bytes,
        "share": recrawl.share,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the measurements asked for, printing each table as it comes; return the figures."""
    figures: dict[str, Any] = {"machine": machine(), "load_before": load_average()}
    if args.profile_worker:
        install_worker_profiler(args.profile_worker)
        print(f"profiling crawl workers into {args.profile_worker}: their times are not valid")
    print(f"machine: {figures['machine']}", flush=True)
    print(f"load average before: {figures['load_before']}", flush=True)
    if args.ads:
        report_throughput(args, figures)
    if args.rendered_ads and not args.skip_rendered:
        report_rendered(args, figures)
    if args.recrawl_ads:
        report_recrawl(args, figures)
    figures["load_after"] = load_average()
    print(f"\nload average after: {figures['load_after']}")
    print()
    print(summary_table(figures))
    if args.profile_worker:
        print_worker_profiles(args.profile_worker)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ads", type=int, default=9100, help="static ads for throughput and memory (0: skip)"
    )
    parser.add_argument(
        "--rendered-ads", type=int, default=600, help="JavaScript-only ads to render (0: skip)"
    )
    parser.add_argument("--skip-rendered", action="store_true", help="no Chromium run")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="concurrent requests (the profile's maximum)"
    )
    parser.add_argument(
        "--rendered-concurrency", type=int, default=4, help="pages rendered at a time"
    )
    parser.add_argument(
        "--recrawl-ads", type=int, default=1000, help="static ads of the recrawled site (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--samples", type=Path, metavar="DIR", help="write the memory samples as CSV into DIR"
    )
    parser.add_argument(
        "--profile-worker",
        type=Path,
        metavar="DIR",
        help="cProfile every crawl worker into DIR and print where the time went",
    )
    parser.add_argument("--bare-spider", metavar="URL", help=argparse.SUPPRESS)  # child mode
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.bare_spider:
        print(json.dumps(bare_spider_main(args.bare_spider, args.concurrency)))
        return
    run(args)


if __name__ == "__main__":
    main()
