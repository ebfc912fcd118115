"""Model and evaluation-set records: looking a model up, reading its checkpoint's facts,
storing and loading evaluation sets. Registering a model (which creates its version 1) is
``service/registration``."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from catalogue.architecture import VisionArchitecture, read_vision_architecture
from service.db.tables import EvalSet, EvalSetItem, Model
from service.db.values import EvalSetKind, ModelFamily
from service.errors import Conflict, InvalidInput, NotFound
from service.images import ImageLimits, decode_image
from service.modelling.checkpoints import checkpoint_family, load_checkpoint
from service.modelling.loading import ModelLoadError, load_dual_encoder
from service.modelling.snapshots import state_sha256
from service.modelling.vlm import VISION_TOWER_CHILDREN, architecture_differences
from service.registry import repository
from service.storage.blobs import BlobStore
from service.validation import MAX_TEXT_LENGTH, check_batch_size, clean_text

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


def resolve_checkpoint_path(base_path: str, roots: list[Path], field: str = "base_path") -> Path:
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
        f"{field}: no such model directory inside the service's model roots (VLMC_MODEL_ROOTS)",
    )


@dataclass(frozen=True)
class CheckpointFacts:
    """What registration learns from loading a checkpoint."""

    family: ModelFamily
    content_sha256: str  # of the image encoder's state (version 1)
    vision_towers_equal: bool | None = None  # llava: the VLM's tower against the pair's


_UNLOADABLE = (
    "not a loadable checkpoint (a Hugging Face CLIP, SigLIP, VisionTextDualEncoder or LLaVA "
    "directory with config.json and .safetensors weights)"
)


def inspect_checkpoint(path: Path, pair: Path | None, device: str) -> CheckpointFacts:
    """Load a base checkpoint (and a llava model's pair) and take its facts (422 if unusable).

    The loaders' messages name server paths: the log keeps them, the client gets none.
    """
    try:
        family = checkpoint_family(path)
    except (ModelLoadError, OSError, ValueError) as error:
        logger.warning("checkpoint %s is not loadable: %s", path, error)
        raise InvalidInput("checkpoint_unloadable", f"base_path: {_UNLOADABLE}") from error
    if family != ModelFamily.LLAVA:
        if pair is not None:
            raise InvalidInput(
                "pair_not_applicable", "pair_path: only llava models pair with a CLIP checkpoint"
            )
        try:
            encoder = load_dual_encoder(path, device=device)
        except (ModelLoadError, OSError, ValueError) as error:
            logger.warning("checkpoint %s is not loadable: %s", path, error)
            raise InvalidInput("checkpoint_unloadable", f"base_path: {_UNLOADABLE}") from error
        return CheckpointFacts(family, state_sha256(encoder.image_encoder_state()))
    if pair is None:
        raise InvalidInput(
            "pair_required",
            "pair_path: a llava model needs the CLIP-style checkpoint whose text tower pairs "
            "with its vision tower (the CLIP loss the updates train with needs one)",
        )
    return _inspect_llava(path, pair, device)


def _inspect_llava(path: Path, pair: Path, device: str) -> CheckpointFacts:
    try:
        pair_encoder = load_dual_encoder(pair, device=device)
        differences = architecture_differences(path, pair)
    except (ModelLoadError, OSError, ValueError) as error:
        logger.warning("pair checkpoint %s is not loadable: %s", pair, error)
        raise InvalidInput(
            "pair_unloadable",
            "pair_path: not a loadable CLIP-style checkpoint (CLIP, SigLIP or "
            "VisionTextDualEncoder with config.json and .safetensors weights)",
        ) from error
    if differences:
        raise InvalidInput(
            "vision_tower_mismatch",
            "the VLM's vision tower and the pair's differ in architecture: "
            + "; ".join(differences),
        )
    prefixes = tuple(f"{child}." for child in VISION_TOWER_CHILDREN)
    pair_sha256 = state_sha256(
        {k: v for k, v in pair_encoder.image_encoder_state().items() if k.startswith(prefixes)}
    )
    del pair_encoder
    try:
        loaded = load_checkpoint(path, pair, device=device)
    except (ModelLoadError, OSError, ValueError) as error:
        logger.warning("checkpoint %s is not loadable: %s", path, error)
        raise InvalidInput("checkpoint_unloadable", f"base_path: {_UNLOADABLE}") from error
    content_sha256 = state_sha256(loaded.encoder.image_encoder_state())
    return CheckpointFacts(ModelFamily.LLAVA, content_sha256, content_sha256 == pair_sha256)


def create_eval_set(
    session: Session,
    blobs: BlobStore,
    limits: ImageLimits,
    *,
    model_id: str,
    name: str,
    kind: EvalSetKind,
    images: list[bytes],
    labels: list[str],
    max_label_length: int,
    max_examples: int,
    max_drop: float | None = None,
    questions: list[str | None] | None = None,
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
    if questions and len(questions) != len(images):
        raise InvalidInput(
            "questions_mismatch",
            f"{len(images)} images but {len(questions)} questions: give one each (empty: none)",
        )
    asked = questions or [None] * len(images)
    items = []
    for position, (data, raw_label, raw_question) in enumerate(
        zip(images, labels, asked, strict=True)
    ):
        label = clean_text(raw_label, f"labels[{position}]", "empty_label", max_label_length)
        question = (
            None
            if raw_question is None
            else clean_text(
                raw_question, f"questions[{position}]", "empty_question", MAX_TEXT_LENGTH, True
            )
        )
        decode_image(data, limits, f"images[{position}]")
        items.append(
            EvalSetItem(
                position=position, image_sha256=blobs.put(data), label=label, question=question
            )
        )
    if max_drop is not None and kind != EvalSetKind.CONTROL:
        raise InvalidInput("max_drop_needs_control", "max_drop applies to control sets only")
    eval_set = EvalSet(model_id=model_id, name=name, kind=kind, max_drop=max_drop)
    return repository.add_eval_set(session, eval_set, items)
