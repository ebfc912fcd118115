"""Texture patches cut from scikit-image's sample photographs (brick, grass, gravel).

Each 512x512 texture is split down the middle: patches from the left half form the train
split and patches from the right half the test split, so no test pixel is ever seen in
training even though patches within a half overlap.
"""

from __future__ import annotations

import numpy as np

from standin.datasets.labelled_images import ArrayDataset

# skimage.data function name -> caption word.
TEXTURES = {"brick": "brick wall", "grass": "grass", "gravel": "gravel"}
CLASS_NAMES = list(TEXTURES.values())
PATCH_SIZE = 48
STRIDE = 16


def _patches(half: np.ndarray) -> np.ndarray:
    height, width = half.shape
    return np.stack(
        [
            half[top : top + PATCH_SIZE, left : left + PATCH_SIZE]
            for top in range(0, height - PATCH_SIZE + 1, STRIDE)
            for left in range(0, width - PATCH_SIZE + 1, STRIDE)
        ]
    )


def load_textures(split: str) -> ArrayDataset:
    """420 grayscale 48x48 patches per texture and split."""
    import skimage.data

    pixels: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for label, function_name in enumerate(TEXTURES):
        image = np.asarray(getattr(skimage.data, function_name)(), dtype=np.uint8)
        middle = image.shape[1] // 2
        half = image[:, :middle] if split == "train" else image[:, middle:]
        patches = _patches(half)
        pixels.append(patches)
        labels.append(np.full(len(patches), label, dtype=np.int64))
    return ArrayDataset(
        pixels=np.concatenate(pixels), labels=np.concatenate(labels), class_names=CLASS_NAMES
    )
