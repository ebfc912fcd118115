"""Builds the stand-in base model (``build_base_model``; the CLI is ``standin.basemodel.build``).

Reproducible for a given seed and thread count. Writes into a temporary sibling directory and
renames it into place only when complete, so a crashed or concurrent build never leaves a
half-written model where the service would load it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.modelling.loading import load_dual_encoder
from service.modelling.preprocess import ImagePreprocessor
from standin.basemodel.card import BuildInfo, write_card
from standin.basemodel.recipe import (
    EMOJI_TRAINING_DATASETS,
    HELD_OUT_DATASETS,
    PIXEL_DATASETS,
    PROJECTION_DIM,
    TrainingRecipe,
)
from standin.basemodel.reference import reference_concepts, run_reference_correction
from standin.basemodel.training import (
    ArtworkPool,
    TrainingSources,
    build_pixel_pool,
    train_image_tower,
)
from standin.datasets import LabelledImages, load_dataset
from standin.datasets.emoji import TRAINING_STYLES, emoji_concepts, rendering_arrays
from standin.datasets.emoji.renderings import artwork_tensor
from standin.datasets.emoji.sources import load_artwork
from standin.datasets.labelled_images import to_labelled_images
from standin.factory import build_dual_encoder, save_model_directory
from workers.engine.accuracy import zero_shot_accuracy

EVALUATED_DATASETS = (*EMOJI_TRAINING_DATASETS, *PIXEL_DATASETS, *HELD_OUT_DATASETS)


def is_built(model_dir: Path) -> bool:
    """A finished build has a config and safetensors weights (only complete builds are renamed)."""
    return (model_dir / "config.json").is_file() and any(model_dir.glob("*.safetensors"))


def emoji_validation(name: str, limit_per_class: int | None = None) -> LabelledImages:
    """Validation renderings of an ``emoji-<style>`` set (for choosing, never the test ones)."""
    style = name.removeprefix("emoji-")
    return to_labelled_images(rendering_arrays(style, "validation"), name, limit_per_class, 0)


def evaluation_split(name: str, split: str, limit_per_class: int | None) -> LabelledImages:
    """``split`` is "test" or "validation" (emoji validation renderings; other sets: test)."""
    if split == "validation" and name.startswith("emoji-"):
        return emoji_validation(name, limit_per_class)
    return load_dataset(name, "test", limit_per_class=limit_per_class, seed=0)


def evaluate_zero_shot(
    model_dir: Path,
    test_limit_per_class: int | None,
    split: str = "test",
    names: tuple[str, ...] = EVALUATED_DATASETS,
) -> dict[str, dict[str, float]]:
    """Zero-shot accuracy per dataset through the serving loader and preprocessing."""
    model = load_dual_encoder(model_dir, device="cpu")
    results = {}
    for name in names:
        images = evaluation_split(name, split, test_limit_per_class)
        accuracy = zero_shot_accuracy(
            model, images.images, images.labels, images.class_names, DEFAULT_CAPTION_TEMPLATE
        )
        results[name] = {
            "accuracy": accuracy,
            "images": float(len(images)),
            "classes": float(len(images.class_names)),
        }
    return results


def reference_figure(model_dir: Path, split: str) -> dict:
    """The robustness reference correction, measured on ``split`` renderings (see reference).

    Controls: 3 renderings of every concept per training style, 100 images per class of
    Fashion-MNIST and textures.
    """
    openmoji_train = load_dataset("emoji-openmoji", "train", limit_per_class=5, seed=0)
    chosen = reference_concepts(len(openmoji_train.class_names))
    target = evaluation_split("emoji-openmoji", split, None).only_classes(chosen)
    controls = {
        name: evaluation_split(name, split, 3 if name.startswith("emoji-") else 100)
        for name in (*EMOJI_TRAINING_DATASETS, *PIXEL_DATASETS)
    }
    result = run_reference_correction(
        model_dir, openmoji_train.only_classes(chosen), target, controls
    )
    return {"split": split, **result.to_dict()}


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch ops on ``count`` threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def training_sources(
    preprocessor: ImagePreprocessor, train_limit_per_class: int | None, seed: int
) -> TrainingSources:
    """Artwork of both training styles plus the fixed pixel datasets, one joint class list."""
    concepts = emoji_concepts()
    hexcodes = tuple(concept.hexcode for concept in concepts)
    artwork = torch.cat([artwork_tensor(load_artwork(s, hexcodes)) for s in TRAINING_STYLES])
    targets = torch.arange(len(concepts)).repeat(len(TRAINING_STYLES))
    pixel_sets = [
        load_dataset(name, "train", limit_per_class=train_limit_per_class, seed=seed)
        for name in PIXEL_DATASETS
    ]
    class_names = [concept.name for concept in concepts]
    keywords = [concept.keywords for concept in concepts]
    for dataset in pixel_sets:
        class_names += dataset.class_names
        keywords += [()] * len(dataset.class_names)
    if len(set(class_names)) != len(class_names):
        raise ValueError("a class name appears in two training datasets")
    shares = list(PIXEL_DATASETS.values())
    total_share = sum(shares)
    pool = build_pixel_pool(
        pixel_sets, [share / total_share for share in shares], preprocessor, len(concepts)
    )
    return TrainingSources(
        artwork=ArtworkPool(artwork=artwork, targets=targets),
        pixels=pool,
        pixel_share=total_share,
        class_names=class_names,
        keywords=keywords,
    )


def build_base_model(
    out_dir: Path,
    seed: int = 0,
    recipe: TrainingRecipe | None = None,
    steps: int | None = None,
    progress: bool = True,
    train_limit_per_class: int | None = None,
    test_limit_per_class: int | None = 500,
    threads: int = 2,
    reference: bool = True,
) -> Path:
    """Build the base model into ``out_dir`` unless a finished one is already there.

    ``steps`` overrides the recipe's step count (tests use a few dozen);
    ``train_limit_per_class`` caps the Fashion-MNIST/texture images per class (tests), and
    ``test_limit_per_class`` the images per class in the accuracy tables. ``reference`` also
    runs the robustness reference correction (on validation and test renderings).
    """
    out_dir = Path(out_dir)
    if is_built(out_dir):
        return out_dir
    recipe = recipe or TrainingRecipe()
    if steps is not None:
        recipe = replace(recipe, steps=steps)
    with torch_threads(threads):
        return _build(
            out_dir,
            seed,
            recipe,
            progress,
            train_limit_per_class,
            test_limit_per_class,
            reference,
            threads,
        )


def _build(
    out_dir: Path,
    seed: int,
    recipe: TrainingRecipe,
    progress: bool,
    train_limit_per_class: int | None,
    test_limit_per_class: int | None,
    reference: bool,
    threads: int,
) -> Path:
    torch.manual_seed(seed)
    vision = recipe.vision
    model, tokenizer = build_dual_encoder(
        vision=vision, text="minilm", projection_dim=PROJECTION_DIM, seed=seed
    )
    preprocessor = ImagePreprocessor.clip(vision.image_size)
    data = training_sources(preprocessor, train_limit_per_class, seed)
    started = time.perf_counter()
    losses = train_image_tower(model, tokenizer, data, preprocessor, recipe, seed, progress)
    train_seconds = time.perf_counter() - started

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_model_directory(model, tokenizer, staging, image_size=vision.image_size)
        info = BuildInfo(
            seed=seed,
            recipe=recipe,
            projection_dim=PROJECTION_DIM,
            threads=threads,
            classes=len(data.class_names),
            emoji_concepts=len(emoji_concepts()),
            train_seconds=train_seconds,
            final_loss=sum(losses[-20:]) / len(losses[-20:]),
            zero_shot=evaluate_zero_shot(staging, test_limit_per_class, "test"),
            zero_shot_validation=evaluate_zero_shot(
                staging,
                test_limit_per_class,
                "validation",
                tuple(name for name in EVALUATED_DATASETS if name.startswith("emoji-")),
            ),
            reference={split: reference_figure(staging, split) for split in ("validation", "test")}
            if reference
            else {},
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
