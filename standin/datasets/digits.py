"""scikit-learn's handwritten digits (8x8, 16 gray levels), upscaled to 28x28 like MNIST."""

from __future__ import annotations

import numpy as np
from PIL import Image

from standin.datasets.labelled_images import ArrayDataset, stratified_split

CLASS_NAMES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
]
TEST_FRACTION = 0.3
IMAGE_SIZE = 28


def _upscale(image_8x8: np.ndarray) -> np.ndarray:
    # Values are 0..16; stretch to 0..255 and smooth-upscale so strokes look like pen strokes.
    small = Image.fromarray(np.round(image_8x8 * (255.0 / 16.0)).astype(np.uint8), mode="L")
    return np.asarray(small.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR))


def load_digits_dataset(split: str) -> ArrayDataset:
    """A fixed stratified 70/30 train/test split of the 1,797 digits."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = bunch.target.astype(np.int64)
    chosen = stratified_split(labels, TEST_FRACTION, split)
    pixels = np.stack([_upscale(bunch.images[i]) for i in chosen])
    return ArrayDataset(pixels=pixels, labels=labels[chosen], class_names=CLASS_NAMES)
