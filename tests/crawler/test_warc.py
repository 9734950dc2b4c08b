"""WARC evidence on SQLite and PostgreSQL: real crawls of the demo site on loopback write
files that warcio validates, with a request and a response record of every kept ad's page
and images and nothing of what minimisation removed; the writer alone (fed real Scrapy
responses) rotates, drops credentials, labels rendered pages, and survives a killed worker
and a purge that closes the case under it."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import ipaddress
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from scrapy import Request
from scrapy.http import HtmlResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker
from warcio.statusandheaders import StatusAndHeaders

from adwatch.demo.content import DEMO_CAMERA, DemoSiteContent
from adwatch.demo.site import running_demo_server
from adwatch.services.demo import point_demo_profile_at
from adwatch.services.purge import run_purge
from adwatch.settings import Settings
from crawler.indicator_model import load_indicator_model
from crawler.items import Exchange
from crawler.warc import (
    FETCHED_AT,
    RENDERED_META,
    RunWarcWriter,
    StoredAd,
    exchange_only,
    unfinished_path,
)
from crawler.worker import software_version
from legal_policy.minimisation import MinimisationRecord, MinimisedAd, MinimisedImage
from legal_policy.purge import UNFINISHED_WARC_SUFFIX
from storage.blobstore import BlobStore
from storage.models import Ad, AdImage, CrawlRun, WarcFile
from tests.conftest import People
from tests.support import Store, authorise, catalogue_of, crawl, files_under, slow_down

SEED = 11
N_ADS = 10

# --- reading WARC files ---------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One WARC record as read back, its digests verified."""

    file: str
    type: str
    headers: dict[str, str]
    http: StatusAndHeaders | None
    payload: bytes

    @property
    def id(self) -> str:
        return self.headers["WARC-Record-ID"]

    @property
    def uri(self) -> str | None:
        return self.headers.get("WARC-Target-URI")

    @property
    def ad(self) -> int | None:
        value = self.headers.get("WARC-Adwatch-Ad")
        return int(value) if value else None

    def fields(self) -> dict[str, list[str]]:
        """An ``application/warc-fields`` payload as name → values."""
        found: dict[str, list[str]] = {}
        for line in self.payload.decode("utf-8").splitlines():
            name, value = line.split(": ", 1)
            found.setdefault(name, []).append(value)
        return found


def read_records(path: Path) -> list[Record]:
    """Every record of a WARC file, each read to its end with warcio checking its block and
    payload digests, and the payload digest recomputed here as well."""
    records = []
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream, check_digests="raise"):
            payload = record.raw_stream.read()
            headers = dict(record.rec_headers.headers)
            assert record.digest_checker.passed is True, (path, headers)
            if "WARC-Payload-Digest" in headers:
                digest = base64.b32encode(hashlib.sha256(payload).digest()).decode()
                assert headers["WARC-Payload-Digest"] == f"sha256:{digest}"
            records.append(
                Record(path.name, record.rec_type, headers, record.http_headers, payload)
            )
    return records


def warc_paths(settings: Settings) -> list[Path]:
    return sorted(files_under(settings.data_dir / "warc"))


def all_records(settings: Settings) -> list[Record]:
    return [record for path in warc_paths(settings) for record in read_records(path)]


def checker_passes(paths: list[Path]) -> bool:
    """``warcio check`` (its own code path) over the files."""
    return (
        Checker(SimpleNamespace(inputs=[str(p) for p in paths], verbose=False)).process_all() == 0
    )


def decompressed(settings: Settings) -> bytes:
    """Every WARC file's records, uncompressed (one gzip member per record)."""
    return b"".join(gzip.decompress(path.read_bytes()) for path in warc_paths(settings))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def warc_date(record: Record) -> datetime:
    return datetime.strptime(record.headers["WARC-Date"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC
    )


# --- real crawls ---------------------------------------------------------------------------


@dataclass
class Demo:
    base_url: str
    content: DemoSiteContent


@pytest.fixture
def demo(settings: Settings) -> Iterator[Demo]:
    """The demo site with its faults (a malformed ad, a 500, a broken image) on loopback."""
    with running_demo_server(port=0, seed=SEED, n_ads=N_ADS, faults=True) as server:
        point_demo_profile_at(settings, server.base_url)
        yield Demo(server.base_url, server.content)


def test_every_kept_ad_has_its_page_and_images_in_warc_files_that_validate(
    settings: Settings, session_factory: sessionmaker[Session], people: People, demo: Demo
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.status == "finished" and outcome.run.ads_captured > 0

    paths = warc_paths(settings)
    assert paths and all(p.name.endswith(".warc.gz") for p in paths)  # nothing left .open
    assert checker_passes(paths)
    with session_factory() as session:
        run = session.get(CrawlRun, outcome.run.run_id)
        assert run is not None and run.finished_at is not None
        ads = session.scalars(select(Ad).where(Ad.run_id == run.id)).all()
        assert len(ads) == outcome.run.ads_captured
        images = {ad.id: [i for i in ad.images if i.blob_sha256] for ad in ads}
        rows = session.scalars(select(WarcFile).where(WarcFile.run_id == run.id)).all()
        started, finished, profile_sha256 = run.started_at, run.finished_at, run.profile_sha256
        expiry = max(ad.expires_at for ad in ads)
    assert sorted(settings.data_dir / row.path for row in rows) == paths
    records = {path.name: read_records(path) for path in paths}
    for row in rows:
        path = settings.data_dir / row.path
        assert row.closed_at is not None and row.sha256 == sha256_of(path)
        assert row.size == path.stat().st_size and row.records == len(records[path.name])
        assert row.expires_at == expiry

    # Every file opens with the warcinfo naming software, run, case, authorisation, model.
    for file_records in records.values():
        info = file_records[0]
        assert info.type == "warcinfo"
        fields = {name: values[0] for name, values in info.fields().items()}
        assert fields["software"].startswith(f"adwatch/{software_version()} ")
        assert fields["adwatch-run"] == str(outcome.run.run_id)
        assert fields["adwatch-case"] == "CASE-1"
        assert fields["adwatch-authorisation"] == str(authorisation_id)
        assert fields["adwatch-legal-basis"] == "wpg-9"
        assert fields["adwatch-indicator-model"] == load_indicator_model().version
        assert fields["adwatch-site-profile-sha256"] == profile_sha256
        assert all(r.headers["WARC-Warcinfo-ID"] == info.id for r in file_records[1:])

    flat = [record for file_records in records.values() for record in file_records]
    blobs = BlobStore(settings.blob_dir)
    for ad in ads:
        of_ad = [r for r in flat if r.ad == ad.id]
        assert len({r.file for r in of_ad}) == 1  # one ad's records never span two files
        position = {r.id: i for i, r in enumerate(flat)}
        kept = [(ad.url, ad.raw_sha256, "text/html")] + [
            (image.url, image.blob_sha256, "image/jpeg") for image in images[ad.id]
        ]
        for url, sha256, media in kept:
            [response] = [r for r in of_ad if r.type == "response" and r.uri == url]
            request = flat[position[response.id] - 1]
            assert request.type == "request" and request.uri == url
            assert request.headers["WARC-Concurrent-To"] == response.id
            assert request.http is not None and request.http.protocol == "GET"
            # The payload is the minimised copy adwatch kept, byte for byte.
            assert hashlib.sha256(response.payload).hexdigest() == sha256
            assert response.payload == blobs.get(str(sha256))
            assert response.headers["WARC-Adwatch-Blob-SHA256"] == sha256
            assert response.headers["WARC-Adwatch-Minimised"]
            assert response.headers["WARC-IP-Address"] == "127.0.0.1"
            assert started <= warc_date(response) <= finished
            assert response.http is not None and response.http.get_statuscode() == "200"
            assert response.http.get_header("Content-Type").startswith(media)
            assert response.http.get_header("Content-Length") == str(len(response.payload))
        [metadata] = [r for r in of_ad if r.type == "metadata"]
        [page] = [r for r in of_ad if r.type == "response" and r.uri == ad.url]
        assert metadata.headers["WARC-Refers-To"] == page.id
        assert metadata.fields()["page"] == [f"recorded {page.id}"]
        assert page.headers["WARC-Adwatch-Minimised"].startswith("raw_page=keep;")

    # Nothing of ads not kept (malformed, HTTP 500) nor the image that is no image.
    kept_urls = {ad.url for ad in ads} | {i.url for found in images.values() for i in found}
    assert {r.uri for r in flat if r.type in ("request", "response", "resource")} == kept_urls
    assert {r.ad for r in flat if r.type != "warcinfo"} == {ad.id for ad in ads}
    for record in flat:
        if record.http is not None:
            names = {name.lower() for name, _ in record.http.headers}
            assert not names & {"cookie", "set-cookie", "authorization"}
    # Other people's reviews and the camera's metadata appear in no record.
    everything = decompressed(settings)
    assert DEMO_CAMERA.encode() not in everything
    assert b'class="reviews"' not in everything
    reviews = [review.text for found in demo.content.reviews.values() for review in found]
    assert reviews and not [text for text in reviews if text.encode() in everything]


def test_a_basis_that_drops_the_page_writes_no_page_and_no_phone_number(
    settings: Settings, session_factory: sessionmaker[Session], people: People, demo: Demo
) -> None:
    # wpg-10: no raw page, title and text masked, phones pseudonymised, images kept.
    authorisation_id = authorise(settings, session_factory, people.legal, legal_basis="wpg-10")
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    assert outcome.run.ads_captured > 0

    assert checker_passes(warc_paths(settings))
    records = all_records(settings)
    with session_factory() as session:
        ad_urls = set(session.scalars(select(Ad.url)).all())
        image_urls = set(session.scalars(select(AdImage.url)).all())
    assert len(ad_urls) == outcome.run.ads_captured and image_urls
    payload_records = [r for r in records if r.type in ("request", "response", "resource")]
    assert not [r for r in payload_records if r.uri in ad_urls]
    assert {r.uri for r in payload_records} == image_urls
    metadata = [r for r in records if r.type == "metadata"]
    assert {r.uri for r in metadata} == ad_urls
    for record in metadata:
        fields = record.fields()
        assert fields["page"] == ["withheld (raw_page=drop)"]
        assert fields["dropped"] == ["raw_page"]
        assert "WARC-Refers-To" not in record.headers

    everything = decompressed(settings)
    for ad in demo.content.static_ads:
        for form in (ad.phone_e164, ad.phone_e164.lstrip("+"), ad.phone_display):
            assert form.encode() not in everything, f"a number of {ad.ad_id} is in a WARC"
        assert ad.text.split("\n")[0].encode() not in everything


def test_a_recrawl_of_an_unchanged_site_adds_no_records(
    settings: Settings, session_factory: sessionmaker[Session], people: People, demo: Demo
) -> None:
    authorisation_id = authorise(settings, session_factory, people.legal)
    first, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    before = {path: path.read_bytes() for path in warc_paths(settings)}
    assert before

    second, _ = crawl(settings, session_factory, people.investigator, authorisation_id)

    assert second.run.ads_captured == 0 and second.run.ads_unchanged == first.run.ads_captured
    assert {path: path.read_bytes() for path in warc_paths(settings)} == before
    with session_factory() as session:
        assert not session.scalars(
            select(WarcFile).where(WarcFile.run_id == second.run.run_id)
        ).all()


def test_purge_removes_a_runs_warc_files_with_its_logs(
    settings: Settings, session_factory: sessionmaker[Session], people: People, demo: Demo
) -> None:
    now = datetime.now(UTC)
    authorisation_id = authorise(settings, session_factory, people.legal,
                                 valid_until=now + timedelta(days=1))  # fmt: skip
    outcome, _ = crawl(settings, session_factory, people.investigator, authorisation_id)
    paths = warc_paths(settings)
    assert paths

    purged = run_purge(
        session_factory,
        people.legal,
        catalogue_of(settings, session_factory),
        blob_store=BlobStore(settings.blob_dir),
        log_dir=settings.log_dir,
        snapshots=None,
        now=now + timedelta(days=1 + 182, hours=1),
        default_region=settings.default_phone_region,
    )

    assert purged.receipt.counts["warc_files"] == len(paths)
    assert purged.receipt.counts["runs_scrubbed"] == 1
    assert purged.receipt.warcs_digest
    assert not warc_paths(settings)
    assert not files_under(settings.log_dir)
    with session_factory() as session:
        assert not session.scalars(select(WarcFile)).all()
        run = session.get(CrawlRun, outcome.run.run_id)
        assert run is not None and run.logs_purged_at is not None


def test_a_run_killed_and_resumed_leaves_valid_files_and_names_any_ad_left_unrecorded(
    settings: Settings, session_factory: sessionmaker[Session], people: People
) -> None:
    pid: list[int] = []

    def kill_after_some_ads(event: dict[str, object]) -> None:
        if event.get("event") == "started":
            pid.append(int(event["pid"]))  # type: ignore[call-overload]
        if event.get("event") == "ad" and event.get("ads") == 3:
            os.kill(pid[0], signal.SIGKILL)

    with running_demo_server(port=0, seed=4, n_ads=8) as server:
        point_demo_profile_at(settings, server.base_url)
        slow_down(settings, 0.2)
        authorisation_id = authorise(settings, session_factory, people.legal)
        killed, _ = crawl(settings, session_factory, people.investigator, authorisation_id,
                          on_progress=kill_after_some_ads)  # fmt: skip
        assert killed.run.status == "failed"
        [left_open] = _rows(session_factory)
        assert left_open.closed_at is None
        resumed, _ = crawl(settings, session_factory, people.investigator, authorisation_id,
                           resume=killed.run.run_id)  # fmt: skip

    assert resumed.run.status == "finished"
    paths = warc_paths(settings)
    assert len(paths) == 2 and checker_passes(paths)
    rows = _rows(session_factory)
    assert all(row.sha256 == sha256_of(settings.data_dir / row.path) for row in rows)
    with session_factory() as session:
        stored = set(session.scalars(select(Ad.id).where(Ad.run_id == killed.run.run_id)))
    recorded = {r.ad for r in all_records(settings) if r.type == "metadata"}
    assert recorded <= stored and len(stored) == len(server.content.static_ads)
    # Only an ad whose commit the kill caught before its records were synced may lack
    # them, and the resumed run must then say which.
    reported = [p["message"] for p in resumed.run.problems if p["kind"] == "evidence_missing"]
    if stored - recorded:
        missing = ", ".join(map(str, sorted(stored - recorded)))
        assert len(reported) == 1 and reported[0].endswith(f"(ads {missing})")
    else:
        assert not reported


# --- the writer alone ----------------------------------------------------------------------

CAPTURED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 5, 1, tzinfo=UTC)
KEEP_ALL = {
    "title": "keep",
    "text": "keep",
    "city": "keep",
    "posted_at": "keep",
    "phones": "keep",
    "images": "keep",
    "raw_page": "keep",
}


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def _page(url: str, *, meta: dict[str, object] | None = None, **headers: str) -> HtmlResponse:
    request = Request(url, meta={FETCHED_AT: CAPTURED, **(meta or {})})
    return HtmlResponse(
        url,
        status=200,
        headers={"Content-Type": "text/html; charset=utf-8", **headers},
        body=b"<html>as fetched</html>",
        encoding="utf-8",
        request=request,
        ip_address=ipaddress.ip_address("127.0.0.1"),
    )


def _image(url: str, status: int = 200) -> Response:
    return Response(
        url,
        status=status,
        headers={"Content-Type": "image/jpeg"} if status == 200 else {},
        body=b"",
        request=Request(url, meta={FETCHED_AT: CAPTURED}),
        ip_address=ipaddress.ip_address("127.0.0.1"),
    )


def _stored(
    ad_id: int,
    *,
    page: Response | None = None,
    rules: dict[str, str] | None = None,
    image_status: int = 200,
    keep_pixels: bool = True,
) -> StoredAd:
    url = f"http://demo.test/ad/{ad_id}"
    image_url = f"http://demo.test/images/{ad_id}.jpg"
    data = _jpeg((ad_id * 20 % 256, 90, 140))
    rules = rules or KEEP_ALL
    ad = MinimisedAd(
        url=url,
        title="Synthetic title",
        text="Synthetic text",
        city="Haarlem",
        posted_at=None,
        phones=(),
        images=(
            MinimisedImage(image_url, data if keep_pixels else None, 1, (1,), 32, 24, "image/jpeg"),
        ),
        raw_page=None if rules["raw_page"] == "drop" else f"<html>ad {ad_id}</html>".encode(),
    )
    counts = {"raw_page.third_party_elements_removed": 1} if ad.raw_page else {}
    if not keep_pixels:
        counts["images.pixels_removed"] = 1
    record = MinimisationRecord(
        rules=rules,
        dropped=tuple(name for name, rule in rules.items() if rule == "drop"),
        counts=counts,
    )
    return StoredAd(
        ad_id=ad_id,
        captured_at=CAPTURED,
        expires_at=EXPIRES + timedelta(days=ad_id),
        ad=ad,
        minimisation=record,
        page=exchange_only(page or _page(url)),
        images={image_url: Exchange.of(_image(image_url, image_status))},
    )


@pytest.fixture
def store(session_factory: sessionmaker[Session], people: People) -> Store:
    """A case with an authorisation and a run record (ads written as the crawler does)."""
    return Store(session_factory, people.legal)


def _writer(settings: Settings, session_factory: sessionmaker[Session], store: Store,
            **options: int) -> RunWarcWriter:  # fmt: skip
    _, _, run_id, case_id = store.ids
    return RunWarcWriter(
        session_factory=session_factory,
        data_dir=settings.data_dir,
        warc_dir=settings.data_dir / "warc",
        run_id=run_id,
        case_id=case_id,
        info={"software": "adwatch/test", "adwatch-run": str(run_id)},
        **options,
    )


def _rows(session_factory: sessionmaker[Session]) -> list[WarcFile]:
    with session_factory() as session:
        return list(session.scalars(select(WarcFile).order_by(WarcFile.path)))


def test_files_rotate_at_the_size_limit_and_an_ad_never_spans_two(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    writer = _writer(settings, session_factory, store, max_file_bytes=1)
    for ad_id in (1, 2, 3):
        writer.write_ad(_stored(ad_id))
    writer.close()

    paths = warc_paths(settings)
    run_id = store.ids[2]
    assert [p.name for p in paths] == [f"run-{run_id}-0000{n}.warc.gz" for n in (1, 2, 3)]
    assert checker_passes(paths)
    for ad_id, path in enumerate(paths, start=1):
        records = read_records(path)
        assert records[0].type == "warcinfo"
        assert records[0].fields()["adwatch-file-sequence"] == [str(ad_id)]
        assert {r.ad for r in records[1:]} == {ad_id}
        # page and image: request then response; then the metadata record
        assert [r.type for r in records[1:]] == ["request", "response"] * 2 + ["metadata"]
    rows = _rows(session_factory)
    assert [settings.data_dir / row.path for row in rows] == paths
    assert [row.expires_at for row in rows] == [EXPIRES + timedelta(days=n) for n in (1, 2, 3)]
    assert all(row.sha256 == sha256_of(settings.data_dir / row.path) for row in rows)

    # With room to spare, one file holds them all.
    for path in paths:
        path.unlink()
    roomy = _writer(settings, session_factory, store)
    for ad_id in (4, 5):
        roomy.write_ad(_stored(ad_id))
    roomy.close()
    [path] = warc_paths(settings)
    assert {r.ad for r in read_records(path)[1:]} == {4, 5}


def test_credentials_and_the_wire_framing_never_reach_a_record(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    url = "http://demo.test/ad/7"
    page = _page(
        url,
        **{
            "Set-Cookie": "session=secret-session-value",
            "Content-Encoding": "gzip",
            "Transfer-Encoding": "chunked",
            "Content-Length": "999",
            "X-Served-By": "demo-1",
        },
    )
    page.request.headers["Cookie"] = "visitor=secret-cookie-value"  # type: ignore[union-attr]
    page.request.headers["Authorization"] = "Basic c2VjcmV0"  # type: ignore[union-attr]
    page.request.headers["X-Trace"] = "t-1"  # type: ignore[union-attr]
    writer = _writer(settings, session_factory, store)
    writer.write_ad(_stored(7, page=page))
    writer.close()

    records = all_records(settings)
    [request] = [r for r in records if r.type == "request" and r.uri == url]
    [response] = [r for r in records if r.type == "response" and r.uri == url]
    assert request.http is not None and response.http is not None
    assert request.http.get_header("X-Trace") == "t-1"
    assert request.http.get_header("Host") == "demo.test"
    assert request.http.get_header("Cookie") is None
    assert request.http.get_header("Authorization") is None
    assert response.http.get_header("Set-Cookie") is None
    assert response.http.get_header("X-Served-By") == "demo-1"
    assert response.http.get_header("Content-Encoding") is None
    assert response.http.get_header("Transfer-Encoding") is None
    assert response.http.get_header("Content-Length") == str(len(response.payload))
    assert response.payload == b"<html>ad 7</html>"  # the kept page, not the bytes fetched
    everything = decompressed(settings)
    for secret in (b"secret-session-value", b"secret-cookie-value", b"c2VjcmV0", b"as fetched"):
        assert secret not in everything


def test_a_rendered_page_is_a_resource_record_labelled_as_the_rendered_dom(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    url = "http://demo.test/ad/8"
    writer = _writer(settings, session_factory, store)
    writer.write_ad(_stored(8, page=_page(url, meta={RENDERED_META: True})))
    writer.close()

    records = all_records(settings)
    of_page = [r for r in records if r.uri == url and r.type != "metadata"]
    assert [r.type for r in of_page] == ["request", "resource"]
    request, resource = of_page
    assert request.headers["WARC-Concurrent-To"] == resource.id
    assert resource.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resource.headers["WARC-Adwatch-Rendered-DOM"].startswith("yes ")
    assert resource.headers["WARC-Adwatch-Minimised"].startswith("raw_page=keep;")
    assert resource.payload == b"<html>ad 8</html>"
    [metadata] = [r for r in records if r.type == "metadata"]
    assert metadata.headers["WARC-Refers-To"] == resource.id


def test_an_image_not_fetched_again_is_the_304_exchange_and_the_kept_copy(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    stored = _stored(9, image_status=304)
    [image] = stored.ad.images
    writer = _writer(settings, session_factory, store)
    writer.write_ad(stored)
    writer.close()

    of_image = [r for r in all_records(settings) if r.uri == image.url]
    assert [r.type for r in of_image] == ["request", "response", "resource"]
    _, not_modified, kept = of_image
    assert not_modified.http is not None and not_modified.http.get_statuscode() == "304"
    assert not_modified.payload == b""
    assert kept.headers["WARC-Concurrent-To"] == not_modified.id
    assert kept.payload == image.data and kept.headers["Content-Type"] == "image/jpeg"


def test_what_the_basis_withholds_is_named_in_metadata_and_not_written(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    rules = {**KEEP_ALL, "images": "mask", "raw_page": "drop"}
    stored = _stored(10, rules=rules, keep_pixels=False)
    writer = _writer(settings, session_factory, store)
    writer.write_ad(stored)
    writer.close()

    records = all_records(settings)
    assert [r.type for r in records] == ["warcinfo", "metadata"]
    fields = records[1].fields()
    assert fields["page"] == ["withheld (raw_page=drop)"]
    assert fields["images"] == ["recorded=0; withheld=1 (images=mask)"]
    assert "count" in fields and "images.pixels_removed=1" in fields["count"]


def test_a_killed_writer_is_cut_back_to_its_last_complete_ad_when_the_run_resumes(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    killed = _writer(settings, session_factory, store)
    killed.write_ad(_stored(11))
    killed.write_ad(_stored(12))
    [row] = _rows(session_factory)
    assert row.closed_at is None and row.sha256 is None
    unfinished = unfinished_path(settings.data_dir / row.path)
    assert unfinished.name.endswith(UNFINISHED_WARC_SUFFIX)
    # A record cut off in the middle, as SIGKILL leaves it; the kernel closes the killed
    # writer's descriptor, and its lock goes with it.
    with unfinished.open("ab") as stream:
        stream.write(b"\x1f\x8b\x08\x00half a record")
    assert killed._file is not None
    killed._file.out.raw.close()

    resumed = _writer(settings, session_factory, store)
    assert resumed.recover_unfinished() == 1

    [path] = warc_paths(settings)
    assert checker_passes([path])
    assert {r.ad for r in read_records(path)[1:]} == {11, 12}
    [row] = _rows(session_factory)
    assert row.closed_at is not None and row.sha256 == sha256_of(path)
    # The resumed run writes its ads to a file of its own.
    resumed.write_ad(_stored(13))
    resumed.close()
    run_id = store.ids[2]
    assert [p.name for p in warc_paths(settings)] == [
        f"run-{run_id}-00001.warc.gz", f"run-{run_id}-00002.warc.gz"
    ]  # fmt: skip


def test_a_worker_joining_the_run_leaves_a_live_workers_open_file_alone(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    first = _writer(settings, session_factory, store)
    first.write_ad(_stored(16))
    joining = _writer(settings, session_factory, store)
    assert joining.recover_unfinished() == 0  # the first worker holds its file's lock
    joining.write_ad(_stored(17))
    first.write_ad(_stored(18))  # still writing to its own file
    joining.close()
    first.close()

    paths = warc_paths(settings)
    assert len(paths) == 2 and checker_passes(paths)
    assert {r.ad for r in all_records(settings) if r.type == "metadata"} == {16, 17, 18}
    assert all(row.closed_at is not None and row.sha256 == sha256_of(settings.data_dir / row.path)
               for row in _rows(session_factory))  # fmt: skip
    assert joining.recover_unfinished() == 0


def test_a_worker_killed_beside_a_live_one_has_only_its_own_file_recovered(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    alive = _writer(settings, session_factory, store)
    alive.write_ad(_stored(19))
    killed = _writer(settings, session_factory, store)
    killed.write_ad(_stored(20))
    assert killed._file is not None
    killed._file.out.raw.close()  # what the kernel does at SIGKILL

    assert _writer(settings, session_factory, store).recover_unfinished() == 1
    open_rows = [row for row in _rows(session_factory) if row.closed_at is None]
    assert len(open_rows) == 1  # the live worker's
    alive.write_ad(_stored(21))
    alive.close()
    assert {r.ad for r in all_records(settings) if r.type == "metadata"} == {19, 20, 21}
    assert checker_passes(warc_paths(settings))


def test_closing_the_case_while_the_run_writes_leaves_no_evidence_behind(
    settings: Settings, session_factory: sessionmaker[Session], store: Store, people: People
) -> None:
    writer = _writer(settings, session_factory, store)
    writer.write_ad(_stored(14))
    [unfinished] = files_under(settings.data_dir / "warc")
    assert unfinished.name.endswith(UNFINISHED_WARC_SUFFIX)

    outcome = run_purge(
        session_factory,
        people.legal,
        catalogue_of(settings, session_factory),
        blob_store=BlobStore(settings.blob_dir),
        log_dir=settings.log_dir,
        snapshots=None,
        now=datetime.now(UTC),
        default_region=settings.default_phone_region,
        case_number="CASE-1",
        reason="case closed by the prosecutor",
    )
    assert outcome.receipt.counts["warc_files"] == 1
    assert not files_under(settings.data_dir / "warc")

    # The run had not noticed yet: what it writes now is deleted, not kept.
    writer.write_ad(_stored(15))
    writer.close()
    assert not files_under(settings.data_dir / "warc")
    assert not _rows(session_factory)


def test_ads_the_run_stored_but_never_recorded_are_found(
    settings: Settings, session_factory: sessionmaker[Session], store: Store
) -> None:
    recorded = store.ad("Haarlem", "Synthetic text.")
    unrecorded = store.ad("Leiden", "Synthetic text.")
    writer = _writer(settings, session_factory, store)
    writer.write_ad(_stored(recorded))
    writer.close()

    assert writer.ads_without_records() == [unrecorded]
