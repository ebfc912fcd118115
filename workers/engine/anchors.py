"""Anchored updates: what the model's control images may do during training.

Anchors are labelled control images that training may use (the worker splits each control
set into an anchor part and an evaluation part, so CC is never measured on an anchor). Two
terms, each with its weight as a hyperparameter:

- feature distillation: ``1 - cos(f(x), f_parent(x))`` averaged over an anchor batch keeps
  the anchors' embeddings near the parent version's;
- rehearsal: the class-level contrastive loss of the anchors against their own label
  captions, so the update keeps classifying them right.

``drift`` (the same distillation distance over every anchor, without gradients) is what the
budgeted stop compares with its budget. A VLM's anchors also carry answer-space terms
(``workers/engine/answer_anchors.py``), computed from the same tower pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from catalogue.captions import caption_for_label
from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.vlm import VisionLanguageModel
from workers.engine.answer_anchors import AnswerAnchorSet, AnswerAnchorWeights, answer_anchor_loss
from workers.engine.answers import VisionReader
from workers.engine.errors import InvalidExample
from workers.engine.loss import class_level_contrastive_loss


@dataclass(frozen=True)
class AnswerAnchors:
    """A VLM's answer-space anchor terms: the model, its tower reader, the prepared anchors."""

    vlm: VisionLanguageModel
    reader: VisionReader
    anchors: AnswerAnchorSet
    weights: AnswerAnchorWeights


@dataclass
class AnchorSet:
    """Anchor pixels, their label targets and caption embeddings, and the parent's embeddings."""

    pixels: torch.Tensor
    targets: torch.Tensor
    caption_embeddings: torch.Tensor
    parent_embeddings: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.targets.numel())

    def hold_rows_to(self, other: AnchorSet, rows: torch.Tensor) -> None:
        """Distil ``rows`` towards ``other``'s embeddings of them (the same anchors, prepared
        from other weights)."""
        self.parent_embeddings[rows] = other.parent_embeddings[rows]


@torch.no_grad()
def prepare_anchors(
    model: DualEncoder, anchors: Sequence[ImageExample], template: str, batch_size: int = 64
) -> AnchorSet:
    """Encode the anchors once with the parent weights (before any update)."""
    if any(anchor.label is None and anchor.answer is None for anchor in anchors):
        raise InvalidExample("every anchor needs a label or a question and its answer")
    classes = dict(_anchor_class(anchor, template) for anchor in anchors)
    keys = [_anchor_class(anchor, template)[0] for anchor in anchors]
    ordered = sorted(classes)
    pixels = model.pixel_values([anchor.image for anchor in anchors])
    parent = torch.cat(
        [
            F.normalize(model.image_features(pixels[start : start + batch_size]), dim=-1)
            for start in range(0, pixels.shape[0], batch_size)
        ]
    )
    return AnchorSet(
        pixels=pixels,
        targets=torch.tensor([ordered.index(key) for key in keys], device=pixels.device),
        caption_embeddings=model.encode_texts([classes[key] for key in ordered]),
        parent_embeddings=parent,
    )


def _anchor_class(anchor: ImageExample, template: str) -> tuple[str, str]:
    """``(class key, caption)`` of an anchor: a label is its own class (its label caption); a
    question/answer anchor joins the class of the label it names ("What is in the picture?" /
    "A cat."), or else is the class of its statement ("it is an animal.")."""
    if anchor.label is not None:
        return anchor.label, caption_for_label(anchor.label, template)
    taught = anchor.taught_label()
    if taught is not None:
        return taught, caption_for_label(taught, template)
    caption = anchor.caption(template)
    return caption, caption


class AnchorTerm:
    """The anchor part of the training loss, and the anchors' drift from the parent."""

    def __init__(
        self,
        model: DualEncoder,
        anchors: AnchorSet,
        distillation_weight: float,
        rehearsal_weight: float,
        batch_size: int,
        image_features: Callable[[torch.Tensor], torch.Tensor] | None = None,
        answers: AnswerAnchors | None = None,
    ) -> None:
        self.model = model
        # How the loss computes the anchors' features (the update's autocast, if any).
        self.image_features = image_features or model.image_features
        self.anchors = anchors
        self.distillation_weight = distillation_weight
        self.rehearsal_weight = rehearsal_weight
        self.batch_size = batch_size
        self.answers = answers if answers is not None and answers.weights.active else None

    @property
    def clip_active(self) -> bool:
        return self.distillation_weight > 0 or self.rehearsal_weight > 0

    @property
    def active(self) -> bool:
        return self.anchors.size > 0 and (self.clip_active or self.answers is not None)

    def loss(self, generator: torch.Generator) -> torch.Tensor:
        """The weighted anchor terms on a random anchor batch (seeded)."""
        chosen = torch.randperm(self.anchors.size, generator=generator)[: self.batch_size]
        chosen = chosen.to(self.anchors.pixels.device)
        pixels = self.anchors.pixels[chosen]
        if self.answers is None:
            features = self.image_features(pixels)
            total = features.new_zeros(())
        else:
            # One tower pass for both spaces.
            outputs = self.answers.reader(pixels, clip=self.clip_active)
            total = answer_anchor_loss(
                self.answers.vlm, self.answers.anchors, self.answers.weights, chosen, outputs.read
            )
            if outputs.clip is None:
                return total
            features = outputs.clip
        if self.distillation_weight > 0:
            similarity = F.normalize(features, dim=-1) * self.anchors.parent_embeddings[chosen]
            total = total + self.distillation_weight * (1 - similarity.sum(dim=-1)).mean()
        if self.rehearsal_weight > 0:
            total = total + self.rehearsal_weight * class_level_contrastive_loss(
                features,
                self.anchors.caption_embeddings,
                self.anchors.targets[chosen],
                self.model.logit_scale,
            )
        return total

    @torch.no_grad()
    def drift(self, batch_size: int = 64) -> float:
        """Mean ``1 - cos`` between the anchors' embeddings now and the parent's."""
        pixels = self.anchors.pixels
        total = 0.0
        for start in range(0, pixels.shape[0], batch_size):
            now = F.normalize(self.model.image_features(pixels[start : start + batch_size]), dim=-1)
            parent = self.anchors.parent_embeddings[start : start + batch_size]
            total += float((1 - (now * parent).sum(dim=-1)).sum())
        return total / max(1, pixels.shape[0])
