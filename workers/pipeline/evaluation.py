"""What a job measures before and after its update, and the TI / CC it derives.

- Target: the correction's held-out examples (the API marks them; they are never trained
  on), each matched against every distinct caption of the correction plus the model's other
  known labels (the same captions the training loss contrasts).
- Every evaluation set of the model: ``control`` sets give CC, ``target`` sets are reported
  per set with their own TI: on the set's images of the labels the correction taught (what
  it set out to fix), or on the whole set when it holds none of those labels. A correction
  that names target sets gets TI as the mean over those sets only (whatever else it holds);
  otherwise TI comes from its held-out examples, else from the target sets that hold the
  corrected labels, else from every target set.
Accuracies are percentages, so TI and CC are accuracy points (the gate's unit).

Generative (llava) models are measured twice on the same images: in CLIP space as above, and
by the answers the VLM generates (normalised exact match, ``answer_key``): a held-out example
is asked its own question (a label example: what the image shows), an eval-set image what it
shows, with its label as the right answer. TI and CC from the answers are stored beside the
CLIP-space ones, and the gate uses them for such models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from catalogue.captions import LABEL_SLOT, answer_key
from service.db.tables import VersionEvaluation, VersionSetAccuracy
from service.db.values import EvalSetKind, TISource
from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.inference import zero_shot_predictions
from service.modelling.vlm import VisionLanguageModel
from workers.engine.accuracy import caption_accuracy, control_change, target_improvement
from workers.engine.examples import build_captioned_batch
from workers.pipeline.stored_inputs import LoadedEvalSet


@dataclass(frozen=True)
class TargetExamples:
    """Held-out images with the index of their own caption among ``captions``, and the
    captions that state the same answer (never counted as a wrong match)."""

    images: list[Image.Image]
    targets: list[int]
    captions: list[str]
    excluded: list[list[bool]]


@dataclass(frozen=True)
class EvaluationPlan:
    target: TargetExamples | None
    eval_sets: list[LoadedEvalSet]
    template: str
    # The labels the correction trains (TI on target sets is measured on their images).
    corrected_labels: frozenset[str] = frozenset()
    # The held-out examples themselves (a generative model is asked their questions).
    held_out: tuple[ImageExample, ...] = ()
    # The target sets the correction names: TI is the mean over these (those still present).
    named_target_sets: tuple[str, ...] = ()


@dataclass
class Accuracies:
    target: float | None
    sets: dict[str, float] = field(default_factory=dict)
    # Target sets: accuracy on their images of the corrected labels (sets with any).
    corrected: dict[str, float] = field(default_factory=dict)


def build_plan(
    trained: Sequence[ImageExample],
    held_out: Sequence[ImageExample],
    negative_labels: Sequence[str],
    eval_sets: list[LoadedEvalSet],
    template: str,
    named_target_sets: Sequence[str] = (),
) -> EvaluationPlan:
    """The evaluation of one job (see the module docstring)."""
    target = None
    if held_out:
        # Exactly the captions (and exclusions) the training loss uses, held-out ones added.
        batch = build_captioned_batch([*trained, *held_out], template, negative_labels)
        same_answer = batch.same_answer_pairs()
        targets = batch.targets[len(trained) :]
        target = TargetExamples(
            images=[example.image for example in held_out],
            targets=targets,
            captions=batch.captions,
            excluded=[same_answer[index] for index in targets],
        )
    taught = (example.taught_label() for example in trained)
    corrected = frozenset(label for label in taught if label is not None)
    return EvaluationPlan(
        target=target,
        eval_sets=eval_sets,
        template=template,
        corrected_labels=corrected,
        held_out=tuple(held_out),
        named_target_sets=tuple(named_target_sets),
    )


def image_fingerprint(image: Image.Image) -> str:
    """The decoded pixels' sha256 (with mode and size): two uploads of one picture match
    whatever their file encoding."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def without_trained_images(
    eval_sets: Sequence[LoadedEvalSet], trained: Sequence[ImageExample]
) -> tuple[list[LoadedEvalSet], int]:
    """The evaluation sets without the images the job trains on, and how many were left out.
    An example that is also an evaluation image (a flagged answer whose image is in a target
    set, a control image corrected) would count its own training as improvement or
    protection: TI and CC are measured on the rest."""
    taught = {image_fingerprint(example.image) for example in trained}
    kept: list[LoadedEvalSet] = []
    left_out = 0
    for eval_set in eval_sets:
        keep = [image_fingerprint(image) not in taught for image in eval_set.images]
        left_out += keep.count(False)
        questions = eval_set.questions or [None] * len(eval_set.images)
        kept.append(
            LoadedEvalSet(
                name=eval_set.name,
                kind=eval_set.kind,
                images=[i for i, k in zip(eval_set.images, keep, strict=True) if k],
                labels=[label for label, k in zip(eval_set.labels, keep, strict=True) if k],
                questions=[q for q, k in zip(questions, keep, strict=True) if k],
            )
        )
    return kept, left_out


def split_control_sets(
    eval_sets: Sequence[LoadedEvalSet],
) -> tuple[list[LoadedEvalSet], list[ImageExample]]:
    """Each control set split by position: even positions stay for measuring CC, odd ones
    become anchors training may use (deterministic, so CC is never measured on an image
    training saw). Target sets are returned whole."""
    measured: list[LoadedEvalSet] = []
    anchors: list[ImageExample] = []
    for eval_set in eval_sets:
        if eval_set.kind != EvalSetKind.CONTROL:
            measured.append(eval_set)
            continue
        measured.append(
            LoadedEvalSet(
                name=eval_set.name,
                kind=eval_set.kind,
                images=eval_set.images[0::2],
                labels=eval_set.labels[0::2],
                questions=eval_set.questions[0::2],
            )
        )
        anchors += eval_set.examples()[1::2]
    return measured, anchors


def set_hits(model: DualEncoder, eval_set: LoadedEvalSet, template: str) -> list[bool]:
    """Whether each item of one evaluation set matches its own caption best, zero-shot:
    labelled items among the set's labels (through the template), question/answer items
    among the statements of the set's answers to the same question."""
    examples = eval_set.examples()
    groups: dict[str | None, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(example.question, []).append(index)
    hits = [False] * len(examples)
    for question, indices in groups.items():
        if question is None:
            class_names = sorted({eval_set.labels[i] for i in indices})
            own = [class_names.index(eval_set.labels[i]) for i in indices]
            candidates, group_template = class_names, template
        else:
            captions = [examples[i].caption(template) for i in indices]
            candidates, group_template = sorted(set(captions)), LABEL_SLOT
            own = [candidates.index(caption) for caption in captions]
        predictions = zero_shot_predictions(
            model, [examples[i].image for i in indices], candidates, group_template
        )
        for index, prediction, right in zip(indices, predictions.tolist(), own, strict=True):
            hits[index] = prediction == right
    return hits


def _percent(hits: Sequence[bool]) -> float:
    # The same arithmetic as zero_shot_accuracy, so stored accuracies do not change.
    return float(torch.tensor(list(hits), dtype=torch.float64).mean() * 100.0)


# Generated answers are short: a label ("A tennis racket.") or yes/no.
ANSWER_MAX_TOKENS = 12


def answer_hits(generator: VisionLanguageModel, examples: Sequence[ImageExample]) -> list[bool]:
    """Whether the generated (greedy) answer to each example's question is its right answer."""
    answers = generator.answer(
        [example.image for example in examples],
        [example.question_asked() for example in examples],
        max_tokens=ANSWER_MAX_TOKENS,
    )
    return [
        answer_key(answer.text) == example.right_answer()
        for answer, example in zip(answers, examples, strict=True)
    ]


def measure(model: DualEncoder, plan: EvaluationPlan) -> Accuracies:
    """Every CLIP-space accuracy of ``plan`` with the model's current weights."""
    target = None
    if plan.target is not None:
        target = caption_accuracy(
            model,
            plan.target.images,
            plan.target.targets,
            plan.target.captions,
            plan.target.excluded,
        )
    return _with_sets(plan, target, lambda eval_set: set_hits(model, eval_set, plan.template))


def measure_answers(generator: VisionLanguageModel, plan: EvaluationPlan) -> Accuracies:
    """Every accuracy of ``plan`` by the generated answers (see the module docstring)."""
    target = _percent(answer_hits(generator, plan.held_out)) if plan.held_out else None

    return _with_sets(plan, target, lambda s: answer_hits(generator, s.examples()))


def _with_sets(
    plan: EvaluationPlan, target: float | None, hits_of: Callable[[LoadedEvalSet], list[bool]]
) -> Accuracies:
    sets: dict[str, float] = {}
    corrected: dict[str, float] = {}
    for eval_set in plan.eval_sets:
        # One pass over the set: the corrected labels' accuracy is a subset of its hits.
        hits = hits_of(eval_set)
        sets[eval_set.name] = _percent(hits)
        taught = [example.taught_label() for example in eval_set.examples()]
        on_corrected = [
            hit for hit, label in zip(hits, taught, strict=True) if label in plan.corrected_labels
        ]
        if eval_set.kind == EvalSetKind.TARGET and on_corrected:
            corrected[eval_set.name] = _percent(on_corrected)
    return Accuracies(target=target, sets=sets, corrected=corrected)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Improvement:
    """TI (and where it came from) and CC of one way of measuring, before against after;
    every target set's own TI; the target sets TI is the mean over (empty when it comes from
    held-out examples or was not measured)."""

    ti: float | None
    ti_source: TISource
    cc: float | None
    set_ti: dict[str, float] = field(default_factory=dict)
    ti_sets: list[str] = field(default_factory=list)


def set_improvement(name: str, before: Accuracies, after: Accuracies) -> float:
    """A target set's own TI: on its images of the corrected labels when it holds any (what
    the correction set out to fix), else on the whole set."""
    if name in before.corrected:
        return target_improvement(before.corrected[name], after.corrected[name])
    return target_improvement(before.sets[name], after.sets[name])


def improvement(plan: EvaluationPlan, before: Accuracies, after: Accuracies) -> Improvement:
    """TI over the target sets the correction names, else from the held-out examples, else
    over the target sets holding the corrected labels, else over every target set (None
    without any); CC over the control sets (None without any)."""
    kinds = {eval_set.name: eval_set.kind for eval_set in plan.eval_sets}
    controls = [name for name, kind in kinds.items() if kind == EvalSetKind.CONTROL]
    targets = [name for name, kind in kinds.items() if kind == EvalSetKind.TARGET]
    set_ti = {name: set_improvement(name, before, after) for name in targets}
    named = [name for name in plan.named_target_sets if name in set_ti]
    held_out = before.target is not None and after.target is not None
    if named:
        ti_sets = named
    elif held_out:
        ti_sets = []
    elif before.corrected:
        # The target sets' images of the corrected labels: what the correction set out to fix.
        ti_sets = [name for name in targets if name in before.corrected]
    else:
        ti_sets = targets
    ti: float | None
    if ti_sets:
        ti, ti_source = _mean([set_ti[name] for name in ti_sets]), TISource.TARGET_SETS
    elif before.target is not None and after.target is not None:
        ti, ti_source = target_improvement(before.target, after.target), TISource.HELD_OUT
    else:
        ti, ti_source = None, TISource.NONE
    cc = control_change(
        {name: before.sets[name] for name in controls},
        {name: after.sets[name] for name in controls},
    )
    return Improvement(ti, ti_source, cc, set_ti=set_ti, ti_sets=ti_sets)


def evaluation_records(
    plan: EvaluationPlan,
    before: Accuracies,
    after: Accuracies,
    answers: tuple[Accuracies, Accuracies] | None = None,
) -> tuple[VersionEvaluation, list[VersionSetAccuracy]]:
    """TI, CC and every set's accuracy before/after, as the version's records; ``answers``
    (before, after) adds the generated-answer figures of a generative model.

    TI is None when it cannot be measured (the ``auto`` gate then holds the version back);
    CC is None without control sets (which passes the gate).
    """
    clip = improvement(plan, before, after)
    answered = improvement(plan, *answers) if answers is not None else None
    evaluation = VersionEvaluation(
        ti=clip.ti,
        cc=clip.cc,
        ti_source=clip.ti_source,
        ti_sets=clip.ti_sets,
        held_out_examples=len(plan.target.images) if plan.target else 0,
        target_accuracy_before=before.target,
        target_accuracy_after=after.target,
        answer_ti=answered.ti if answered else None,
        answer_cc=answered.cc if answered else None,
        answer_target_before=answers[0].target if answers else None,
        answer_target_after=answers[1].target if answers else None,
    )
    set_accuracies = [
        VersionSetAccuracy(
            set_name=eval_set.name,
            kind=eval_set.kind,
            accuracy_before=before.sets[eval_set.name],
            accuracy_after=after.sets[eval_set.name],
            answer_accuracy_before=answers[0].sets[eval_set.name] if answers else None,
            answer_accuracy_after=answers[1].sets[eval_set.name] if answers else None,
            ti=clip.set_ti.get(eval_set.name),
            answer_ti=answered.set_ti.get(eval_set.name) if answered else None,
        )
        for eval_set in plan.eval_sets
    ]
    return evaluation, set_accuracies
