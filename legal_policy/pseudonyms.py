"""Per-case pseudonyms of phone numbers: a keyed hash that links ads inside one case only.

One master key per deployment lives in a file readable by its owner alone. Each case gets
its own key derived from it, so the same number has the same pseudonym in every ad of a
case and an unrelated one in any other case: pseudonyms cannot be joined across cases, and
nobody without the master key can test a guessed number against them (the phone number
space is small enough to enumerate, so an unkeyed hash would hide nothing).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = [
    "KEY_BYTES",
    "PSEUDONYM_LENGTH",
    "PseudonymKeyError",
    "case_key",
    "load_or_create_key",
    "pseudonymise_phone",
]

KEY_BYTES: Final = 32
# "p:" + 18 hex digits = 20 characters, the width of the stored phone column. 72 bits: a
# collision inside one case is expected only after ~7e10 distinct numbers (birthday bound).
_PSEUDONYM_HEX: Final = 18
PSEUDONYM_LENGTH: Final = 2 + _PSEUDONYM_HEX

# Distinct labels keep the two HMAC uses apart: a case key can never equal a pseudonym.
_CASE_KEY_LABEL: Final = b"adwatch/pseudonyms/case-key/v1\x00"
_PHONE_LABEL: Final = b"adwatch/pseudonyms/phone/v1\x00"

_E164: Final = re.compile(r"^\+[1-9][0-9]{1,14}$")
_KEY_TEXT: Final = re.compile(rf"^[0-9a-fA-F]{{{2 * KEY_BYTES}}}$")


class PseudonymKeyError(Exception):
    """The pseudonym key file is unsafe or unreadable, or a key is unfit for use."""


def load_or_create_key(path: Path) -> bytes:
    """The master key in ``path``; created (32 random bytes, hex, mode 0600) if absent.

    An existing file must be a regular file that neither group nor others may read or
    write, holding exactly 64 hex digits; anything else is refused with ``PseudonymKeyError``.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _publish_new_key(path)
    # Read back what is there: if another process created the file first, its key wins.
    return _read_key(path)


def case_key(master_key: bytes, case_number: str) -> bytes:
    """The key of one case: HMAC-SHA256 of the case number under the master key."""
    _check_key(master_key, "master key")
    if not case_number:
        raise ValueError("a case key needs a case number")
    return hmac.new(master_key, _CASE_KEY_LABEL + case_number.encode("utf-8"), "sha256").digest()


def pseudonymise_phone(case_key: bytes, e164: str) -> str:
    """``"p:"`` and 18 hex digits: equal for equal numbers inside a case, unrelated across cases.

    Only E.164 input is accepted, so that every written form of a number gets one pseudonym.
    """
    _check_key(case_key, "case key")
    if not _E164.match(e164):
        # The value is not echoed: it may be a phone number.
        raise ValueError("only a phone number in E.164 form (+ and 2-15 digits) is pseudonymised")
    digest = hmac.new(case_key, _PHONE_LABEL + e164.encode("ascii"), "sha256").hexdigest()
    return "p:" + digest[:_PSEUDONYM_HEX]


def _check_key(key: bytes, what: str) -> None:
    if len(key) < KEY_BYTES:
        raise PseudonymKeyError(f"the {what} has {len(key)} bytes; at least {KEY_BYTES} needed")


def _read_key(path: Path) -> bytes:
    """The key in an existing file; ``FileNotFoundError`` if there is none."""
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PseudonymKeyError(f"{path}: the pseudonym key must be a regular file")
        if info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise PseudonymKeyError(
                f"{path}: the pseudonym key file has mode {mode:04o}, so group or others may "
                f"read or replace it; allow its owner only (chmod 600 {path})"
            )
        # A key file is 65 bytes; reading a little more is enough to tell it is too long.
        raw = handle.read(4 * KEY_BYTES)
    text = raw.decode("ascii", errors="replace").strip()
    if not _KEY_TEXT.match(text):
        raise PseudonymKeyError(
            f"{path}: not a pseudonym key (expected {2 * KEY_BYTES} hex digits); "
            "restore the right file rather than replacing it, or every pseudonym changes"
        )
    return bytes.fromhex(text)


def _publish_new_key(path: Path) -> None:
    """Write a new key beside ``path`` and link it into place unless a file is already there.

    The key is complete before its name appears (link, not rename, so an existing key is
    never replaced), so a concurrent reader never sees a half-written file.
    """
    text = secrets.token_bytes(KEY_BYTES).hex() + "\n"
    # mkstemp creates the file with O_EXCL and mode 0600.
    descriptor, temporary = tempfile.mkstemp(prefix=".adwatch-key-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text.encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        # Another creator's key wins: it is already in use for pseudonyms.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
        _fsync_directory(path.parent)
    finally:
        os.unlink(temporary)


def _fsync_directory(directory: Path) -> None:
    """Make the new name durable: a key lost in a crash would orphan every pseudonym."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
