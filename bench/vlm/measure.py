"""Scores a VLM on the scenario's question sets: by its generated answers, and in CLIP space.

Answers: greedy generation through the serving path, scored by the service's own
``workers.pipeline.evaluation.answer_hits`` (normalised exact match). CLIP space (reference,
the same images): "What is in the picture?" is right when the concept's caption is the
nearest of all concept names' captions; a yes/no question when the statement of its right
answer is nearer than the statement of the other one (``qa_statement``: "it is an animal."
against "it is not an animal.").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bench.vlm.protocol import QUESTION_KINDS, WHAT, YES_KIND, QuestionSet, ScenarioData
from bench.vlm.results import ConceptHits, Measurement
from service.modelling.captions import DEFAULT_CAPTION_TEMPLATE, caption_for_label, qa_statement
from service.modelling.dual_encoder import DualEncoder
from service.modelling.vlm import VisionLanguageModel
from workers.basemodel.vlm.questions import NO, YES
from workers.pipeline.evaluation import answer_hits


def _empty() -> dict[str, ConceptHits]:
    return {kind: ConceptHits() for kind in QUESTION_KINDS}


def answer_accuracy(vlm: VisionLanguageModel, questions: QuestionSet) -> dict[str, ConceptHits]:
    """Right generated answers per question kind and concept."""
    hits = answer_hits(vlm, questions.examples())
    by_kind = _empty()
    for asked, hit in zip(questions.questions, hits, strict=True):
        by_kind[asked.kind].add(questions.concepts[asked.image], hit)
    return by_kind


@dataclass(frozen=True)
class Captions:
    """What CLIP-space scoring compares images with, embedded once per run (the text tower
    never changes): every concept name's caption, and the "yes" and "no" statements of every
    yes/no question asked."""

    names: torch.Tensor
    statements: torch.Tensor  # row 2q: question q's "yes" statement, 2q + 1 its "no" one
    questions: list[str]


@torch.no_grad()
def embed_captions(encoder: DualEncoder, data: ScenarioData) -> Captions:
    sets = [data.target, *data.controls.values()]
    questions = sorted({q.question for s in sets for q in s.questions if q.kind != WHAT})
    names = [caption_for_label(name, DEFAULT_CAPTION_TEMPLATE) for name in data.concept_names]
    statements = [qa_statement(question, answer) for question in questions for answer in (YES, NO)]
    return Captions(
        names=encoder.encode_texts(names).cpu(),
        statements=encoder.encode_texts(statements).cpu(),
        questions=questions,
    )


@torch.no_grad()
def clip_accuracy(
    encoder: DualEncoder, questions: QuestionSet, concept_names: list[str], captions: Captions
) -> dict[str, ConceptHits]:
    """Right CLIP-space matches per question kind and concept (see the module docstring)."""
    images = encoder.encode_images(questions.images).cpu()
    named = (images @ captions.names.T).argmax(dim=1).tolist()
    similarity = images @ captions.statements.T
    by_kind = _empty()
    for asked in questions.questions:
        concept = questions.concepts[asked.image]
        if asked.kind == WHAT:
            hit = concept_names[named[asked.image]] == concept
        else:
            column = 2 * captions.questions.index(asked.question)
            says_yes = bool(similarity[asked.image, column] > similarity[asked.image, column + 1])
            hit = says_yes == (asked.kind == YES_KIND)
        by_kind[asked.kind].add(concept, hit)
    return by_kind


def measure(vlm: VisionLanguageModel, data: ScenarioData, captions: Captions) -> Measurement:
    """Every question set of ``data`` scored both ways with the VLM's current tower."""
    started = time.perf_counter()
    sets = [data.target, *data.controls.values()]
    return Measurement(
        answers={s.name: answer_accuracy(vlm, s) for s in sets},
        clip={s.name: clip_accuracy(vlm.encoder, s, data.concept_names, captions) for s in sets},
        seconds=time.perf_counter() - started,
    )
