"""Resolving a job's objective and answer anchors from the model (torch-free catalogue code):
what a llava config says it reads, which blocks that reaches, and the defaults per family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalogue.architecture import VisionArchitecture, read_vision_architecture
from catalogue.declarations import resolve_hyperparameters
from catalogue.hyperparameters import HyperparameterError
from catalogue.objectives import TrainingObjective, VlmAnchorDefaults

VISION = {"num_hidden_layers": 24, "num_attention_heads": 16, "hidden_size": 1024}


def _config(tmp_path: Path, **config: object) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({"vision_config": VISION, **config}))
    return tmp_path


@pytest.mark.parametrize(
    ("config", "read_layer", "blocks_read"),
    [
        ({"model_type": "clip"}, None, 24),
        ({"model_type": "llava"}, -2, 23),  # LLaVA-1.5's default
        ({"model_type": "llava", "vision_feature_layer": -1}, -1, 24),
        ({"model_type": "llava", "vision_feature_layer": 12}, 12, 12),
        ({"model_type": "llava", "vision_feature_layer": [-2, 6]}, 23, 23),
    ],
)
def test_the_layer_a_llava_model_reads_decides_the_blocks_reached(
    tmp_path: Path, config: dict[str, object], read_layer: int | None, blocks_read: int
) -> None:
    architecture = read_vision_architecture(_config(tmp_path, **config))
    assert architecture.read_layer == read_layer
    assert architecture.blocks_read == blocks_read
    assert architecture.generative is (read_layer is not None)


def test_a_llava_model_defaults_to_its_answers_and_a_dual_encoder_to_clip() -> None:
    vlm = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=192, read_layer=-2)
    dual = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=192)
    for method in ("lorsu", "lora", "full-ft"):
        on_vlm = resolve_hyperparameters(method, {}, vlm)
        assert on_vlm.objective is TrainingObjective.ANSWER
        assert on_vlm.anchor_read_distillation == VlmAnchorDefaults.read_distillation
        assert on_vlm.unresolved() == []
        on_dual = resolve_hyperparameters(method, {}, dual)
        assert on_dual.objective is TrainingObjective.CLIP
        assert on_dual.anchor_read_distillation == 0.0 and not on_dual.uses_answer_anchors()
    explicit = resolve_hyperparameters("lorsu", {"objective": "clip+answer"}, vlm)
    assert explicit.objective is TrainingObjective.CLIP_AND_ANSWER


def test_lorsu_holds_a_dual_encoders_anchors_to_the_base_and_replays_its_corrections() -> None:
    vlm = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=192, read_layer=-2)
    dual = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=192)
    held = {
        (method, architecture.generative): (resolved.anchor_reference, resolved.anchor_replay)
        for method in ("lorsu", "lorsu-rand", "lorsu-relative", "lora", "full-ft")
        for architecture in (vlm, dual)
        for resolved in [resolve_hyperparameters(method, {}, architecture)]
    }
    for method in ("lorsu", "lorsu-rand", "lorsu-relative"):
        assert held[(method, False)] == ("base", True)
    # Measured for LoRSU on dual encoders only: the others, and a llava model, as before.
    assert {held[key] for key in held if key[0] in ("lora", "full-ft") or key[1]} == {
        ("parent", False)
    }
    asked = {"anchor_reference": "parent", "anchor_replay": False}
    explicit = resolve_hyperparameters("lorsu", asked, dual)
    assert (explicit.anchor_reference, explicit.anchor_replay) == ("parent", False)


@pytest.mark.parametrize(
    "asked",
    [
        {"objective": "answer"},
        {"objective": "clip+answer"},
        {"anchor_answer_kl": 0.5},
        {"anchor_read_distillation": 1.0},
    ],
)
def test_answers_on_a_dual_encoder_are_refused_with_a_code(asked: dict[str, object]) -> None:
    dual = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=192)
    with pytest.raises(HyperparameterError) as raised:
        resolve_hyperparameters("lorsu", asked, dual)
    assert raised.value.code == "answer_objective_needs_vlm"


def test_an_answer_template_needs_a_slot() -> None:
    vlm = VisionArchitecture(num_layers=4, num_heads=8, hidden_size=192, read_layer=-2)
    with pytest.raises(HyperparameterError):
        resolve_hyperparameters("lorsu", {"answer_template": "A thing."}, vlm)
