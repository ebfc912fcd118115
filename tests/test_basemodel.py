"""The committed base model matches its card and works; a short build is sound and reproducible."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from service.modelling.loading import load_dual_encoder
from standin.basemodel.builder import build_base_model
from standin.basemodel.card import read_build_info
from standin.basemodel.release import (
    CARD_FILE,
    RELEASE_DIR,
    WEIGHTS_FILE,
    materialise_release,
    release_info,
    sha256_of,
)
from standin.datasets import load_dataset
from standin.factory import minilm_directory
from workers.engine.accuracy import zero_shot_accuracy

SHORT = {"steps": 3, "progress": False, "train_limit_per_class": 10, "test_limit_per_class": 1}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # These models are too small to gain from a second thread, and a busy CI core makes two
    # threads spin-wait for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def short_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("base") / "model"
    return build_base_model(out, seed=3, threads=1, reference=False, **SHORT)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise_release(tmp_path_factory.mktemp("release") / "standin-base")


def test_card_hash_matches_the_committed_weights() -> None:
    info = release_info()  # raises when the file and the card disagree
    digest = sha256_of(RELEASE_DIR / WEIGHTS_FILE)
    assert info["weights_sha256"] == digest
    assert f"sha256 `{digest}`" in (RELEASE_DIR / CARD_FILE).read_text()


def test_committed_weights_are_small_and_hold_no_text_tower() -> None:
    assert (RELEASE_DIR / WEIGHTS_FILE).stat().st_size < 30 * 2**20
    names = set(load_file(RELEASE_DIR / WEIGHTS_FILE))
    assert not [name for name in names if name.startswith("text_model.")]
    assert {"text_projection.weight", "visual_projection.weight", "logit_scale"} <= names
    info = release_info()
    assert info["recipe"]["vision"]["num_heads"] >= 8


def test_committed_model_knows_its_concepts_and_fails_on_openmoji(released: Path) -> None:
    # Served with the preprocessing committed beside the weights (what it was trained with).
    config = "preprocessor_config.json"
    assert (released / config).read_bytes() == (RELEASE_DIR / config).read_bytes()
    model = load_dual_encoder(released)
    accuracy = {}
    for name in ("emoji-google", "emoji-openmoji", "fashion-mnist"):
        per_class = 1 if name.startswith("emoji-") else 20
        data = load_dataset(name, "test", limit_per_class=per_class, seed=5)
        accuracy[name] = zero_shot_accuracy(model, data.images, data.labels, data.class_names)
    # Chance: 0.25% on the emoji concepts, 10% on Fashion-MNIST.
    assert accuracy["emoji-google"] > 55.0
    assert accuracy["fashion-mnist"] > 65.0
    assert accuracy["emoji-openmoji"] < accuracy["emoji-google"] - 20.0
    card = read_build_info(released)
    assert card["zero_shot"]["emoji-google"]["accuracy"] >= 70.0


def test_text_tower_is_the_pretrained_minilm_unchanged(released: Path, short_build: Path) -> None:
    original = load_file(minilm_directory() / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    original_key = next(name for name in original if name.endswith(key))
    for model_dir in (released, short_build):
        built = load_file(model_dir / "model.safetensors")
        assert built[f"text_model.{key}"].equal(original[original_key])


def test_short_build_writes_a_complete_model_and_card(short_build: Path) -> None:
    names = {path.name for path in short_build.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert {"tokenizer.json", "README.md", "build_info.json"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    # No staging directory is left beside the result.
    assert [path.name for path in short_build.parent.iterdir()] == ["model"]
    info = read_build_info(short_build)
    assert info["recipe"]["steps"] == 3 and info["classes"] == info["emoji_concepts"] + 13
    assert {"emoji-google", "emoji-openmoji", "fashion-mnist", "digits"} <= set(info["zero_shot"])
    card = (short_build / "README.md").read_text()
    assert "all-MiniLM-L6-v2" in card and "CC-BY-SA-4.0" in card


def test_second_call_reuses_the_finished_build(short_build: Path) -> None:
    weights = short_build / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_base_model(short_build, steps=1, progress=False) == short_build
    assert weights.stat().st_mtime_ns == before


def test_same_seed_gives_identical_weights(short_build: Path, tmp_path: Path) -> None:
    again = build_base_model(tmp_path / "again", seed=3, threads=1, reference=False, **SHORT)  # type: ignore[arg-type]
    first, second = (load_file(path / "model.safetensors") for path in (short_build, again))
    vision_keys = [key for key in first if key.startswith(("vision_model.", "text_projection"))]
    assert vision_keys
    assert all(first[key].equal(second[key]) for key in vision_keys)
