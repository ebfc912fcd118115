"""Loaded encoders per (model, version), swapped Triton-style: load beside, then switch.

Requests for a model's active version are answered by the version this process is *serving*
for it. When the active pointer moves (this replica or another one), the first request that
notices loads the new version while every other request keeps using the old one; only a
successful, hash-verified load switches. A failed load keeps the old version serving and is
not retried for ``RETRY_AFTER_FAILURE_S`` seconds. Pinned requests (``version_id``) load that
version on demand. Least recently used entries beyond the capacity are dropped, never the one
a model is serving.

Versions differ only in the image encoder, so each model's checkpoint is loaded once (its
*base*) and every loaded version holds a copy of the image encoder only, sharing the base's
text tower (and, for generative models, projector and language model); caption embeddings are
cached per model (``service/serving/text_embeddings.py``). A model's base is dropped with its
last loaded version.

Once it ``follow``s an ``ActivePointers`` (the API process's pointer watch keeps one fresh),
the active pointer comes from memory; a model it does not hold yet is read from the database.

A deleted model is ``forget``-ed: everything loaded for it goes, and nothing is loaded for it
again (a load that was under way when it was deleted is dropped, not kept). Model ids are never
reused, so what is remembered of the deletion is only its id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from cachetools import TTLCache
from PIL import Image
from sqlalchemy.orm import Session

from service.db.tables import Model, Version
from service.db.values import VersionStatus
from service.errors import Conflict, NotFound, Unavailable
from service.modelling.checkpoints import LoadedCheckpoint, load_checkpoint
from service.modelling.dual_encoder import DualEncoder
from service.modelling.snapshots import state_sha256
from service.modelling.vlm import VisionLanguageModel
from service.registry import repository as registry_repository
from service.serving.pointers import ActivePointers
from service.serving.text_embeddings import TextEmbeddings
from service.storage.blobs import BlobStore
from service.versions import repository as versions_repository
from service.versions.state_chain import version_state

logger = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_S = 30.0
# Failed loads remembered at once (each for RETRY_AFTER_FAILURE_S); beyond, the oldest go.
_FAILURES_KEPT = 1024


@dataclass(frozen=True)
class ModelBase:
    """A model's checkpoint as registered (its version 1 weights), loaded once per process,
    and its text embeddings."""

    checkpoint: LoadedCheckpoint
    texts: TextEmbeddings
    # state_sha256 of the checkpoint's image encoder: a version with this content hash is
    # served by the base itself (no copy).
    image_encoder_sha256: str


@dataclass(frozen=True)
class LoadedVersion:
    """An encoder holding one version's weights."""

    model_id: str
    version_id: str
    version_number: int
    encoder: DualEncoder
    # The model's text embeddings (the same object for every version of the model).
    texts: TextEmbeddings
    # Generative (llava) models: the VLM, sharing its vision tower with ``encoder``.
    generator: VisionLanguageModel | None = None

    @property
    def batch_key(self) -> tuple[str, str]:
        """Requests with the same key may share a forward pass."""
        return (self.model_id, self.version_id)

    @torch.no_grad()
    def embed_images(self, images: list[Image.Image]) -> list[torch.Tensor]:
        """L2-normalised image embeddings (on the CPU) of ``images``, preprocessed and encoded
        in one batch (one call of the checkpoint's image processor for the whole batch: its
        per-call work is paid once per forward pass, not once per request)."""
        batch = self.encoder.preprocessor(images).to(self.encoder.device)
        embeddings = F.normalize(self.encoder.image_features(batch), dim=-1).cpu()
        return list(embeddings.unbind())


class ModelCache:
    """Thread-safe cache of loaded versions (see the module docstring)."""

    def __init__(
        self, blobs: BlobStore, device: str, capacity: int, text_cache_size: int = 4096
    ) -> None:
        self._blobs = blobs
        self._device = device
        self._capacity = capacity
        self._text_cache_size = text_cache_size
        self._bases: dict[str, ModelBase] = {}
        # In least recently used order. Not a cachetools LRUCache: eviction passes over the
        # versions being served (``_evict``), which LRUCache's eviction cannot do.
        self._entries: OrderedDict[tuple[str, str], LoadedVersion] = OrderedDict()
        self._serving: dict[str, str] = {}
        # (model id, version id) -> the error of a load that failed recently.
        self._failures: TTLCache[tuple[str, str], str] = TTLCache(
            _FAILURES_KEPT, RETRY_AFTER_FAILURE_S
        )
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._pointers: ActivePointers | None = None
        # Models deleted while this process ran (``forget``): never loaded again.
        self._deleted: set[str] = set()

    def follow(self, pointers: ActivePointers) -> None:
        """Read active pointers from ``pointers`` from now on (something must keep them
        fresh: ``service/serving/pointer_watch.py``)."""
        self._pointers = pointers

    # -- public ------------------------------------------------------------------------------
    def active(self, session: Session, model: Model) -> LoadedVersion:
        """The encoder answering for ``model``'s active version (or, while it loads or after it
        failed to load, the version served before)."""
        active_id = self._active_version_id(session, model.id)
        if active_id is None:
            # Every model is committed with its pointer, so a model without one was deleted
            # (after the request read its row): the answer for a model that does not exist.
            if model.id in self._deleted or registry_repository.get(session, model.id) is None:
                raise NotFound("model_not_found", f"no model {model.id}")
            raise Unavailable("no_active_version", f"model {model.id} has no active version")
        current = self._serving_entry(model.id)
        if current is not None and current.version_id == active_id:
            return current
        load_lock = self._load_lock(model.id)
        # With something to serve, never wait for a load another request is doing.
        if not load_lock.acquire(blocking=current is None):
            assert current is not None
            return current
        try:
            current = self._serving_entry(model.id)
            if current is not None and current.version_id == active_id:
                return current
            if current is not None and self._recently_failed(model.id, active_id):
                return current
            try:
                # A version still in the cache (e.g. the one a rollback returns to) switches
                # back at once, without a reload.
                loaded = self._get(model.id, active_id) or self._load(
                    session, model, self._version(session, model.id, active_id)
                )
            except NotFound:  # deleted meanwhile
                raise
            except Exception as error:
                self._record_failure(model.id, active_id, error)
                if current is not None:
                    logger.error(
                        "model %s: loading version %s failed, still serving %s: %s",
                        model.id,
                        active_id,
                        current.version_id,
                        error,
                    )
                    return current
                raise Unavailable(
                    "version_unavailable", f"the active version could not be loaded: {error}"
                ) from error
            with self._lock:
                self._refuse_deleted(model.id)
                self._serving[model.id] = loaded.version_id
            return loaded
        finally:
            load_lock.release()

    def pinned(self, session: Session, model: Model, version: Version) -> LoadedVersion:
        """The encoder of a specific version (it must be ready)."""
        if version.status == VersionStatus.FAILED:
            raise Conflict("version_failed", f"version {version.number} failed")
        if version.status != VersionStatus.READY:
            raise Conflict("version_not_ready", f"version {version.number} is {version.status}")
        entry = self._get(model.id, version.id)
        if entry is not None:
            return entry
        with self._load_lock(model.id):
            entry = self._get(model.id, version.id)
            if entry is not None:
                return entry
            try:
                return self._load(session, model, version)
            except NotFound:  # deleted meanwhile
                raise
            except Exception as error:
                self._record_failure(model.id, version.id, error)
                raise Unavailable(
                    "version_unavailable", f"version {version.number} could not be loaded: {error}"
                ) from error

    def serving_version(self, model_id: str) -> str | None:
        """The version this process currently answers with for ``model_id`` (None: none yet)."""
        with self._lock:
            return self._serving.get(model_id)

    def loaded(self, model_id: str, version_id: str) -> LoadedVersion | None:
        """The loaded encoder of a version, if this process holds it."""
        return self._get(model_id, version_id)

    def loaded_keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._entries)

    def model_ids(self) -> set[str]:
        """The models this process holds something for (a loaded version or its base)."""
        with self._lock:
            return {model_id for model_id, _ in self._entries} | set(self._bases)

    def forget(self, model_id: str) -> None:
        """The model was deleted: drop its loaded versions, its base (and so its text
        embeddings) and its failures, and load nothing for it from now on."""
        with self._lock:
            self._deleted.add(model_id)
            for key in [key for key in self._entries if key[0] == model_id]:
                del self._entries[key]
            for key in [key for key in self._failures if key[0] == model_id]:
                self._failures.pop(key, None)
            self._serving.pop(model_id, None)
            self._bases.pop(model_id, None)
            self._load_locks.pop(model_id, None)

    # -- internals ---------------------------------------------------------------------------
    def _active_version_id(self, session: Session, model_id: str) -> str | None:
        known = self._pointers.get(model_id) if self._pointers is not None else None
        if known is not None:
            return known
        active_id = versions_repository.active_version_id(session, model_id)
        if active_id is not None and self._pointers is not None:
            self._pointers.learn(model_id, active_id)
        return active_id

    def _version(self, session: Session, model_id: str, version_id: str) -> Version:
        version = versions_repository.get(session, version_id)
        if version is None:
            if registry_repository.get(session, model_id) is None:
                # Deleted after this process last read its pointer.
                raise NotFound("model_not_found", f"no model {model_id}")
            raise LookupError(f"active version {version_id} does not exist")
        return version

    def _base(self, model: Model) -> ModelBase:
        """The model's base (loaded on first use; callers hold the model's load lock)."""
        with self._lock:
            base = self._bases.get(model.id)
        if base is None:
            checkpoint = load_checkpoint(model.base_path, model.pair_path, device=self._device)
            base = ModelBase(
                checkpoint,
                TextEmbeddings(checkpoint.encoder, self._text_cache_size),
                state_sha256(checkpoint.encoder.image_encoder_state()),
            )
            with self._lock:
                self._refuse_deleted(model.id)
                self._bases[model.id] = base
        return base

    def _load(self, session: Session, model: Model, version: Version) -> LoadedVersion:
        started = time.perf_counter()
        base = self._base(model)
        checkpoint = base.checkpoint
        if version.content_sha256 != base.image_encoder_sha256:
            state = version_state(
                session, self._blobs, version, base.checkpoint.encoder.image_encoder_state()
            )
            checkpoint = base.checkpoint.with_own_image_encoder()
            checkpoint.encoder.load_image_encoder_state(state)
        loaded = LoadedVersion(
            model.id,
            version.id,
            version.number,
            checkpoint.encoder,
            base.texts,
            checkpoint.generator,
        )
        with self._lock:
            self._refuse_deleted(model.id)
            self._entries[(model.id, version.id)] = loaded
            self._entries.move_to_end((model.id, version.id))
            self._failures.pop((model.id, version.id), None)
            self._evict()
        logger.info(
            "model %s: loaded version %s in %.2fs",
            model.id,
            version.number,
            time.perf_counter() - started,
        )
        return loaded

    def _evict(self) -> None:
        serving = set(self._serving.items())
        for key in list(self._entries):
            if len(self._entries) <= self._capacity:
                break
            if key not in serving:
                del self._entries[key]
        # A base goes with its model's last loaded version (not while that model loads one).
        kept = {model_id for model_id, _ in self._entries}
        for model_id in list(self._bases):
            load_lock = self._load_locks.get(model_id)
            if model_id not in kept and not (load_lock is not None and load_lock.locked()):
                del self._bases[model_id]

    def _refuse_deleted(self, model_id: str) -> None:
        # Called holding ``_lock``: a load that finishes after ``forget`` keeps nothing.
        if model_id in self._deleted:
            raise NotFound("model_not_found", f"no model {model_id}")

    def _get(self, model_id: str, version_id: str) -> LoadedVersion | None:
        with self._lock:
            entry = self._entries.get((model_id, version_id))
            if entry is not None:
                self._entries.move_to_end((model_id, version_id))
            return entry

    def _serving_entry(self, model_id: str) -> LoadedVersion | None:
        with self._lock:
            version_id = self._serving.get(model_id)
        return self._get(model_id, version_id) if version_id is not None else None

    def _load_lock(self, model_id: str) -> threading.Lock:
        with self._lock:
            return self._load_locks.setdefault(model_id, threading.Lock())

    def _record_failure(self, model_id: str, version_id: str, error: Exception) -> None:
        with self._lock:
            self._failures[(model_id, version_id)] = str(error)

    def _recently_failed(self, model_id: str, version_id: str) -> bool:
        with self._lock:
            return (model_id, version_id) in self._failures
