"""Content-addressed blob store: idempotent atomic writes, hash-checked reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.storage.blobs import (
    BlobCorruptedError,
    BlobNotFoundError,
    FilesystemBlobStore,
    sha256_hex,
)


def test_put_get_roundtrip_and_idempotence(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    data = b"\x89PNG some image bytes"
    address = store.put(data)
    assert address == sha256_hex(data)
    assert store.put(data) == address
    assert store.get(address) == data and store.exists(address)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [address]  # no temp files left behind


def test_corruption_is_detected_on_read(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    address = store.put(b"original bytes")
    path = next(p for p in tmp_path.rglob(address))
    path.write_bytes(b"tampered bytes")
    with pytest.raises(BlobCorruptedError, match=address):
        store.get(address)


def test_missing_and_malformed_addresses(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    with pytest.raises(BlobNotFoundError):
        store.get("0" * 64)
    with pytest.raises(BlobNotFoundError):
        store.get("../../etc/passwd")
    store.delete("0" * 64)  # deleting what is not there is fine
