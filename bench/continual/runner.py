"""Runs one method through every session of a setting, evaluating after each session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.continual.protocol import (
    Setting,
    anchor_examples,
    evaluation_sets,
    session_examples,
)
from bench.continual.results import RunResult, SessionResult, SetAccuracy
from catalogue.captions import (
    captions_for_labels,
)
from catalogue.declarations import resolve_hyperparameters
from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from standin.datasets import LabelledImages
from workers.engine.accuracy import control_change, target_improvement
from workers.engine.update import run_update

ZERO_SHOT = "zero-shot"


@dataclass(frozen=True)
class PreparedSet:
    """One evaluation set ready for repeated scoring: pixels and class-caption embeddings are
    computed once per run (preprocessing is deterministic and the text tower is frozen)."""

    pixels: torch.Tensor
    labels: torch.Tensor
    caption_embeddings: torch.Tensor


def prepare(model: DualEncoder, images: LabelledImages) -> PreparedSet:
    return PreparedSet(
        pixels=model.pixel_values(list(images.images)),
        labels=torch.tensor(images.labels),
        caption_embeddings=model.encode_texts(captions_for_labels(images.class_names)),
    )


@torch.no_grad()
def measure(model: DualEncoder, prepared: PreparedSet, batch_size: int = 256) -> SetAccuracy:
    """Zero-shot accuracy against all of the set's class names, kept per class."""
    predictions = torch.cat(
        [
            (
                F.normalize(model.image_features(prepared.pixels[start : start + batch_size]))
                @ prepared.caption_embeddings.T
            ).argmax(dim=1)
            for start in range(0, prepared.pixels.shape[0], batch_size)
        ]
    )
    labels = prepared.labels
    hits = predictions == labels
    correct = {int(c): int(hits[labels == c].sum()) for c in labels.unique()}
    total = {int(c): int((labels == c).sum()) for c in labels.unique()}
    return SetAccuracy(float(hits.double().mean() * 100.0), correct, total)


def evaluate(
    model: DualEncoder, target: PreparedSet, controls: Mapping[str, PreparedSet]
) -> tuple[SetAccuracy, dict[str, SetAccuracy]]:
    return measure(model, target), {
        name: measure(model, prepared) for name, prepared in controls.items()
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
    resolved = (
        None
        if method == ZERO_SHOT
        else resolve_hyperparameters(method, dict(hyperparameters or {}), model.architecture)
    )
    # Anchors are loaded only for methods whose hyperparameters use them (rendering the emoji
    # anchors takes tens of seconds).
    anchors = anchor_examples() if resolved is not None and resolved.uses_anchors() else []
    # The base weights, which "anchor_reference": "base" distils the anchors towards.
    base_state = model.image_encoder_state()
    prepared_target = prepare(model, sets.target)
    prepared_controls = {name: prepare(model, images) for name, images in sets.controls.items()}
    num_classes = len(sets.target.class_names)
    corrected = setting.corrected_classes(num_classes)
    transfer = setting.transfer_classes(num_classes)
    base_target, base_controls = evaluate(model, prepared_target, prepared_controls)
    previous_target = base_target
    sessions = [
        session_result(
            0, [], base_target, base_controls, base_target, base_controls, corrected, transfer
        )
    ]
    groups = setting.session_groups(num_classes)[: setting.sessions_to_apply]
    seen: list[int] = []
    # Earlier sessions' corrections, replayed as anchors when the hyperparameters ask for it
    # (the service holds every correction a model has had).
    replayed: list[ImageExample] = []
    for index, classes in enumerate(groups, start=1):
        seen = seen + [label for label in classes if label not in seen]
        report = None
        if resolved is not None:
            examples = session_examples(setting, classes, seed, session=index)
            names = sets.target.class_names
            others = [names[label] for label in range(len(names)) if label not in classes]
            # Each session gets its own seed so sessions do not replay one random stream.
            outcome = run_update(
                model,
                examples,
                method=method,
                hyperparameters=resolved,
                seed=seed * 1000 + index,
                device="cpu",
                negative_labels=others if negatives else (),
                anchors=anchors,
                replayed=replayed,
                base_state=base_state,
            )
            if resolved.anchor_replay:
                replayed = replayed + examples
            report = outcome.report
        target, controls = evaluate(model, prepared_target, prepared_controls)
        result = session_result(
            index, seen, target, controls, base_target, base_controls, corrected, transfer
        )
        if report is not None:
            result.train_seconds = report.train_seconds
            result.trainable_parameters = report.trainable_parameters
            result.optimizer_state_bytes = report.optimizer_state_bytes
            result.steps = report.steps
            result.stop_reason = report.stop_reason
            result.anchor_drift = report.anchor_drift
            result.details = {
                key: value for key, value in report.details.items() if key == "heads_per_layer"
            }
        # What the service's gate sees for this session's version: TI on the session's own
        # classes and CC, both against the version it was trained from.
        result.version_ti = target.on_classes(classes) - previous_target.on_classes(classes)
        result.version_cc = (
            control_change(sessions[-1].control_accuracies, result.control_accuracies) or 0.0
        )
        previous_target = target
        sessions.append(result)
    return RunResult(
        target=setting.target,
        shots=setting.shots,
        method=method,
        seed=seed,
        hyperparameters={} if resolved is None else resolved.model_dump(),
        sessions=sessions,
        evaluation_per_class=setting.evaluation_per_class,
    )
