"""LiT-style training of the image tower against the frozen pre-trained text tower.

Trainable: the ViT, ``visual_projection``, ``text_projection`` and ``logit_scale``. The text
tower never changes, so the pooled MiniLM output of every (template, class) caption is
computed once; each step projects them, so ``text_projection`` still learns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm
from transformers import VisionTextDualEncoderModel

from service.modelling.preprocess import ImagePreprocessor
from workers.basemodel.recipe import CAPTION_TEMPLATES, TrainingRecipe
from workers.datasets import LabelledImages
from workers.engine.loss import class_level_contrastive_loss
from workers.engine.trainer import warmup_cosine

_MAX_LOGIT_SCALE = math.log(100.0)


@dataclass
class TrainingPool:
    """Every training image as pixels, its index in the joint class list, and batch weights."""

    pixels: torch.Tensor  # (N, 3, H, W)
    targets: torch.Tensor  # (N,)
    weights: torch.Tensor  # (N,) sampling weight per image
    class_names: list[str]


def build_pool(
    datasets: Sequence[LabelledImages], shares: Sequence[float], preprocessor: ImagePreprocessor
) -> TrainingPool:
    """Preprocess once with the serving preprocessor; classes of all datasets share one list."""
    pixels: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    class_names: list[str] = []
    for dataset, share in zip(datasets, shares, strict=True):
        offset = len(class_names)
        class_names += dataset.class_names
        pixels.append(preprocessor(dataset.images))
        targets.append(torch.tensor(dataset.labels) + offset)
        # Each dataset gets ``share`` of every batch whatever its size.
        weights.append(torch.full((len(dataset),), share / len(dataset), dtype=torch.float64))
    return TrainingPool(
        pixels=torch.cat(pixels),
        targets=torch.cat(targets),
        weights=torch.cat(weights),
        class_names=class_names,
    )


@torch.no_grad()
def pooled_caption_features(
    model: VisionTextDualEncoderModel, tokenizer: object, class_names: Sequence[str]
) -> torch.Tensor:
    """Frozen MiniLM pooled outputs, shape ``(templates, classes, text_hidden)``."""
    rows = []
    for template in CAPTION_TEMPLATES:
        tokens = tokenizer(  # type: ignore[operator]
            [template.format(name) for name in class_names],
            padding=True,
            truncation=True,
            max_length=64,
            return_tensors="pt",
        )
        rows.append(model.text_model(**tokens).pooler_output)
    return torch.stack(rows)


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Image tower, both projections and the temperature; freezes everything else."""
    trainable_prefixes = ("vision_model.", "visual_projection.", "text_projection.", "logit_scale")
    chosen = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(trainable_prefixes))
        if parameter.requires_grad:
            chosen.append(parameter)
    return chosen


def train_image_tower(
    model: VisionTextDualEncoderModel,
    tokenizer: object,
    pool: TrainingPool,
    recipe: TrainingRecipe,
    seed: int,
    progress: bool = True,
) -> list[float]:
    """Run ``recipe.steps`` AdamW steps; returns the loss of every step."""
    generator = torch.Generator().manual_seed(seed)
    caption_features = pooled_caption_features(model, tokenizer, pool.class_names)
    parameters = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        parameters, lr=recipe.learning_rate, weight_decay=recipe.weight_decay
    )
    warmup_steps = int(recipe.warmup_fraction * recipe.steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, recipe.steps, warmup_steps)
    )
    model.train()
    losses: list[float] = []
    bar = tqdm(range(recipe.steps), desc="training image tower", disable=not progress)
    for _ in bar:
        chosen = torch.multinomial(pool.weights, recipe.batch_size, True, generator=generator)
        pixels = pool.pixels[chosen]
        # Clothes and textures read the same mirrored: a free doubling of the data.
        flip = torch.rand(len(chosen), generator=generator) < 0.5
        pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
        template = int(torch.randint(len(CAPTION_TEMPLATES), (1,), generator=generator))
        captions = model.text_projection(caption_features[template])
        captions = torch.nn.functional.normalize(captions, dim=-1)
        image_features = model.get_image_features(pixel_values=pixels).pooler_output
        loss = class_level_contrastive_loss(
            image_features, captions, pool.targets[chosen], model.logit_scale.exp()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, recipe.max_grad_norm)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, _MAX_LOGIT_SCALE)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return losses
