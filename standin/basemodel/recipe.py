"""What the stand-in base model is and how it is trained, in one place.

The image side learns, against the frozen pre-trained MiniLM text tower (LiT), the curated
emoji concepts in two studios' styles (Google Noto, Twemoji) plus Fashion-MNIST and texture
patches (so the older control sets keep their meaning). Never shown to it: OpenMoji artwork
(the style shift a correction fixes), Animal MNIST and digits (new domains), and every
held-out ("test") rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from standin.factory import VisionShape

# 32 px keeps the emoji recognisable; patch 4 gives 64 tokens. 8 heads of width 32: one head
# is an eighth of a layer, so selecting a few heads (LoRSU) is a real choice. The comparison
# of the shapes tried is on the model card (``CANDIDATES``).
BASE_VISION = VisionShape(
    image_size=32,
    patch_size=8,
    hidden_size=192,
    intermediate_size=768,
    num_layers=4,
    num_heads=8,
)
PROJECTION_DIM = 256
EMOJI_TRAINING_DATASETS = ("emoji-google", "emoji-twitter")
# Datasets whose fixed train split is shown as it is (the emoji are rendered afresh instead).
PIXEL_DATASETS: dict[str, float] = {
    # dataset -> share of every training batch (the rest of the batch is emoji)
    "fashion-mnist": 0.2,
    "textures": 0.08,
}
HELD_OUT_DATASETS = ("emoji-openmoji", "animal-mnist", "digits")
# Several phrasings so the projection learns the class word, not one sentence, the first the
# one the service classifies with (and the card's zero-shot figures use). The last template
# adds the concept's emojibase keywords when it has any.
CAPTION_TEMPLATES = (
    DEFAULT_CAPTION_TEMPLATE,
    "a picture of a {}.",
    "an image of a {}.",
    "an emoji of a {}.",
    "a drawing of a {}.",
    "an icon of a {}.",
    "a low resolution photo of a {}.",
    "a photo of the {}.",
    "{}",
)
KEYWORD_TEMPLATE = "{}: {}."


@dataclass(frozen=True)
class TrainingRecipe:
    """Optimiser settings of the LiT training run (text tower frozen)."""

    steps: int = 1600
    batch_size: int = 128
    learning_rate: float = 5e-4
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    initial_logit_scale: float = 30.0
    vision: VisionShape = field(default_factory=lambda: BASE_VISION)
