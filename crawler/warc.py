"""WARC evidence of a crawl run (ISO 28500, WARC/1.1), written with warcio.

For every ad the store stage kept, the run's WARC holds a ``request`` and a ``response``
record of the ad page and of each kept image, and a ``metadata`` record of what
minimisation did. Minimisation comes first: every payload written is the one adwatch keeps
(the page without third-party content, images re-encoded without their metadata), never
the bytes as fetched. A page or image the legal basis does not keep gets no payload record
at all; the metadata record says what was withheld and why (names and counts only). Every
payload record says how it differs from the wire (``WARC-Adwatch-Minimised``), and its
``WARC-Payload-Digest`` is the digest of the payload as written. HTTP headers are kept,
except credentials (warcio's header filter drops ``Cookie``, ``Set-Cookie``,
``Authorization``) and the framing of the wire (``Content-Length`` is the length of the
payload as written; it is stored decoded, so ``Content-Encoding`` and ``Transfer-Encoding``
go). A page rendered by a browser is a ``resource`` record labelled as the rendered DOM.

Files are ``<data dir>/warc/run-<run>-<nnnnn>.warc.gz``: one gzip member per record, a
``warcinfo`` record at the head of each, a new file once one passes the size limit (the
records of one ad never span two files). A file is created empty under a temporary name
and locked (``flock``), then registered in ``warc_files`` before its first byte; after each
ad it is synced and its row records the size of what is complete; on close it is renamed
and its SHA-256 recorded, and only then unlocked. What a killed worker left is cut back to
its last complete ad when the run resumes. The kernel drops a killed writer's lock, so a
worker joining the run (several workers share one) closes only the files of dead writers,
never a live worker's open file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any, Final, Literal
from urllib.parse import urlsplit

import scrapy
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from crawler.context import CrawlContext
from crawler.items import FETCHED_AT, RENDERED_META, Exchange, SentRequest
from legal_policy.minimisation import MinimisationRecord, MinimisedAd
from legal_policy.purge import UNFINISHED_WARC_SUFFIX
from storage.models import Ad, WarcFile
from storage.types import utcnow

# A new file once one reaches this size (compressed). Big enough that a run writes few
# files, small enough to copy, verify and hand over one at a time.
MAX_FILE_BYTES: Final = 100 * 1024 * 1024
# Headers that carry credentials or session state: never written to a WARC.
CREDENTIAL_HEADERS: Final = frozenset(
    {"cookie", "set-cookie", "set-cookie2", "authorization", "proxy-authorization"}
)
# The wire's framing; the payload is stored decoded and minimised, so these would lie.
_FRAMING_HEADERS: Final = frozenset({"content-length", "content-encoding", "transfer-encoding"})
DIGEST_ALGORITHM: Final = "sha256"
# zlib's default: pages shrink almost as much as at 9, in half the time.
GZIP_LEVEL: Final = 6
# Why minimisation kept no page although the basis keeps pages (legal_policy.minimisation).
_PAGE_NOT_KEPT: Final = ("raw_page.unparsable", "raw_page.fields_without_selectors")
_CHUNK = 1024 * 1024
# Names tried when other workers of the run take the next ones at the same moment.
_OPEN_ATTEMPTS: Final = 1000


def exchange_only(response: Response | Exchange | None) -> Exchange | None:
    """The response without its body: status, headers, request and peer address only.

    What was fetched must not travel beyond minimisation; the evidence writer needs only
    the HTTP exchange around the payload that minimisation kept.
    """
    if response is None or isinstance(response, Exchange):
        return response
    return Exchange.of(response)


def drop_credentials(header: tuple[str, str]) -> tuple[str, str] | None:
    """warcio header filter: drop cookies and authorisation, keep every other header."""
    return None if header[0].strip().lower() in CREDENTIAL_HEADERS else header


class FetchTimeMiddleware:
    """Stamps each response with the moment it arrived (UTC), the WARC-Date of its records.

    Placed next to the downloader, so the time is the response's, not the moment its ad
    was stored after the images were fetched.
    """

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        request.meta[FETCHED_AT] = utcnow()
        return response


@dataclass(frozen=True, slots=True)
class StoredAd:
    """An ad the store stage kept: what minimisation left, and the HTTP exchanges (without
    bodies) of its page and images."""

    ad_id: int
    captured_at: datetime
    expires_at: datetime
    ad: MinimisedAd
    minimisation: MinimisationRecord
    page: Exchange | None
    images: Mapping[str, Exchange] = field(default_factory=dict)


def is_rendered(response: Exchange) -> bool:
    """Whether a browser rendered the response (its body is the DOM, not the wire's bytes)."""
    request = response.request
    return request is not None and bool(request.meta.get(RENDERED_META))


class _Sha256WARCWriter(WARCWriter):  # type: ignore[misc]
    """warcio's writer with SHA-256 block and payload digests (SHA-1 has collisions)."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester(DIGEST_ALGORITHM)


class _RecordBuffer:
    """Where warcio writes one record, uncompressed; ``RunWarcWriter._write`` then stores it
    as one gzip member at zlib's default level (warcio's own gzip uses level 9, about twice
    the time for a few percent on pages, and photos do not compress at all)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def gzip_member(self) -> bytes:
        """What was written since the last call, as one gzip member."""
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        member = compressor.compress(b"".join(self._parts)) + compressor.flush()
        self._parts.clear()
        return member


class _HashingFile:
    """A binary file that hashes and counts what is written through it, so that closing a
    file needs no second read of it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


@dataclass
class _OpenFile:
    row_id: int
    path: Path
    out: _HashingFile
    writer: _Sha256WARCWriter
    record: _RecordBuffer
    warcinfo_id: str
    expires_at: datetime
    records: int = 0
    # What is complete (whole ads): where a failed or killed write is cut back to.
    good_size: int = 0
    good_records: int = 0
    good_sha256: Any = None

    @property
    def temporary(self) -> Path:
        return unfinished_path(self.path)


def unfinished_path(path: Path) -> Path:
    """The name a WARC file has until its run closes it."""
    return path.with_name(path.name + UNFINISHED_WARC_SUFFIX)


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _lock_if_unlocked(path: Path) -> IO[bytes] | Literal[False] | None:
    """The file opened for update under our lock; ``False`` when its writer holds the lock
    (alive: the kernel drops a killed process's locks), ``None`` when there is no file."""
    try:
        stream = path.open("r+b")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        stream.close()
        return False
    return stream


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _warc_date(moment: datetime) -> str:
    return str(datetime_to_iso_date(moment.astimezone(UTC).replace(tzinfo=None), use_micros=True))


def _fields(values: Iterable[tuple[str, object]]) -> bytes:
    """``application/warc-fields``: one ``name: value`` line each."""
    return "".join(f"{name}: {value}\r\n" for name, value in values).encode("utf-8")


class RunWarcWriter:
    """The WARC files of one run: opened on the first kept ad, rotated by size."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        data_dir: Path,
        warc_dir: Path,
        run_id: int,
        case_id: int,
        info: Mapping[str, str],
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        if max_file_bytes <= 0:
            raise ValueError("the WARC file size limit must be positive")
        self.session_factory = session_factory
        self.data_dir = data_dir
        self.warc_dir = warc_dir
        self.run_id = run_id
        self.case_id = case_id
        self.info = dict(info)
        self.max_file_bytes = max_file_bytes
        self._file: _OpenFile | None = None

    # --- what the crawler calls ---------------------------------------------------------

    def write_ad(self, stored: StoredAd) -> None:
        """Write the records of one kept ad (all in one file), then make them durable."""
        file = self._file or self._open(stored.expires_at)
        try:
            self._ad_records(file, stored)
            self._complete(file, stored.expires_at)
        except BaseException:
            self._cut_back(file)
            raise
        if self._file is not None and self._file.out.size >= self.max_file_bytes:
            self.close()

    def write_rendered_dom(
        self,
        response: Exchange,
        dom: bytes,
        *,
        ad_id: int,
        expires_at: datetime,
        captured_at: datetime | None = None,
        minimised: str | None = None,
    ) -> str:
        """Write a browser-rendered page on its own: its request, and the DOM (as kept) as a
        ``resource`` record labelled as the rendered DOM; returns the resource's record id."""
        file = self._file or self._open(expires_at)
        try:
            record_id = self._rendered_dom(
                file, response, dom, ad_id=ad_id, captured_at=captured_at, minimised=minimised
            )
            self._complete(file, expires_at)
        except BaseException:
            self._cut_back(file)
            raise
        return record_id

    def close(self) -> None:
        """Close the open file: sync, rename to its final name, record its SHA-256."""
        file, self._file = self._file, None
        if file is None:
            return
        # Unlocked only once renamed and recorded: until then a worker joining the run
        # would take it for a killed writer's file.
        with contextlib.closing(file.out.raw):
            file.out.flush()
            os.fsync(file.out.raw.fileno())
            with self.session_factory.begin() as session:
                row = session.get(WarcFile, file.row_id)
                if row is None:
                    # A purge closed the case while the run went on: nothing of it may remain.
                    file.temporary.unlink(missing_ok=True)
                    return
                os.replace(file.temporary, file.path)
                _sync_directory(file.path.parent)
                row.sha256 = file.out.sha256.hexdigest()
                row.size = file.out.size
                row.records = file.records
                row.closed_at = utcnow()

    def recover_unfinished(self) -> int:
        """Close the files a killed worker of this run left open: cut back to their last
        complete ad, renamed, hashed. Returns how many were closed.

        A file whose writer is alive (another worker of the run) is locked and left alone.
        """
        with self.session_factory() as session:
            candidates = session.execute(
                select(WarcFile.id, WarcFile.path).where(
                    WarcFile.run_id == self.run_id, WarcFile.closed_at.is_(None)
                )
            ).all()
        closed = 0
        for row_id, relative in candidates:
            path = self.data_dir / relative
            with contextlib.ExitStack() as held:
                stream = _lock_if_unlocked(unfinished_path(path))
                if stream is None:
                    stream = _lock_if_unlocked(path)  # renamed, perhaps still being closed
                if stream is False:
                    continue  # its writer is alive
                if stream is not None:
                    held.enter_context(stream)
                # Read again under the lock: the writer may have completed more before dying.
                with self.session_factory.begin() as session:
                    row = session.get(WarcFile, row_id)
                    if row is None or row.closed_at is not None:
                        continue  # closed or purged meanwhile
                    if self._recover(session, row, path, stream):
                        closed += 1
        return closed

    def _recover(
        self, session: Session, row: WarcFile, path: Path, stream: IO[bytes] | None
    ) -> bool:
        temporary = unfinished_path(path)
        if row.size == 0:
            # Killed before its warcinfo was complete: it holds nothing.
            temporary.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            session.delete(row)
            return False
        if stream is None:
            return False  # nothing on disk to close; ``runs show`` shows it unclosed
        if Path(stream.name) == temporary:
            stream.truncate(row.size)
            stream.flush()
            os.fsync(stream.fileno())
            os.replace(temporary, path)
            _sync_directory(path.parent)
        row.sha256, row.size = file_sha256(path)
        row.closed_at = utcnow()
        return True

    def ads_without_records(self) -> list[int]:
        """Ads of this run that no closed file of the run records: a worker killed between
        an ad's commit and the sync of its records leaves such a gap (read, not guessed)."""
        with self.session_factory() as session:
            stored = set(session.scalars(select(Ad.id).where(Ad.run_id == self.run_id)))
            paths = session.scalars(
                select(WarcFile.path).where(
                    WarcFile.run_id == self.run_id, WarcFile.closed_at.is_not(None)
                )
            ).all()
        if not stored:
            return []
        recorded: set[int] = set()
        for path in paths:
            with (self.data_dir / path).open("rb") as stream:
                for record in ArchiveIterator(stream):
                    if record.rec_type == "metadata":
                        recorded.add(int(record.rec_headers.get_header("WARC-Adwatch-Ad")))
        return sorted(stored - recorded)

    # --- files --------------------------------------------------------------------------

    def _open(self, expires_at: datetime) -> _OpenFile:
        self.warc_dir.mkdir(parents=True, exist_ok=True)
        with self.session_factory() as session:
            first = 1 + int(
                session.scalar(
                    select(func.count(WarcFile.id)).where(WarcFile.run_id == self.run_id)
                )
                or 0
            )
        for sequence in range(first, first + _OPEN_ATTEMPTS):
            path = self._path(sequence)
            if path.exists():
                continue
            try:
                # Readable by the owner only, as the blob store's files: the payloads are ads.
                descriptor = os.open(
                    unfinished_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
                )
            except FileExistsError:
                continue  # another worker of the run took this name
            # Locked before its row exists: a worker that sees the row sees a live writer.
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                # Registered before its first byte, so that a purge always finds the file.
                with self.session_factory.begin() as session:
                    row = WarcFile(
                        run_id=self.run_id,
                        case_id=self.case_id,
                        path=path.relative_to(self.data_dir).as_posix(),
                        records=0,
                        size=0,
                        created_at=utcnow(),
                        expires_at=expires_at,
                    )
                    session.add(row)
                    session.flush()
                    row_id = row.id
            except BaseException as exc:
                unfinished_path(path).unlink(missing_ok=True)
                os.close(descriptor)
                if isinstance(exc, IntegrityError):
                    continue  # a row of a file gone from disk holds the name: the next one
                raise
            break
        else:
            raise RuntimeError(f"no free WARC file name for run {self.run_id}")
        raw = os.fdopen(descriptor, "wb")
        out = _HashingFile(raw)
        record = _RecordBuffer()
        writer = _Sha256WARCWriter(
            record, gzip=False, warc_version="1.1", header_filter=drop_credentials
        )
        info = {**self.info, "adwatch-file-sequence": str(sequence)}
        warcinfo = writer.create_warcinfo_record(path.name, info)
        file = _OpenFile(
            row_id=row_id,
            path=path,
            out=out,
            writer=writer,
            record=record,
            warcinfo_id=warcinfo.rec_headers.get_header("WARC-Record-ID"),
            expires_at=expires_at,
        )
        self._file = file
        try:
            self._write(file, warcinfo)
            self._complete(file, expires_at)
        except BaseException:
            self._abandon(file)
            raise
        return file

    def _path(self, sequence: int) -> Path:
        return self.warc_dir / f"run-{self.run_id}-{sequence:05d}.warc.gz"

    def _complete(self, file: _OpenFile, expires_at: datetime) -> None:
        """Make what was written durable and record it: a killed worker loses no whole ad."""
        file.out.flush()
        os.fsync(file.out.raw.fileno())
        file.expires_at = max(file.expires_at, expires_at)
        with self.session_factory.begin() as session:
            result = session.execute(
                update(WarcFile)
                .where(WarcFile.id == file.row_id)
                .values(records=file.records, size=file.out.size, expires_at=file.expires_at),
                execution_options={"synchronize_session": False},
            )
            registered = bool(result.rowcount)  # type: ignore[attr-defined]
        if not registered:
            # A purge closed the case while the run went on: nothing of it may remain.
            self._file = None
            file.out.raw.close()
            file.temporary.unlink(missing_ok=True)
            return
        file.good_size = file.out.size
        file.good_records = file.records
        file.good_sha256 = file.out.sha256.copy()

    def _abandon(self, file: _OpenFile) -> None:
        """Give up a file that never held a complete warcinfo record: file and row go."""
        self._file = None
        file.temporary.unlink(missing_ok=True)  # before the lock goes with the descriptor
        file.out.raw.close()
        with contextlib.suppress(SQLAlchemyError), self.session_factory.begin() as session:
            session.execute(delete(WarcFile).where(WarcFile.id == file.row_id))

    def _cut_back(self, file: _OpenFile) -> None:
        """Undo a half-written ad: the file ends with the last complete one."""
        if file.out.raw.closed:
            return
        try:
            file.out.raw.flush()
            file.out.raw.truncate(file.good_size)
            file.out.raw.seek(file.good_size)
        except OSError:
            # The disk refuses even this: close the file; the next run's resume (or the
            # recovery) cuts it back to the size its row records.
            self._file = None
            file.out.raw.close()
            return
        file.out.size = file.good_size
        file.out.sha256 = file.good_sha256.copy()
        file.records = file.good_records

    # --- records ------------------------------------------------------------------------

    def _write(self, file: _OpenFile, record: ArcWarcRecord) -> None:
        file.writer.write_record(record)
        file.out.write(file.record.gzip_member())
        file.records += 1

    def _headers(self, file: _OpenFile, ad_id: int, **extra: str | None) -> dict[str, str]:
        headers = {"WARC-Warcinfo-ID": file.warcinfo_id, "WARC-Adwatch-Ad": str(ad_id)}
        headers.update({name: value for name, value in extra.items() if value})
        return {name.replace("_", "-"): value for name, value in headers.items()}

    def _ad_records(self, file: _OpenFile, stored: StoredAd) -> None:
        ad, record = stored.ad, stored.minimisation
        page_record: str | None = None
        if ad.raw_page is not None and stored.page is not None:
            note = _page_note(record)
            if is_rendered(stored.page):
                page_record = self._rendered_dom(
                    file,
                    stored.page,
                    ad.raw_page,
                    ad_id=stored.ad_id,
                    captured_at=stored.captured_at,
                    minimised=note,
                )
            else:
                page_record = self._exchange(
                    file,
                    stored,
                    stored.page,
                    ad.raw_page,
                    content_type=None,
                    minimised=note,
                    blob_sha256=hashlib.sha256(ad.raw_page).hexdigest(),
                )
        images_recorded = 0
        for image in ad.images:
            if image.data is None:
                continue
            self._image(file, stored, image.url, image.data, image.media_type)
            images_recorded += 1
        self._metadata(file, stored, page_record, images_recorded)

    def _image(
        self,
        file: _OpenFile,
        stored: StoredAd,
        url: str,
        data: bytes,
        media_type: str | None,
    ) -> None:
        exchange = stored.images.get(url)
        note = f"images={stored.minimisation.rules.get('images', 'keep')}; re-encoded-from-pixels"
        if media_type:
            note += f"; media-type={media_type}"
        blob = hashlib.sha256(data).hexdigest()
        if exchange is not None and 200 <= exchange.status < 300:
            self._exchange(
                file, stored, exchange, data, content_type=media_type, minimised=note,
                blob_sha256=blob,
            )  # fmt: skip
            return
        # No fresh body to stand for (the site answered 304 Not Modified and adwatch used
        # the copy it kept): the exchange as it was, then the kept bytes as a resource.
        concurrent = None
        if exchange is not None:
            concurrent = self._exchange(
                file, stored, exchange, None, content_type=None, minimised=None, blob_sha256=None
            )
        resource = file.writer.create_warc_record(
            url,
            "resource",
            payload=io.BytesIO(data),
            length=len(data),
            warc_content_type=media_type or "application/octet-stream",
            warc_headers_dict=self._headers(
                file,
                stored.ad_id,
                WARC_Date=_warc_date(stored.captured_at),
                WARC_Concurrent_To=concurrent,
                WARC_Adwatch_Minimised=note,
                WARC_Adwatch_Payload="kept-copy; not-fetched-again",
                WARC_Adwatch_Blob_SHA256=blob,
            ),
        )
        self._write(file, resource)

    def _exchange(
        self,
        file: _OpenFile,
        stored: StoredAd,
        response: Exchange,
        payload: bytes | None,
        *,
        content_type: str | None,
        minimised: str | None,
        blob_sha256: str | None,
    ) -> str:
        """A request record, then the response record with ``payload``; the response's id."""
        date = _warc_date(_fetched_at(response, stored.captured_at))
        body = payload or b""
        http = _response_headers(response, body, content_type=content_type)
        response_record = file.writer.create_warc_record(
            response.url,
            "response",
            payload=io.BytesIO(body),
            length=len(body),
            http_headers=http,
            warc_headers_dict=self._headers(
                file,
                stored.ad_id,
                WARC_Date=date,
                WARC_IP_Address=response.ip_address,
                WARC_Adwatch_Minimised=minimised,
                WARC_Adwatch_Blob_SHA256=blob_sha256,
            ),
        )
        response_id = str(response_record.rec_headers.get_header("WARC-Record-ID"))
        if response.request is not None:
            self._request(file, stored.ad_id, response.request, date, concurrent_to=response_id)
        self._write(file, response_record)
        return response_id

    def _request(
        self, file: _OpenFile, ad_id: int, request: SentRequest, date: str, *, concurrent_to: str
    ) -> str:
        headers = _request_headers(request)
        record = file.writer.create_warc_record(
            request.url,
            "request",
            payload=io.BytesIO(request.body),
            length=len(request.body),
            http_headers=headers,
            warc_headers_dict=self._headers(
                file, ad_id, WARC_Date=date, WARC_Concurrent_To=concurrent_to
            ),
        )
        self._write(file, record)
        return str(record.rec_headers.get_header("WARC-Record-ID"))

    def _rendered_dom(
        self,
        file: _OpenFile,
        response: Exchange,
        dom: bytes,
        *,
        ad_id: int,
        captured_at: datetime | None,
        minimised: str | None,
    ) -> str:
        date = _warc_date(_fetched_at(response, captured_at or utcnow()))
        encoding = response.encoding or "utf-8"
        resource = file.writer.create_warc_record(
            response.url,
            "resource",
            payload=io.BytesIO(dom),
            length=len(dom),
            warc_content_type=f"text/html; charset={encoding}",
            warc_headers_dict=self._headers(
                file,
                ad_id,
                WARC_Date=date,
                WARC_Adwatch_Rendered_DOM="yes (the document after the browser ran its "
                "scripts, not the bytes from the wire)",
                WARC_Adwatch_Minimised=minimised,
                WARC_Adwatch_Blob_SHA256=hashlib.sha256(dom).hexdigest(),
            ),
        )
        resource_id = str(resource.rec_headers.get_header("WARC-Record-ID"))
        if response.request is not None:
            self._request(file, ad_id, response.request, date, concurrent_to=resource_id)
        self._write(file, resource)
        return resource_id

    def _metadata(
        self, file: _OpenFile, stored: StoredAd, page_record: str | None, images_recorded: int
    ) -> None:
        """What minimisation did to the ad and what was withheld: names and counts only."""
        ad, record = stored.ad, stored.minimisation
        rules = record.rules
        lines: list[tuple[str, object]] = [
            ("ad", stored.ad_id),
            ("captured-at", _warc_date(stored.captured_at)),
            ("rules", ", ".join(f"{name}={rule}" for name, rule in rules.items())),
        ]
        if record.dropped:
            lines.append(("dropped", ", ".join(record.dropped)))
        lines += [("count", f"{name}={count}") for name, count in sorted(record.counts.items())]
        if page_record is not None:
            lines.append(("page", f"recorded {page_record}"))
        elif ad.raw_page is None:
            reason = f"raw_page={rules.get('raw_page', 'drop')}"
            problems = [name for name in _PAGE_NOT_KEPT if record.counts.get(name)]
            lines.append(("page", f"withheld ({', '.join([reason, *problems])})"))
        else:
            lines.append(("page", "not recorded (no HTTP exchange of the page)"))
        withheld = sum(1 for image in ad.images if image.data is None)
        dropped = record.counts.get("images.dropped", 0)
        lines.append(
            (
                "images",
                f"recorded={images_recorded}; withheld={withheld + dropped} "
                f"(images={rules.get('images', 'keep')})",
            )
        )
        payload = _fields(lines)
        metadata = file.writer.create_warc_record(
            ad.url,
            "metadata",
            payload=io.BytesIO(payload),
            length=len(payload),
            warc_content_type="application/warc-fields",
            warc_headers_dict=self._headers(
                file,
                stored.ad_id,
                WARC_Date=_warc_date(stored.captured_at),
                WARC_Refers_To=page_record,
            ),
        )
        self._write(file, metadata)


def _page_note(record: MinimisationRecord) -> str:
    """``WARC-Adwatch-Minimised`` of a page: its rule, what was cut, and that the page was
    serialised again (so even a page with nothing cut differs from the wire)."""
    counts = [
        f"{name.removeprefix('raw_page.')}={count}"
        for name, count in sorted(record.counts.items())
        if name.startswith("raw_page.")
    ]
    return "; ".join([f"raw_page={record.rules.get('raw_page', 'keep')}", *counts, "re-serialised"])


def _fetched_at(response: Exchange, default: datetime) -> datetime:
    request = response.request
    value = request.meta.get(FETCHED_AT) if request is not None else None
    return value if isinstance(value, datetime) else default


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    """Scrapy headers (bytes, several values per name) as text pairs, in order."""
    pairs: list[tuple[str, str]] = []
    for name, values in headers.items():
        text = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        for value in values:
            pairs.append((text, value.decode("latin-1") if isinstance(value, bytes) else value))
    return pairs


def _response_headers(
    response: Exchange, body: bytes, *, content_type: str | None
) -> StatusAndHeaders:
    """The status line and headers as received, framed for ``body`` as written."""
    headers = [
        (name, value)
        for name, value in _header_pairs(response.headers)
        if name.lower() not in _FRAMING_HEADERS
        and not (content_type and name.lower() == "content-type")
    ]
    if content_type:
        headers.append(("Content-Type", content_type))
    if body or response.status != HTTPStatus.NOT_MODIFIED:
        headers.append(("Content-Length", str(len(body))))
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    protocol = response.protocol or "HTTP/1.1"
    return StatusAndHeaders(f"{response.status} {phrase}".strip(), headers, protocol=protocol)


def _request_headers(request: SentRequest) -> StatusAndHeaders:
    """The request line and the headers Scrapy sent (Host added, as the client adds it)."""
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = _header_pairs(request.headers)
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", parts.netloc))
    # warcio puts ``protocol`` first, as in a status line; a request line starts with the method.
    return StatusAndHeaders(f"{request.method} {target} HTTP/1.1", headers, protocol="")


def settings_sha256(settings: BaseSettings) -> str:
    """SHA-256 of the settings the run chose (every setting above Scrapy's defaults)."""
    chosen = {
        name: value
        for name, value in settings.copy_to_dict().items()
        if (settings.getpriority(name) or 0) > SETTINGS_PRIORITIES["default"]
    }
    return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=repr).encode()).hexdigest()


def warcinfo_fields(
    context: CrawlContext, *, software: str, settings_digest: str
) -> dict[str, str]:
    """The ``warcinfo`` of a run's files: software, run, case, authorisation, legal basis,
    site profile, settings and indicator model."""
    rules = context.field_rules.as_dict()
    return {
        "software": f"adwatch/{software} (warcio/{version('warcio')}; Scrapy/{scrapy.__version__})",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": f"adwatch crawl run {context.run_id}",
        "description": "Evidence of the ads kept by one crawl run; every payload is minimised "
        "under the legal basis before it is written (WARC-Adwatch-Minimised)",
        "adwatch-run": str(context.run_id),
        "adwatch-case": context.case_number,
        "adwatch-authorisation": str(context.authorisation_id),
        "adwatch-legal-basis": context.legal_basis,
        "adwatch-field-rules": ", ".join(f"{name}={rule}" for name, rule in rules.items()),
        "adwatch-site": context.profile.key,
        "adwatch-site-profile-sha256": context.profile.sha256,
        "adwatch-scrapy-settings-sha256": settings_digest,
        "adwatch-indicator-model": context.indicator_model.version,
        "adwatch-http-headers": "Cookie, Set-Cookie, Set-Cookie2, Authorization and "
        "Proxy-Authorization removed; payloads are stored decoded, so Content-Encoding and "
        "Transfer-Encoding are removed and Content-Length is the payload's length as written",
        "adwatch-digests": f"{DIGEST_ALGORITHM} (WARC-Block-Digest, WARC-Payload-Digest)",
    }


# Why a run stops when its evidence cannot be written: collecting on without it would keep
# ads that cannot be proven.
EVIDENCE_FAILED = "the WARC evidence could not be written"
