"""The robustness reference: what one fixed correction costs the rest of the model.

Full fine-tuning on ``REFERENCE_CONCEPTS`` OpenMoji concepts (fixed, drawn by a constant seed
whatever the model), ``REFERENCE_SHOTS`` correction renderings each, ``REFERENCE_STEPS`` steps
at a fixed learning rate. Reported: target points gained on those concepts, control points
lost (mean over the control sets), and their ratio (control points lost per target point
gained; lower is more robust). One number that compares base models, not update methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from standin.datasets import LabelledImages
from workers.engine.accuracy import control_change, zero_shot_accuracy
from workers.engine.update import run_update

REFERENCE_CONCEPTS = 50
REFERENCE_SHOTS = 5
REFERENCE_STEPS = 40
REFERENCE_LEARNING_RATE = 1e-4
REFERENCE_METHOD = "full-ft"
_CONCEPT_SEED = 4_242


@dataclass
class ReferenceCorrection:
    """Before/after accuracies (percent) of the reference correction and its cost ratio."""

    target_before: float
    target_after: float
    controls_before: dict[str, float]
    controls_after: dict[str, float]

    @property
    def target_gain(self) -> float:
        return self.target_after - self.target_before

    @property
    def control_loss(self) -> float:
        change = control_change(self.controls_before, self.controls_after)
        return -(change or 0.0)

    @property
    def cost_ratio(self) -> float:
        """Control points lost per target point gained (inf when nothing was gained)."""
        return self.control_loss / self.target_gain if self.target_gain > 0 else float("inf")

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "target_gain": self.target_gain,
            "control_loss": self.control_loss,
            "cost_ratio": self.cost_ratio,
        }


def reference_concepts(concept_count: int) -> list[int]:
    """The fixed concept indices the reference corrects (independent of the model)."""
    permutation = np.random.default_rng(_CONCEPT_SEED).permutation(concept_count)
    return sorted(int(i) for i in permutation[:REFERENCE_CONCEPTS])


def run_reference_correction(
    model_dir: Path,
    corrections: LabelledImages,
    target: LabelledImages,
    controls: Mapping[str, LabelledImages],
    seed: int = 0,
) -> ReferenceCorrection:
    """Correct ``model_dir``'s model on ``corrections`` and measure ``target`` and ``controls``.

    ``corrections`` and ``target`` hold different renderings of the same concepts; ``target``
    is scored against all of its class names, as are the controls.
    """
    model = load_dual_encoder(model_dir, device="cpu")

    def accuracy(images: LabelledImages) -> float:
        return zero_shot_accuracy(
            model, images.images, images.labels, images.class_names, DEFAULT_CAPTION_TEMPLATE
        )

    target_before = accuracy(target)
    controls_before = {name: accuracy(images) for name, images in controls.items()}
    examples = [
        ImageExample(image=image, label=corrections.class_names[label])
        for image, label in zip(corrections.images, corrections.labels, strict=True)
    ]
    corrected = {example.label for example in examples}
    run_update(
        model,
        examples,
        method=REFERENCE_METHOD,
        hyperparameters={
            "learning_rate": REFERENCE_LEARNING_RATE,
            "max_steps": REFERENCE_STEPS,
            "epochs": 1000,
            "batch_size": 8,
        },
        seed=seed,
        device="cpu",
        # The other known concepts as negatives, as the service does with a model's labels.
        negative_labels=[name for name in corrections.class_names if name not in corrected],
    )
    return ReferenceCorrection(
        target_before=target_before,
        target_after=accuracy(target),
        controls_before=controls_before,
        controls_after={name: accuracy(images) for name, images in controls.items()},
    )
