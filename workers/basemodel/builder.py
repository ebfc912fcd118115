"""Builds the stand-in base model (``build_base_model``; the CLI is ``workers.basemodel.build``).

Reproducible for a given seed (the build runs on one thread). Writes into a temporary sibling
directory and renames it into place only when complete, so a crashed or concurrent build never
leaves a half-written model where the service would load it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from service.modelling.factory import build_dual_encoder, save_model_directory
from service.modelling.loading import load_dual_encoder
from service.modelling.preprocess import ImagePreprocessor
from workers.basemodel.card import BuildInfo, write_card
from workers.basemodel.recipe import (
    BASE_VISION,
    HELD_OUT_DATASETS,
    PROJECTION_DIM,
    TRAINED_DATASETS,
    TrainingRecipe,
)
from workers.basemodel.training import build_pool, train_image_tower
from workers.datasets import load_dataset
from workers.engine.accuracy import zero_shot_accuracy

EVALUATION_TEMPLATE = "a photo of a {}."


def is_built(model_dir: Path) -> bool:
    """A finished build has a config and safetensors weights (only complete builds are renamed)."""
    return (model_dir / "config.json").is_file() and any(model_dir.glob("*.safetensors"))


def evaluate_zero_shot(model_dir: Path, test_limit_per_class: int | None) -> dict:
    """Zero-shot accuracy per dataset through the serving loader and preprocessing."""
    model = load_dual_encoder(model_dir, device="cpu")
    results = {}
    for name in (*TRAINED_DATASETS, *HELD_OUT_DATASETS):
        test = load_dataset(name, "test", limit_per_class=test_limit_per_class)
        accuracy = zero_shot_accuracy(
            model, test.images, test.labels, test.class_names, EVALUATION_TEMPLATE
        )
        results[name] = {
            "accuracy": accuracy,
            "images": float(len(test)),
            "classes": float(len(test.class_names)),
        }
    return results


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch ops on one thread, restoring the previous count afterwards.

    One thread makes the build bit-reproducible whatever the machine's core count, and this
    model is too small to gain from more: measured on 2 busy cores, 0.4 s per step with one
    thread against 2.6 s with two (the threads spin-wait for each other).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_base_model(
    out_dir: Path,
    seed: int = 0,
    steps: int | None = None,
    progress: bool = True,
    train_limit_per_class: int | None = None,
    test_limit_per_class: int | None = 500,
) -> Path:
    """Build the base model into ``out_dir`` unless a finished one is already there.

    ``steps`` overrides the recipe's step count (tests use a few dozen);
    ``train_limit_per_class`` caps the images preprocessed per class (tests), and
    ``test_limit_per_class`` the images per class in the model card's accuracy table.
    """
    out_dir = Path(out_dir)
    if is_built(out_dir):
        return out_dir
    with one_torch_thread():
        return _build(out_dir, seed, steps, progress, train_limit_per_class, test_limit_per_class)


def _build(
    out_dir: Path,
    seed: int,
    steps: int | None,
    progress: bool,
    train_limit_per_class: int | None,
    test_limit_per_class: int | None,
) -> Path:
    recipe = TrainingRecipe() if steps is None else TrainingRecipe(steps=steps)
    torch.manual_seed(seed)
    model, tokenizer = build_dual_encoder(
        vision=BASE_VISION, text="minilm", projection_dim=PROJECTION_DIM, seed=seed
    )
    preprocessor = ImagePreprocessor(
        shortest_edge=BASE_VISION.image_size,
        crop_height=BASE_VISION.image_size,
        crop_width=BASE_VISION.image_size,
    )
    datasets = [
        load_dataset(name, "train", limit_per_class=train_limit_per_class, seed=seed)
        for name in TRAINED_DATASETS
    ]
    pool = build_pool(datasets, list(TRAINED_DATASETS.values()), preprocessor)
    started = time.perf_counter()
    losses = train_image_tower(model, tokenizer, pool, recipe, seed, progress)
    train_seconds = time.perf_counter() - started

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_model_directory(model, tokenizer, staging, image_size=BASE_VISION.image_size)
        info = BuildInfo(
            seed=seed,
            recipe=recipe,
            trained_datasets=dict(TRAINED_DATASETS),
            held_out_datasets=list(HELD_OUT_DATASETS),
            train_seconds=train_seconds,
            final_loss=sum(losses[-20:]) / len(losses[-20:]),
            zero_shot=evaluate_zero_shot(staging, test_limit_per_class),
            evaluation_template=EVALUATION_TEMPLATE,
        )
        write_card(staging, info)
        if is_built(out_dir):  # a concurrent build finished first: keep its result
            return out_dir
        if out_dir.exists():  # an empty or broken leftover directory
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
