"""Builds the stand-in VLM into a release directory: train, export, assemble, measure, card.

Reproducible for a given seed and thread count. The release is written into a temporary
sibling directory and renamed into place only when complete (weights, build facts and card
agree), so a crashed build never leaves a half-written release.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from service.modelling.snapshots import state_sha256
from service.modelling.vlm import load_vision_language_model
from standin.basemodel.builder import evaluation_split, torch_threads
from standin.basemodel.card import read_build_info
from standin.basemodel.release import RELEASE_DIR as BASE_RELEASE_DIR
from standin.basemodel.release import materialise_release
from standin.basemodel.vlm.card import VlmBuildInfo, write_vlm_card
from standin.basemodel.vlm.evaluation import answer_accuracy
from standin.basemodel.vlm.features import tower_features, training_images
from standin.basemodel.vlm.recipe import EVALUATED_DATASETS, TRAINING_DATASETS, VlmRecipe
from standin.basemodel.vlm.release import (
    RELEASE_DIR,
    WEIGHTS_FILE,
    base_tower_state,
    export_vlm_release,
    materialise_vlm_release,
    write_vlm_build_info,
)
from standin.basemodel.vlm.sequences import QuestionBank
from standin.basemodel.vlm.training import (
    build_skeleton,
    image_token_count,
    train_language_model,
    trainable_parameters,
)

TEST_LIMIT_PER_CLASS = 2
VALIDATION_LIMIT_PER_CLASS = 1


def is_released(release_dir: Path) -> bool:
    """A finished release has its weights and build facts (only complete ones are renamed)."""
    return (release_dir / WEIGHTS_FILE).is_file() and (release_dir / "build_info.json").is_file()


def evaluate_answers(
    vlm_dir: Path, base_dir: Path, split: str, limit_per_class: int | None
) -> dict[str, dict[str, float]]:
    """Answer accuracy per emoji style on ``split`` renderings ("test" or "validation")."""
    vlm = load_vision_language_model(vlm_dir, base_dir)
    return {
        name: answer_accuracy(vlm, evaluation_split(name, split, limit_per_class))
        for name in EVALUATED_DATASETS
    }


def build_vlm(
    out_dir: Path = RELEASE_DIR,
    seed: int = 0,
    recipe: VlmRecipe | None = None,
    steps: int | None = None,
    threads: int = 1,
    progress: bool = True,
    test_limit_per_class: int | None = TEST_LIMIT_PER_CLASS,
    validation_limit_per_class: int | None = VALIDATION_LIMIT_PER_CLASS,
    base_release: Path = BASE_RELEASE_DIR,
) -> dict:
    """Train the VLM around the base tower of ``base_release`` (the committed one unless
    given) and write its release to ``out_dir`` (replacing a release there); returns the build
    facts. ``steps`` overrides the recipe's."""
    recipe = recipe or VlmRecipe()
    if steps is not None:
        recipe = replace(recipe, steps=steps)
    out_dir = Path(out_dir)
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="vlm-build-") as work:
        return _build(
            out_dir,
            Path(work),
            seed,
            recipe,
            threads,
            progress,
            test_limit_per_class,
            validation_limit_per_class,
            base_release,
        )


def _build(
    out_dir: Path,
    work: Path,
    seed: int,
    recipe: VlmRecipe,
    threads: int,
    progress: bool,
    test_limit_per_class: int | None,
    validation_limit_per_class: int | None,
    base_release: Path,
) -> dict:
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(phase: str, since: float) -> float:
        now = time.perf_counter()
        seconds[phase] = now - since
        return now

    torch.manual_seed(seed)
    base_dir = materialise_release(work / "base", base_release)
    skeleton = build_skeleton(base_dir, recipe, seed)
    image_tokens = image_token_count(
        skeleton.model.config.vision_config, skeleton.model.config.vision_feature_select_strategy
    )
    data = training_images(TRAINING_DATASETS, recipe.augmented_per_concept, seed)
    mark = lap("data", started)
    features = tower_features(skeleton.model, data.images, skeleton.preprocessor, progress=progress)
    mark = lap("features", mark)
    bank = QuestionBank.build(skeleton.tokenizer, data.class_names, image_tokens)
    losses = train_language_model(
        skeleton.model, features, torch.tensor(data.labels), bank, recipe, seed, progress
    )
    mark = lap("training", mark)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        info = VlmBuildInfo(
            seed=seed,
            recipe=recipe,
            threads=threads,
            base_tower_sha256=state_sha256(base_tower_state(base_dir)),
            trained_parameters=sum(p.numel() for p in trainable_parameters(skeleton.model)),
            vocabulary=len(skeleton.tokenizer),
            image_tokens=image_tokens,
            train_images=len(data),
            concepts=len(data.class_names),
            final_loss=sum(losses[-20:]) / len(losses[-20:]),
            test_limit_per_class=test_limit_per_class,
            notes=read_build_info(out_dir).get("notes", []) if is_released(out_dir) else [],
        )
        export_vlm_release(
            skeleton.model, skeleton.tokenizer, skeleton.preprocessor, staging, info.to_dict()
        )
        vlm_dir = materialise_vlm_release(work / "vlm", base_dir, staging)
        info.test_accuracy = evaluate_answers(vlm_dir, base_dir, "test", test_limit_per_class)
        info.validation_accuracy = evaluate_answers(
            vlm_dir, base_dir, "validation", validation_limit_per_class
        )
        lap("evaluation", mark)
        seconds["total"] = time.perf_counter() - started
        info.seconds = seconds
        final = {**read_build_info(staging), **info.to_dict()}  # keeps the weights' sha256
        write_vlm_build_info(staging, final)
        write_vlm_card(staging, final)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
