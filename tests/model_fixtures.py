"""Shared model fixtures: a tiny random dual encoder and structure-only examples.

Imported by the conftest of each test package that needs them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from standin.factory import VisionShape, build_tiny_dual_encoder

# 4 heads of 16 dims in 2 blocks: small enough for milliseconds per step, big enough that
# "top-2 of 4 heads" is a real choice.
TEST_VISION = VisionShape(
    image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_dual_encoder(tmp_path_factory.mktemp("models") / "tiny", vision=TEST_VISION)


@pytest.fixture
def model(tiny_model_dir: Path) -> DualEncoder:
    return load_dual_encoder(tiny_model_dir)


def noise_examples(labels: list[str], seed: int = 0) -> list[ImageExample]:
    """Structure-only examples (which weights move does not depend on image content)."""
    rng = np.random.default_rng(seed)
    return [
        ImageExample(
            image=Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)), label=label
        )
        for label in labels
    ]


@pytest.fixture
def examples() -> list[ImageExample]:
    return noise_examples(["sandal", "sneaker"] * 4)
