"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from storage.blobstore import BlobIntegrityError, BlobNotFound, BlobStore


def test_put_returns_sha256_and_get_reads_back(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"synthetic page")
    assert digest == hashlib.sha256(b"synthetic page").hexdigest()
    assert store.get(digest) == b"synthetic page"


def test_same_bytes_are_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.put(b"same")
    second = store.put(b"same")
    assert first == second
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_corrupted_blob_is_detected_on_read(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"original")
    store.path_for(digest).write_bytes(b"tampered")
    with pytest.raises(BlobIntegrityError):
        store.get(digest)


def test_missing_blob_and_malformed_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(BlobNotFound):
        store.get("0" * 64)
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


def test_delete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"x")
    assert store.delete(digest) is True
    assert store.exists(digest) is False
    assert store.delete(digest) is False


def test_storing_bytes_again_marks_the_blob_as_just_stored(tmp_path: Path) -> None:
    # A purge that began before a crawl stored the same bytes again must leave the file.
    import os
    import time

    store = BlobStore(tmp_path)
    digest = store.put(b"synthetic bytes")
    long_ago = time.time() - 3600
    os.utime(store.path_for(digest), (long_ago, long_ago))
    purge_began = time.time() - 1
    assert not store.stored_since(digest, purge_began)
    store.put(b"synthetic bytes")
    assert store.stored_since(digest, purge_began)
    assert not store.stored_since("0" * 64, purge_began)
