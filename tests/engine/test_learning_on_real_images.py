"""On real Fashion-MNIST images the loss goes down and corrected predictions flip."""

from __future__ import annotations

import math

import pytest

from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.inference import zero_shot_predictions
from standin.datasets import load_dataset
from workers.engine.update import run_update

# The mechanism at the paper's structure (2 heads, 10% of fc1) on the 4-head test model.
STRUCTURE: dict[str, dict] = {"lorsu": {"top_k_heads": 2, "sparsity": 0.1}, "full-ft": {}}


@pytest.mark.parametrize("method", ["lorsu", "full-ft"])
def test_loss_goes_down_and_a_wrong_prediction_flips(model: DualEncoder, method: str) -> None:
    data = load_dataset("fashion-mnist", "train", limit_per_class=4, seed=0)
    chosen = [i for i, label in enumerate(data.labels) if label in (5, 9)]  # sandal vs ankle boot
    names = [data.class_names[5], data.class_names[9]]
    images = [data.images[i] for i in chosen]
    targets = [0 if data.labels[i] == 5 else 1 for i in chosen]
    before = zero_shot_predictions(model, images, names).tolist()
    wrong = [i for i, (p, t) in enumerate(zip(before, targets, strict=True)) if p != t]
    assert wrong, "the untrained model should get some of these wrong"
    batch = [ImageExample(image=images[i], label=names[t]) for i, t in enumerate(targets)]
    report = run_update(
        model,
        batch,
        method=method,
        seed=0,
        hyperparameters={"learning_rate": 1e-3, "epochs": 15, "batch_size": 8, **STRUCTURE[method]},
    ).report
    # The class-level loss has a floor of 0.5 * ln(images per class) from its text->image term.
    floor = 0.5 * math.log(4)
    assert report.losses[-1] - floor < 0.25 * (report.losses[0] - floor)
    after = zero_shot_predictions(model, images, names).tolist()
    assert all(after[i] == targets[i] for i in wrong)
