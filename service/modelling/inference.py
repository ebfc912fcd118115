"""Zero-shot classification and embeddings with a :class:`DualEncoder` (no training code)."""

from __future__ import annotations

import torch
from PIL import Image

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE, captions_for_labels
from service.modelling.dual_encoder import DualEncoder


@torch.no_grad()
def class_probabilities(
    model: DualEncoder,
    images: list[Image.Image],
    labels: list[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> torch.Tensor:
    """Softmax over ``labels`` for each image, shape ``(len(images), len(labels))``."""
    text = model.encode_texts(captions_for_labels(labels, template))
    image = model.encode_images(images)
    return probabilities_from_embeddings(image, text, model.logit_scale)


def probabilities_from_embeddings(
    image: torch.Tensor, text: torch.Tensor, logit_scale: float
) -> torch.Tensor:
    """Softmax over the texts for each image, from normalised embeddings (on the CPU)."""
    logits = logit_scale * image @ text.to(image.device).T
    return logits.softmax(dim=-1).cpu()


def classify(
    model: DualEncoder,
    images: list[Image.Image],
    labels: list[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> list[list[float]]:
    """Probabilities per image over the candidate labels, as plain lists."""
    return class_probabilities(model, images, labels, template).tolist()
