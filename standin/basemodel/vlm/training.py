"""Trains the stand-in VLM: projector and language model, the base image tower frozen.

The skeleton is ``build_llava`` around the committed base model's image tower, with a byte-level
BPE tokenizer trained on every prompt and answer. Training is teacher forcing on the templated
questions: each step draws a batch of examples (an image, whose tower features were computed
once, see ``features``, a question and its answer: ``sequences``) and takes the cross-entropy of
the answer and end-of-sequence tokens only. The image features enter the language model exactly
as in ``LlavaModel.forward`` (the projector's output scattered over the ``<image>`` token
positions), so the trained model answers through the serving path unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from service.modelling.loading import load_dual_encoder
from service.modelling.preprocess import ImagePreprocessor
from standin.basemodel.vlm.recipe import VlmRecipe
from standin.basemodel.vlm.sequences import (
    IGNORED,
    ExampleSampler,
    QuestionBank,
    TokenBatch,
    tokenizer_texts,
)
from standin.llava_factory import build_llava, build_tokenizer
from workers.engine.trainer import warmup_cosine

VISION_TOWER_PREFIX = "model.vision_tower."


@dataclass
class VlmSkeleton:
    """A LLaVA model with the base image tower and a random projector and language model."""

    model: Any  # LlavaForConditionalGeneration
    tokenizer: Any  # PreTrainedTokenizerFast
    preprocessor: ImagePreprocessor  # the base model's, so the tower sees what it was built on


def image_token_count(vision_config: Any, select_strategy: str = "default") -> int:
    """How many ``<image>`` tokens one image takes (patches, plus the class token if "full")."""
    patches = (vision_config.image_size // vision_config.patch_size) ** 2
    return patches + (1 if select_strategy == "full" else 0)


def build_skeleton(base_dir: Path, recipe: VlmRecipe, seed: int) -> VlmSkeleton:
    """The untrained VLM around the image tower of the base dual encoder in ``base_dir``."""
    dual = load_dual_encoder(base_dir)
    tower = dual.model.vision_model
    tokenizer = build_tokenizer(
        tokenizer_texts(image_token_count(tower.config)), vocab_size=recipe.vocab_size
    )
    model = build_llava(
        tower.config, tower.state_dict(), tokenizer, language=recipe.language, seed=seed
    )
    return VlmSkeleton(model=model, tokenizer=tokenizer, preprocessor=dual.preprocessor)


def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:
    """Projector, language model and ``lm_head``; freezes the vision tower."""
    chosen = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not name.startswith(VISION_TOWER_PREFIX))
        if parameter.requires_grad:
            chosen.append(parameter)
    return chosen


def language_hidden_states(
    model: Any, tower_features: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The language model's last hidden states with the projected features at ``<image>``."""
    projected = model.model.multi_modal_projector(tower_features)
    embeds = model.get_input_embeddings()(input_ids)
    image_positions = (input_ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds)
    embeds = embeds.masked_scatter(image_positions, projected.to(embeds.dtype))
    outputs = model.model.language_model(inputs_embeds=embeds, attention_mask=mask)
    hidden: torch.Tensor = outputs.last_hidden_state
    return hidden


def answer_loss(model: Any, tower_features: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
    """Mean cross-entropy of the answer and end-of-sequence tokens (teacher forcing)."""
    hidden = language_hidden_states(model, tower_features, batch.input_ids, batch.attention_mask)
    targets = batch.labels[:, 1:]
    predicted = targets != IGNORED
    # Only the positions that predict an answer token go through lm_head.
    logits = model.lm_head(hidden[:, :-1][predicted])
    return F.cross_entropy(logits.float(), targets[predicted])


def _parameter_groups(parameters: list[torch.nn.Parameter], weight_decay: float) -> list[dict]:
    # Matrices decay; norms and biases do not (as usual for transformers).
    return [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]


def train_language_model(
    model: Any,
    features: torch.Tensor,
    concepts: torch.Tensor,
    bank: QuestionBank,
    recipe: VlmRecipe,
    seed: int,
    progress: bool = True,
) -> list[float]:
    """Run ``recipe.steps`` AdamW steps on the projector and language model; returns the loss
    of every step. ``features[i]`` are the tower features of an image of concept
    ``concepts[i]``."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    parameters = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        _parameter_groups(parameters, recipe.weight_decay), lr=recipe.learning_rate
    )
    warmup_steps = int(recipe.warmup_fraction * recipe.steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, recipe.steps, warmup_steps)
    )
    sampler = ExampleSampler(bank, concepts, recipe.what_share)
    model.train()
    losses: list[float] = []
    bar = tqdm(
        range(recipe.steps), desc="training projector + language model", disable=not progress
    )
    for _ in bar:
        chosen, batch = sampler.sample(recipe.batch_size, generator)
        loss = answer_loss(model, features[chosen].to(device), batch.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, recipe.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return losses
