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
    # For a generative (LLaVA-family) model: the index into the tower's hidden states that its
    # language model reads (``vision_feature_layer``, e.g. -2: the second-to-last block's
    # output); None for a dual encoder, whose whole tower is read.
    read_layer: int | None = None

    @property
    def generative(self) -> bool:
        return self.read_layer is not None

    @property
    def blocks_read(self) -> int:
        """How many blocks (from the first) feed what the model reads: every block for a dual
        encoder; for a VLM reading hidden state ``read_layer`` of the ``num_layers + 1`` (the
        embeddings first), the blocks up to it. Blocks after it get no gradient from the
        language model's loss."""
        if self.read_layer is None:
            return self.num_layers
        index = self.read_layer if self.read_layer >= 0 else self.num_layers + 1 + self.read_layer
        return max(0, min(self.num_layers, index))


def read_vision_architecture(model_directory: Path | str) -> VisionArchitecture:
    """The image encoder's shape from ``config.json`` (``vision_config`` of every family;
    a llava model's ``vision_feature_layer`` as the layer it reads)."""
    config_path = Path(model_directory) / "config.json"
    try:
        config = json.loads(config_path.read_text())
        vision = config["vision_config"]
        num_layers = int(vision["num_hidden_layers"])
        return VisionArchitecture(
            num_layers=num_layers,
            num_heads=int(vision["num_attention_heads"]),
            hidden_size=int(vision["hidden_size"]),
            read_layer=read_layer_of(config, num_layers),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ArchitectureError(
            f"no vision tower described in the model's config: {error}"
        ) from error


# LLaVA-1.5's default: the second-to-last hidden state.
DEFAULT_LLAVA_READ_LAYER = -2


def read_layer_of(config: dict[str, object], num_layers: int) -> int | None:
    """The hidden state a llava config's language model reads (for a list of layers, the
    deepest, as a non-negative index); None for any other model type."""
    if config.get("model_type") != "llava":
        return None
    layer = config.get("vision_feature_layer", DEFAULT_LLAVA_READ_LAYER)
    given = layer if isinstance(layer, list) else [layer]
    layers = [item for item in given if isinstance(item, int) and not isinstance(item, bool)]
    if not layers or len(layers) != len(given):
        raise ValueError(f"vision_feature_layer {layer!r} is not a layer index")
    if len(layers) == 1:
        return layers[0]
    return max(item if item >= 0 else num_layers + 1 + item for item in layers)
