"""Snapshots of the linking engine under the data directory, one per linking scope.

Linking a crawl's new ads needs the engine's indexes over every ad already linked in the
scope. Rebuilding them from the database costs time in proportion to the store; a
snapshot of the engine, taken when the last linking committed, costs only reading it.

A snapshot is trusted only when

* its MAC verifies under a key derived from the installation's secret key (a file placed
  by someone else is refused; nothing in it is run: unpickling admits only the engine's
  own classes, numpy arrays and built-in containers),
* it was made by the same linkage model and feature revision, and
* the scope's memberships in the database still sum to the checksum it was taken at, so
  a relinking, a purge, a transaction that rolled back after the snapshot was written, or
  a hand-made change to the database all make it stale.

Anything else is reported as the reason for a rebuild from the database, never an error.
Snapshots hold ad-derived data (distinctive text, phone numbers), so the files are
private to the owner, and a purge or relinking deletes the snapshots of the scopes it
touches (``discard``).
"""

from __future__ import annotations

import hmac
import io
import json
import os
import pickle
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from legal_policy.pseudonyms import load_or_create_key
from matching.engine import MatchingEngine
from matching.text import BoilerplateModel

_MAGIC = b"adwatch-linking-snapshot 1\n"
_MAC_SIZE = 32
_MAC_LABEL = b"adwatch linking snapshot"


@dataclass(frozen=True, slots=True)
class ScopeState:
    """What a snapshot must agree with: the model and the scope's memberships."""

    linkage_version: str
    features_revision: str
    case_ids: tuple[int, ...]
    # (count, sum of ad ids, sum of profile ids, mixed sum) over the scope's memberships.
    checksum: tuple[int, int, int, int]


@dataclass(slots=True)
class LinkingState:
    """The engine of one scope and the boilerplate model its features were made against."""

    engine: MatchingEngine
    boilerplate: BoilerplateModel


class LinkSnapshots:
    """Snapshot files of linking scopes in one directory (``<data_dir>/linking``)."""

    def __init__(self, directory: Path, secret_key_file: Path) -> None:
        self.directory = directory
        self.secret_key_file = secret_key_file

    @cached_property
    def _key(self) -> bytes:
        # Read (or made) only when a snapshot is read or written: discarding needs no key.
        return hmac.new(load_or_create_key(self.secret_key_file), _MAC_LABEL, "sha256").digest()

    def path_of(self, case_ids: Iterable[int]) -> Path:
        """The snapshot file of the scope of these cases."""
        return self.directory / f"scope-{'-'.join(str(i) for i in sorted(case_ids))}.snapshot"

    def load(self, expected: ScopeState) -> tuple[LinkingState | None, str]:
        """The scope's linking state when its snapshot is current, else ``None``; with the
        reason a rebuild is needed (``""`` when the snapshot was used)."""
        path = self.path_of(expected.case_ids)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None, "no snapshot"
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if handle.read(len(_MAGIC)) != _MAGIC or size < len(_MAGIC) + _MAC_SIZE:
                return None, "not a snapshot file"
            reader = _MacReader(handle, self._key, size - _MAC_SIZE - len(_MAGIC))
            try:
                header = json.loads(reader.readline())
                found = ScopeState(
                    header["linkage_version"],
                    header["features_revision"],
                    tuple(header["case_ids"]),
                    tuple(header["checksum"]),  # type: ignore[arg-type]
                )
            except (ValueError, KeyError, TypeError):
                return None, "unreadable snapshot header"
            if found != expected:
                return None, "snapshot is stale"
            state: object = None
            try:
                # Buffered: the unpickler's many small reads stay in C.
                state = _RestrictedUnpickler(io.BufferedReader(reader, 1 << 20)).load()
            except Exception:  # damaged data breaks the unpickler in any number of ways
                state = None
            # The MAC is judged first: damage is reported as such, whatever it broke.
            reader.read_rest()
            if not hmac.compare_digest(reader.mac(), handle.read(_MAC_SIZE)):
                return None, "snapshot fails its integrity check"
        if not isinstance(state, LinkingState):
            return None, "unreadable snapshot"
        return state, ""

    def save(self, state: LinkingState, scope: ScopeState) -> Path:
        """Write the scope's snapshot atomically (readable by the owner only)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_of(scope.case_ids)
        header = {
            "linkage_version": scope.linkage_version,
            "features_revision": scope.features_revision,
            "case_ids": list(scope.case_ids),
            "checksum": list(scope.checksum),
        }
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".snapshot-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(_MAGIC)
                writer = _MacWriter(handle, self._key)
                writer.write(json.dumps(header).encode() + b"\n")
                pickle.dump(state, writer, protocol=pickle.HIGHEST_PROTOCOL)
                handle.write(writer.mac())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def discard(self, case_ids: Iterable[int]) -> int:
        """Delete every snapshot whose scope holds one of these cases; return how many."""
        wanted = set(case_ids)
        removed = 0
        if not self.directory.is_dir():
            return 0
        for path in self.directory.glob("scope-*.snapshot"):
            held = {int(part) for part in path.stem.removeprefix("scope-").split("-") if part}
            if held & wanted:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def open_link_snapshots(data_dir: Path, secret_key_file: Path) -> LinkSnapshots:
    """The snapshots of an installation: ``<data_dir>/linking``, keyed by its secret key."""
    return LinkSnapshots(data_dir / "linking", secret_key_file)


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
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

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


# Classes a snapshot may hold. Anything else (a function, ``os.system``) is refused.
_ALLOWED = {
    ("builtins", name)
    for name in ("set", "frozenset", "dict", "list", "tuple", "bytearray", "slice")
} | {
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
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
    (__name__, "LinkingState"),
}
_ALLOWED_MODULES = ("matching.",)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith(_ALLOWED_MODULES):
            found = super().find_class(module, name)
            if isinstance(found, type):  # the engine's classes, never a function
                return found
        raise pickle.UnpicklingError(f"a snapshot may not hold {module}.{name}")
