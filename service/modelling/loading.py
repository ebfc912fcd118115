"""Loads a dual encoder from a local Hugging Face directory (never from a hub name).

Weights are read from safetensors only: ``use_safetensors=True`` makes transformers refuse a
pickled ``pytorch_model.bin``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.db.values import DUAL_ENCODER_FAMILIES, ModelFamily
from service.modelling.dual_encoder import DualEncoder
from service.modelling.preprocess import ImagePreprocessor


class ModelLoadError(Exception):
    """The directory does not hold a loadable, supported dual encoder."""


def detect_family(path: Path) -> ModelFamily:
    """The dual-encoder family of a checkpoint directory (its config's ``model_type``)."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        raise ModelLoadError(f"{path} has no config.json: not a Hugging Face model directory")
    model_type = json.loads(config_path.read_text()).get("model_type", "")
    if model_type not in DUAL_ENCODER_FAMILIES:
        supported = ", ".join(family.value for family in DUAL_ENCODER_FAMILIES)
        raise ModelLoadError(f"model type {model_type!r} is not supported; expected {supported}")
    return ModelFamily(model_type)


def load_dual_encoder(path: Path | str, device: str = "cpu") -> DualEncoder:
    """Load model, tokenizer and preprocessor from ``path`` onto ``device``, in eval mode."""
    from transformers import (
        AutoTokenizer,
        CLIPModel,
        SiglipModel,
        VisionTextDualEncoderModel,
    )

    path = Path(path)
    family = detect_family(path)
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(f"{path} holds no .safetensors weights (pickled weights are refused)")
    model_class: Any = {
        ModelFamily.CLIP: CLIPModel,
        ModelFamily.VISION_TEXT_DUAL_ENCODER: VisionTextDualEncoderModel,
        ModelFamily.SIGLIP: SiglipModel,
    }[family]
    model = model_class.from_pretrained(path, use_safetensors=True, local_files_only=True)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    vision_config = model.config.vision_config
    preprocessor = ImagePreprocessor.from_directory(path, default_size=vision_config.image_size)
    text_config = model.config.text_config
    max_length = int(getattr(text_config, "max_position_embeddings", 77))
    model.to(device)
    return DualEncoder(
        model=model,
        tokenizer=tokenizer,
        preprocessor=preprocessor,
        family=family,
        num_heads=int(vision_config.num_attention_heads),
        max_text_length=(
            min(max_length, 77) if family != ModelFamily.VISION_TEXT_DUAL_ENCODER else 64
        ),
    )
