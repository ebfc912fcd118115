"""The benchmark protocol: scenarios, settings, sessions, evaluation sets.

Two scenarios, each on the stand-in base model:

- **style shift** (``emoji-openmoji``): the model meets OpenMoji artwork of concepts it knows
  in two other studios' styles. ``CORRECTED_CONCEPTS`` fixed concepts are corrected, a group
  per session, with k correction renderings per concept (the ``train`` renderings: other
  crops, scales, rotations and backgrounds than the evaluation ones). TI is measured on the
  corrected concepts' held-out (``test``) renderings, transfer on ``TRANSFER_CONCEPTS`` other
  OpenMoji concepts never corrected, both against all concept names.
- **new domain** (``animal-mnist``, ``digits``): a dataset the model has never seen, split by
  class into sessions; every session brings k training images per class of its classes.

Anchors: labelled train-split images of the trained domains, passed to every update (used only
when a method's hyperparameters ask for anchor terms or a drift budget); never the test images
CC is measured on, and never from the other new-domain dataset (its control measures content
no anchor covers). The emoji controls are split by concept, as the service splits a control
set by position (one image per concept there): anchors are renderings of the odd-numbered
concepts, CC is measured on the even-numbered ones, so no anchored concept is ever scored.

CC: mean change over the trained domains' held-out sets (emoji renderings of the two
training styles, Fashion-MNIST, textures), plus the other new-domain dataset for the new-domain
scenario. Evaluation images are fixed (independent of the run's seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.modelling.examples import ImageExample
from standin.basemodel.recipe import EMOJI_TRAINING_DATASETS, PIXEL_DATASETS
from standin.datasets import LabelledImages, load_dataset

STYLE_SHIFT_TARGET = "emoji-openmoji"
NEW_DOMAIN_TARGETS = ("animal-mnist", "digits")
TARGET_DATASETS = (STYLE_SHIFT_TARGET, *NEW_DOMAIN_TARGETS)
TRAINED_DOMAINS = (*EMOJI_TRAINING_DATASETS, *PIXEL_DATASETS)
SESSIONS = 5
CORRECTED_CONCEPTS = 50
TRANSFER_CONCEPTS = 50
_CONCEPT_SEED = 31_337
# Evaluation images per class: enough for a 1-point resolution on every set, small enough that
# evaluating after every session costs seconds. Emoji sets have 10 test renderings per concept
# (all used for the target); their controls keep 2 per concept (800 images a style).
EVALUATION_IMAGES_PER_CLASS = 100
EMOJI_CONTROL_RENDERINGS = 2
EVALUATION_SEED = 12_345
# Anchors (the part of each trained domain's control data that anchored updates may train on):
# drawn from the train splits, so never an image CC is measured on (those are test images).
# One rendering per concept and style for the emoji sets, 20 images per class otherwise.
EMOJI_ANCHOR_RENDERINGS = 1
ANCHOR_IMAGES_PER_CLASS = 20
ANCHOR_SEED = 4_242


def scenario_of(target: str) -> str:
    return "style shift" if target == STYLE_SHIFT_TARGET else "new domain"


def style_shift_concepts(concept_count: int) -> tuple[list[int], list[int]]:
    """Fixed (corrected, never-corrected transfer) concept indices, disjoint."""
    order = np.random.default_rng(_CONCEPT_SEED).permutation(concept_count)
    corrected = [int(i) for i in order[:CORRECTED_CONCEPTS]]
    transfer = sorted(
        int(i) for i in order[CORRECTED_CONCEPTS : CORRECTED_CONCEPTS + TRANSFER_CONCEPTS]
    )
    return corrected, transfer


@dataclass(frozen=True)
class Setting:
    """One benchmark cell: a target dataset at a number of shots per class."""

    target: str
    shots: int
    sessions: int = SESSIONS  # how many groups the corrected classes are split into
    applied_sessions: int | None = None  # apply only the first n (the quick variant); None: all
    evaluation_per_class: int = EVALUATION_IMAGES_PER_CLASS
    # The repeat scenario: every session corrects the first group's classes again, with
    # fresh examples each (a user who keeps feeding examples of one failure mode).
    repeat: bool = False

    @property
    def sessions_to_apply(self) -> int:
        return self.sessions if self.applied_sessions is None else self.applied_sessions

    @property
    def label(self) -> str:
        return f"{self.target} CL-{self.shots}"

    @property
    def style_shift(self) -> bool:
        return self.target == STYLE_SHIFT_TARGET

    def control_datasets(self) -> list[str]:
        """Trained domains, plus the other new-domain dataset for a new-domain target."""
        unseen = [name for name in NEW_DOMAIN_TARGETS if name != self.target]
        return [*TRAINED_DOMAINS, *([] if self.style_shift else unseen)]

    def corrected_classes(self, num_classes: int) -> list[int]:
        """The classes the sessions correct, in session order."""
        if self.style_shift:
            return style_shift_concepts(num_classes)[0]
        return list(range(num_classes))

    def transfer_classes(self, num_classes: int) -> list[int]:
        """Target classes never corrected, measured for transfer (style shift only)."""
        return style_shift_concepts(num_classes)[1] if self.style_shift else []

    def session_groups(self, num_classes: int) -> list[list[int]]:
        """The corrected classes split in order into ``sessions`` near-equal groups. The
        repeat scenario corrects one failure mode again and again: the style shift's standard
        first group (CL-5's 10 concepts), or a new domain's every class."""
        classes = self.corrected_classes(num_classes)
        if self.repeat:
            group = classes[: len(classes) // SESSIONS] if self.style_shift else classes
            return [group] * self.sessions
        return [
            [classes[i] for i in group] for group in session_classes(len(classes), self.sessions)
        ]


def session_classes(num_classes: int, sessions: int = SESSIONS) -> list[list[int]]:
    """Split labels ``0..num_classes-1`` in order into ``sessions`` near-equal groups."""
    if num_classes < sessions:
        raise ValueError(f"{num_classes} classes cannot fill {sessions} sessions")
    bounds = [round(i * num_classes / sessions) for i in range(sessions + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(sessions)]


def session_examples(
    setting: Setting, classes: list[int], seed: int, session: int = 1
) -> list[ImageExample]:
    """``setting.shots`` training images of each class in ``classes`` as labelled corrections.

    The shots of every class are drawn by ``seed`` from the target's train split (for the
    style shift: its correction renderings), so the different seeds of a method see different
    images but all methods of one seed the same. In the repeat scenario session ``session``
    (from 1) gets its own shots: the ``session``-th disjoint slice of ``shots * sessions``
    images drawn per class, so no session sees another's images.
    """
    per_class = setting.shots * (setting.sessions if setting.repeat else 1)
    train = load_dataset(setting.target, "train", limit_per_class=per_class, seed=seed)
    chosen = train.only_classes(classes)
    first = setting.shots * (session - 1) if setting.repeat else 0
    seen: dict[int, int] = {}
    examples = []
    for image, label in zip(chosen.images, chosen.labels, strict=True):
        position = seen.get(label, 0)
        seen[label] = position + 1
        if first <= position < first + setting.shots:
            examples.append(ImageExample(image=image, label=train.class_names[label]))
    return examples


@dataclass(frozen=True)
class EvaluationSets:
    """The target test images and every control set of one setting."""

    target: LabelledImages
    controls: dict[str, LabelledImages]


def evaluation_sets(setting: Setting) -> EvaluationSets:
    """Fixed evaluation images (independent of the run's seed, so all runs share them)."""

    def test_split(name: str, per_class: int) -> LabelledImages:
        return load_dataset(name, "test", limit_per_class=per_class, seed=EVALUATION_SEED)

    target = test_split(setting.target, setting.evaluation_per_class)
    if setting.style_shift:
        # Only the corrected and the transfer concepts are scored (against all names).
        num_classes = len(target.class_names)
        target = target.only_classes(
            setting.corrected_classes(num_classes) + setting.transfer_classes(num_classes)
        )
    controls = {}
    for name in setting.control_datasets():
        if name.startswith("emoji-"):
            images = test_split(name, EMOJI_CONTROL_RENDERINGS)
            controls[name] = images.only_classes(measured_concepts(len(images.class_names)))
        else:
            controls[name] = test_split(name, setting.evaluation_per_class)
    return EvaluationSets(target=target, controls=controls)


def measured_concepts(concept_count: int) -> list[int]:
    """Emoji control concepts CC is measured on (the even-numbered; the odd are anchors)."""
    return list(range(0, concept_count, 2))


def anchor_concepts(concept_count: int) -> list[int]:
    return list(range(1, concept_count, 2))


def anchor_examples() -> list[ImageExample]:
    """The anchors of every setting: fixed train-split images of the trained domains."""
    anchors: list[ImageExample] = []
    for name in TRAINED_DOMAINS:
        if name.startswith("emoji-"):
            images = load_dataset(
                name, "train", limit_per_class=EMOJI_ANCHOR_RENDERINGS, seed=ANCHOR_SEED
            )
            images = images.only_classes(anchor_concepts(len(images.class_names)))
        else:
            images = load_dataset(
                name, "train", limit_per_class=ANCHOR_IMAGES_PER_CLASS, seed=ANCHOR_SEED
            )
        anchors.extend(
            ImageExample(image=image, label=images.class_names[label])
            for image, label in zip(images.images, images.labels, strict=True)
        )
    return anchors
