"""Zero-shot classification with a :class:`DualEncoder` (no training code): one computation for
the API's answers and for the accuracy the worker measures.

An image is matched against the caption of each label (``catalogue.captions``);
``class_probabilities`` is the softmax over the labels that classify answers with, and
``zero_shot_predictions`` the label it ranks first, which TI, CC and the benchmarks count.
Serving computes the same softmax from batched embeddings (``probabilities_from_embeddings``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE, captions_for_labels
from service.modelling.dual_encoder import DualEncoder


@torch.no_grad()
def class_probabilities(
    model: DualEncoder,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> torch.Tensor:
    """Softmax over ``labels`` for each image, shape ``(len(images), len(labels))``."""
    text = model.encode_texts(captions_for_labels(labels, template))
    image = model.encode_images(list(images))
    return probabilities_from_embeddings(image, text, model.logit_scale)


def probabilities_from_embeddings(
    image: torch.Tensor, text: torch.Tensor, logit_scale: float
) -> torch.Tensor:
    """Softmax over the texts for each image, from normalised embeddings (on the CPU)."""
    logits = logit_scale * image @ text.to(image.device).T
    return logits.softmax(dim=-1).cpu()


def zero_shot_predictions(
    model: DualEncoder,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> torch.Tensor:
    """Index of the label each image is classified as (the most probable one)."""
    return class_probabilities(model, images, labels, template).argmax(dim=1)


def classify(
    model: DualEncoder,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> list[list[float]]:
    """Probabilities per image over the candidate labels, as plain lists."""
    return class_probabilities(model, images, labels, template).tolist()
