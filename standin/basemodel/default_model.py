"""Prepare the embedded default: the stand-in base model and the stand-in VLM paired with it,
registered with evaluation sets.

``vlmc serve`` runs ``python -m standin.basemodel.default_model`` in a child process before
it starts the API, so the API process never imports training code. The database's schema must
be current (``vlmc migrate``, which ``vlmc serve`` runs first). Idempotent: assembles the
models from the committed releases (no training) only if their directories are missing;
registers the base model only if no model exists yet, and the VLM (beside it, paired with it)
only if the base model is registered and the VLM is not (so an existing deployment of the
embedded default gains the VLM on its next start).
"""

from __future__ import annotations

import io
import sys

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from service.db.migrate import require_head
from service.db.session import create_db_engine, create_session_factory, session_scope
from service.db.values import EvalSetKind
from service.images import ImageLimits
from service.registration.service import register_model
from service.registry import repository
from service.registry.service import create_eval_set
from service.settings import Settings, get_settings
from service.storage.blobs import FilesystemBlobStore
from standin.basemodel.builder import is_built
from standin.basemodel.release import materialise_release
from standin.basemodel.vlm.questions import WHAT_QUESTIONS, question_answers
from standin.basemodel.vlm.release import materialise_vlm_release, trained_on
from standin.datasets import load_dataset

# Evaluation sets of the stand-in model, each within the per-request example limit (256):
# name -> (kind, images per class, classes kept or None for all). "Must not regress"
# (control): held-out renderings of the two training styles, Fashion-MNIST and textures.
# Target: held-out OpenMoji renderings, the style the model has never seen.
EMOJI_SET_CONCEPTS = 250
EVAL_SETS: dict[str, tuple[EvalSetKind, int, int | None]] = {
    "emoji-google": (EvalSetKind.CONTROL, 1, EMOJI_SET_CONCEPTS),
    "emoji-twitter": (EvalSetKind.CONTROL, 1, EMOJI_SET_CONCEPTS),
    "fashion-mnist": (EvalSetKind.CONTROL, 25, None),
    "textures": (EvalSetKind.CONTROL, 30, None),
    "emoji-openmoji": (EvalSetKind.TARGET, 1, EMOJI_SET_CONCEPTS),
}
# The VLM's sets: the emoji ones (it was taught emoji concepts only: on Fashion-MNIST and
# textures its answers are always wrong, which would only dilute its answer CC), and a
# question/answer control set: the Google renderings asked a yes/no question each.
VLM_EVAL_SETS = ("emoji-google", "emoji-twitter", "emoji-openmoji")
VLM_QUESTION_SET = "emoji-google-yes-no"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def eval_set_images(
    name: str, per_class: int, classes: int | None
) -> tuple[list[Image.Image], list[str]]:
    """Test images and labels of one evaluation set (fixed: seed 0, evenly spread classes)."""
    data = load_dataset(name, "test", limit_per_class=per_class, seed=0)
    if classes is not None:
        spread = np.linspace(0, len(data.class_names) - 1, classes).round().astype(int)
        data = data.only_classes(sorted({int(label) for label in spread}))
    return data.images, [data.class_names[label] for label in data.labels]


def yes_no_items(limit: int) -> tuple[list[Image.Image], list[str], list[str]]:
    """Images, yes/no questions and their answers of the question/answer control set: per
    concept the VLM is asked a yes/no question about, a Google test rendering that is not the
    one in the ``emoji-google`` set (so no anchor of one set is measured in the other)."""
    in_google_set = {_png(image) for image in eval_set_images("emoji-google", 1, None)[0]}
    data = load_dataset("emoji-google", "test", limit_per_class=2, seed=0)
    done: set[int] = set()
    images: list[Image.Image] = []
    questions: list[str] = []
    answers: list[str] = []
    for image, label in zip(data.images, data.labels, strict=True):
        if label in done or _png(image) in in_google_set or len(images) >= limit:
            continue
        pairs = [
            (question, answer)
            for question, answer in question_answers(data.class_names[label])
            if question not in WHAT_QUESTIONS
        ]
        if pairs:
            # Alternate the concept's yes and no questions: the set is balanced.
            question, answer = pairs[len(images) % len(pairs)]
            done.add(label)
            images.append(image)
            questions.append(question)
            answers.append(answer)
    return images, questions, answers


def prepare_default_model(settings: Settings) -> list[str]:
    """Assemble what is missing and register what is not registered yet (see the module
    docstring); returns the ids of the models registered now."""
    require_head(settings.database_url)
    base_dir, vlm_dir = settings.base_model_dir, settings.vlm_model_dir
    if not is_built(base_dir):
        print(f"Assembling the stand-in base model into {base_dir} (committed weights)...")
        materialise_release(base_dir)
    # The VLM was trained around the committed base's tower: with another base model
    # (VLMC_BASE_MODEL_PATH) there is no default VLM.
    with_vlm = is_built(vlm_dir) or trained_on(base_dir)
    if not with_vlm:
        print(f"No default VLM: {base_dir} is not the base model the stand-in VLM was built on.")
    elif not is_built(vlm_dir):
        print(f"Assembling the stand-in VLM into {vlm_dir} (committed weights)...")
        materialise_vlm_release(vlm_dir, base_dir)
    engine = create_db_engine(settings.database_url)
    registered: list[str] = []
    try:
        with session_scope(create_session_factory(engine)) as session:
            blobs = FilesystemBlobStore(settings.blobs_path)
            names = {model.name for model in repository.list_models(session)}
            if not names:
                registered.append(_register_base(session, settings, blobs))
                names.add(settings.default_model_name)
            if (
                with_vlm
                and settings.default_model_name in names
                and settings.default_vlm_name not in names
            ):
                registered.append(_register_vlm(session, settings, blobs))
        return registered
    finally:
        engine.dispose()


def _register_base(session: Session, settings: Settings, blobs: FilesystemBlobStore) -> str:
    model = register_model(
        session,
        settings,
        name=settings.default_model_name,
        base_path=str(settings.base_model_dir),
        actor="system:serve",
    )
    for name, (kind, per_class, classes) in EVAL_SETS.items():
        images, labels = eval_set_images(name, per_class, classes)
        _add_set(session, settings, blobs, model.id, name, kind, images, labels)
    print(
        f"Registered the default model {model.name!r} ({model.id}) with evaluation "
        f"sets {', '.join(f'{name} ({EVAL_SETS[name][0]})' for name in EVAL_SETS)}."
    )
    return model.id


def _register_vlm(session: Session, settings: Settings, blobs: FilesystemBlobStore) -> str:
    model = register_model(
        session,
        settings,
        name=settings.default_vlm_name,
        base_path=str(settings.vlm_model_dir),
        pair_path=str(settings.base_model_dir),
        actor="system:serve",
    )
    for name in VLM_EVAL_SETS:
        kind, per_class, classes = EVAL_SETS[name]
        images, labels = eval_set_images(name, per_class, classes)
        _add_set(session, settings, blobs, model.id, name, kind, images, labels)
    images, questions, answers = yes_no_items(settings.max_examples_per_batch)
    _add_set(
        session,
        settings,
        blobs,
        model.id,
        VLM_QUESTION_SET,
        EvalSetKind.CONTROL,
        images,
        answers,
        questions,
    )
    print(
        f"Registered the default VLM {model.name!r} ({model.id}), paired with "
        f"{settings.default_model_name!r}, with evaluation sets "
        f"{', '.join(VLM_EVAL_SETS)} and {VLM_QUESTION_SET} (control, yes/no questions)."
    )
    return model.id


def _add_set(
    session: Session,
    settings: Settings,
    blobs: FilesystemBlobStore,
    model_id: str,
    name: str,
    kind: EvalSetKind,
    images: list[Image.Image],
    labels: list[str],
    questions: list[str] | None = None,
) -> None:
    create_eval_set(
        session,
        blobs,
        ImageLimits(settings.max_upload_bytes, settings.max_image_pixels),
        model_id=model_id,
        name=name,
        kind=kind,
        images=[_png(image) for image in images],
        labels=labels,
        questions=list(questions) if questions is not None else None,
        max_label_length=settings.max_label_length,
        max_examples=settings.max_examples_per_batch,
    )


def main() -> None:
    settings = get_settings()
    settings.ensure_directories()
    prepare_default_model(settings)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
