"""Bad input raises a clear engine error with a code, and the weights stay exactly as they were."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from PIL import Image

from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.snapshots import state_sha256
from tests.model_fixtures import noise_examples
from workers.engine.errors import (
    EmptyBatch,
    InvalidExample,
    InvalidHyperparameter,
    NonFiniteLoss,
    SingleClass,
    UpdateCancelled,
    UpdateError,
)
from workers.engine.examples import examples_from_folders
from workers.engine.update import run_update


def _assert_untouched(
    model: DualEncoder, call: Callable[[], object], error: type[UpdateError], code: str
) -> None:
    before = state_sha256(model.image_encoder_state())
    with pytest.raises(error) as raised:
        call()
    assert raised.value.code == code
    assert raised.value.message
    assert state_sha256(model.image_encoder_state()) == before
    assert not any(p.requires_grad for p in model.model.parameters())


def test_empty_batch(model: DualEncoder) -> None:
    _assert_untouched(model, lambda: run_update(model, []), EmptyBatch, "empty_batch")


def test_label_with_no_images() -> None:
    with pytest.raises(InvalidExample, match="'boot' has no images"):
        examples_from_folders({"bag": [Image.new("L", (8, 8))], "boot": []})


def test_zero_size_image(model: DualEncoder) -> None:
    batch = [
        *noise_examples(["a", "b"]),
        ImageExample(image=Image.new("RGB", (0, 0)), label="a"),
    ]
    _assert_untouched(model, lambda: run_update(model, batch), InvalidExample, "invalid_example")


def test_unreadable_image(model: DualEncoder, tmp_path) -> None:
    path = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    path.write_bytes(path.read_bytes()[:60])  # a truncated PNG: header fine, data missing
    batch = [*noise_examples(["a", "b"]), ImageExample(image=Image.open(path), label="a")]
    _assert_untouched(model, lambda: run_update(model, batch), InvalidExample, "invalid_example")


def test_empty_label(model: DualEncoder) -> None:
    batch = noise_examples(["a", "  "])
    _assert_untouched(model, lambda: run_update(model, batch), InvalidExample, "invalid_example")


def test_single_class_needs_negatives(model: DualEncoder) -> None:
    batch = noise_examples(["boot"] * 4)
    _assert_untouched(model, lambda: run_update(model, batch), SingleClass, "single_class")
    # With negative labels the same batch is a valid update.
    report = run_update(
        model, batch, negative_labels=["bag", "sandal"], hyperparameters={"epochs": 1}
    ).report
    assert report.steps == 1


@pytest.mark.parametrize(
    ("method", "overrides"),
    [
        ("lorsu", {"top_k_heads": 5}),  # the test model has 4 heads
        ("lorsu", {"sparsity": 0.0}),
        ("spu", {"sparsity": 1.5}),
        ("lora", {"rank": 0}),
        ("lorsu", {"learning_rate": -1}),
        ("lorsu", {"no_such_knob": 1}),
        ("no-such-method", {}),
    ],
)
def test_hyperparameter_out_of_range(
    model: DualEncoder, examples: list, method: str, overrides: dict
) -> None:
    _assert_untouched(
        model,
        lambda: run_update(model, examples, method=method, hyperparameters=overrides),
        InvalidHyperparameter,
        "invalid_hyperparameter",
    )


def test_non_finite_loss(model: DualEncoder, examples: list) -> None:
    with torch.no_grad():
        model.model.logit_scale.fill_(math.inf)
    _assert_untouched(model, lambda: run_update(model, examples), NonFiniteLoss, "non_finite_loss")


def test_cancel_mid_training_restores_weights(model: DualEncoder, examples: list) -> None:
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    _assert_untouched(
        model,
        lambda: run_update(
            model,
            examples,
            method="full-ft",
            hyperparameters={"learning_rate": 1e-2, "batch_size": 2},
            should_cancel=should_cancel,
        ),
        UpdateCancelled,
        "cancelled",
    )
    assert calls["n"] == 3
