"""Snapshots of the linking engine under the data directory, one per linking scope.

Linking a crawl's new ads needs the engine's indexes over every ad already linked in the
scope. Rebuilding them from the database costs time in proportion to the store; a
snapshot costs only reading it, and a process that links again (the scheduler) keeps the
engine in memory and reads nothing.

On disk a scope has a **base** (``scope-<cases>.snapshot``: the engine and the
boilerplate model, pickled) and a **log** (``scope-<cases>.log``) of the linkings since:
each frame holds one linking's new ads (their features and text observations) and the
memberships it wrote, which replay onto the base exactly (``MatchingEngine.load`` and
``restore_memberships``). Appending a frame costs in proportion to the new ads; when the
log outgrows a share of the base, the next linking writes a new base and empties it.

A snapshot is trusted only when

* its MACs verify under a key derived from the installation's secret key: each log frame
  before it is unpickled, the base as it is read (a file placed by someone else is
  refused; unpickling admits only the engine's own classes, numpy arrays and built-in
  containers, so nothing in a file is run),
* it was made by the same linkage model and feature revision, and
* the scope's memberships in the database sum to the checksum its last frame ends at:
  a relinking, a purge, a transaction that rolled back after its frame was written, or
  a hand-made change to the database all make it stale.

Anything else is a reason to rebuild from the database, never an error. Snapshots hold
ad-derived data (distinctive text, phone numbers): the files are private to the owner,
and a purge or relinking deletes those of the scopes it touches (``discard``), the
engine held in memory included.
"""

from __future__ import annotations

import gc
import hmac
import io
import json
import os
import pickle
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import IO, Any

from legal_policy.pseudonyms import load_or_create_key
from matching.engine import MatchingEngine
from matching.features import TextObservation
from matching.records import AdFeatures, ImageFingerprint
from matching.text import BoilerplateModel

_MAGIC = b"adwatch-linking-snapshot 2\n"
_LOG_MAGIC = b"adwatch-linking-log 1\n"
_MAC_SIZE = 32
_MAC_LABEL = b"adwatch linking snapshot"
_LENGTH_SIZE = 8
# A frame larger than this is not a frame (a damaged length is not followed into memory).
_MAX_FRAME = 1 << 31

Checksum = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class ScopeState:
    """What a snapshot must agree with: the model and the scope's memberships."""

    linkage_version: str
    features_revision: str
    case_ids: tuple[int, ...]
    # (count, sum of ad ids, sum of profile ids, mixed sum) over the scope's memberships.
    checksum: Checksum


@dataclass(slots=True)
class LinkingState:
    """The engine of one scope and the boilerplate model its features were made against."""

    engine: MatchingEngine
    boilerplate: BoilerplateModel


@dataclass(frozen=True, slots=True)
class LinkingDelta:
    """One linking as the log keeps it: the new ads' features and text observations (in
    order), and the profile of every ad whose membership it wrote."""

    features: tuple[AdFeatures, ...]
    observations: tuple[TextObservation, ...]
    profile_of: Mapping[str, int]

    def __getstate__(self) -> tuple[object, ...]:
        # Plain tuples: pickling thousands of slotted dataclasses one by one is slow.
        return (
            [
                (
                    f.ad_id,
                    f.site,
                    f.city,
                    f.posted_at,
                    f.phones,
                    [(i.phash, i.variants, i.dhashes) for i in f.images],
                    f.distinctive_text,
                    f.text_signature,
                    f.distinctive_share,
                )
                for f in self.features
            ],
            [(o.owner, o.sentence_keys) for o in self.observations],
            dict(self.profile_of),
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        features, observations, profile_of = state
        object.__setattr__(
            self,
            "features",
            tuple(
                AdFeatures(
                    ad_id=str(ad_id),
                    site=str(site),
                    city=city,
                    posted_at=posted_at,
                    phones=tuple(phones),
                    images=tuple(
                        ImageFingerprint(int(h), tuple(v), tuple(d)) for h, v, d in images
                    ),
                    distinctive_text=str(text),
                    text_signature=bytes(signature),
                    distinctive_share=float(share),
                )
                for ad_id, site, city, posted_at, phones, images, text, signature, share in features
            ),
        )
        object.__setattr__(
            self,
            "observations",
            tuple(TextObservation(int(owner), tuple(keys)) for owner, keys in observations),
        )
        object.__setattr__(self, "profile_of", dict(profile_of))

    def apply(self, state: LinkingState) -> None:
        """Replay the linking onto the state it was made from."""
        for observation in self.observations:
            state.boilerplate.observe_hashed(observation.owner, observation.sentence_keys)
        new = {feature.ad_id for feature in self.features}
        state.engine.load(
            list(self.features), {ad: p for ad, p in self.profile_of.items() if ad in new}
        )
        state.engine.restore_memberships(
            {ad: p for ad, p in self.profile_of.items() if ad not in new}
        )


@dataclass(frozen=True, slots=True)
class _Frame:
    before: Checksum
    after: Checksum
    ads: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where a state handed out stands on disk: the scope it ends at, its base's MAC, and
    the log's frames, size and ads (appending checks the log is still that size)."""

    scope: ScopeState
    base_mac: bytes
    frames: int
    log_size: int
    logged_ads: int


class LinkSnapshots:
    """Snapshot files of linking scopes in one directory (``<data_dir>/linking``), and the
    engine of the scope linked last, held in memory.

    ``compact_share``: once the log holds this share of the base's ads, the next linking
    writes a new base instead of a frame.
    """

    def __init__(
        self, directory: Path, secret_key_file: Path, *, compact_share: float = 0.1
    ) -> None:
        self.directory = directory
        self.secret_key_file = secret_key_file
        self.compact_share = compact_share
        self._lock = threading.Lock()
        # The scope linked last, as written: its state and where that stands on disk.
        self._held: tuple[LinkingState, _Origin] | None = None
        # Where the state handed out last came from (what ``append`` continues).
        self._origin: _Origin | None = None

    @cached_property
    def _key(self) -> bytes:
        # Read (or made) only when a snapshot is read or written: discarding needs no key.
        return hmac.new(load_or_create_key(self.secret_key_file), _MAC_LABEL, "sha256").digest()

    def path_of(self, case_ids: Iterable[int]) -> Path:
        """The base snapshot file of the scope of these cases."""
        return self.directory / f"scope-{'-'.join(str(i) for i in sorted(case_ids))}.snapshot"

    def log_path_of(self, case_ids: Iterable[int]) -> Path:
        """The log file of the scope of these cases."""
        return self.path_of(case_ids).with_suffix(".log")

    # --- reading -----------------------------------------------------------------

    def load(self, expected: ScopeState) -> tuple[LinkingState | None, str]:
        """The scope's linking state when its snapshot is current, else ``None``; with the
        reason a rebuild is needed (``""`` when the snapshot was used).

        The caller owns the state it gets (it will change it): a held engine is let go,
        and comes back with ``save`` or ``append``.
        """
        with self._lock:
            held, self._held, self._origin = self._held, None, None
        if held is not None and held[1].scope == expected:
            self._origin = held[1]
            return held[0], ""
        del held
        path = self.path_of(expected.case_ids)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None, "no snapshot"
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size < len(_MAGIC) + _MAC_SIZE or handle.read(len(_MAGIC)) != _MAGIC:
                return None, "not a snapshot file"
            handle.seek(size - _MAC_SIZE)
            base_mac = handle.read(_MAC_SIZE)
            handle.seek(len(_MAGIC))
            reader = _MacReader(handle, self._key, size - _MAC_SIZE - len(_MAGIC))
            try:
                header = json.loads(reader.readline())
                found = ScopeState(
                    header["linkage_version"],
                    header["features_revision"],
                    tuple(header["case_ids"]),
                    _checksum(header["checksum"]),
                )
            except (ValueError, KeyError, TypeError):
                return None, "unreadable snapshot header"
            if (found.linkage_version, found.features_revision, found.case_ids) != (
                expected.linkage_version,
                expected.features_revision,
                expected.case_ids,
            ):
                return None, "snapshot is stale"
            frames, log_size, why = self._read_log(expected.case_ids, base_mac)
            if frames is None:
                return None, why
            ends_at = frames[-1].after if frames else found.checksum
            if ends_at != expected.checksum or any(
                frame.before != previous
                for frame, previous in zip(
                    frames, [found.checksum, *(f.after for f in frames)], strict=False
                )
            ):
                return None, "snapshot is stale"
            state: object = None
            try:
                # Buffered: the unpickler's many small reads stay in C.
                with _collector_paused():
                    state = _RestrictedUnpickler(io.BufferedReader(reader, 1 << 20)).load()
            except Exception:  # damaged data breaks the unpickler in any number of ways
                state = None
            # The MAC is judged first: damage is reported as such, whatever it broke.
            reader.read_rest()
            if not hmac.compare_digest(reader.mac(), base_mac):
                return None, "snapshot fails its integrity check"
        if not isinstance(state, LinkingState):
            return None, "unreadable snapshot"
        for frame in frames:
            try:
                with _collector_paused():
                    delta = _RestrictedUnpickler(io.BytesIO(frame.payload)).load()
                if not isinstance(delta, LinkingDelta):
                    raise TypeError("not a linking")
                delta.apply(state)
            except Exception:
                return None, "unreadable snapshot log"
        self._origin = _Origin(
            expected, base_mac, len(frames), log_size, sum(frame.ads for frame in frames)
        )
        return state, ""

    def _read_log(
        self, case_ids: tuple[int, ...], base_mac: bytes
    ) -> tuple[list[_Frame] | None, int, str]:
        """The log's frames and size, each frame verified before anything of it is
        unpickled."""
        try:
            data = self.log_path_of(case_ids).read_bytes()
        except FileNotFoundError:
            return [], 0, ""
        if not data.startswith(_LOG_MAGIC):
            return None, 0, "not a snapshot log"
        frames: list[_Frame] = []
        at = len(_LOG_MAGIC)
        while at < len(data):
            length = int.from_bytes(data[at : at + _LENGTH_SIZE], "big")
            body_end = at + _LENGTH_SIZE + length
            if length > _MAX_FRAME or body_end + _MAC_SIZE > len(data):
                return None, 0, "snapshot log is truncated"
            body = data[at + _LENGTH_SIZE : body_end]
            mac = self._frame_mac(base_mac, len(frames), body)
            if not hmac.compare_digest(mac, data[body_end : body_end + _MAC_SIZE]):
                return None, 0, "snapshot log fails its integrity check"
            line, _, payload = body.partition(b"\n")
            try:
                header = json.loads(line)
                frames.append(
                    _Frame(
                        _checksum(header["before"]),
                        _checksum(header["after"]),
                        int(header["ads"]),
                        payload,
                    )
                )
            except (ValueError, KeyError, TypeError):
                return None, 0, "unreadable snapshot log"
            at = body_end + _MAC_SIZE
        return frames, len(data), ""

    # --- writing -----------------------------------------------------------------

    def save(self, state: LinkingState, scope: ScopeState) -> Path:
        """Write the scope's base atomically (owner-only), empty its log, hold the state."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_of(scope.case_ids)
        header = {
            "linkage_version": scope.linkage_version,
            "features_revision": scope.features_revision,
            "case_ids": list(scope.case_ids),
            "checksum": list(scope.checksum),
            "ads": len(state.engine),
        }
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".snapshot-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(_MAGIC)
                writer = _MacWriter(handle, self._key)
                writer.write(json.dumps(header).encode() + b"\n")
                pickle.dump(state, writer, protocol=pickle.HIGHEST_PROTOCOL)
                base_mac = writer.mac()
                handle.write(base_mac)
                handle.flush()
                os.fsync(handle.fileno())
            # The old log belongs to the old base: it goes first, so that no moment has
            # the new base with the old log.
            self.log_path_of(scope.case_ids).unlink(missing_ok=True)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._hold(state, _Origin(scope, base_mac, 0, 0, 0))
        return path

    def append(
        self, state: LinkingState, before: ScopeState, after: ScopeState, delta: LinkingDelta
    ) -> Path:
        """Record one linking made on the state ``load`` handed out (ending at ``before``):
        a frame in the log, or a new base when the log would outgrow ``compact_share`` of
        the engine or the files are not where that state left them."""
        with self._lock:
            origin, self._origin = self._origin, None
        path = self.log_path_of(after.case_ids)
        ads = len(delta.features)
        try:
            log_size = path.stat().st_size
        except FileNotFoundError:
            log_size = 0
        if (
            origin is None
            or origin.scope != before
            or origin.log_size != log_size
            or origin.logged_ads + ads > self.compact_share * len(state.engine)
        ):
            return self.save(state, after)
        header = {"before": list(before.checksum), "after": list(after.checksum), "ads": ads}
        body = json.dumps(header).encode() + b"\n" + pickle.dumps(delta, pickle.HIGHEST_PROTOCOL)
        frame = (
            len(body).to_bytes(_LENGTH_SIZE, "big")
            + body
            + self._frame_mac(origin.base_mac, origin.frames, body)
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "ab") as handle:
            if log_size == 0:
                handle.write(_LOG_MAGIC)
            handle.write(frame)
            handle.flush()
            os.fsync(handle.fileno())
            size = handle.tell()
        self._hold(
            state,
            _Origin(after, origin.base_mac, origin.frames + 1, size, origin.logged_ads + ads),
        )
        return path

    def _hold(self, state: LinkingState, origin: _Origin) -> None:
        with self._lock:
            self._held = (state, origin)

    def _frame_mac(self, base_mac: bytes, number: int, body: bytes) -> bytes:
        # Bound to its base and its place: frames cannot be moved between logs or reordered.
        mac = hmac.new(self._key, base_mac, "sha256")
        mac.update(number.to_bytes(8, "big"))
        mac.update(body)
        return mac.digest()

    # --- forgetting --------------------------------------------------------------

    def forget(self) -> None:
        """Let go of the engine held in memory (the files stay)."""
        with self._lock:
            self._held = self._origin = None

    def discard(self, case_ids: Iterable[int]) -> int:
        """Delete the snapshot (base and log) of every scope that holds one of these cases,
        and the engine held of such a scope; return how many scopes were deleted."""
        wanted = set(case_ids)
        with self._lock:
            if self._held is not None and set(self._held[1].scope.case_ids) & wanted:
                self._held = None
            if self._origin is not None and set(self._origin.scope.case_ids) & wanted:
                self._origin = None
        if not self.directory.is_dir():
            return 0
        removed = 0
        # Logs too: one whose base is already gone still holds ads' data.
        for path in [*self.directory.glob("scope-*.snapshot"), *self.directory.glob("scope-*.log")]:
            held = {int(part) for part in path.stem.removeprefix("scope-").split("-") if part}
            if held & wanted:
                path.unlink(missing_ok=True)
                removed += path.suffix == ".snapshot"
        return removed


def open_link_snapshots(data_dir: Path, secret_key_file: Path) -> LinkSnapshots:
    """The snapshots of an installation: ``<data_dir>/linking``, keyed by its secret key.

    One per data directory in a process (however the path is written), so that a process
    that links again (the scheduler) finds the engine it linked with last still in
    memory, and a purge in that process lets go of it.
    """
    return _snapshots_of(data_dir.resolve(), secret_key_file.resolve())


@lru_cache(maxsize=4)
def _snapshots_of(data_dir: Path, secret_key_file: Path) -> LinkSnapshots:
    return LinkSnapshots(data_dir / "linking", secret_key_file)


def _checksum(values: Sequence[Any]) -> Checksum:
    count, ad_sum, profile_sum, mixed = (int(v) for v in values)
    return (count, ad_sum, profile_sum, mixed)


class _MacWriter(io.RawIOBase):
    def __init__(self, handle: IO[bytes], key: bytes) -> None:
        self._handle = handle
        self._mac = hmac.new(key, digestmod="sha256")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._mac.update(data)
        return self._handle.write(data)

    def mac(self) -> bytes:
        return self._mac.digest()


class _MacReader(io.RawIOBase):
    """Reads at most ``limit`` bytes (the MAC follows them), hashing what it reads."""

    def __init__(self, handle: IO[bytes], key: bytes, limit: int) -> None:
        self._handle = handle
        self._mac = hmac.new(key, digestmod="sha256")
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._handle.read(size)
        self._left -= len(data)
        self._mac.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        # Straight into the caller's buffer: the unpickler's large reads (numpy arrays of
        # a million ads) are not copied a second time.
        view = memoryview(buffer).cast("B")
        count = self._handle.readinto(view[: min(len(view), self._left)]) or 0
        self._left -= count
        self._mac.update(view[:count])
        return count

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while self._left and (size is None or size < 0 or len(line) < size):
            char = self.read(1)
            line += char
            if char == b"\n":
                break
        return bytes(line)

    def read_rest(self) -> None:
        """Hash whatever the unpickler left unread (a well-formed snapshot leaves nothing)."""
        while self._left and self.read(1 << 20):
            pass

    def mac(self) -> bytes:
        return self._mac.digest()


# Classes a snapshot may hold besides the engine's own (``matching``). Anything else (a
# function, ``os.system``) is refused.
_ALLOWED = {
    ("builtins", name)
    for name in ("set", "frozenset", "dict", "list", "tuple", "bytearray", "slice", "object")
} | {
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.dtypes", "UInt64DType"),
    ("numpy.dtypes", "Int64DType"),
    ("numpy.dtypes", "Int32DType"),
    ("numpy.dtypes", "UInt32DType"),
    ("numpy.dtypes", "UInt16DType"),
    ("numpy.dtypes", "Float32DType"),
    ("numpy.dtypes", "BoolDType"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
    (__name__, "LinkingState"),
    (__name__, "LinkingDelta"),
}
_ALLOWED_MODULES = ("matching.",)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a snapshot is unpickled: the many containers it
    makes would trigger collections that find nothing (a third of the load time at 1M)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith(_ALLOWED_MODULES):
            found = super().find_class(module, name)
            if isinstance(found, type):  # the engine's classes, never a function
                return found
        raise pickle.UnpicklingError(f"a snapshot may not hold {module}.{name}")
