"""What the API needs to know of a model's image encoder without loading it (no torch).

Hyperparameters derived from the architecture (LoRSU's heads per layer, say) are resolved at
submission from these facts, read from the checkpoint's ``config.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class ArchitectureError(ValueError):
    """The directory's config.json does not describe a CLIP-style vision tower."""


@dataclass(frozen=True)
class VisionArchitecture:
    """The shape of a ViT image encoder, as far as update methods care."""

    num_layers: int
    num_heads: int
    hidden_size: int


def read_vision_architecture(model_directory: Path | str) -> VisionArchitecture:
    """The image encoder's shape from ``config.json`` (``vision_config`` of every family)."""
    config_path = Path(model_directory) / "config.json"
    try:
        vision = json.loads(config_path.read_text())["vision_config"]
        return VisionArchitecture(
            num_layers=int(vision["num_hidden_layers"]),
            num_heads=int(vision["num_attention_heads"]),
            hidden_size=int(vision["hidden_size"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ArchitectureError(
            f"no vision tower described in the model's config: {error}"
        ) from error
