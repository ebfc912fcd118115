"""The answer objective: a VLM's own loss on right answers, back-propagated into its tower.

One pass through the shared vision tower gives both what the CLIP loss trains (the pooled,
projected embedding) and what the language model reads (the hidden state at the model's
``vision_feature_layer``, patch tokens only under LLaVA's "default" selection). The read
features go through the frozen projector into the image-token positions of the prompt, the
frozen language model runs teacher-forced over prompt + answer, and the loss is the
cross-entropy of the answer's tokens (end of sequence included). Only the tower's trainable
state gets gradients; blocks after the read layer get none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from service.modelling.dual_encoder import DualEncoder
from service.modelling.vlm import VisionLanguageModel
from workers.engine.errors import InvalidExample


@dataclass(frozen=True)
class AnswerSequences:
    """Prompt + answer token ids per example, right-padded, and which tokens are predicted."""

    input_ids: torch.Tensor  # (N, T)
    attention_mask: torch.Tensor  # (N, T)
    # (N, T): True where the token is part of the answer (predicted from the one before).
    answer_mask: torch.Tensor
    lengths: torch.Tensor  # (N,) tokens per sequence

    @property
    def size(self) -> int:
        return int(self.lengths.numel())

    def rows(self, rows: torch.Tensor) -> AnswerSequences:
        """The sequences of ``rows``, cut to the longest of them."""
        lengths = self.lengths[rows]
        width = int(lengths.max())
        return AnswerSequences(
            self.input_ids[rows, :width],
            self.attention_mask[rows, :width],
            self.answer_mask[rows, :width],
            lengths,
        )

    def answer_tokens(self) -> int:
        return int(self.answer_mask.sum())


def answer_sequences(
    vlm: VisionLanguageModel, pairs: Sequence[tuple[str, str]], device: torch.device
) -> AnswerSequences:
    """The (question, answer) pairs tokenized as the VLM reads them; ``InvalidExample`` when
    one does not fit the language model's context."""
    sequences = [vlm.answer_sequence(question, answer) for question, answer in pairs]
    context = vlm.context_length
    for position, (prompt, answer) in enumerate(sequences):
        if len(prompt) + len(answer) > context:
            raise InvalidExample(
                f"example {position}: its question and answer take "
                f"{len(prompt) + len(answer)} tokens, more than the model's context of {context}"
            )
    width = max(len(prompt) + len(answer) for prompt, answer in sequences)
    count = len(sequences)
    input_ids = torch.full((count, width), vlm.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((count, width), dtype=torch.long)
    answer_mask = torch.zeros((count, width), dtype=torch.bool)
    for row, (prompt, answer) in enumerate(sequences):
        end = len(prompt) + len(answer)
        input_ids[row, :end] = torch.tensor(prompt + answer)
        attention_mask[row, :end] = 1
        answer_mask[row, len(prompt) : end] = True
    lengths = attention_mask.sum(dim=1)
    return AnswerSequences(
        input_ids.to(device), attention_mask.to(device), answer_mask.to(device), lengths.to(device)
    )


@dataclass(frozen=True)
class TowerOutputs:
    clip: torch.Tensor | None  # (B, D) projected CLIP features (unnormalised), if asked for
    read: torch.Tensor  # (B, P, W) the features the language model reads


class VisionReader:
    """One pass through the vision tower the VLM and its CLIP pair share (see the module
    docstring), in the update's autocast; outputs in float32."""

    def __init__(
        self,
        vlm: VisionLanguageModel,
        encoder: DualEncoder,
        autocast: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        config = vlm.model.config
        self.vlm = vlm
        self.encoder = encoder
        self.autocast = autocast
        self.layer = config.vision_feature_layer
        self.skip = 1 if config.vision_feature_select_strategy == "default" else 0

    def __call__(self, pixels: torch.Tensor, clip: bool) -> TowerOutputs:
        with self.autocast():
            outputs = self.vlm.model.model.vision_tower(
                pixel_values=pixels, output_hidden_states=True
            )
            layers = self.layer if isinstance(self.layer, list) else [self.layer]
            read = torch.cat(
                [outputs.hidden_states[layer][:, self.skip :] for layer in layers], dim=-1
            )
            features = self.encoder.model.visual_projection(outputs.pooler_output) if clip else None
        return TowerOutputs(
            clip=features.float() if features is not None else None, read=read.float()
        )


def answer_logits(
    vlm: VisionLanguageModel, read: torch.Tensor, sequences: AnswerSequences
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced logits (float32) at every answer token, row by row in order, and the
    tokens they should predict: ``(M, vocab)`` and ``(M,)``."""
    model = vlm.model
    image_features = model.model.multi_modal_projector(read)
    embeddings = model.get_input_embeddings()(sequences.input_ids)
    image_positions = (sequences.input_ids == vlm.image_token_id).unsqueeze(-1)
    embeddings = embeddings.masked_scatter(
        image_positions, image_features.to(embeddings.dtype).reshape(-1)
    )
    hidden = model.model.language_model(
        inputs_embeds=embeddings, attention_mask=sequences.attention_mask
    ).last_hidden_state
    # Position t predicts token t + 1.
    predicted = sequences.answer_mask[:, 1:]
    logits = model.lm_head(hidden[:, :-1][predicted]).float()
    return logits, sequences.input_ids[:, 1:][predicted]


def answer_loss(
    vlm: VisionLanguageModel, read: torch.Tensor, sequences: AnswerSequences
) -> torch.Tensor:
    """Mean cross-entropy of the answers' tokens."""
    logits, targets = answer_logits(vlm, read, sequences)
    return F.cross_entropy(logits, targets)
