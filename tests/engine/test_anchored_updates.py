"""Anchored updates on real images: distillation on anchors holds their embeddings near the
parent's, and training stops by budget (examples learned, or anchor drift), saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.inference import zero_shot_predictions
from service.modelling.loading import load_dual_encoder
from standin.datasets import load_dataset
from workers.engine.errors import InvalidHyperparameter
from workers.engine.update import run_update
from workers.pipeline.evaluation import split_control_sets
from workers.pipeline.stored_inputs import LoadedEvalSet

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


def test_question_answer_anchors_train_through_their_statements(
    model: DualEncoder, correction: list[ImageExample], anchors: list[ImageExample]
) -> None:
    from workers.engine.anchors import prepare_anchors

    template = "a photo of a {}."
    shoe = {"sandal", "sneaker", "ankle boot"}
    asked = [
        ImageExample(
            image=anchor.image,
            question="Is it a shoe?",
            answer="Yes." if anchor.label in shoe else "No.",
        )
        for anchor in anchors[:6]
    ]
    named = [
        ImageExample(image=anchors[0].image, question="What is in the picture?", answer="A bag.")
    ]
    mixed = [*anchors[6:], *asked, *named]
    prepared = prepare_anchors(model, mixed, template)
    labels = sorted({str(a.label) for a in anchors[6:]} | {"bag"})
    statements = sorted(
        {"it is a shoe." if a.answer == "Yes." else "it is not a shoe." for a in asked}
    )
    classes = sorted([*labels, *statements])
    # One class per label (the named answer joins the label "bag"), one per statement.
    assert prepared.caption_embeddings.shape[0] == len(classes)
    expected = [
        model.encode_texts([f"a photo of a {c}." if c in labels else c])[0] for c in classes
    ]
    assert all(
        (prepared.caption_embeddings[i] - e).abs().max() < 1e-5 for i, e in enumerate(expected)
    )
    own = (
        [str(a.label) for a in anchors[6:]]
        + ["it is a shoe." if a.answer == "Yes." else "it is not a shoe." for a in asked]
        + ["bag"]
    )
    assert prepared.targets.tolist() == [classes.index(c) for c in own]
    report = run_update(
        model,
        correction,
        method="lorsu",
        hyperparameters={**FAST, "anchor_distillation": 1.0, "anchor_rehearsal": 1.0},
        seed=0,
        anchors=mixed,
        base_state=model.image_encoder_state(),  # LoRSU holds a dual encoder's anchors there
    )
    assert report.report.anchors == len(mixed)


def _distance(model: DualEncoder, state: dict[str, Any], anchors: list[ImageExample]) -> float:
    """Mean 1 - cos between the anchors' embeddings now and under ``state``."""
    import torch.nn.functional as F

    from workers.engine.update import encoder_weights

    pixels = model.pixel_values([anchor.image for anchor in anchors])
    with torch.no_grad():
        now = F.normalize(model.image_features(pixels), dim=-1)
        with encoder_weights(model, state):
            then = F.normalize(model.image_features(pixels), dim=-1)
    return float((1 - (now * then).sum(dim=-1)).mean())


def _corrected_once(
    tiny_model_dir: Path, correction: list[ImageExample]
) -> tuple[DualEncoder, dict[str, Any], dict[str, Any]]:
    """A fresh model after a first correction: ``(model, base weights, parent weights)``."""
    model = load_dual_encoder(tiny_model_dir)
    base = model.image_encoder_state()
    run_update(model, correction, method="full-ft", hyperparameters=FAST)
    return model, base, model.image_encoder_state()


def test_anchors_can_be_held_to_the_base_weights_instead_of_the_parent(
    tiny_model_dir: Path, correction: list[ImageExample], anchors: list[ImageExample]
) -> None:
    """After a first correction (the parent), a second one distilled towards the base pulls
    the anchors back towards the base; distilled towards the parent, it keeps the first
    correction's drift."""
    distances = {}
    for reference in ("parent", "base"):
        model, base, parent = _corrected_once(tiny_model_dir, correction)
        drifted = _distance(model, base, anchors)
        assert drifted > 0.01
        run_update(
            model,
            _fashion("train", 6, (4, 6)),  # another correction: coats and shirts
            method="full-ft",
            hyperparameters={**FAST, "anchor_distillation": 200.0, "anchor_reference": reference},
            anchors=anchors,
            base_state=base,
        )
        distances[reference] = (_distance(model, base, anchors), _distance(model, parent, anchors))
        assert model.image_encoder_state().keys() == parent.keys()
    assert distances["base"][0] < 0.5 * distances["parent"][0]  # back towards the base
    assert distances["parent"][1] < distances["base"][1]  # the parent's drift kept
    with pytest.raises(InvalidHyperparameter, match="base weights"):
        run_update(
            load_dual_encoder(tiny_model_dir),
            correction,
            method="full-ft",
            hyperparameters={**FAST, "anchor_reference": "base"},
            anchors=anchors,
        )


def test_replayed_corrections_stay_as_corrected_when_the_anchors_are_held_to_the_base(
    tiny_model_dir: Path, correction: list[ImageExample], anchors: list[ImageExample]
) -> None:
    """Held to the base, an anchor is pulled back to where it was before any correction; an
    earlier correction's replayed example is held where that correction put it (the parent)."""
    distances = {}
    for how in ("as anchors", "replayed"):
        model, base, parent = _corrected_once(tiny_model_dir, correction)
        assert _distance(model, base, correction) > 0.01
        run_update(
            model,
            _fashion("train", 6, (4, 6)),
            method="full-ft",
            hyperparameters={
                **FAST,
                "anchor_distillation": 200.0,
                "anchor_rehearsal": 0.0,
                "anchor_reference": "base",
            },
            anchors=[*anchors, *correction] if how == "as anchors" else anchors,
            replayed=correction if how == "replayed" else (),
            base_state=base,
        )
        distances[how] = _distance(model, parent, correction)
    assert distances["replayed"] < 0.5 * distances["as anchors"]
