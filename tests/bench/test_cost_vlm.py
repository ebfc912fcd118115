"""The cost benchmark's VLM section (bench/cost/vlm_*.py) on a tiny random pair and VLM: one
measured update per objective, the LLaVA-1.5-7B shape (counted on the meta device, refused
on CPU), and the section kept in cost.md/cost.json beside the tower's results."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from bench.cost.vlm_measure import (
    BY_NAME,
    LLAVA_7B,
    build_random_llava,
    default_dtype,
    load_random_llava,
    measure,
)
from bench.cost.vlm_section import (
    HEADING,
    kept_section,
    random_inputs,
    run_section,
    write_results,
)
from catalogue.objectives import VlmAnchorDefaults
from service.modelling.vlm import load_vision_language_model
from standin.factory import VIT_L14_336_VISION, VisionShape, build_tiny_dual_encoder
from standin.llava_factory import TINY_LANGUAGE, build_tiny_llava, build_tokenizer
from tests.test_basemodel import one_thread

__all__ = ["one_thread"]  # the module-wide single-thread fixture

TINY = VisionShape(
    image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4
)


def test_each_objective_is_measured_with_its_anchors(tmp_path: Path) -> None:
    pair = build_tiny_dual_encoder(tmp_path / "pair", vision=TINY)
    vlm = load_vision_language_model(build_tiny_llava(tmp_path / "vlm", pair), pair)
    inputs = random_inputs(images=2, anchors=4, size=32)
    for name in ("clip/clip-anchors", "answer", "answer/defaults", "clip+answer/defaults"):
        result = measure(BY_NAME[name], vlm, inputs, steps=2, warmup_steps=1, batch_size=2)
        assert result["steps"] == 3 and len(result["step_seconds"]) == 3
        assert result["seconds_per_step"] > 0 and result["peak_memory_bytes"] > 0
        assert result["objective"] == BY_NAME[name].objective
        assert result["anchors"] == (0 if name == "answer" else 4)
    # "defaults" are a llava model's resolved anchors, whatever they are today.
    weights = result["anchor_weights"]
    assert weights["anchor_read_distillation"] == VlmAnchorDefaults.read_distillation > 0
    assert weights["anchor_answer_kl"] == VlmAnchorDefaults.answer_kl


def test_a_random_llava_trains_as_the_loader_would_give_it_on_cuda(tmp_path: Path) -> None:
    """The 7B row's path (bfloat16 language model and projector, float32 tower shared with
    the pair, a padded vocabulary) at a tiny language shape, on CPU."""
    pair = build_tiny_dual_encoder(tmp_path / "pair", vision=TINY)
    inputs = random_inputs(images=2, anchors=4, size=32)
    vlm = load_random_llava(pair, "cpu", inputs.texts(), TINY_LANGUAGE, vocabulary=512)
    assert vlm.model.lm_head.weight.shape[0] == 512
    assert vlm.model.lm_head.weight.dtype == torch.bfloat16
    assert vlm.encoder.model.vision_model is vlm.model.model.vision_tower
    for name in ("answer/defaults", "clip+answer/defaults"):
        result = measure(BY_NAME[name], vlm, inputs, steps=1, warmup_steps=1, batch_size=2)
        assert result["steps"] == 2 and result["anchors"] == 4
    assert {p.dtype for p in vlm.model.model.vision_tower.parameters()} == {torch.float32}


def test_the_7b_shape_is_llava_1_5_7b_and_is_refused_on_cpu(tmp_path: Path) -> None:
    shape = VIT_L14_336_VISION
    config = CLIPVisionConfig(
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
    )
    tokenizer = build_tokenizer(["USER: What is in the picture? ASSISTANT: A cat."], 300)
    with torch.device("meta"), default_dtype(torch.bfloat16):  # shapes only, nothing allocated
        state = CLIPVisionModel(config).state_dict()
        model = build_random_llava(config, state, tokenizer)
    language = sum(p.numel() for p in model.model.language_model.parameters())
    assert language + model.lm_head.weight.numel() == 6_738_939_904
    assert sum(p.numel() for p in model.parameters()) == 7_063_427_072
    args = argparse.Namespace(vlm_model=LLAVA_7B, device="cpu")
    with pytest.raises(SystemExit, match="needs --device cuda"):
        run_section(args, tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_section_is_kept_beside_the_tower_results(tmp_path: Path) -> None:
    (tmp_path / "cost.md").write_text("# Update cost per method\n\n| tower |\n")
    (tmp_path / "cost.json").write_text(json.dumps({"summary": {"lorsu": 1}}))
    for version in ("first", "second"):
        write_results(tmp_path, "cost", f"{HEADING}\n\n{version}\n", {"version": version})
    markdown = (tmp_path / "cost.md").read_text()
    assert markdown.startswith("# Update cost per method") and markdown.count(HEADING) == 1
    assert "second" in markdown and "first" not in markdown
    document = json.loads((tmp_path / "cost.json").read_text())
    assert document == {"summary": {"lorsu": 1}, "vlm": {"version": "second"}}
    section, data = kept_section(tmp_path, "cost")
    assert section == f"{HEADING}\n\nsecond\n" and data == {"version": "second"}
