"""Evaluation: zero-shot accuracy, target improvement (TI) and control change (CC).

Images are classified as the API classifies them (``service.modelling.inference``).

Accuracies are percentages (0-100), so TI and CC are in percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from PIL import Image

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.modelling.dual_encoder import DualEncoder
from service.modelling.inference import zero_shot_predictions


def zero_shot_accuracy(
    model: DualEncoder,
    images: Sequence[Image.Image],
    labels: Sequence[int],
    class_names: Sequence[str],
    template: str = DEFAULT_CAPTION_TEMPLATE,
) -> float:
    """Percentage of ``images`` whose best caption is their own class's."""
    if not images:
        raise ValueError("cannot measure accuracy on an empty set")
    predictions = zero_shot_predictions(model, images, class_names, template)
    return float((predictions == torch.as_tensor(list(labels))).double().mean() * 100.0)


@torch.no_grad()
def caption_accuracy(
    model: DualEncoder,
    images: Sequence[Image.Image],
    targets: Sequence[int],
    captions: Sequence[str],
    excluded: Sequence[Sequence[bool]],
) -> float:
    """Percentage of ``images`` whose best caption among ``captions`` is their own; the
    captions ``excluded[i]`` marks (they state image i's answer too) do not compete."""
    if not images:
        raise ValueError("cannot measure accuracy on an empty set")
    scores = model.encode_images(list(images)) @ model.encode_texts(list(captions)).T
    mask = torch.as_tensor([list(row) for row in excluded], dtype=torch.bool)
    predictions = scores.cpu().masked_fill(mask, float("-inf")).argmax(dim=1)
    return float((predictions == torch.as_tensor(list(targets))).double().mean() * 100.0)


def target_improvement(before: float, after: float) -> float:
    """TI: accuracy on the held-out target examples after the update minus before."""
    return after - before


def control_change(before: Mapping[str, float], after: Mapping[str, float]) -> float | None:
    """CC: mean over control sets of (after - before); None when there are no control sets."""
    if set(before) != set(after):
        raise ValueError("control sets before and after differ")
    if not before:
        return None
    return sum(after[name] - before[name] for name in before) / len(before)
