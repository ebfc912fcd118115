"""Storing and rebuilding version weights: base checkpoint + exact deltas, with checkpoints.

A version's image-encoder state = the state of its nearest *checkpointed* ancestor (a version
whose full state is stored as a safetensors blob, ``Version.checkpoint_sha256``; failing one,
the base checkpoint of version 1) with the deltas of the versions after it applied in order
(``service/modelling/snapshots.py`` does the bit-exact math). Both the serving cache and the
worker (loading a job's parent) go through ``version_state``, so a version always means the
same weights everywhere.

Bounded loads: when the worker stores a new version (``store_version_state``), it also stores
the full state when loading the new version would otherwise replay ``checkpoint_every``
deltas, or more than one delta adding up to more bytes than the full state (reading one
checkpoint is then cheaper than replaying them; a chain of full fine-tunes checkpoints every
second version). Loading any version therefore replays
fewer than ``checkpoint_every`` deltas. Versions written before checkpoints existed have none;
they still load (from the base), and the next version stored after them checkpoints as soon
as its own replay would pass the bound.

Integrity: every blob read is re-hashed by the blob store (its address is its sha256, which
the version row names), a checkpoint must hash to its version's ``content_sha256``, each
delta must name the state before it and the version it belongs to, and the rebuilt state is
hashed once at the end against the version's ``content_sha256``. A mismatch is re-run step
by step (each step hash-checked) to name the version whose snapshot is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from sqlalchemy.orm import Session

from service.db.tables import Version
from service.modelling.snapshots import (
    SnapshotIntegrityError,
    apply_delta,
    delta_sha256,
    deserialize_state,
    make_delta,
    read_metadata,
    replay_deltas,
    serialize_state,
    state_sha256,
)
from service.storage.blobs import BlobCorruptedError, BlobNotFoundError, BlobStore
from service.versions import repository

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class StoredState:
    """The blobs of a new version's weights: the arguments of ``create_version``."""

    snapshot_sha256: str
    content_sha256: str
    # Set when the full state was stored too (see the module docstring).
    checkpoint_sha256: str | None


def store_version_state(
    session: Session,
    blobs: BlobStore,
    parent: Version,
    parent_state: Mapping[str, torch.Tensor],
    child_state: Mapping[str, torch.Tensor],
    checkpoint_every: int | None,
) -> StoredState:
    """Write the exact parent->child delta, and the full child state when a checkpoint is due
    (``checkpoint_every``: None never checkpoints)."""
    delta = make_delta(parent_state, child_state)
    snapshot_sha256 = blobs.put(delta)
    checkpoint_sha256 = None
    if checkpoint_every is not None and _checkpoint_due(
        session, blobs, parent, len(delta), _state_bytes(child_state), checkpoint_every
    ):
        checkpoint_sha256 = blobs.put(serialize_state(child_state))
    return StoredState(snapshot_sha256, state_sha256(child_state), checkpoint_sha256)


def _checkpoint_due(
    session: Session,
    blobs: BlobStore,
    parent: Version,
    delta_bytes: int,
    state_bytes: int,
    checkpoint_every: int,
) -> bool:
    replayed = repository.rebuild_path(session, parent)[1:]
    if len(replayed) + 1 >= checkpoint_every:
        return True
    if not replayed:  # one delta from a stored state: never worth a second full copy
        return False
    try:
        replay_bytes = delta_bytes + sum(_snapshot_size(blobs, step) for step in replayed)
    except BlobNotFoundError:  # a lost delta: the checkpoint is what keeps the child loadable
        return True
    return replay_bytes > state_bytes


def _snapshot_size(blobs: BlobStore, version: Version) -> int:
    if version.snapshot_sha256 is None:
        raise BlobNotFoundError(f"version {version.number} has no snapshot blob")
    return blobs.size(version.snapshot_sha256)


def _state_bytes(state: Mapping[str, torch.Tensor]) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in state.values())


def version_state(
    session: Session, blobs: BlobStore, version: Version, base_state: Mapping[str, torch.Tensor]
) -> State:
    """The full image-encoder state of ``version``, rebuilt and verified (module docstring).

    Raises :class:`SnapshotIntegrityError` when the base checkpoint no longer matches version 1,
    a delta or checkpoint blob is missing or corrupted, or the result does not hash to
    ``content_sha256``.
    """
    path = repository.rebuild_path(session, version)
    start = path[0]
    state = _start_state(blobs, start, base_state)
    steps = path[1:]
    if not steps:
        return state
    deltas = [_delta(blobs, step) for step in steps]
    try:
        return replay_deltas(state, start.content_sha256, deltas)
    except SnapshotIntegrityError:
        _name_broken_step(state, steps, deltas)
        raise


def _start_state(blobs: BlobStore, start: Version, base_state: Mapping[str, torch.Tensor]) -> State:
    if start.checkpoint_sha256 is None:
        state: State = dict(base_state)
        if state_sha256(state) != start.content_sha256:
            raise SnapshotIntegrityError(
                f"the base checkpoint no longer matches version {start.number} of this model"
            )
        return state
    data = _blob(blobs, start.checkpoint_sha256, start, "checkpoint")
    state = deserialize_state(data)  # checks the tensors against the hash stored with them
    if read_metadata(data)["sha256"] != start.content_sha256:
        raise SnapshotIntegrityError(f"version {start.number}: checkpoint is of another state")
    return state


def _delta(blobs: BlobStore, step: Version) -> bytes:
    if step.snapshot_sha256 is None:
        raise SnapshotIntegrityError(f"version {step.number} has no snapshot blob")
    delta = _blob(blobs, step.snapshot_sha256, step, "snapshot")
    # Ties the blob to this version before any tensor is touched.
    if delta_sha256(delta) != step.content_sha256:
        raise SnapshotIntegrityError(f"version {step.number}: snapshot is of another state")
    return delta


def _blob(blobs: BlobStore, sha256: str, version: Version, what: str) -> bytes:
    try:
        return blobs.get(sha256)
    except (BlobNotFoundError, BlobCorruptedError) as error:
        raise SnapshotIntegrityError(f"version {version.number} {what}: {error}") from error


def _name_broken_step(start: State, steps: list[Version], deltas: list[bytes]) -> None:
    """Replay again with every step hash-checked; raises naming the first broken version."""
    state = start
    for step, delta in zip(steps, deltas, strict=True):
        try:
            state = apply_delta(state, delta)
        except SnapshotIntegrityError as error:
            raise SnapshotIntegrityError(f"version {step.number}: {error}") from error
