"""Anchors in answer space: what a VLM's anchor images may do while its tower is corrected.

The same anchor images as the CLIP-space terms (``workers/engine/anchors.py``: the anchor
halves of the control sets, never the images CC is measured on), each asked its question (a
labelled anchor: "What is in the picture?", answered with its label in the model's answer
format). Three terms, each with its weight:

- read-feature distillation: ``1 - cos`` between every patch token the language model reads
  (the tower's hidden state at ``vision_feature_layer``) and the parent version's;
- answer KL: the teacher-forced KL divergence of the language model's next-token distribution
  over the anchors' answer tokens from the parent version's (what it would have said, kept);
- answer rehearsal: the language model's loss on the anchors' own right answers.

The parent's read features and answer distributions are computed once, before training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from service.modelling.vlm import VisionLanguageModel
from workers.engine.answers import AnswerSequences, VisionReader, answer_logits, answer_sequences


@dataclass(frozen=True)
class AnswerAnchorWeights:
    read_distillation: float
    answer_kl: float
    answer_rehearsal: float

    @property
    def active(self) -> bool:
        return self.read_distillation > 0 or self.needs_language_model

    @property
    def needs_language_model(self) -> bool:
        return self.answer_kl > 0 or self.answer_rehearsal > 0


@dataclass
class AnswerAnchorSet:
    """The anchors' sequences and what the parent version read and said on them."""

    sequences: AnswerSequences
    parent_read: torch.Tensor | None  # (N, P, W) normalised per token; None without distillation
    # (N, A, vocab) log-probabilities at each anchor's answer tokens (A: the longest answer),
    # valid where ``answer_slots`` is True; None without the KL term.
    parent_log_probs: torch.Tensor | None
    answer_slots: torch.Tensor  # (N, A) bool

    def hold_rows_to(self, other: AnswerAnchorSet, rows: torch.Tensor) -> None:
        """Distil ``rows`` towards what ``other`` (the same anchors, prepared from other
        weights) read and said on them."""
        if self.parent_read is not None and other.parent_read is not None:
            self.parent_read[rows] = other.parent_read[rows]
        if self.parent_log_probs is not None and other.parent_log_probs is not None:
            self.parent_log_probs[rows] = other.parent_log_probs[rows]


@torch.no_grad()
def prepare_answer_anchors(
    vlm: VisionLanguageModel,
    reader: VisionReader,
    pixels: torch.Tensor,
    pairs: Sequence[tuple[str, str]],
    weights: AnswerAnchorWeights,
    batch_size: int = 64,
) -> AnswerAnchorSet:
    """Tokenize the anchors' questions and answers and record the parent's reading of them."""
    sequences = answer_sequences(vlm, pairs, pixels.device)
    counts = sequences.answer_mask[:, 1:].sum(dim=1)
    longest = int(counts.max())
    slots = torch.arange(longest, device=pixels.device).unsqueeze(0) < counts.unsqueeze(1)
    reads: list[torch.Tensor] = []
    log_probs: list[torch.Tensor] = []
    for start in range(0, sequences.size, batch_size):
        rows = torch.arange(start, min(start + batch_size, sequences.size), device=pixels.device)
        read = reader(pixels[rows], clip=False).read
        if weights.read_distillation > 0:
            reads.append(F.normalize(read, dim=-1))
        if weights.answer_kl > 0:
            logits, _ = answer_logits(vlm, read, sequences.rows(rows))
            padded = logits.new_zeros((rows.numel(), longest, logits.shape[-1]))
            padded[slots[rows]] = logits.log_softmax(dim=-1)
            log_probs.append(padded)
    return AnswerAnchorSet(
        sequences=sequences,
        parent_read=torch.cat(reads) if reads else None,
        parent_log_probs=torch.cat(log_probs) if log_probs else None,
        answer_slots=slots,
    )


def answer_anchor_loss(
    vlm: VisionLanguageModel,
    anchors: AnswerAnchorSet,
    weights: AnswerAnchorWeights,
    chosen: torch.Tensor,
    read: torch.Tensor,
) -> torch.Tensor:
    """The weighted answer-space terms on the anchors ``chosen``, whose read features (with
    the current weights) are ``read``."""
    total = read.new_zeros(())
    if weights.read_distillation > 0 and anchors.parent_read is not None:
        similarity = (F.normalize(read, dim=-1) * anchors.parent_read[chosen]).sum(dim=-1)
        total = total + weights.read_distillation * (1 - similarity).mean()
    if weights.needs_language_model:
        logits, targets = answer_logits(vlm, read, anchors.sequences.rows(chosen))
        log_probs = logits.log_softmax(dim=-1)
        if weights.answer_kl > 0 and anchors.parent_log_probs is not None:
            parent = anchors.parent_log_probs[chosen][anchors.answer_slots[chosen]]
            kl = F.kl_div(log_probs, parent, log_target=True, reduction="batchmean")
            total = total + weights.answer_kl * kl
        if weights.answer_rehearsal > 0:
            total = total + weights.answer_rehearsal * F.nll_loss(log_probs, targets)
    return total
