"""A short base-model build yields a loadable, safetensors-only model that beats chance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from service.modelling.loading import load_dual_encoder
from workers.basemodel import build_base_model
from workers.basemodel.card import read_build_info
from workers.datasets import load_dataset
from workers.engine.accuracy import zero_shot_accuracy


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # This model is too small to gain from a second thread, and a busy CI core makes two
    # threads spin-wait for each other (measured: 0.4 s vs 2.6 s per step).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def short_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("base") / "model"
    return build_base_model(
        out, seed=0, steps=50, progress=False, train_limit_per_class=300, test_limit_per_class=30
    )


def test_directory_holds_safetensors_tokenizer_preprocessor_and_card(short_build: Path) -> None:
    names = {path.name for path in short_build.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert {"tokenizer.json", "README.md", "build_info.json"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    # No staging directory is left beside the result.
    assert [path.name for path in short_build.parent.iterdir()] == ["model"]
    card = (short_build / "README.md").read_text()
    assert "all-MiniLM-L6-v2" in card and "| fashion-mnist | trained |" in card


def test_zero_shot_beats_chance_on_the_trained_domain_only(short_build: Path) -> None:
    model = load_dual_encoder(short_build)
    fashion = load_dataset("fashion-mnist", "test", limit_per_class=40, seed=1)
    accuracy = zero_shot_accuracy(model, fashion.images, fashion.labels, fashion.class_names)
    assert accuracy > 30.0  # chance is 10%
    info = read_build_info(short_build)
    assert info["zero_shot"]["fashion-mnist"]["accuracy"] > 30.0
    assert set(info["zero_shot"]) == {"fashion-mnist", "textures", "animal-mnist", "digits"}
    assert info["recipe"]["steps"] == 50


def test_text_tower_is_the_pretrained_minilm_unchanged(short_build: Path) -> None:
    from service.modelling.factory import minilm_directory

    built = load_file(short_build / "model.safetensors")
    original = load_file(minilm_directory() / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    original_key = next(name for name in original if name.endswith(key))
    assert built[f"text_model.{key}"].equal(original[original_key])


def test_second_call_reuses_the_finished_build(short_build: Path) -> None:
    weights = short_build / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_base_model(short_build, steps=1, progress=False) == short_build
    assert weights.stat().st_mtime_ns == before


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    builds = [
        build_base_model(
            tmp_path / name,
            seed=3,
            steps=3,
            progress=False,
            train_limit_per_class=10,
            test_limit_per_class=2,
        )
        for name in ("a", "b")
    ]
    first, second = (load_file(path / "model.safetensors") for path in builds)
    vision_keys = [key for key in first if key.startswith("vision_model.")]
    assert vision_keys
    assert all(first[key].equal(second[key]) for key in vision_keys)
