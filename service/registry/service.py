"""Registering models (with version 1 = base checkpoint) and their evaluation sets."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy.orm import Session

from service.db.tables import EvalSet, EvalSetItem, Model
from service.errors import Conflict, InvalidInput, NotFound
from service.images import ImageLimits, decode_image, load_stored_image
from service.modelling.architecture import VisionArchitecture, read_vision_architecture
from service.modelling.loading import ModelLoadError, detect_family, load_dual_encoder
from service.modelling.snapshots import state_sha256
from service.registry import repository
from service.settings import Settings
from service.storage.blobs import BlobStore
from service.validation import check_batch_size, clean_text
from service.versions import repository as versions_repository
from service.versions.service import register_base_version

logger = logging.getLogger(__name__)


def get_model(session: Session, model_id: str) -> Model:
    """The model, or 404 ``model_not_found``."""
    model = repository.get(session, model_id)
    if model is None:
        raise NotFound("model_not_found", f"no model {model_id}")
    return model


def model_architecture(model: Model) -> VisionArchitecture:
    """The shape of the model's image encoder (from its checkpoint's config.json)."""
    return _architecture_at(model.base_path)


@functools.lru_cache(maxsize=256)
def _architecture_at(base_path: str) -> VisionArchitecture:
    # Registered checkpoints are immutable directories: their config is read once.
    return read_vision_architecture(base_path)


def resolve_checkpoint_path(base_path: str, roots: list[Path]) -> Path:
    """The directory ``base_path`` names inside one of the model ``roots`` (absolute, or
    relative to a root; the first root that has it wins), symlinks resolved: a path that
    resolves outside every root is refused like a missing one (422 ``checkpoint_not_found``,
    with no server path in the message)."""
    candidate = Path(base_path)
    for root in roots:
        try:
            resolved = (root / candidate).resolve()
            if resolved.is_relative_to(root) and resolved.is_dir():
                return resolved
        except (OSError, ValueError):  # a name too long, a symlink loop, a NUL byte
            continue
    raise InvalidInput(
        "checkpoint_not_found",
        "base_path: no such model directory inside the service's model roots (VLMC_MODEL_ROOTS)",
    )


def inspect_checkpoint(path: Path, device: str) -> tuple[str, str]:
    """``(family, content_sha256)`` of a base checkpoint's image encoder (422 if unusable)."""
    try:
        family = detect_family(path)
        model = load_dual_encoder(path, device=device)
    except (ModelLoadError, OSError, ValueError) as error:
        # The loader's message names server paths: the log keeps it, the client gets none.
        logger.warning("checkpoint %s is not loadable: %s", path, error)
        raise InvalidInput(
            "checkpoint_unloadable",
            "base_path: not a loadable checkpoint (a Hugging Face CLIP, SigLIP or "
            "VisionTextDualEncoder directory with config.json and .safetensors weights)",
        ) from error
    return family, state_sha256(model.image_encoder_state())


def register_model(
    session: Session,
    settings: Settings,
    *,
    name: str,
    base_path: str,
    actor: str,
    family: str | None = None,
    activation_policy: str | None = None,
    activation_threshold: float | None = None,
) -> Model:
    """A new model with version 1 (its base checkpoint, active). 409 if the name is taken."""
    if repository.get_by_name(session, name) is not None:
        raise Conflict("model_name_taken", f"a model named {name!r} already exists")
    path = resolve_checkpoint_path(base_path, settings.model_roots)
    detected, content_sha256 = inspect_checkpoint(path, settings.device)
    if family is not None and family != detected:
        raise InvalidInput(
            "family_mismatch", f"the checkpoint is a {detected!r} model, not {family!r}"
        )
    model = repository.add(
        session,
        Model(
            name=name,
            family=detected,
            base_path=str(path),
            activation_policy=activation_policy or settings.default_activation_policy,
            activation_threshold=(
                settings.activation_threshold
                if activation_threshold is None
                else activation_threshold
            ),
        ),
    )
    register_base_version(session, model, content_sha256, actor)
    return model


def active_version_summary(session: Session, model: Model) -> tuple[str | None, int | None]:
    """``(active version id, its number)`` of a model."""
    version_id = versions_repository.active_version_id(session, model.id)
    if version_id is None:
        return None, None
    version = versions_repository.get(session, version_id)
    return version_id, version.number if version is not None else None


def create_eval_set(
    session: Session,
    blobs: BlobStore,
    limits: ImageLimits,
    *,
    model_id: str,
    name: str,
    kind: str,
    images: list[bytes],
    labels: list[str],
    max_label_length: int,
    max_examples: int,
    max_drop: float | None = None,
) -> EvalSet:
    """Validate and store a labelled evaluation set (409 if the name is used)."""
    get_model(session, model_id)
    if repository.get_eval_set_by_name(session, model_id, name) is not None:
        raise Conflict("eval_set_name_taken", f"this model already has an eval set {name!r}")
    if not images:
        raise InvalidInput("no_examples", "an eval set needs at least one labelled image")
    check_batch_size(len(images), max_examples)
    if len(labels) != len(images):
        raise InvalidInput(
            "labels_mismatch", f"{len(images)} images but {len(labels)} labels: give one each"
        )
    items = []
    for position, (data, raw_label) in enumerate(zip(images, labels, strict=True)):
        label = clean_text(raw_label, f"labels[{position}]", "empty_label", max_label_length)
        decode_image(data, limits, f"images[{position}]")
        items.append(EvalSetItem(position=position, image_sha256=blobs.put(data), label=label))
    if max_drop is not None and kind != "control":
        raise InvalidInput("max_drop_needs_control", "max_drop applies to control sets only")
    eval_set = EvalSet(model_id=model_id, name=name, kind=kind, max_drop=max_drop)
    return repository.add_eval_set(session, eval_set, items)


@dataclass
class LoadedEvalSet:
    """An evaluation set with its images decoded (what the worker evaluates on)."""

    name: str
    kind: str
    images: list[Image.Image]
    labels: list[str]


def load_eval_sets(
    session: Session, blobs: BlobStore, model_id: str, kind: str | None = None
) -> list[LoadedEvalSet]:
    """Every eval set of a model (optionally one kind), images read and hash-checked."""
    loaded = []
    for eval_set in repository.list_eval_sets(session, model_id, kind):
        items = repository.eval_set_items(session, eval_set.id)
        loaded.append(
            LoadedEvalSet(
                name=eval_set.name,
                kind=eval_set.kind,
                images=[load_stored_image(blobs, item.image_sha256) for item in items],
                labels=[item.label for item in items],
            )
        )
    return loaded
