"""Blob garbage collection: unreferenced blobs go, a blob whose row is not committed yet never.

The race the collector must survive: a writer stores a blob (or stores again one that is
already there and unreferenced), then commits the row naming it. The tests drive the
interleavings by hand and with threads against real PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.db.tables import EvalSet, EvalSetItem
from service.retention.collection import collect_garbage, storage_usage
from service.storage.blobs import FilesystemBlobStore
from tests.db.helpers import add_model

GRACE_S = 600.0
LONG_AGO = time.time() - 10 * GRACE_S


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def _stored_long_ago(blobs: FilesystemBlobStore, data: bytes) -> str:
    sha256 = blobs.put(data)
    path = blobs.root / sha256[:2] / sha256[2:4] / sha256
    os.utime(path, (LONG_AGO, LONG_AGO))
    return sha256


def _add_eval_set(session: Session, model_id: str, name: str, images: list[str]) -> None:
    eval_set = EvalSet(model_id=model_id, name=name, kind="control")
    session.add(eval_set)
    session.flush()
    session.add_all(
        EvalSetItem(eval_set_id=eval_set.id, position=i, image_sha256=sha, label="x")
        for i, sha in enumerate(images)
    )
    session.flush()


def test_collects_unreferenced_blobs_and_keeps_referenced_and_recent_ones(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    referenced = _stored_long_ago(blobs, b"referenced")
    garbage = _stored_long_ago(blobs, b"garbage")
    recent = blobs.put(b"stored just now, row not committed yet")
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        _add_eval_set(session, model.id, "set", [referenced])
    dry = collect_garbage(session_factory, blobs, GRACE_S, dry_run=True)
    assert (dry.deleted_blobs, dry.freed_bytes) == (1, len(b"garbage"))
    assert blobs.exists(garbage)
    report = collect_garbage(session_factory, blobs, GRACE_S)
    assert (report.scanned_blobs, report.referenced_blobs, report.recent_blobs) == (3, 1, 1)
    assert (report.deleted_blobs, report.freed_bytes) == (1, len(b"garbage"))
    assert not blobs.exists(garbage)
    assert blobs.exists(referenced) and blobs.exists(recent)
    assert storage_usage(blobs).blobs == 2


def test_a_blob_stored_again_for_an_uncommitted_row_survives_collection(
    pg_session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    """Real PostgreSQL: the writer's row is inserted but not committed while the collector
    reads references (another connection cannot see it); the refreshed time keeps the blob."""
    orphan = _stored_long_ago(blobs, b"an image of a deleted eval set")
    with session_scope(pg_session_factory) as session:
        model, _ = add_model(session)
        model_id = model.id
    writer = pg_session_factory()
    try:
        # The same image uploaded again: put finds it stored and refreshes it.
        assert blobs.put(b"an image of a deleted eval set") == orphan
        _add_eval_set(writer, model_id, "again", [orphan])  # flushed, not committed
        report = collect_garbage(pg_session_factory, blobs, GRACE_S)
        assert report.referenced_blobs == 0  # the collector could not see the row...
        assert report.deleted_blobs == 0 and blobs.exists(orphan)  # ...and kept the blob
        writer.commit()
    finally:
        writer.close()
    assert blobs.get(orphan) == b"an image of a deleted eval set"
    # Once committed, it is referenced; without a grace period the blob would have been lost.
    later = collect_garbage(pg_session_factory, blobs, 0.0)
    assert later.referenced_blobs == 1 and blobs.exists(orphan)


def test_a_put_between_listing_and_deleting_keeps_the_blob(blobs: FilesystemBlobStore) -> None:
    sha256 = _stored_long_ago(blobs, b"listed as old")
    cutoff = time.time() - GRACE_S
    assert [info.modified_at <= cutoff for info in blobs.list_blobs()] == [True]
    blobs.put(b"listed as old")  # a writer stores it again after the listing
    assert blobs.delete_if_older(sha256, cutoff) is False
    assert blobs.get(sha256) == b"listed as old"
    os.utime(blobs.root / sha256[:2] / sha256[2:4] / sha256, (LONG_AGO, LONG_AGO))
    assert blobs.delete_if_older(sha256, cutoff) is True
    assert not blobs.exists(sha256)


def test_leftovers_of_a_crashed_collector_or_writer_are_repaired(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    sha256 = _stored_long_ago(blobs, b"being deleted when the collector died")
    path = blobs.root / sha256[:2] / sha256[2:4] / sha256
    os.rename(path, path.with_name(".deleting-" + sha256))
    partial = path.with_name(".tmp-partial")
    partial.write_bytes(b"half a blob")
    os.utime(partial, (LONG_AGO, LONG_AGO))
    with session_scope(session_factory) as session:
        model, _ = add_model(session)
        _add_eval_set(session, model.id, "set", [sha256])
    report = collect_garbage(session_factory, blobs, GRACE_S)
    assert blobs.get(sha256) == b"being deleted when the collector died"
    assert not partial.exists() and report.freed_bytes == len(b"half a blob")


def test_concurrent_writers_never_lose_a_committed_blob(
    pg_session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    """Real PostgreSQL, real threads: writers store old unreferenced blobs again and commit
    rows naming them while collections run back to back; every committed row's blob stays."""
    payloads = [f"orphan {index}".encode() for index in range(60)]
    hashes = [_stored_long_ago(blobs, data) for data in payloads]
    with session_scope(pg_session_factory) as session:
        model, _ = add_model(session)
        model_id = model.id
    done = threading.Event()
    errors: list[BaseException] = []
    committed: list[str] = []

    def writer(offset: int) -> None:
        try:
            for index in range(offset, len(payloads), 2):
                with session_scope(pg_session_factory) as session:
                    blobs.put(payloads[index])
                    _add_eval_set(session, model_id, f"set-{index}", [hashes[index]])
                committed.append(hashes[index])
        except BaseException as error:
            errors.append(error)

    def collector() -> None:
        try:
            while not done.is_set():
                collect_garbage(pg_session_factory, blobs, GRACE_S)
        except BaseException as error:
            errors.append(error)

    collecting = threading.Thread(target=collector)
    collecting.start()
    writers = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 1)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    collecting.join()
    assert errors == []
    assert sorted(committed) == sorted(hashes)
    for sha256, data in zip(hashes, payloads, strict=True):
        assert blobs.get(sha256) == data
