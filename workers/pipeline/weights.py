"""The worker's cache of loaded encoders and materialised version states.

A job trains from its model's active version: base checkpoint + the exact deltas of its
lineage (``service.versions.state_chain.version_state``, hash-checked at every step). Rebuilding
that for every job is wasteful when the parent is usually the version the previous job just
produced, so the last few states are kept (on the CPU) per worker process. The encoder itself
is loaded once per model; jobs overwrite its image-encoder weights in place.
"""

from __future__ import annotations

import threading

import torch
from cachetools import LRUCache
from sqlalchemy.orm import Session

from service.db.tables import Model, Version
from service.modelling.checkpoints import LoadedCheckpoint, load_checkpoint
from service.modelling.dual_encoder import DualEncoder
from service.storage.blobs import BlobStore
from service.versions.state_chain import version_state

State = dict[str, torch.Tensor]


class WeightsCache:
    """Loaded encoders per model and the ``capacity`` most recent version states."""

    def __init__(self, device: str, capacity: int) -> None:
        self._device = device
        self._checkpoints: dict[str, tuple[str, LoadedCheckpoint]] = {}
        self._base_states: dict[str, State] = {}
        self._states: LRUCache[tuple[str, str], State] = LRUCache(maxsize=capacity)
        self._lock = threading.Lock()

    def encoder_at(
        self, session: Session, blobs: BlobStore, model: Model, version: Version
    ) -> tuple[DualEncoder, State]:
        """The model's encoder holding ``version``'s image-encoder weights, and that state.

        The returned state is the cache's copy: callers must not modify it (training changes
        the encoder's own tensors, which ``load_image_encoder_state`` copied into).
        """
        with self._lock:
            encoder = self._encoder(model)
            key = (model.id, version.id)
            state = self._states.get(key)  # a hit counts as a use
            if state is None:
                state = version_state(session, blobs, version, self._base_states[model.id])
                self._states[key] = state
            encoder.load_image_encoder_state(state)
            return encoder, state

    def remember(self, model_id: str, version_id: str, state: State) -> None:
        """Keep a freshly produced version's state (the likely parent of the next job)."""
        with self._lock:
            self._states[(model_id, version_id)] = state

    def base_state(self, model: Model) -> State:
        """The image-encoder weights of the model's base checkpoint (the cache's copy: callers
        must not modify it)."""
        with self._lock:
            self._checkpoint(model)
            return self._base_states[model.id]

    def checkpoint(self, model: Model) -> LoadedCheckpoint:
        """The model's loaded checkpoint (its VLM too, for generative models), loaded once."""
        with self._lock:
            return self._checkpoint(model)

    def _encoder(self, model: Model) -> DualEncoder:
        return self._checkpoint(model).encoder

    def _checkpoint(self, model: Model) -> LoadedCheckpoint:
        cached = self._checkpoints.get(model.id)
        if cached is not None and cached[0] == model.base_path:
            return cached[1]
        # Loaded here, inside the task, so CUDA is first touched in the process that trains
        # (never in the parent of a forked pool).
        checkpoint = load_checkpoint(model.base_path, model.pair_path, device=self._device)
        self._checkpoints[model.id] = (model.base_path, checkpoint)
        self._base_states[model.id] = checkpoint.encoder.image_encoder_state()
        return checkpoint
