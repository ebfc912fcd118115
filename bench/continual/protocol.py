"""The benchmark protocol: settings, class-split sessions, evaluation sets.

A target dataset the base model has never seen is split by class into sessions (classes in
label order, two per session for ten classes); every session brings ``shots`` training images
per class of its classes. Control sets are the trained domains' test splits plus the other
held-out dataset (an unseen domain the updates must not damage either).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.modelling.examples import ImageExample
from workers.basemodel.recipe import HELD_OUT_DATASETS, TRAINED_DATASETS
from workers.datasets import LabelledImages, load_dataset

TARGET_DATASETS = HELD_OUT_DATASETS
SESSIONS = 5
# Evaluation images per class: enough for a 1-point resolution on every set, small enough that
# evaluating after every session costs about a second.
EVALUATION_IMAGES_PER_CLASS = 100
EVALUATION_SEED = 12_345


@dataclass(frozen=True)
class Setting:
    """One benchmark cell: a target dataset at a number of shots per class."""

    target: str
    shots: int
    sessions: int = SESSIONS  # how many groups the target's classes are split into
    applied_sessions: int | None = None  # apply only the first n (the quick variant); None: all
    evaluation_per_class: int = EVALUATION_IMAGES_PER_CLASS

    @property
    def sessions_to_apply(self) -> int:
        return self.sessions if self.applied_sessions is None else self.applied_sessions

    @property
    def label(self) -> str:
        return f"{self.target} CL-{self.shots}"

    def control_datasets(self) -> list[str]:
        """Trained domains plus the other held-out (unseen) datasets."""
        unseen = [name for name in HELD_OUT_DATASETS if name != self.target]
        return [*TRAINED_DATASETS, *unseen]


def session_classes(num_classes: int, sessions: int = SESSIONS) -> list[list[int]]:
    """Split labels ``0..num_classes-1`` in order into ``sessions`` near-equal groups."""
    if num_classes < sessions:
        raise ValueError(f"{num_classes} classes cannot fill {sessions} sessions")
    bounds = [round(i * num_classes / sessions) for i in range(sessions + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(sessions)]


def session_examples(setting: Setting, classes: list[int], seed: int) -> list[ImageExample]:
    """``setting.shots`` training images of each class in ``classes`` as labelled corrections.

    The shots of every class are drawn by ``seed`` from the target's train split, so the
    different seeds of a method see different images but all methods of one seed the same.
    """
    train = load_dataset(setting.target, "train", limit_per_class=setting.shots, seed=seed)
    chosen = train.only_classes(classes)
    return [
        ImageExample(image=image, label=train.class_names[label])
        for image, label in zip(chosen.images, chosen.labels, strict=True)
    ]


@dataclass(frozen=True)
class EvaluationSets:
    """The target test images and every control set of one setting."""

    target: LabelledImages
    controls: dict[str, LabelledImages]


def evaluation_sets(setting: Setting) -> EvaluationSets:
    """Fixed evaluation images (independent of the run's seed, so all runs share them)."""

    def test_split(name: str) -> LabelledImages:
        return load_dataset(
            name, "test", limit_per_class=setting.evaluation_per_class, seed=EVALUATION_SEED
        )

    return EvaluationSets(
        target=test_split(setting.target),
        controls={name: test_split(name) for name in setting.control_datasets()},
    )
