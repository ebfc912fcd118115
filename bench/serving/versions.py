"""New versions without training, for benchmarks and tests that only need a version to switch to.

``perturbed_version`` writes a ready version whose image encoder is its parent's plus small
seeded noise, through the same path the worker uses (exact delta blob, ``create_version``),
so loading it exercises the real chain rebuild and hash check.
"""

from __future__ import annotations

import torch
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.modelling.checkpoints import load_checkpoint
from service.registry import repository as registry_repository
from service.storage.blobs import BlobStore
from service.versions import repository as versions_repository
from service.versions.service import create_version
from service.versions.state_chain import store_delta, version_state


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
        snapshot_sha256, content_sha256 = store_delta(blobs, parent_state, child_state)
        version = create_version(
            session,
            model_id=model_id,
            parent_id=parent_id,
            job_id=None,
            method="perturbed",
            data_hash=None,
            content_sha256=content_sha256,
            snapshot_sha256=snapshot_sha256,
        )
        return version.id
