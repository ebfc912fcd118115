"""The training images and the frozen vision tower's features of them, computed once.

The tower never changes during training, so its output for every training image is computed
once, before the first step, exactly as ``LlavaModel.get_image_features`` selects it (the
hidden state of ``vision_feature_layer``, without the class token for the "default" strategy);
the projector is applied to these features at every step. Images go through the serving
preprocessor (PIL resize of the 64 px renderings), so training and serving see the same pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from service.modelling.preprocess import ImagePreprocessor
from standin.datasets import LabelledImages, load_dataset
from standin.datasets.emoji import augmented_batch, emoji_concepts
from standin.datasets.emoji.renderings import artwork_tensor
from standin.datasets.emoji.sources import load_artwork

_AUGMENTATION_CHUNK = 1024


def augmented_renderings(style: str, per_concept: int, seed: int) -> LabelledImages:
    """``per_concept`` fresh augmented renderings of every concept's ``style`` artwork."""
    concepts = emoji_concepts()
    artwork = artwork_tensor(load_artwork(style, tuple(concept.hexcode for concept in concepts)))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(concepts)).repeat_interleave(per_concept)
    images: list[Image.Image] = []
    for start in range(0, len(labels), _AUGMENTATION_CHUNK):
        chosen = labels[start : start + _AUGMENTATION_CHUNK]
        pixels = augmented_batch(artwork[chosen], generator)
        as_bytes = (pixels * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        images += [Image.fromarray(np.ascontiguousarray(array), mode="RGB") for array in as_bytes]
    return LabelledImages(
        images=images,
        labels=[int(label) for label in labels],
        class_names=[concept.name for concept in concepts],
        name=f"emoji-{style}-augmented",
    )


def training_images(
    datasets: tuple[str, ...], augmented_per_concept: int, seed: int
) -> LabelledImages:
    """The fixed training renderings of ``datasets`` plus augmented renderings of their artwork.

    Labels index the curated emoji concepts (the same list for every style).
    """
    images: list[Image.Image] = []
    labels: list[int] = []
    class_names: list[str] = []
    for offset, name in enumerate(datasets):
        parts = [load_dataset(name, "train")]
        if augmented_per_concept:
            style = name.removeprefix("emoji-")
            parts.append(augmented_renderings(style, augmented_per_concept, seed + offset))
        for part in parts:
            if class_names and part.class_names != class_names:
                raise ValueError(f"{part.name} does not share the concept list")
            class_names = part.class_names
            images += part.images
            labels += part.labels
    return LabelledImages(images, labels, class_names, "+".join(datasets))


def select_tower_features(model: Any, pixel_values: torch.Tensor) -> torch.Tensor:
    """What ``LlavaModel.get_image_features`` feeds the projector for ``pixel_values``."""
    config = model.config
    layer = config.vision_feature_layer
    if not isinstance(layer, int):
        raise ValueError("only a single vision_feature_layer is supported")
    outputs = model.model.vision_tower(pixel_values, output_hidden_states=True)
    selected: torch.Tensor = outputs.hidden_states[layer]
    if config.vision_feature_select_strategy == "default":
        selected = selected[:, 1:]
    return selected


@torch.no_grad()
def tower_features(
    model: Any,
    images: list[Image.Image],
    preprocessor: ImagePreprocessor,
    batch_size: int = 512,
    progress: bool = True,
) -> torch.Tensor:
    """``(len(images), image tokens, vision hidden)`` features of the frozen tower."""
    tower = model.model.vision_tower.eval()
    chunks = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="vision tower features", disable=not progress):
        pixels = preprocessor(images[start : start + batch_size]).to(tower.device)
        chunks.append(select_tower_features(model, pixels).float().cpu())
    return torch.cat(chunks)
