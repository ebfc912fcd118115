"""Garbage collection of blobs no row refers to, safe against concurrent writers.

Writers store a blob first and commit the row that refers to it afterwards (a correction's
images, a new version's delta and checkpoint): between the two, the blob is referenced by
nothing the collector can see. Deleting it then would leave a committed row naming a missing
blob. ``collect_garbage`` never does, under one assumption: **every writer commits its row
within ``grace_s`` of storing the blob** (``Settings.blob_gc_grace_s``; the service's writers
commit within seconds).

The collector works in this order:

0. Delete the answers kept for the mistakes inbox past their retention (unflagged, or used
   or dismissed; open items stay), committed: their images are then referenced by nothing
   (unless a correction or another answer holds the same bytes). A dry run deletes no row
   and counts those images as unreferenced alike.
1. ``cutoff = now - grace_s``; list the stored blobs with their modification times. A blob
   written, or stored again (``put`` refreshes the time of a blob it finds already stored),
   after ``cutoff`` is kept.
2. *Then* read every reference, in one statement (one snapshot).
3. For each listed blob older than ``cutoff`` and not referenced, ``delete_if_older``: the
   blob is moved away from its address, its time is read again, and it is deleted only if
   still older than ``cutoff`` (else it goes back).

Why a committed row never loses its blob: take a row committed at ``t_c`` naming blob B whose
last ``put`` was at ``t_p`` (so ``t_c - t_p < grace_s``).

- If the row was committed before step 2 read the references, B is referenced: kept.
- Otherwise ``t_c`` is after step 2, which is after the listing at ``t_1``, and
  ``t_p > t_c - grace_s > t_1 - grace_s = cutoff``. If the ``put`` came before the listing,
  the listed time is after ``cutoff``: kept. If it came after the listing, it either refreshed
  B before step 3 moved it (step 3 sees the new time and puts B back) or found B's address
  empty (moved) and wrote a fresh copy, which step 3 does not touch (it deletes only the
  moved file).

A blob of a row deleted or archived is collected by the first run after it is older than the
cutoff. Runs may overlap (two API replicas): each only ever deletes the file it moved itself.

A run may be limited to some blobs (``only``): deleting a model collects the blobs its rows
named, by exactly these rules, and leaves the rest of the store to ``POST /v1/storage/gc``.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from service.answers import repository as answers_repository
from service.db.base import utcnow
from service.retention import repository
from service.storage.blobs import BlobStore


@dataclass(frozen=True)
class CollectionReport:
    """What a collection found and did (``dry_run``: what it would delete)."""

    scanned_blobs: int
    referenced_blobs: int
    recent_blobs: int
    deleted_blobs: int
    freed_bytes: int
    dry_run: bool
    expired_answers: int = 0


@dataclass(frozen=True)
class StorageUsage:
    """Stored blobs and their total size."""

    blobs: int
    bytes: int


def storage_usage(blobs: BlobStore) -> StorageUsage:
    """How many blobs are stored and how many bytes they take."""
    count = total = 0
    for info in blobs.list_blobs():
        count += 1
        total += info.size
    return StorageUsage(count, total)


def collect_garbage(
    session_factory: sessionmaker[Session],
    blobs: BlobStore,
    grace_s: float,
    dry_run: bool = False,
    only: Collection[str] | None = None,
) -> CollectionReport:
    """Delete the blobs no row refers to and nobody stored in the last ``grace_s`` seconds
    (the order of the steps is what makes it safe: see the module docstring).

    ``only``: consider these blobs alone (the report counts only them), and leave the rest
    of the store's upkeep (expired answers, interrupted writes and deletions) to a whole run.
    """
    now = utcnow()
    expired = 0
    if not dry_run and only is None:
        with session_factory() as session:
            expired = answers_repository.delete_expired(session, now)
            session.commit()
    cutoff = time.time() - grace_s
    freed = 0 if dry_run or only is not None else blobs.delete_stale_temporaries(cutoff)
    listed = list(blobs.list_blobs())
    if only is not None:
        wanted = set(only)
        listed = [info for info in listed if info.sha256 in wanted]
    with session_factory() as session:
        referenced = repository.referenced_blobs(session, now)
    old = [info for info in listed if info.modified_at <= cutoff]
    unreferenced = [info for info in old if info.sha256 not in referenced]
    deleted = 0
    for info in unreferenced:
        if dry_run or blobs.delete_if_older(info.sha256, cutoff):
            deleted += 1
            freed += info.size
    return CollectionReport(
        scanned_blobs=len(listed),
        referenced_blobs=sum(1 for info in listed if info.sha256 in referenced),
        recent_blobs=len(listed) - len(old),
        deleted_blobs=deleted,
        freed_bytes=freed,
        dry_run=dry_run,
        expired_answers=expired,
    )
