"""Bounded version loads: checkpoints every few versions, still bit-exact and hash-checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.db.tables import Model, Version
from service.modelling.snapshots import SnapshotIntegrityError, read_metadata, state_sha256
from service.storage.blobs import FilesystemBlobStore
from service.versions import repository
from service.versions.service import create_version, register_base_version
from service.versions.state_chain import store_version_state, version_state

State = dict[str, torch.Tensor]


def _base_state() -> State:
    generator = torch.Generator().manual_seed(0)
    return {
        "blocks.0.weight": torch.randn(64, 32, generator=generator),
        "blocks.1.weight": torch.randn(64, 32, generator=generator),
        "norm.bias": torch.randn(32, generator=generator),
    }


def _perturbed(state: State, step: int, rows: int = 1) -> State:
    """The next state of a chain: a few rows of one tensor changed (a small real delta)."""
    child = {name: tensor.clone() for name, tensor in state.items()}
    name = "blocks.0.weight" if step % 2 else "blocks.1.weight"
    child[name][step % 64 : step % 64 + rows] += 0.01 * (step + 1)
    return child


def _grow_chain(
    session: Session,
    blobs: FilesystemBlobStore,
    model: Model,
    parent: Version,
    parent_state: State,
    count: int,
    checkpoint_every: int | None,
    rows: int = 1,
) -> list[tuple[Version, State]]:
    chain = []
    for _ in range(count):
        child_state = _perturbed(parent_state, parent.number, rows)
        stored = store_version_state(
            session, blobs, parent, parent_state, child_state, checkpoint_every
        )
        parent = create_version(
            session,
            model_id=model.id,
            parent_id=parent.id,
            job_id=None,
            method="lorsu",
            data_hash=None,
            content_sha256=stored.content_sha256,
            snapshot_sha256=stored.snapshot_sha256,
            checkpoint_sha256=stored.checkpoint_sha256,
        )
        parent_state = child_state
        chain.append((parent, child_state))
    return chain


@pytest.fixture
def blobs(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


def _model(session: Session) -> tuple[Model, Version, State]:
    base_state = _base_state()
    model = Model(name="m", family="clip", base_path="/nonexistent", activation_policy="auto")
    session.add(model)
    session.flush()
    base = register_base_version(session, model, state_sha256(base_state), actor="test")
    return model, base, base_state


def test_every_version_loads_exactly_with_a_bounded_replay(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    with session_scope(session_factory) as session:
        model, base, base_state = _model(session)
        chain = _grow_chain(session, blobs, model, base, base_state, 13, checkpoint_every=4)
        checkpointed = [v.number for v, _ in chain if v.checkpoint_sha256 is not None]
        # Version 1 is the base: versions 5, 9, 13 would otherwise replay 4 deltas.
        assert checkpointed == [5, 9, 13]
        for version, expected in chain:
            path = repository.rebuild_path(session, version)
            assert len(path) - 1 < 4  # deltas replayed
            rebuilt = version_state(session, blobs, version, base_state)
            assert state_sha256(rebuilt) == version.content_sha256 == state_sha256(expected)
            for name, tensor in expected.items():
                assert torch.equal(rebuilt[name].view(torch.int32), tensor.view(torch.int32))


def test_versions_stored_before_checkpoints_load_and_a_later_version_checkpoints(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    with session_scope(session_factory) as session:
        model, base, base_state = _model(session)
        old = _grow_chain(session, blobs, model, base, base_state, 6, checkpoint_every=None)
        assert all(v.checkpoint_sha256 is None for v, _ in old)
        last, last_state = old[-1]
        assert state_sha256(version_state(session, blobs, last, base_state)) == (
            last.content_sha256
        )
        [(new, new_state)] = _grow_chain(
            session, blobs, model, last, last_state, 1, checkpoint_every=4
        )
        assert new.checkpoint_sha256 is not None
        assert repository.rebuild_path(session, new) == [new]
        assert state_sha256(version_state(session, blobs, new, base_state)) == (
            state_sha256(new_state)
        )


def test_large_deltas_checkpoint_before_the_count_does(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    with session_scope(session_factory) as session:
        model, base, base_state = _model(session)
        # 40 of 64 rows of a 64x32 tensor: each delta is over a third of the state.
        chain = _grow_chain(
            session, blobs, model, base, base_state, 4, checkpoint_every=100, rows=40
        )
        assert [v.checkpoint_sha256 is not None for v, _ in chain] == [False, False, True, False]


def test_a_damaged_checkpoint_or_delta_is_refused_and_named(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    with session_scope(session_factory) as session:
        model, base, base_state = _model(session)
        chain = _grow_chain(session, blobs, model, base, base_state, 6, checkpoint_every=4)
        checkpointed, _ = chain[3]  # version 5
        assert checkpointed.checkpoint_sha256 is not None
        after, _ = chain[5]  # version 7: checkpoint of 5, deltas of 6 and 7
        blob = blobs.root / after.snapshot_sha256[:2] / after.snapshot_sha256[2:4]
        (blob / after.snapshot_sha256).write_bytes(b"not the delta")
        with pytest.raises(SnapshotIntegrityError, match="version 7"):
            version_state(session, blobs, after, base_state)
        # A delta that is valid but of another version is caught by the hashes it declares.
        sixth, _ = chain[4]
        after.snapshot_sha256 = sixth.snapshot_sha256
        with pytest.raises(SnapshotIntegrityError, match="version 7: snapshot is of another"):
            version_state(session, blobs, after, base_state)
        blobs.delete(checkpointed.checkpoint_sha256)
        with pytest.raises(SnapshotIntegrityError, match="version 5 checkpoint"):
            version_state(session, blobs, checkpointed, base_state)


def test_a_replay_that_ends_in_another_state_names_the_broken_step(
    session_factory: sessionmaker[Session], blobs: FilesystemBlobStore
) -> None:
    with session_scope(session_factory) as session:
        model, base, base_state = _model(session)
        chain = _grow_chain(session, blobs, model, base, base_state, 3, checkpoint_every=None)
        middle, last = chain[1][0], chain[2][0]  # versions 3 and 4
        # A forged delta: the hashes it declares are version 3's, its values are not.
        genuine = blobs.get(middle.snapshot_sha256 or "")
        tensors = {
            name: tensor + 1 if tensor.is_floating_point() else tensor
            for name, tensor in safetensors_load(genuine).items()
        }
        forged = safetensors_save(tensors, metadata=read_metadata(genuine))
        middle.snapshot_sha256 = blobs.put(forged)
        with pytest.raises(SnapshotIntegrityError, match="version 3: rebuilt state hash"):
            version_state(session, blobs, last, base_state)
        # The base checkpoint changed under version 1: refused before any replay.
        with pytest.raises(SnapshotIntegrityError, match="base checkpoint no longer matches"):
            version_state(session, blobs, last, _perturbed(base_state, 99))
