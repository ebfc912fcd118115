"""Content-addressed blob store: images and version snapshots, keyed by their sha256.

``BlobStore`` is the interface (an object store would implement the same methods);
``FilesystemBlobStore`` is the default. Writes are atomic (temp file + rename in the same
directory), so a crash never leaves a partial blob under its final name, and every read
re-hashes the bytes so silent corruption is reported instead of served.

Every ``put`` leaves the blob's modification time at "now", also when the blob was already
stored (the time is refreshed): garbage collection (``service/retention/collection.py``) relies
on it to never delete a blob a writer has just stored and not yet referenced.
``delete_if_older`` is the collector's delete: it first moves the blob away from its address
(a writer's ``put`` from then on writes a fresh copy), then decides on the moved file's
modification time, and puts it back when a ``put`` refreshed it meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMPORARY_PREFIX = ".tmp-"
# A blob being deleted: moved beside its address under this prefix (see ``delete_if_older``).
_DELETING_PREFIX = ".deleting-"


class BlobNotFoundError(Exception):
    """No blob with this sha256 is stored."""


class BlobCorruptedError(Exception):
    """A stored blob's bytes no longer hash to its name."""


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the blob's address)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its address, size and last write (or ``put``), in seconds since the epoch."""

    sha256: str
    size: int
    modified_at: float


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

    def size(self, sha256: str) -> int:
        """The stored size in bytes; raises BlobNotFound."""
        ...

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob (in no particular order)."""
        ...

    def delete_if_older(self, sha256: str, cutoff: float) -> bool:
        """Delete the blob unless it was written or ``put`` after ``cutoff`` (epoch seconds),
        safely against a concurrent ``put``; whether it was deleted."""
        ...

    def delete_stale_temporaries(self, cutoff: float) -> int:
        """Finish what crashed processes left: restore interrupted deletions, remove partial
        writes older than ``cutoff``; returns the bytes freed."""
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
        if self._refresh(path, len(data)):
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY_PREFIX)
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

    def size(self, sha256: str) -> int:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError as error:
            raise BlobNotFoundError(f"blob {sha256} is not stored") from error

    def list_blobs(self) -> Iterator[BlobInfo]:
        for path in self.root.glob("??/??/*"):
            if not _SHA256.match(path.name):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted while listing
                continue
            yield BlobInfo(path.name, stat.st_size, stat.st_mtime)

    def delete_if_older(self, sha256: str, cutoff: float) -> bool:
        path = self._path(sha256)
        moved = path.with_name(_DELETING_PREFIX + sha256)
        try:
            os.rename(path, moved)
        except FileNotFoundError:
            return False
        # From here no writer reaches the moved file: a ``put`` finds the address empty and
        # writes a fresh copy. A ``put`` that refreshed the file before the move shows in its
        # modification time, so the file goes back (same bytes: content-addressed).
        try:
            if moved.stat().st_mtime > cutoff:
                _put_back(moved, path)
                return False
            moved.unlink()
        except FileNotFoundError:  # another collector's start-up put it back meanwhile
            return False
        return True

    def delete_stale_temporaries(self, cutoff: float) -> int:
        freed = 0
        for moved in self.root.glob(f"??/??/{_DELETING_PREFIX}*"):
            # A collector died between moving and deciding: put the blob back (the next
            # collection decides again).
            try:
                _put_back(moved, moved.with_name(moved.name.removeprefix(_DELETING_PREFIX)))
            except FileNotFoundError:  # a running collector decided meanwhile
                continue
        for partial in self.root.glob(f"??/??/{_TEMPORARY_PREFIX}*"):
            try:
                stat = partial.stat()
                if stat.st_mtime <= cutoff:
                    partial.unlink()
                    freed += stat.st_size
            except FileNotFoundError:  # its writer finished or cleaned up meanwhile
                continue
        return freed

    @staticmethod
    def _refresh(path: Path, size: int) -> bool:
        """Mark an already stored blob as just written; False when it is not stored (whole)."""
        try:
            if path.stat().st_size != size:
                return False
            os.utime(path)
        except FileNotFoundError:  # absent, or being deleted right now: write it afresh
            return False
        return True


def _put_back(moved: Path, address: Path) -> None:
    """Return a moved blob to its address, unless a writer stored a fresh copy there (kept:
    same bytes, and its newer modification time is the one that counts)."""
    with contextlib.suppress(FileExistsError):
        os.link(moved, address)
    moved.unlink()
