"""Classify and embed with the version that should answer (active or pinned)."""

from __future__ import annotations

import time

import torch
from PIL import Image
from sqlalchemy.orm import Session

from catalogue.captions import captions_for_labels, has_label_slot
from service.answers.capture import AnswerContext, ServedAnswer, capture_answers
from service.answers.ids import new_answer_id
from service.db.values import AnswerKind
from service.errors import InvalidInput
from service.images import ImageLimits, decode_image
from service.modelling.inference import probabilities_from_embeddings
from service.observability import INFERENCE_LATENCY
from service.registry.lookup import ModelLookup
from service.registry.service import get_model
from service.serving.batching import Batcher
from service.serving.cache import LoadedVersion, ModelCache
from service.serving.schemas import ClassifyInput, ClassifyOut, EmbedInput, EmbedOut, Prediction
from service.settings import Settings
from service.storage.blobs import BlobStore
from service.validation import (
    MAX_TEMPLATE_LENGTH,
    MAX_TEXT_LENGTH,
    check_batch_size,
    check_characters,
    clean_text,
    normalised,
)
from service.versions.service import VersionRef, servable_version


def resolve_encoder(
    session: Session,
    cache: ModelCache,
    model_id: str,
    version_id: VersionRef | None,
    models: ModelLookup | None = None,
) -> LoadedVersion:
    """The loaded version for a request: the pinned one (by id or number), or the model's
    active version.

    With ``models`` (the API process's recently read rows) and a cache following the watched
    pointers, a request for the loaded active version runs no query at all.
    """
    model = models.get(session, model_id) if models is not None else get_model(session, model_id)
    try:
        if version_id is not None:
            return cache.pinned(session, model, servable_version(session, model_id, version_id))
        return cache.active(session, model)
    finally:
        # The forward pass needs no database: end the read-only transaction and hand the
        # connection back to the pool now (under load, connections held through inference
        # exhausted the pool).
        session.close()


def decode_images(images: list[bytes], settings: Settings) -> list[Image.Image]:
    """Validate and decode request images (the same checks and codes as uploads)."""
    check_batch_size(len(images), settings.max_examples_per_batch, "images")
    limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)
    return [decode_image(data, limits, f"images[{i}]") for i, data in enumerate(images)]


def image_embeddings(
    batcher: Batcher, loaded: LoadedVersion, images: list[Image.Image]
) -> torch.Tensor:
    """Normalised embeddings of ``images`` by ``loaded``, computed in a forward pass shared
    with concurrent requests for the same version (``service/serving/batching.py``)."""
    return torch.stack(batcher.run(loaded.batch_key, loaded.embed_images, images))


def classify_images(
    session: Session,
    cache: ModelCache,
    batcher: Batcher,
    settings: Settings,
    model_id: str,
    request: ClassifyInput,
    models: ModelLookup | None = None,
) -> ClassifyOut:
    """Probabilities over the request's labels for each image (each with its answer id), and
    the version that answered."""
    images, labels, template = request.images, request.labels, request.template
    if not images:
        raise InvalidInput("no_images", "send at least one image")
    if not labels:
        raise InvalidInput("no_labels", "send at least one candidate label")
    if len(labels) > settings.max_labels_per_request:
        raise InvalidInput("too_many_labels", f"at most {settings.max_labels_per_request} labels")
    cleaned = [
        clean_text(label, f"labels[{i}]", "empty_label", settings.max_label_length)
        for i, label in enumerate(labels)
    ]
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInput("duplicate_label", "candidate labels must be distinct")
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise InvalidInput(
            "text_too_long", f"template: longer than {MAX_TEMPLATE_LENGTH} characters"
        )
    template = check_characters(template, "template")
    if not has_label_slot(template):
        raise InvalidInput("invalid_template", "template must contain '{}' where the label goes")
    with batcher.expect():
        decoded = decode_images(images, settings)
        loaded = resolve_encoder(session, cache, model_id, request.version_id, models)
        started = time.perf_counter()
        text = loaded.texts.embed(captions_for_labels(cleaned, template))
    image = image_embeddings(batcher, loaded, decoded)
    probabilities = probabilities_from_embeddings(image, text, loaded.encoder.logit_scale).tolist()
    INFERENCE_LATENCY.labels(operation="classify").observe(time.perf_counter() - started)
    return ClassifyOut(
        model_id=model_id,
        version_id=loaded.version_id,
        version_number=loaded.version_number,
        labels=cleaned,
        predictions=[
            Prediction(
                answer_id=new_answer_id(AnswerKind.CLASSIFY, model_id),
                label=cleaned[max(range(len(row)), key=row.__getitem__)],
                probabilities=dict(zip(cleaned, row, strict=True)),
            )
            for row in probabilities
        ],
    )


def capture_classify(
    session: Session,
    blobs: BlobStore,
    models: ModelLookup,
    request: ClassifyInput,
    answered: ClassifyOut,
) -> bool:
    """Keep each image's answer for the inbox if the model captures feedback (the model's row
    from ``models``: no query while it is fresh); whether rows were added (then commit)."""
    return capture_answers(
        session,
        blobs,
        models.get(session, answered.model_id),
        AnswerContext(
            kind=AnswerKind.CLASSIFY,
            version_id=answered.version_id,
            version_number=answered.version_number,
            labels=answered.labels,
            template=normalised(request.template),
        ),
        [
            ServedAnswer(answer_id=prediction.answer_id, image=image, served=prediction.label)
            for prediction, image in zip(answered.predictions, request.images, strict=True)
        ],
    )


def embed(
    session: Session,
    cache: ModelCache,
    batcher: Batcher,
    settings: Settings,
    model_id: str,
    request: EmbedInput,
    models: ModelLookup | None = None,
) -> EmbedOut:
    """L2-normalised embeddings of images and/or texts from the answering version."""
    images, texts = request.images, request.texts
    if not images and not texts:
        raise InvalidInput("nothing_to_embed", "send images, texts or both")
    check_batch_size(len(texts), settings.max_examples_per_batch, "texts")
    cleaned = [
        clean_text(t, f"texts[{i}]", "empty_text", MAX_TEXT_LENGTH, multiline=True)
        for i, t in enumerate(texts)
    ]
    with batcher.expect():
        decoded = decode_images(images, settings)
        loaded = resolve_encoder(session, cache, model_id, request.version_id, models)
        started = time.perf_counter()
        texts_out = loaded.texts.embed(cleaned).cpu().tolist() if cleaned else []
    images_out = image_embeddings(batcher, loaded, decoded).tolist() if decoded else []
    INFERENCE_LATENCY.labels(operation="embed").observe(time.perf_counter() - started)
    return EmbedOut(
        model_id=model_id,
        version_id=loaded.version_id,
        version_number=loaded.version_number,
        image_embeddings=images_out,
        text_embeddings=texts_out,
    )
