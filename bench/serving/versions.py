"""New versions without training, for benchmarks and tests that only need versions to load or
switch to.

``add_version`` stores a child state the way the worker does (exact delta blob, a full
checkpoint when one is due, ``create_version``), so loading it exercises the real chain
rebuild and hash checks; ``perturbed_version`` makes one from the active version plus small
seeded noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.db.tables import Model, Version
from service.db.values import ModelFamily
from service.modelling.checkpoints import load_checkpoint
from service.modelling.snapshots import state_sha256
from service.registry import repository as registry_repository
from service.settings import Settings
from service.storage.blobs import BlobStore
from service.versions import repository as versions_repository
from service.versions.service import create_version, register_base_version
from service.versions.state_chain import store_version_state, version_state


def register_model(
    session: Session,
    name: str,
    base_state: Mapping[str, torch.Tensor],
    base_path: Path,
    pair_path: Path | None = None,
) -> tuple[Model, Version]:
    """A model row for a checkpoint directory (a llava one with ``pair_path``) and its
    version 1, whose image encoder is ``base_state`` (no registration checks: benchmarks)."""
    model = Model(
        name=name,
        family=ModelFamily.LLAVA if pair_path else ModelFamily.CLIP,
        base_path=str(base_path),
        pair_path=str(pair_path) if pair_path else None,
    )
    session.add(model)
    session.flush()
    return model, register_base_version(session, model, state_sha256(dict(base_state)), "bench")


def add_version(
    session: Session,
    blobs: BlobStore,
    parent: Version,
    parent_state: Mapping[str, torch.Tensor],
    child_state: Mapping[str, torch.Tensor],
    checkpoint_every: int | None,
    method: str = "bench",
) -> Version:
    """A ready child of ``parent`` holding ``child_state`` (``checkpoint_every``: None never
    stores a full checkpoint, as versions written before checkpoints existed)."""
    stored = store_version_state(
        session, blobs, parent, parent_state, child_state, checkpoint_every
    )
    return create_version(
        session,
        model_id=parent.model_id,
        parent_id=parent.id,
        job_id=None,
        method=method,
        data_hash=None,
        content_sha256=stored.content_sha256,
        snapshot_sha256=stored.snapshot_sha256,
        checkpoint_sha256=stored.checkpoint_sha256,
    )


def perturbed_version(
    session_factory: sessionmaker[Session],
    blobs: BlobStore,
    model_id: str,
    seed: int,
    scale: float = 1e-2,
) -> str:
    """The id of a new ready version: the active version's weights plus seeded noise."""
    with session_scope(session_factory) as session:
        model = registry_repository.get(session, model_id)
        parent_id = versions_repository.active_version_id(session, model_id)
        assert model is not None and parent_id is not None
        parent = versions_repository.get(session, parent_id)
        assert parent is not None
        encoder = load_checkpoint(model.base_path, model.pair_path).encoder
        parent_state = version_state(session, blobs, parent, encoder.image_encoder_state())
        generator = torch.Generator().manual_seed(seed)
        child_state = {
            name: tensor + scale * torch.randn(tensor.shape, generator=generator)
            if tensor.is_floating_point()
            else tensor
            for name, tensor in parent_state.items()
        }
        version = add_version(
            session,
            blobs,
            parent,
            parent_state,
            child_state,
            Settings().checkpoint_every,
            method="perturbed",
        )
        return version.id
