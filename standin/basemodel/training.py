"""LiT-style training of the image tower against the frozen pre-trained text tower.

Trainable: the ViT, ``visual_projection``, ``text_projection`` and ``logit_scale``. The text
tower never changes, so the pooled MiniLM output of every (template, class) caption is
computed once; each step projects them, so ``text_projection`` still learns. Every image is
scored against the captions of all classes (emoji concepts, clothes and textures together).

Each batch mixes fresh augmented renderings of the emoji artwork (both training styles) with
images from the fixed train splits of Fashion-MNIST and the textures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import VisionTextDualEncoderModel

from service.modelling.preprocess import ImagePreprocessor
from standin.basemodel.recipe import CAPTION_TEMPLATES, KEYWORD_TEMPLATE, TrainingRecipe
from standin.datasets import LabelledImages
from standin.datasets.emoji import augmented_batch
from workers.engine.loss import class_level_contrastive_loss
from workers.engine.trainer import warmup_cosine

_MAX_LOGIT_SCALE = math.log(100.0)


@dataclass
class PixelPool:
    """Fixed training images as pixels, their index in the joint class list, batch weights."""

    pixels: torch.Tensor  # (N, 3, H, W), normalised
    targets: torch.Tensor  # (N,)
    weights: torch.Tensor  # (N,) sampling weight per image


@dataclass
class ArtworkPool:
    """Premultiplied RGBA drawings ``(N, 4, 64, 64)`` and each one's class index."""

    artwork: torch.Tensor
    targets: torch.Tensor


@dataclass
class TrainingSources:
    """Everything one training run draws its batches from, and the joint class list."""

    artwork: ArtworkPool
    pixels: PixelPool
    pixel_share: float  # share of each batch taken from ``pixels``
    class_names: list[str]
    keywords: list[tuple[str, ...]]  # per class; empty for classes without keywords


def build_pixel_pool(
    datasets: Sequence[LabelledImages],
    shares: Sequence[float],
    preprocessor: ImagePreprocessor,
    class_offset: int,
) -> PixelPool:
    """Preprocess once with the serving preprocessor; classes follow each other from offset."""
    pixels: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    offset = class_offset
    for dataset, share in zip(datasets, shares, strict=True):
        pixels.append(preprocessor(dataset.images))
        targets.append(torch.tensor(dataset.labels) + offset)
        # Each dataset gets ``share`` of the pixel part of a batch whatever its size.
        weights.append(torch.full((len(dataset),), share / len(dataset), dtype=torch.float64))
        offset += len(dataset.class_names)
    return PixelPool(
        pixels=torch.cat(pixels), targets=torch.cat(targets), weights=torch.cat(weights)
    )


def caption_bank(
    class_names: Sequence[str], keywords: Sequence[tuple[str, ...]]
) -> list[list[str]]:
    """Captions per template (rows) and class (columns), the keyword row last."""
    rows = [[template.format(name) for name in class_names] for template in CAPTION_TEMPLATES]
    rows.append(
        [
            KEYWORD_TEMPLATE.format(name, ", ".join(words[:4])) if words else name
            for name, words in zip(class_names, keywords, strict=True)
        ]
    )
    return rows


@torch.no_grad()
def pooled_caption_features(
    model: VisionTextDualEncoderModel, tokenizer: object, captions: list[list[str]]
) -> torch.Tensor:
    """Frozen MiniLM pooled outputs, shape ``(templates, classes, text_hidden)``."""
    rows = []
    for row in captions:
        tokens = tokenizer(  # type: ignore[operator]
            row, padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        rows.append(model.text_model(**tokens).pooler_output)
    return torch.stack(rows)


def common_direction_remover(caption_features: torch.Tensor) -> torch.Tensor:
    """``I - u u^T`` for ``u`` the unit mean of every pooled caption feature.

    MiniLM's pooled outputs of short captions share one large common direction (mean cosine
    about 0.6 between different concepts), which a freshly initialised projection maps to
    nearly identical caption embeddings: the contrastive signal starts tiny. Removing that
    direction before the projection (as centring does) sped learning up several times in
    a measurement here; unlike subtracting a mean, it stays a linear map, so it is folded into
    ``text_projection`` after training and the saved model needs no extra layer.
    """
    direction = F.normalize(caption_features.reshape(-1, caption_features.shape[-1]).mean(0), dim=0)
    return torch.eye(len(direction)) - torch.outer(direction, direction)


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Image tower, both projections and the temperature; freezes everything else."""
    trainable_prefixes = ("vision_model.", "visual_projection.", "text_projection.", "logit_scale")
    chosen = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(trainable_prefixes))
        if parameter.requires_grad:
            chosen.append(parameter)
    return chosen


def emoji_batch(
    pool: ArtworkPool,
    count: int,
    preprocessor: ImagePreprocessor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` fresh renderings at the model's resolution, normalised, with targets."""
    chosen = torch.randint(len(pool.targets), (count,), generator=generator)
    images = augmented_batch(pool.artwork[chosen], generator)
    size = (preprocessor.height, preprocessor.width)
    # Antialiased bicubic, like the PIL resize that serving applies to a 64 px upload.
    images = F.interpolate(images, size=size, mode="bicubic", antialias=True).clamp(0.0, 1.0)
    return preprocessor.from_unit_range(images), pool.targets[chosen]


def train_image_tower(
    model: VisionTextDualEncoderModel,
    tokenizer: object,
    data: TrainingSources,
    preprocessor: ImagePreprocessor,
    recipe: TrainingRecipe,
    seed: int,
    progress: bool = True,
) -> list[float]:
    """Run ``recipe.steps`` AdamW steps; returns the loss of every step."""
    generator = torch.Generator().manual_seed(seed)
    caption_features = pooled_caption_features(
        model, tokenizer, caption_bank(data.class_names, data.keywords)
    )
    remover = common_direction_remover(caption_features)
    caption_features = caption_features @ remover
    with torch.no_grad():
        model.logit_scale.fill_(math.log(recipe.initial_logit_scale))
    parameters = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        parameters, lr=recipe.learning_rate, weight_decay=recipe.weight_decay
    )
    warmup_steps = int(recipe.warmup_fraction * recipe.steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, recipe.steps, warmup_steps)
    )
    pixel_count = round(recipe.batch_size * data.pixel_share)
    model.train()
    losses: list[float] = []
    bar = tqdm(range(recipe.steps), desc="training image tower", disable=not progress)
    for _ in bar:
        emoji_pixels, emoji_targets = emoji_batch(
            data.artwork, recipe.batch_size - pixel_count, preprocessor, generator
        )
        chosen = torch.multinomial(data.pixels.weights, pixel_count, True, generator=generator)
        pixels = torch.cat([emoji_pixels, data.pixels.pixels[chosen]])
        targets = torch.cat([emoji_targets, data.pixels.targets[chosen]])
        # Clothes, textures and most drawings read the same mirrored.
        flip = torch.rand(len(targets), generator=generator) < 0.5
        pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
        template = int(torch.randint(len(caption_features), (1,), generator=generator))
        captions = model.text_projection(caption_features[template])
        captions = torch.nn.functional.normalize(captions, dim=-1)
        image_features = model.get_image_features(pixel_values=pixels).pooler_output
        loss = class_level_contrastive_loss(
            image_features, captions, targets, model.logit_scale.exp()
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
    with torch.no_grad():
        # Served text features are text_projection(pooled): fold the removal in.
        model.text_projection.weight.copy_(model.text_projection.weight @ remover)
    return losses
