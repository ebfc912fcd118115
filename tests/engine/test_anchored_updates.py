"""Anchored updates on real images: distillation on anchors holds their embeddings near the
parent's, and training stops by budget (examples learned, or anchor drift), saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from service.registry.service import LoadedEvalSet
from workers.datasets import load_dataset
from workers.engine.accuracy import zero_shot_predictions
from workers.engine.update import run_update
from workers.pipeline.evaluation import split_control_sets

FAST = {"learning_rate": 3e-3, "epochs": 6, "batch_size": 8, "max_steps": None}


def _fashion(split: str, per_class: int, classes: tuple[int, ...]) -> list[ImageExample]:
    data = load_dataset("fashion-mnist", split, limit_per_class=per_class, seed=0)
    return [
        ImageExample(image=image, label=data.class_names[label])
        for image, label in zip(data.images, data.labels, strict=True)
        if label in classes
    ]


@pytest.fixture
def correction() -> list[ImageExample]:
    return _fashion("train", 6, (5, 9))  # sandals and ankle boots


@pytest.fixture
def anchors() -> list[ImageExample]:
    return _fashion("test", 4, (0, 1, 2, 3, 7, 8))  # other classes, other split


def test_distillation_on_anchors_keeps_them_nearer_the_parent(
    tiny_model_dir: Path, correction: list[ImageExample], anchors: list[ImageExample]
) -> None:
    drifts = {}
    for weight in (0.0, 50.0):
        model = load_dual_encoder(tiny_model_dir)
        report = run_update(
            model,
            correction,
            method="full-ft",
            hyperparameters={**FAST, "anchor_distillation": weight, "drift_budget": 2.0},
            anchors=anchors,
        ).report
        assert report.anchors == len(anchors) and report.anchor_drift is not None
        drifts[weight] = report.anchor_drift
    assert drifts[50.0] < 0.5 * drifts[0.0]


def test_a_met_margin_stops_training_as_learned(
    model: DualEncoder, correction: list[ImageExample]
) -> None:
    planned = run_update(
        model, correction, method="full-ft", hyperparameters={**FAST, "stop_margin": 2.0}
    ).report
    assert planned.stop_reason == "planned_steps" and planned.steps == 12
    long = {**FAST, "epochs": 100, "stop_margin": 0.0}
    learned = run_update(model, correction, method="full-ft", hyperparameters=long).report
    assert learned.stop_reason == "learned" and learned.steps < 200
    assert learned.steps % 2 == 0  # checked once per epoch (12 examples at batch 8)
    # Stopped because every example is classified right, and not before.
    names = sorted({str(example.label) for example in correction})
    predictions = zero_shot_predictions(model, [e.image for e in correction], names).tolist()
    assert predictions == [names.index(str(e.label)) for e in correction]


def test_a_drift_budget_stops_training_early(
    model: DualEncoder, correction: list[ImageExample], anchors: list[ImageExample]
) -> None:
    report = run_update(
        model,
        correction,
        method="full-ft",
        hyperparameters={**FAST, "drift_budget": 1e-6},
        anchors=anchors,
    ).report
    assert report.stop_reason == "drift_budget" and report.steps == 2
    assert report.anchor_drift is not None and report.anchor_drift >= 1e-6


def test_anchors_are_never_the_images_cc_is_measured_on() -> None:
    images = [object() for _ in range(5)]
    control = LoadedEvalSet("c", "control", images, list("abcde"))  # type: ignore[arg-type]
    target = LoadedEvalSet("t", "target", images[:2], list("ab"))  # type: ignore[arg-type]
    measured, anchors = split_control_sets([control, target])
    assert [s.images for s in measured] == [images[0::2], images[:2]]
    assert [a.image for a in anchors] == images[1::2]
    assert not {id(a.image) for a in anchors} & {id(i) for i in measured[0].images}
