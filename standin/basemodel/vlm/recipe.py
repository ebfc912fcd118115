"""What the stand-in VLM is and how it is trained, in one place.

A LLaVA-1.5-shaped model (``LlavaForConditionalGeneration``) whose vision tower is the committed
base model's image tower, frozen; the two-layer projector and a small Llama language model are
trained here from random initialisation on the templated questions of ``questions``. Images:
the fixed training renderings of the two training styles (optionally plus augmented renderings
of the same artwork: fewer, fixed renderings learned faster in the comparison on the card).
Never shown: OpenMoji artwork (the held-out style) and every validation or test rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from standin.llava_factory import LanguageShape

TRAINING_DATASETS = ("emoji-google", "emoji-twitter")
HELD_OUT_DATASET = "emoji-openmoji"
EVALUATED_DATASETS = (*TRAINING_DATASETS, HELD_OUT_DATASET)

VLM_LANGUAGE = LanguageShape(
    hidden_size=192,
    intermediate_size=768,
    num_layers=2,
    num_heads=4,
    max_positions=64,
)


@dataclass(frozen=True)
class VlmRecipe:
    """Data and optimiser settings of the projector + language model training (tower frozen)."""

    steps: int = 1200
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    vocab_size: int = 2000
    # Share of the examples asking what the picture shows; the rest ask yes/no questions, each
    # answered "Yes." and "No." equally often.
    what_share: float = 0.5
    # Augmented renderings per concept and training style, on top of the fixed training ones.
    augmented_per_concept: int = 0
    language: LanguageShape = field(default_factory=lambda: VLM_LANGUAGE)
