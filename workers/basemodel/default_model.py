"""Prepare the embedded default: the stand-in base model, registered with control sets.

``vlmc serve`` runs ``python -m workers.basemodel.default_model`` in a child process before
it starts the API, so the API process never imports training code. Idempotent: builds the
model only if its directory is missing, registers it only if no model exists yet.
"""

from __future__ import annotations

import io
import sys

from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory, session_scope
from service.images import ImageLimits
from service.registry import repository
from service.registry.service import create_eval_set, register_model
from service.settings import Settings, get_settings
from service.storage.blobs import FilesystemBlobStore
from workers.basemodel.build import build_base_model, is_built
from workers.datasets import load_dataset

# "Must not regress" sets for the stand-in model: test images of the domains it was trained
# on (kept within the per-request example limit).
CONTROL_SETS = {"fashion-mnist": 25, "textures": 30}


def _png(image: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # type: ignore[attr-defined]
    return buffer.getvalue()


def prepare_default_model(settings: Settings) -> str | None:
    """Build (if missing) and register (if no model exists) the stand-in; returns its id."""
    base_dir = settings.base_model_dir
    if not is_built(base_dir):
        print(f"Building the stand-in base model into {base_dir} (first start only)...")
        build_base_model(base_dir)
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
            for name, per_class in CONTROL_SETS.items():
                data = load_dataset(name, "test", limit_per_class=per_class, seed=0)
                create_eval_set(
                    session,
                    blobs,
                    limits,
                    model_id=model.id,
                    name=name,
                    kind="control",
                    images=[_png(image) for image in data.images],
                    labels=[data.class_names[label] for label in data.labels],
                    max_label_length=settings.max_label_length,
                    max_examples=settings.max_examples_per_batch,
                )
            print(
                f"Registered the default model {model.name!r} ({model.id}) with control sets "
                f"{', '.join(CONTROL_SETS)}."
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
