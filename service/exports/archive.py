"""A directory as an uncompressed tar stream, produced piece by piece.

Tar states each member's size in the header before its bytes, so a stream of files already
on disk can be written without holding any file in memory, and its total length is known
before the first byte (``Content-Length``: a download can show its progress). Weights do not
compress, so the stream is not compressed. Every member sits under one folder, ``root``.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_BLOCK = tarfile.BLOCKSIZE
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Member:
    path: Path
    header: bytes
    size: int


class TarStream:
    """The regular files directly inside ``directory`` as ``root/<name>`` members (sorted,
    mode 0644, the files' own modification times). Iterate to get the bytes."""

    def __init__(self, directory: Path, root: str) -> None:
        self._members = []
        for path in sorted(directory.iterdir()):
            if not path.is_file():
                continue
            stat = path.stat()
            info = tarfile.TarInfo(f"{root}/{path.name}")
            info.size = stat.st_size
            info.mtime = int(stat.st_mtime)
            info.mode = 0o644
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            self._members.append(_Member(path, header, stat.st_size))

    @property
    def size(self) -> int:
        """Bytes the stream yields in all."""
        return sum(len(m.header) + m.size + _padding(m.size) for m in self._members) + 2 * _BLOCK

    def __iter__(self) -> Iterator[bytes]:
        for member in self._members:
            yield member.header
            with member.path.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    yield chunk
            if _padding(member.size):
                yield b"\0" * _padding(member.size)
        # The end-of-archive marker: two zero blocks.
        yield b"\0" * (2 * _BLOCK)


def _padding(size: int) -> int:
    return -size % _BLOCK
