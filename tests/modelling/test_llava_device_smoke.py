"""Smoke test of the LLaVA path on each device: load, answer, update the shared tower, answer.

The ``cuda`` case carries the ``gpu`` marker and is skipped where no CUDA device is found
(tests/conftest.py); the ``cpu`` case runs everywhere. On CUDA the projector and language
model run in bfloat16 while the shared vision tower (what updates change and versions
snapshot) stays float32, also through a LoRSU update trained under the worker's default
mixed precision ("auto": bfloat16 autocast on CUDA).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from service.modelling.vlm import VisionLanguageModel, load_vision_language_model
from standin.factory import build_tiny_dual_encoder
from standin.llava_factory import build_tiny_llava
from tests.model_fixtures import TEST_VISION, noise_examples
from workers.engine.update import run_update

OVERRIDES = {"learning_rate": 1e-2, "epochs": 2, "batch_size": 4}
QUESTIONS = ["What is in the picture?", "Is it an animal?"]


@pytest.fixture(scope="module")
def llava_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("llava-devices")
    # The tiny random text tower: the smoke test needs no pre-trained weights.
    pair = build_tiny_dual_encoder(root / "pair", vision=TEST_VISION, text="tiny")
    return build_tiny_llava(root / "vlm", pair), pair


def _images() -> list[Image.Image]:
    return [Image.new("RGB", (40, 40), (200, 30, 30)), Image.new("RGB", (40, 40), (20, 20, 220))]


def _tower_and_rest(
    vlm: VisionLanguageModel,
) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    tower = list(vlm.model.model.vision_tower.parameters())
    tower_ids = {id(parameter) for parameter in tower}
    rest = [p for p in vlm.model.parameters() if id(p) not in tower_ids]
    return tower, rest


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_llava_answers_and_updates_its_shared_tower(
    llava_dirs: tuple[Path, Path], device: str
) -> None:
    vlm_dir, pair_dir = llava_dirs
    vlm = load_vision_language_model(vlm_dir, pair_dir, device=device)
    language_dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tower_module = vlm.model.model.vision_tower
    assert vlm.encoder.model.vision_model is tower_module  # shared, not copied

    tower, rest = _tower_and_rest(vlm)
    assert vlm.device.type == device
    assert {p.dtype for p in tower} == {torch.float32}
    assert {p.device.type for p in tower} == {device}
    assert {p.dtype for p in vlm.model.model.language_model.parameters()} == {language_dtype}
    assert {p.dtype for p in rest} == {language_dtype}  # projector and lm_head too

    images = _images()
    first = vlm.answer(images, QUESTIONS, max_tokens=8)
    second = vlm.answer(images, QUESTIONS, max_tokens=8)
    assert [a.text for a in first] == [a.text for a in second]
    assert [a.completion_tokens for a in first] == [a.completion_tokens for a in second]

    before = vlm.encoder.image_encoder_state()
    assert before and {t.dtype for t in before.values()} == {torch.float32}
    outcome = run_update(
        vlm.encoder,
        noise_examples(["sandal", "sneaker"] * 4),
        method="lorsu",
        hyperparameters=OVERRIDES,
        seed=0,
        device=device,
        mixed_precision="auto",
        # A llava model's default objective: its answers, through the bfloat16 language model
        # on CUDA (the CLIP-only path is the dual encoder's, covered by the engine's tests).
        vlm=vlm,
    )
    report = outcome.report
    assert report.hyperparameters["objective"] == "answer"
    assert report.device.startswith(device)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    assert report.mixed_precision == ("bf16" if bf16 else "off")
    assert report.steps == 4 and all(torch.isfinite(torch.tensor(report.losses)))

    after = vlm.encoder.image_encoder_state()
    assert set(after) == set(before)
    assert {t.dtype for t in after.values()} == {torch.float32}
    assert any(not before[name].equal(after[name]) for name in before)
    # The update is the VLM's: its tower holds exactly the encoder's new weights.
    assert vlm.encoder.model.vision_model is tower_module
    tower_state = {f"vision_model.{k}": v.cpu() for k, v in tower_module.state_dict().items()}
    assert set(tower_state) == set(after)
    assert all(tower_state[name].equal(after[name]) for name in after)
    tower, rest = _tower_and_rest(vlm)
    assert {p.dtype for p in tower} == {torch.float32}
    assert {p.dtype for p in rest} == {language_dtype}
    assert not any(p.requires_grad for p in tower)

    answers = vlm.answer(images, QUESTIONS, max_tokens=8)
    assert len(answers) == len(images)
    assert all(a.finish_reason in {"stop", "length"} for a in answers)
    assert [a.text for a in answers] == [a.text for a in vlm.answer(images, QUESTIONS, 8)]
