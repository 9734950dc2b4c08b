"""Content-addressed blob store on the filesystem: the same bytes are stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class BlobIntegrityError(Exception):
    """A stored blob no longer matches its SHA-256 address."""


class BlobNotFound(KeyError):
    """No blob is stored under this SHA-256."""


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs addressed by SHA-256 under ``root/ab/cd/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # Directories known to exist: a store skips the mkdir of each level.
        self._directories: set[Path] = set()

    def path_for(self, sha256: str) -> Path:
        """Filesystem path of the blob with this hash (whether or not it exists)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256; storing the same bytes again is a no-op."""
        digest = sha256_hex(data)
        target = self.path_for(digest)
        try:
            # Mark it as just stored: a purge running now leaves a file that was stored
            # again after it began (``stored_since``), and this writer's commit keeps it.
            os.utime(target)
            return digest
        except FileNotFoundError:
            pass  # new bytes, or a purge deleted them a moment ago: write them
        directory = target.parent
        if directory not in self._directories:
            directory.mkdir(parents=True, exist_ok=True)
            self._directories.add(directory)
        # Write to a temporary file and rename so a crash never leaves a truncated blob.
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        """Read a blob back, verifying that its content still matches its hash."""
        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        if sha256_hex(data) != sha256:
            raise BlobIntegrityError(f"blob {sha256} is corrupt: content hash differs")
        return data

    def exists(self, sha256: str) -> bool:
        """True when a blob with this hash is stored."""
        return self.path_for(sha256).exists()

    def stored_since(self, sha256: str, moment: float) -> bool:
        """Whether the blob was written (or stored again) at or after ``moment`` (epoch)."""
        try:
            return self.path_for(sha256).stat().st_mtime >= moment
        except FileNotFoundError:
            return False

    def delete(self, sha256: str) -> bool:
        """Remove a blob; returns whether it existed."""
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
