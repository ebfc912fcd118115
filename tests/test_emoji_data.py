"""The emoji loaders read the real npm packages: curated concepts, three styles, fixed splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from standin.datasets import DatasetUnavailableError, load_dataset
from standin.datasets.emoji import emoji_concepts, rendering_arrays
from standin.datasets.emoji.sources import ARTWORK_SIZE, load_artwork, package_directory


def test_concepts_are_a_few_hundred_distinct_named_things() -> None:
    concepts = emoji_concepts()
    names = [concept.name for concept in concepts]
    assert 300 <= len(concepts) <= 500
    assert len(set(names)) == len(names)
    assert {"cat", "pizza", "bicycle", "violin", "sunflower", "octopus"} <= set(names)
    # Dropped: faces and people, flags, keycaps, clocks, near-duplicate variants.
    for dropped in ("cat face", "grinning face", "oncoming bus", "one o'clock", "chequered flag"):
        assert dropped not in names
    assert all(not any(ch.isdigit() for ch in name) for name in names)
    pizza = next(concept for concept in concepts if concept.name == "pizza")
    assert "cheese" in pizza.keywords


def test_each_style_draws_each_concept_differently() -> None:
    hexcodes = tuple(concept.hexcode for concept in emoji_concepts()[:20])
    google, twitter, openmoji = (
        load_artwork(s, hexcodes) for s in ("google", "twitter", "openmoji")
    )
    for artwork in (google, twitter, openmoji):
        assert artwork.shape == (20, ARTWORK_SIZE, ARTWORK_SIZE, 4)
        coverage = (artwork[..., 3] > 0).mean(axis=(1, 2))
        assert (coverage > 0.15).all() and (coverage < 0.98).all()  # a drawing, not a blank
    # Same concept, different studios: clearly different pixels.
    assert np.abs(google.astype(int) - twitter.astype(int)).mean() > 10
    assert np.abs(google.astype(int) - openmoji.astype(int)).mean() > 10


def test_renderings_are_fixed_and_train_test_never_share_an_image() -> None:
    first = rendering_arrays("openmoji", "test")
    again = rendering_arrays("openmoji", "test")
    assert np.array_equal(first.pixels, again.pixels)
    train = {image.tobytes() for image in rendering_arrays("openmoji", "train").pixels}
    validation = rendering_arrays("openmoji", "validation").pixels
    assert not any(image.tobytes() in train for image in first.pixels)
    assert not any(image.tobytes() in train for image in validation)
    # Renderings of one concept differ from each other (scale, angle, shift, background).
    one_concept = first.pixels[first.labels == 0].reshape(10, -1).astype(int)
    assert np.abs(one_concept[0] - one_concept[1:]).mean(axis=1).min() > 5


def test_load_dataset_samples_renderings_per_concept() -> None:
    data = load_dataset("emoji-twitter", "train", limit_per_class=2, seed=1)
    assert data.class_counts() == {label: 2 for label in range(len(emoji_concepts()))}
    assert data.images[0].size == (ARTWORK_SIZE, ARTWORK_SIZE) and data.images[0].mode == "RGB"


def test_missing_package_names_the_install_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLMC_EMOJI_DIR", str(tmp_path))
    with pytest.raises(
        DatasetUnavailableError, match=r"emoji-datasource-google@16\.0\.0.*make install"
    ):
        package_directory("google")
    (tmp_path / "openmoji").mkdir()
    (tmp_path / "openmoji" / "package.json").write_text('{"version": "15.0.0"}')
    with pytest.raises(DatasetUnavailableError, match=r"expected 17\.0\.0"):
        package_directory("openmoji")
