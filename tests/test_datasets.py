"""The dataset loaders read the real installed files and sample them reproducibly."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from standin.datasets import DATASET_NAMES, DatasetUnavailableError, LabelledImages, load_dataset
from standin.datasets.animal_mnist import read_pickled_array
from standin.datasets.emoji import emoji_concepts
from standin.datasets.fashion_mnist import load_fashion_mnist

EMOJI_CONCEPTS = len(emoji_concepts())
EXPECTED = {
    # name: (train size, test size, classes, image size, mode)
    "fashion-mnist": (60_000, 10_000, 10, (28, 28), "L"),
    "animal-mnist": (7_775, 1_941, 10, (28, 28), "L"),
    "digits": (1_258, 539, 10, (28, 28), "L"),
    "textures": (1_260, 1_260, 3, (48, 48), "L"),
    **{
        f"emoji-{style}": (
            20 * EMOJI_CONCEPTS,
            10 * EMOJI_CONCEPTS,
            EMOJI_CONCEPTS,
            (64, 64),
            "RGB",
        )
        for style in ("google", "twitter", "openmoji")
    },
}


def test_every_known_dataset_is_covered() -> None:
    assert set(DATASET_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_full_splits_have_expected_sizes_and_classes(name: str) -> None:
    train_size, test_size, n_classes, image_size, mode = EXPECTED[name]
    train = load_dataset(name, "train")
    test = load_dataset(name, "test")
    assert (len(train), len(test)) == (train_size, test_size)
    assert len(train.class_names) == n_classes
    assert set(train.labels) == set(test.labels) == set(range(n_classes))
    assert train.images[0].size == image_size
    assert train.images[0].mode == mode
    # Real pictures, not blank arrays: pixel values spread over most of the byte range.
    spread = test.images[:: len(test) // 200]
    pixels = np.stack([np.asarray(image) for image in spread])
    assert pixels.max() - pixels.min() > 150
    assert pixels.std() > 20


@pytest.mark.parametrize(
    "name", ["animal-mnist", "digits", "textures", "emoji-google", "emoji-openmoji"]
)
def test_made_up_splits_do_not_overlap(name: str) -> None:
    train = {np.asarray(image).tobytes() for image in load_dataset(name, "train").images}
    test = [np.asarray(image).tobytes() for image in load_dataset(name, "test").images]
    # Animal MNIST ships exact duplicates; the loader drops them before splitting.
    assert not any(image in train for image in test)


def test_class_names_are_caption_words() -> None:
    fashion = load_dataset("fashion-mnist", "test", limit_per_class=1)
    assert fashion.class_names[:2] == ["t-shirt", "trouser"]
    assert fashion.class_names[9] == "ankle boot"
    animals = load_dataset("animal-mnist", "test", limit_per_class=1)
    assert animals.class_names[0] == "bear" and animals.class_names[9] == "zebra"
    digits = load_dataset("digits", "test", limit_per_class=1)
    assert digits.class_names[3] == "three"
    for name in DATASET_NAMES:
        for class_name in load_dataset(name, "test", limit_per_class=1).class_names:
            assert class_name.replace(" ", "").replace("-", "").isalpha()


def test_limit_per_class_is_balanced_and_deterministic() -> None:
    first = load_dataset("fashion-mnist", "train", limit_per_class=5, seed=3)
    again = load_dataset("fashion-mnist", "train", limit_per_class=5, seed=3)
    other = load_dataset("fashion-mnist", "train", limit_per_class=5, seed=4)
    assert isinstance(first, LabelledImages)
    assert first.class_counts() == {label: 5 for label in range(10)}
    assert first.labels == again.labels
    assert [im.tobytes() for im in first.images] == [im.tobytes() for im in again.images]
    assert [im.tobytes() for im in first.images] != [im.tobytes() for im in other.images]


def test_limit_larger_than_class_keeps_whole_class() -> None:
    digits = load_dataset("digits", "test", limit_per_class=10_000)
    assert len(digits) == len(load_dataset("digits", "test"))


def test_only_classes_keeps_original_label_numbers() -> None:
    animals = load_dataset("animal-mnist", "test", limit_per_class=4).only_classes([2, 7])
    assert animals.class_counts() == {2: 4, 7: 4}
    assert len(animals.class_names) == 10


def test_unknown_name_and_split_are_rejected() -> None:
    with pytest.raises(ValueError, match="known: fashion-mnist"):
        load_dataset("cifar10", "train")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", "validation")  # type: ignore[arg-type]


def test_missing_fashion_mnist_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", directory=tmp_path)


def test_animal_pickles_cannot_run_code(tmp_path: Path) -> None:
    class RunsCode:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path = tmp_path / "evil.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(RunsCode(), handle)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_pickled_array(path)
