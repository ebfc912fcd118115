"""Prepare the embedded default: the stand-in base model, registered with evaluation sets.

``vlmc serve`` runs ``python -m workers.basemodel.default_model`` in a child process before
it starts the API, so the API process never imports training code. Idempotent: assembles the
model from the committed release (no training) only if its directory is missing, registers
it only if no model exists yet.
"""

from __future__ import annotations

import io
import sys

import numpy as np
from PIL import Image

from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory, session_scope
from service.images import ImageLimits
from service.registry import repository
from service.registry.service import create_eval_set, register_model
from service.settings import Settings, get_settings
from service.storage.blobs import FilesystemBlobStore
from workers.basemodel.builder import is_built
from workers.basemodel.release import materialise_release
from workers.datasets import load_dataset

# Evaluation sets of the stand-in model, each within the per-request example limit (256):
# name -> (kind, images per class, classes kept or None for all). "Must not regress"
# (control): held-out renderings of the two training styles, Fashion-MNIST and textures.
# Target: held-out OpenMoji renderings, the style the model has never seen.
EMOJI_SET_CONCEPTS = 250
EVAL_SETS: dict[str, tuple[str, int, int | None]] = {
    "emoji-google": ("control", 1, EMOJI_SET_CONCEPTS),
    "emoji-twitter": ("control", 1, EMOJI_SET_CONCEPTS),
    "fashion-mnist": ("control", 25, None),
    "textures": ("control", 30, None),
    "emoji-openmoji": ("target", 1, EMOJI_SET_CONCEPTS),
}
CONTROL_SETS = tuple(name for name, (kind, _, _) in EVAL_SETS.items() if kind == "control")


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


def prepare_default_model(settings: Settings) -> str | None:
    """Assemble (if missing) and register (if no model exists) the stand-in; returns its id."""
    base_dir = settings.base_model_dir
    if not is_built(base_dir):
        print(f"Assembling the stand-in base model into {base_dir} (committed weights)...")
        materialise_release(base_dir)
    upgrade_head(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            if repository.list_models(session):
                return None
            model = register_model(
                session,
                settings,
                name=settings.default_model_name,
                base_path=str(base_dir),
                actor="system:serve",
            )
            blobs = FilesystemBlobStore(settings.blobs_path)
            limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)
            for name, (kind, per_class, classes) in EVAL_SETS.items():
                images, labels = eval_set_images(name, per_class, classes)
                create_eval_set(
                    session,
                    blobs,
                    limits,
                    model_id=model.id,
                    name=name,
                    kind=kind,
                    images=[_png(image) for image in images],
                    labels=labels,
                    max_label_length=settings.max_label_length,
                    max_examples=settings.max_examples_per_batch,
                )
            print(
                f"Registered the default model {model.name!r} ({model.id}) with evaluation "
                f"sets {', '.join(f'{name} ({EVAL_SETS[name][0]})' for name in EVAL_SETS)}."
            )
            return model.id
    finally:
        engine.dispose()


def main() -> None:
    settings = get_settings()
    settings.ensure_directories()
    prepare_default_model(settings)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
