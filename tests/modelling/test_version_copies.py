"""A loaded version copies only the image encoder: everything else is the base's own module,
and the copy answers exactly as a full, separate load of the same weights does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from service.modelling.checkpoints import LoadedCheckpoint, load_checkpoint
from service.modelling.inference import classify
from standin.llava_factory import build_tiny_llava


def _perturbed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        name: tensor + 0.05 * torch.randn(tensor.shape, generator=generator)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in state.items()
    }


def _images() -> list[Image.Image]:
    return [
        Image.new("RGB", (40, 40), color) for color in ((200, 30, 30), (20, 160, 40), (9, 9, 9))
    ]


def _version_of(base: LoadedCheckpoint) -> tuple[LoadedCheckpoint, dict[str, torch.Tensor]]:
    state = _perturbed(base.encoder.image_encoder_state())
    version = base.with_own_image_encoder()
    version.encoder.load_image_encoder_state(state)
    return version, state


def test_a_dual_encoder_version_shares_the_text_tower_and_leaves_the_base_untouched(
    tiny_model_dir: Path,
) -> None:
    base = load_checkpoint(tiny_model_dir, None)
    base_state = base.encoder.image_encoder_state()
    version, state = _version_of(base)

    assert version.encoder.model.text_model is base.encoder.model.text_model
    assert version.encoder.model.vision_model is not base.encoder.model.vision_model
    for name, tensor in base.encoder.image_encoder_state().items():
        assert torch.equal(tensor, base_state[name]), name  # the base still holds version 1
    separate = load_checkpoint(tiny_model_dir, None)
    separate.encoder.load_image_encoder_state(state)
    labels = ["red", "green", "black"]
    assert classify(version.encoder, _images(), labels) == classify(
        separate.encoder, _images(), labels
    )
    assert classify(base.encoder, _images(), labels) != classify(version.encoder, _images(), labels)


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "vlm", tiny_model_dir)


def test_a_llava_version_shares_the_language_model_and_answers_like_a_full_load(
    tiny_vlm_dir: Path, tiny_model_dir: Path
) -> None:
    base = load_checkpoint(tiny_vlm_dir, tiny_model_dir)
    version, state = _version_of(base)
    assert base.generator is not None and version.generator is not None

    vlm, base_vlm = version.generator.model, base.generator.model
    assert vlm.model.language_model is base_vlm.model.language_model
    assert vlm.lm_head is base_vlm.lm_head
    assert vlm.model.multi_modal_projector is base_vlm.model.multi_modal_projector
    # The pair's tower and the VLM's tower are one module, the version's own.
    assert version.encoder.model.vision_model is vlm.model.vision_tower
    assert vlm.model.vision_tower is not base_vlm.model.vision_tower
    assert version.encoder.model.text_model is base.encoder.model.text_model

    separate = load_checkpoint(tiny_vlm_dir, tiny_model_dir)
    separate.encoder.load_image_encoder_state(state)
    assert separate.generator is not None
    questions = ["What is in the picture?"] * 3
    answers = version.generator.answer(_images(), questions, max_tokens=6)
    assert answers == separate.generator.answer(_images(), questions, max_tokens=6)
