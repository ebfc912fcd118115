"""Content-addressed blob store: images and version snapshots, keyed by their sha256.

``BlobStore`` is the interface (an object store would implement the same four methods);
``FilesystemBlobStore`` is the default. Writes are atomic (temp file + rename in the same
directory), so a crash never leaves a partial blob under its final name, and every read
re-hashes the bytes so silent corruption is reported instead of served.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobNotFoundError(Exception):
    """No blob with this sha256 is stored."""


class BlobCorruptedError(Exception):
    """A stored blob's bytes no longer hash to its name."""


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the blob's address)."""
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    """What the service needs from a blob store."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its sha256."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``, verified; raises BlobNotFound/BlobCorrupted."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a blob with this sha256 is stored."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove a blob (missing is not an error)."""
        ...


class FilesystemBlobStore:
    """Blobs as files ``<root>/<aa>/<bb>/<sha256>`` (fan-out keeps directories small)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise BlobNotFoundError(f"not a sha256 address: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        path = self._path(digest)
        if path.is_file() and path.stat().st_size == len(data):
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as error:
            raise BlobNotFoundError(f"blob {sha256} is not stored") from error
        actual = sha256_hex(data)
        if actual != sha256:
            raise BlobCorruptedError(f"blob {sha256} is corrupted: its bytes hash to {actual}")
        return data

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)
