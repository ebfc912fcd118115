"""The VLM scenario: question/answer corrections in the held-out style, answers measured.

The concepts, sessions and anchors are the continual benchmark's style-shift setting
(``bench.continual.protocol``): ``CORRECTED_CONCEPTS`` fixed OpenMoji concepts corrected, a
group per session, with k ``train`` renderings per concept; ``TRANSFER_CONCEPTS`` other
OpenMoji concepts never corrected; anchors are train renderings of the odd-numbered concepts
of the two training styles (plus Fashion-MNIST and textures train images), controls are test
renderings of the even-numbered ones, so no anchored concept is ever scored.

What changes: every correction image is asked the questions the stand-in VLM was taught
(``standin.basemodel.vlm.questions.question_answers``: "What is in the picture?" -> "A cat.",
the concept's yes question, one of its no questions), and the corrections are those
question/answer pairs: the answer objective trains their answers' tokens, the CLIP loss
their statements (``catalogue.captions.qa_statement``). The same questions are asked of the test
renderings: of the corrected concepts (TI), of the never-corrected ones (transfer) and of the
controls (CC). The VLM names emoji concepts only (its card), so the controls are the two
training styles' renderings; Fashion-MNIST and textures stay anchors only.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from bench.continual.protocol import (
    EMOJI_CONTROL_RENDERINGS,
    EVALUATION_SEED,
    SESSIONS,
    STYLE_SHIFT_TARGET,
    Setting,
    evaluation_sets,
    measured_concepts,
    session_classes,
)
from catalogue.captions import WHAT_IS_SHOWN_QUESTION
from service.modelling.examples import ImageExample
from standin.basemodel.recipe import EMOJI_TRAINING_DATASETS
from standin.basemodel.vlm.questions import YES, question_answers
from standin.datasets import LabelledImages, load_dataset

# OpenMoji test renderings per concept (all there are).
TARGET_RENDERINGS = 10
# Question kinds, reported apart: a model that always says "Yes." shows as such.
WHAT, YES_KIND, NO_KIND = "what", "yes", "no"
QUESTION_KINDS = (WHAT, YES_KIND, NO_KIND)
# Which of its concept's questions each correction image is asked: all of them (the
# scenario), or only "What is in the picture?" (a control: its statement is the label caption,
# so these corrections train exactly what the continual benchmark's label corrections train).
ALL_QUESTIONS, WHAT_ONLY = "all", "what-only"
CORRECTIONS = (ALL_QUESTIONS, WHAT_ONLY)
# Where a run is scored. "test": the scenario (the corrected concepts' test renderings).
# "validation": for choosing defaults without touching the test renderings or the scenario's
# corrected concepts: the sessions correct the scenario's never-corrected (transfer) concepts
# instead, scored on their validation renderings, controls on the training styles'
# validation renderings. Defaults chosen there are confirmed on "test".
TEST, VALIDATION = "test", "validation"
SPLITS = (TEST, VALIDATION)


@dataclass(frozen=True)
class VlmSetting:
    """The scenario's size: shots per concept, sessions applied, evaluation renderings."""

    shots: int = 5
    applied_sessions: int = SESSIONS
    target_renderings: int = TARGET_RENDERINGS
    # Measure only the first n of the measured control concepts (None: all; tests use few).
    control_concepts: int | None = None
    split: str = TEST

    @property
    def continual(self) -> Setting:
        """The continual benchmark's style-shift setting these concepts and sessions are from
        (its emoji controls keep ``EMOJI_CONTROL_RENDERINGS`` test renderings per concept)."""
        return Setting(
            STYLE_SHIFT_TARGET,
            self.shots,
            applied_sessions=self.applied_sessions,
            evaluation_per_class=self.target_renderings,
        )

    def describe(self) -> dict[str, int | str | None]:
        return {
            "split": self.split,
            "shots": self.shots,
            "sessions": self.continual.sessions,
            "applied_sessions": self.applied_sessions,
            "target_renderings": self.target_renderings,
            "control_renderings": EMOJI_CONTROL_RENDERINGS,
            "control_concepts": self.control_concepts,
        }


def question_kind(question: str, answer: str) -> str:
    """ "what", "yes" or "no": which of the VLM's questions a pair is."""
    if question == WHAT_IS_SHOWN_QUESTION:
        return WHAT
    return YES_KIND if answer == YES else NO_KIND


def qa_corrections(
    labelled: list[ImageExample], questions: str = ALL_QUESTIONS
) -> list[ImageExample]:
    """Every labelled correction image asked its concept's questions (all, or only what it
    shows), as question/answer corrections (what the user of a VLM would submit)."""
    if questions not in CORRECTIONS:
        raise ValueError(f"questions must be one of {CORRECTIONS}, got {questions!r}")
    return [
        ImageExample(image=example.image, question=question, answer=answer)
        for example in labelled
        for question, answer in question_answers(str(example.label))
        if questions == ALL_QUESTIONS or question == WHAT_IS_SHOWN_QUESTION
    ]


@dataclass(frozen=True)
class AskedQuestion:
    """One question about one image of a :class:`QuestionSet`, with its right answer."""

    image: int  # index into the set's images
    question: str
    answer: str
    kind: str


@dataclass(frozen=True)
class QuestionSet:
    """One evaluation set: its images, the concept of each, and the questions asked."""

    name: str
    images: list[Image.Image]
    concepts: list[str]
    questions: list[AskedQuestion]

    def examples(self) -> list[ImageExample]:
        """The questions as question/answer examples (what ``answer_hits`` scores)."""
        return [
            ImageExample(
                image=self.images[asked.image], question=asked.question, answer=asked.answer
            )
            for asked in self.questions
        ]


def question_set(name: str, images: LabelledImages) -> QuestionSet:
    """Every image of ``images`` asked its concept's questions, grouped by question (so a
    generation batch shares one prompt length)."""
    concepts = [images.class_names[label] for label in images.labels]
    asked = [
        AskedQuestion(index, question, answer, question_kind(question, answer))
        for index, concept in enumerate(concepts)
        for question, answer in question_answers(concept)
    ]
    asked.sort(key=lambda item: (item.question, item.image))
    return QuestionSet(name, list(images.images), concepts, asked)


@dataclass(frozen=True)
class ScenarioData:
    """Everything a run measures on, fixed (independent of the run's seed): the OpenMoji
    test renderings of the corrected and never-corrected concepts, and the controls."""

    concept_names: list[str]
    corrected: list[str]  # in session order
    transfer: list[str]
    sessions: list[list[int]]  # the concepts (indices) each applied session corrects
    target: QuestionSet
    controls: dict[str, QuestionSet]


def scenario_data(setting: VlmSetting) -> ScenarioData:
    """The concepts, sessions and evaluation questions of ``setting``."""
    if setting.split == VALIDATION:
        return choosing_data(setting)
    continual = setting.continual
    sets = evaluation_sets(continual)
    names = sets.target.class_names
    groups = continual.session_groups(len(names))[: setting.applied_sessions]
    return ScenarioData(
        concept_names=names,
        corrected=[names[c] for c in continual.corrected_classes(len(names))],
        transfer=[names[c] for c in continual.transfer_classes(len(names))],
        sessions=groups,
        target=question_set(STYLE_SHIFT_TARGET, sets.target),
        controls={
            name: question_set(name, _first_concepts(sets.controls[name], setting.control_concepts))
            for name in EMOJI_TRAINING_DATASETS
        },
    )


def _first_concepts(images: LabelledImages, count: int | None) -> LabelledImages:
    if count is None:
        return images
    return images.only_classes(sorted(set(images.labels))[:count])


def choosing_data(setting: VlmSetting) -> ScenarioData:
    """The validation variant (see ``VALIDATION``): the transfer concepts corrected in
    sessions, scored on validation renderings; no never-corrected group."""
    continual = setting.continual

    def validation(name: str, per_class: int) -> LabelledImages:
        return load_dataset(name, "validation", limit_per_class=per_class, seed=EVALUATION_SEED)

    target = validation(STYLE_SHIFT_TARGET, setting.target_renderings)
    names = target.class_names
    chosen = continual.transfer_classes(len(names))
    groups = [
        [chosen[i] for i in group] for group in session_classes(len(chosen), continual.sessions)
    ][: setting.applied_sessions]
    controls = {}
    for name in EMOJI_TRAINING_DATASETS:
        images = validation(name, EMOJI_CONTROL_RENDERINGS)
        images = images.only_classes(measured_concepts(len(images.class_names)))
        controls[name] = question_set(name, _first_concepts(images, setting.control_concepts))
    return ScenarioData(
        concept_names=names,
        corrected=[names[c] for c in chosen],
        transfer=[],
        sessions=groups,
        target=question_set(STYLE_SHIFT_TARGET, target.only_classes(chosen)),
        controls=controls,
    )
