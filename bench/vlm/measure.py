"""Scores a VLM on the scenario's question sets: by its generated answers, and in CLIP space.

Answers: greedy generation through the serving path, scored by the service's own
``workers.pipeline.evaluation.answer_hits`` (normalised exact match). CLIP space (reference,
the same images): "What is in the picture?" is right when the concept's caption is the
nearest of all concept names' captions; a yes/no question when the statement of its right
answer is nearer than the statement of the other one (``qa_statement``: "it is an animal."
against "it is not an animal."). Also how far the images' features moved since before any
update: the CLIP embedding the loss trains, and the tower features the language model reads.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from bench.vlm.protocol import QUESTION_KINDS, WHAT, YES_KIND, QuestionSet, ScenarioData
from bench.vlm.results import (
    CLIP_EMBEDDING,
    CONTROLS,
    CORRECTED,
    DRIFT_KINDS,
    LANGUAGE_MODEL_INPUT,
    NEVER_CORRECTED,
    ConceptHits,
    Measurement,
)
from catalogue.captions import (
    captions_for_labels,
    qa_statement,
)
from service.modelling.dual_encoder import DualEncoder
from service.modelling.vlm import VisionLanguageModel
from standin.basemodel.vlm.questions import NO, YES
from workers.engine.answers import VisionReader
from workers.pipeline.evaluation import answer_hits

_BATCH = 64


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
    names = captions_for_labels(data.concept_names)
    statements = [qa_statement(question, answer) for question in questions for answer in (YES, NO)]
    return Captions(
        names=encoder.encode_texts(names).cpu(),
        statements=encoder.encode_texts(statements).cpu(),
        questions=questions,
    )


@dataclass(frozen=True)
class TowerFeatures:
    """Per image: its CLIP embedding (normalised; what the loss trains) and the features the
    language model reads (the tower's hidden state at the VLM's feature layer, patch tokens
    only as LLaVA's "default" strategy takes them, before the projector)."""

    clip: torch.Tensor  # (images, dim)
    language: torch.Tensor  # (images, tokens, width)


@torch.no_grad()
def tower_features(vlm: VisionLanguageModel, images: list[Image.Image]) -> TowerFeatures:
    # The update engine's reader: one tower pass gives both (workers/engine/answers.py).
    reader = VisionReader(vlm, vlm.encoder)
    clip, language = [], []
    for start in range(0, len(images), _BATCH):
        outputs = reader(vlm.encoder.pixel_values(images[start : start + _BATCH]), clip=True)
        assert outputs.clip is not None
        clip.append(F.normalize(outputs.clip, dim=-1).cpu())
        language.append(outputs.read.cpu())
    return TowerFeatures(torch.cat(clip), torch.cat(language))


def drift(before: TowerFeatures, after: TowerFeatures, rows: list[int]) -> dict[str, float]:
    """Mean 1 - cos from ``before`` to ``after`` over ``rows`` (the language-model input: over
    their patch tokens too), per feature kind."""
    index = torch.tensor(rows)
    clip = 1.0 - (before.clip[index] * after.clip[index]).sum(dim=-1)
    language = 1.0 - F.cosine_similarity(before.language[index], after.language[index], dim=-1)
    return {CLIP_EMBEDDING: float(clip.mean()), LANGUAGE_MODEL_INPUT: float(language.mean())}


def clip_accuracy(
    embeddings: torch.Tensor, questions: QuestionSet, concept_names: list[str], captions: Captions
) -> dict[str, ConceptHits]:
    """Right CLIP-space matches per question kind and concept (see the module docstring),
    from the set's image ``embeddings``."""
    named = (embeddings @ captions.names.T).argmax(dim=1).tolist()
    similarity = embeddings @ captions.statements.T
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


def _group_rows(data: ScenarioData) -> dict[str, dict[str, list[int]]]:
    """group -> set name -> the rows (images) of that group in the set."""
    corrected = {data.concept_names[c] for session in data.sessions for c in session}
    transfer = set(data.transfer)
    target = data.target
    return {
        CORRECTED: {target.name: [i for i, c in enumerate(target.concepts) if c in corrected]},
        NEVER_CORRECTED: {target.name: [i for i, c in enumerate(target.concepts) if c in transfer]},
        CONTROLS: {name: list(range(len(s.images))) for name, s in data.controls.items()},
    }


def measure(
    vlm: VisionLanguageModel,
    data: ScenarioData,
    captions: Captions,
    base: dict[str, TowerFeatures] | None = None,
) -> tuple[Measurement, dict[str, TowerFeatures]]:
    """Every question set of ``data`` scored both ways with the VLM's current tower, with the
    features' drift from ``base`` (the features before any update; none when None), and the
    current features."""
    started = time.perf_counter()
    sets = [data.target, *data.controls.values()]
    features = {s.name: tower_features(vlm, s.images) for s in sets}
    drifts: dict[str, dict[str, float]] = {}
    if base is not None:
        for group, rows_of in _group_rows(data).items():
            if not any(rows_of.values()):  # no never-corrected concepts (validation split)
                continue
            # Controls: the mean over the control sets, as their accuracy is.
            per_set = [drift(base[name], features[name], rows) for name, rows in rows_of.items()]
            drifts[group] = {k: statistics.fmean(d[k] for d in per_set) for k in DRIFT_KINDS}
    measurement = Measurement(
        answers={s.name: answer_accuracy(vlm, s) for s in sets},
        clip={
            s.name: clip_accuracy(features[s.name].clip, s, data.concept_names, captions)
            for s in sets
        },
        seconds=time.perf_counter() - started,
        drift=drifts,
    )
    return measurement, features
