"""Dataset names and the single entry point ``load_dataset``."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Literal

from standin.datasets.animal_mnist import load_animal_mnist
from standin.datasets.digits import load_digits_dataset
from standin.datasets.emoji.renderings import rendering_arrays
from standin.datasets.emoji.sources import STYLES as EMOJI_STYLES
from standin.datasets.errors import DatasetUnavailableError
from standin.datasets.fashion_mnist import load_fashion_mnist
from standin.datasets.labelled_images import ArrayDataset, LabelledImages, to_labelled_images
from standin.datasets.textures import load_textures

# "validation" exists for the emoji renderings only (for choosing things without the test ones).
Split = Literal["train", "validation", "test"]

_LOADERS: dict[str, Callable[[str], ArrayDataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "animal-mnist": load_animal_mnist,
    "digits": load_digits_dataset,
    "textures": load_textures,
    # Emoji concepts as fixed renderings of one studio's artwork (train and test renderings).
    **{f"emoji-{style}": partial(rendering_arrays, style) for style in EMOJI_STYLES},
}
DATASET_NAMES: tuple[str, ...] = tuple(_LOADERS)


@lru_cache(maxsize=16)
def _arrays(name: str, split: str) -> ArrayDataset:
    # Decoding Fashion-MNIST takes about a second; benchmarks load the same split many times.
    return _LOADERS[name](split)


def load_dataset(
    name: str, split: Split, limit_per_class: int | None = None, seed: int = 0
) -> LabelledImages:
    """Load one split of a named dataset as PIL images with labels and caption-ready names.

    ``limit_per_class`` keeps at most that many images per class, drawn reproducibly from
    ``seed``; ``None`` keeps the whole split in its stored order. Raises
    :class:`DatasetUnavailableError` (with the install command) when files are missing.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    if split not in ("train", "validation", "test"):
        raise ValueError(f"split must be 'train', 'validation' or 'test', got {split!r}")
    if split == "validation" and not name.startswith("emoji-"):
        raise ValueError(f"{name} has no validation split (the emoji renderings have one)")
    return to_labelled_images(_arrays(name, split), name, limit_per_class, seed)


__all__ = ["DATASET_NAMES", "DatasetUnavailableError", "Split", "load_dataset"]
