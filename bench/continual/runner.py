"""Runs one method through every session of a setting, evaluating after each session."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench.continual.protocol import (
    EvaluationSets,
    Setting,
    evaluation_sets,
    session_examples,
)
from bench.continual.results import RunResult, SessionResult, SetAccuracy
from service.modelling.captions import DEFAULT_CAPTION_TEMPLATE
from service.modelling.dual_encoder import DualEncoder
from service.modelling.loading import load_dual_encoder
from workers.datasets import LabelledImages
from workers.engine.accuracy import control_change, target_improvement, zero_shot_predictions
from workers.engine.update import run_update

ZERO_SHOT = "zero-shot"


def measure(model: DualEncoder, images: LabelledImages) -> SetAccuracy:
    """Zero-shot accuracy against all of the set's class names, kept per class."""
    predictions = zero_shot_predictions(
        model, images.images, images.class_names, DEFAULT_CAPTION_TEMPLATE
    )
    labels = torch.tensor(images.labels)
    hits = predictions == labels
    correct = {int(c): int(hits[labels == c].sum()) for c in labels.unique()}
    total = {int(c): int((labels == c).sum()) for c in labels.unique()}
    return SetAccuracy(float(hits.double().mean() * 100.0), correct, total)


def evaluate(
    model: DualEncoder, sets: EvaluationSets
) -> tuple[SetAccuracy, dict[str, SetAccuracy]]:
    return measure(model, sets.target), {
        name: measure(model, images) for name, images in sets.controls.items()
    }


def session_result(
    session: int,
    seen: list[int],
    target: SetAccuracy,
    controls: dict[str, SetAccuracy],
    base_target: SetAccuracy,
    base_controls: dict[str, SetAccuracy],
    corrected: list[int],
    transfer: list[int],
) -> SessionResult:
    # Session 0 (the base model) has seen no target class: report it on all it will correct.
    evaluated = seen or corrected
    control_accuracies = {name: result.accuracy for name, result in controls.items()}
    base_control_accuracies = {name: result.accuracy for name, result in base_controls.items()}
    change = control_change(base_control_accuracies, control_accuracies)
    return SessionResult(
        session=session,
        classes_seen=list(seen),
        target_accuracy=target.on_classes(evaluated),
        target_accuracy_all=target.accuracy,
        control_accuracies=control_accuracies,
        target_improvement=target_improvement(
            base_target.on_classes(evaluated), target.on_classes(evaluated)
        ),
        control_change=0.0 if change is None else change,
        transfer_accuracy=target.on_classes(transfer) if transfer else None,
        transfer_improvement=(
            target.on_classes(transfer) - base_target.on_classes(transfer) if transfer else None
        ),
    )


def run_method(
    base_model_dir: Path,
    setting: Setting,
    method: str,
    seed: int,
    hyperparameters: Mapping[str, Any] | None = None,
    negatives: bool = False,
) -> RunResult:
    """Apply ``setting.sessions`` sessions in order, each from the previous merged weights.

    ``method="zero-shot"`` applies no update (the reference row). ``negatives`` also passes
    the target's other class names as negative captions (an operator who knows the label set
    of the deployed classifier); by default the loss only sees the session's own captions, as
    in the paper.
    """
    model = load_dual_encoder(base_model_dir, device="cpu")
    sets = evaluation_sets(setting)
    num_classes = len(sets.target.class_names)
    corrected = setting.corrected_classes(num_classes)
    transfer = setting.transfer_classes(num_classes)
    base_target, base_controls = evaluate(model, sets)
    sessions = [
        session_result(
            0, [], base_target, base_controls, base_target, base_controls, corrected, transfer
        )
    ]
    groups = setting.session_groups(num_classes)[: setting.sessions_to_apply]
    seen: list[int] = []
    for index, classes in enumerate(groups, start=1):
        seen = seen + classes
        report = None
        if method != ZERO_SHOT:
            examples = session_examples(setting, classes, seed)
            names = sets.target.class_names
            others = [names[label] for label in range(len(names)) if label not in classes]
            # Each session gets its own seed so sessions do not replay one random stream.
            outcome = run_update(
                model,
                examples,
                method=method,
                hyperparameters=dict(hyperparameters or {}),
                seed=seed * 1000 + index,
                device="cpu",
                negative_labels=others if negatives else (),
            )
            report = outcome.report
        target, controls = evaluate(model, sets)
        result = session_result(
            index, seen, target, controls, base_target, base_controls, corrected, transfer
        )
        if report is not None:
            result.train_seconds = report.train_seconds
            result.trainable_parameters = report.trainable_parameters
            result.optimizer_state_bytes = report.optimizer_state_bytes
            result.steps = report.steps
            result.details = {
                key: value for key, value in report.details.items() if key == "heads_per_layer"
            }
        sessions.append(result)
    resolved = {} if report is None else dict(report.hyperparameters)
    return RunResult(
        target=setting.target,
        shots=setting.shots,
        method=method,
        seed=seed,
        hyperparameters=resolved,
        sessions=sessions,
        evaluation_per_class=setting.evaluation_per_class,
    )
