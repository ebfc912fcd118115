"""Storing and rebuilding version weights: base checkpoint + chain of exact deltas.

A version's image-encoder state = the base checkpoint's state with the deltas of every version
on its lineage applied in order (``service/modelling/snapshots.py`` does the bit-exact math and
checks each step's hashes). Both the serving cache and the worker (loading a job's parent)
go through ``version_state``, so a version always means the same weights everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from sqlalchemy.orm import Session

from service.db.tables import Version
from service.modelling.snapshots import (
    SnapshotIntegrityError,
    apply_delta,
    delta_sha256,
    make_delta,
    state_sha256,
)
from service.storage.blobs import BlobCorruptedError, BlobNotFoundError, BlobStore
from service.versions import repository

State = dict[str, torch.Tensor]


def store_delta(
    blobs: BlobStore,
    parent_state: Mapping[str, torch.Tensor],
    child_state: Mapping[str, torch.Tensor],
) -> tuple[str, str]:
    """Write the exact parent->child delta as a blob.

    Returns ``(snapshot_sha256, content_sha256)``, the arguments of ``create_version``.
    """
    delta = make_delta(parent_state, child_state)
    return blobs.put(delta), state_sha256(child_state)


def version_state(
    session: Session, blobs: BlobStore, version: Version, base_state: Mapping[str, torch.Tensor]
) -> State:
    """The full image-encoder state of ``version``, rebuilt from ``base_state`` and verified.

    Raises :class:`SnapshotIntegrityError` when the base checkpoint no longer matches version 1,
    a delta blob is missing or corrupted, or the result does not hash to ``content_sha256``.
    """
    chain = repository.chain_to_root(session, version)
    root = chain[0]
    state: State = {name: tensor for name, tensor in base_state.items()}
    if state_sha256(state) != root.content_sha256:
        raise SnapshotIntegrityError(
            f"the base checkpoint no longer matches version {root.number} of this model"
        )
    for step in chain[1:]:
        if step.snapshot_sha256 is None:
            raise SnapshotIntegrityError(f"version {step.number} has no snapshot blob")
        try:
            delta = blobs.get(step.snapshot_sha256)
        except (BlobNotFoundError, BlobCorruptedError) as error:
            raise SnapshotIntegrityError(f"version {step.number}: {error}") from error
        # apply_delta verifies the result against the hash inside the delta; checking that hash
        # against the database first ties the blob to this version without re-hashing.
        if delta_sha256(delta) != step.content_sha256:
            raise SnapshotIntegrityError(f"version {step.number}: snapshot is of another state")
        state = apply_delta(state, delta)
    return state
