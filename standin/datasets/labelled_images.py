"""The one structure every dataset loader returns, and the array form loaders build it from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class LabelledImages:
    """Images with integer labels indexing ``class_names``."""

    images: list[Image.Image]
    labels: list[int]
    class_names: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self) -> dict[int, int]:
        """Number of images per label (labels without images are absent)."""
        return dict(sorted(Counter(self.labels).items()))

    def select(self, indices: list[int]) -> LabelledImages:
        """The images at ``indices``, in that order, with the same class names."""
        return LabelledImages(
            images=[self.images[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            class_names=self.class_names,
            name=self.name,
        )

    def only_classes(self, labels: list[int]) -> LabelledImages:
        """The images whose label is in ``labels`` (labels keep their original numbering)."""
        wanted = set(labels)
        return self.select([i for i, label in enumerate(self.labels) if label in wanted])


@dataclass(frozen=True)
class ArrayDataset:
    """Pixels as one uint8 array ``(N, H, W)`` or ``(N, H, W, 3)`` plus labels ``(N,)``."""

    pixels: np.ndarray
    labels: np.ndarray
    class_names: list[str]


def balanced_indices(labels: np.ndarray, limit_per_class: int | None, seed: int) -> list[int]:
    """Indices of at most ``limit_per_class`` images per class, drawn reproducibly by ``seed``.

    With no limit all indices are kept in their original order, so a full split never depends
    on the seed.
    """
    if limit_per_class is None:
        return list(range(len(labels)))
    if limit_per_class < 1:
        raise ValueError(f"limit_per_class must be at least 1, got {limit_per_class}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = min(limit_per_class, len(members))
        chosen.extend(int(i) for i in rng.choice(members, size=take, replace=False))
    return sorted(chosen)


def stratified_split(labels: np.ndarray, test_fraction: float, split: str) -> np.ndarray:
    """A fixed train/test split for datasets that ship without one (same split on every call)."""
    # The split seed is a constant on purpose: the sampling seed must never move images
    # between train and test.
    rng = np.random.default_rng(20_240_917)
    test: list[np.ndarray] = []
    train: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(len(members) * test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    chosen = np.concatenate(test if split == "test" else train)
    return np.sort(chosen)


def to_labelled_images(
    arrays: ArrayDataset, name: str, limit_per_class: int | None, seed: int
) -> LabelledImages:
    """Sample per class, then convert only the chosen pixels to PIL images."""
    indices = balanced_indices(arrays.labels, limit_per_class, seed)
    mode = "L" if arrays.pixels.ndim == 3 else "RGB"
    return LabelledImages(
        images=[Image.fromarray(arrays.pixels[i], mode=mode) for i in indices],
        labels=[int(arrays.labels[i]) for i in indices],
        class_names=list(arrays.class_names),
        name=name,
    )
