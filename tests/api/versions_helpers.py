"""Writing versions the way the worker does, for API tests that need more than version 1.

``train_version`` runs the real update engine on real images from the model's active version,
stores the exact delta in the blob store and creates the version row with the same service
functions the worker pipeline uses. (The full worker path is covered end to end elsewhere.)
"""

from __future__ import annotations

from typing import Any

from service.db.session import session_scope
from service.db.tables import Version
from service.modelling.checkpoints import load_checkpoint
from service.modelling.snapshots import state_sha256
from service.registry import repository as registry_repository
from service.runtime import Runtime
from service.versions import repository as versions_repository
from service.versions.service import create_version
from service.versions.state_chain import store_version_state, version_state


def train_version(
    runtime: Runtime,
    model_id: str,
    images: list[Any],
    labels: list[str],
    *,
    status: str = "ready",
    learning_rate: float = 1e-3,
) -> Version:
    """A new version trained (full fine-tuning, a few steps) from the model's active version."""
    from service.modelling.examples import ImageExample
    from workers.engine.update import run_update

    with session_scope(runtime.session_factory) as session:
        model = registry_repository.get(session, model_id)
        assert model is not None
        parent_id = versions_repository.active_version_id(session, model_id)
        assert parent_id is not None
        parent = versions_repository.get(session, parent_id)
        assert parent is not None
        checkpoint = load_checkpoint(model.base_path, model.pair_path)
        encoder = checkpoint.encoder
        parent_state = version_state(session, runtime.blobs, parent, encoder.image_encoder_state())
        encoder.load_image_encoder_state(parent_state)
        examples = [
            ImageExample(image=image, label=label)
            for image, label in zip(images, labels, strict=True)
        ]
        run_update(
            encoder,
            examples,
            method="full-ft",
            hyperparameters={"learning_rate": learning_rate, "epochs": 2, "batch_size": 16},
            seed=0,
            # A llava model trains through its answers by default: its language model too.
            vlm=checkpoint.generator,
        )
        child_state = encoder.image_encoder_state()
        assert state_sha256(child_state) != parent.content_sha256
        stored = store_version_state(
            session,
            runtime.blobs,
            parent,
            parent_state,
            child_state,
            runtime.settings.checkpoint_every,
        )
        return create_version(
            session,
            model_id=model_id,
            parent_id=parent_id,
            job_id=None,
            method="full-ft",
            data_hash=None,
            content_sha256=stored.content_sha256,
            snapshot_sha256=stored.snapshot_sha256,
            checkpoint_sha256=stored.checkpoint_sha256,
            status=status,
        )


def copy_version(runtime: Runtime, source: Version, status: str) -> Version:
    """Another version with ``source``'s parent, weights and delta but the given status
    (what the worker records when a trained version fails evaluation or is still pending)."""
    assert source.parent_id is not None and source.snapshot_sha256 is not None
    with session_scope(runtime.session_factory) as session:
        return create_version(
            session,
            model_id=source.model_id,
            parent_id=source.parent_id,
            job_id=None,
            method=source.method,
            data_hash=None,
            content_sha256=source.content_sha256,
            snapshot_sha256=source.snapshot_sha256,
            checkpoint_sha256=source.checkpoint_sha256,
            status=status,
        )
