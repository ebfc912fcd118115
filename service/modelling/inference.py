"""Zero-shot classification and embeddings with a :class:`DualEncoder` (no training code)."""

from __future__ import annotations

import torch
from PIL import Image

from service.modelling.captions import DEFAULT_CAPTION_TEMPLATE, caption_for_label
from service.modelling.dual_encoder import DualEncoder


@torch.no_grad()
def class_probabilities(
    model: DualEncoder,
    images: list[Image.Image],
    labels: list[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> torch.Tensor:
    """Softmax over ``labels`` for each image, shape ``(len(images), len(labels))``."""
    text = model.encode_texts([caption_for_label(label, template) for label in labels])
    image = model.encode_images(images)
    logits = model.logit_scale * image @ text.T
    return logits.softmax(dim=-1).cpu()


def classify(
    model: DualEncoder,
    images: list[Image.Image],
    labels: list[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> list[list[float]]:
    """Probabilities per image over the candidate labels, as plain lists."""
    return class_probabilities(model, images, labels, template).tolist()


def embed_images(model: DualEncoder, images: list[Image.Image]) -> list[list[float]]:
    return model.encode_images(images).cpu().tolist()


def embed_texts(model: DualEncoder, texts: list[str]) -> list[list[float]]:
    return model.encode_texts(texts).cpu().tolist()
