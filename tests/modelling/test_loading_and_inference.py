"""Loading from a local directory (safetensors only) and zero-shot inference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from service.modelling.inference import classify
from service.modelling.loading import ModelLoadError, load_dual_encoder
from standin.factory import build_dual_encoder, save_model_directory
from tests.model_fixtures import TEST_VISION


def test_loads_vision_text_dual_encoder_and_classifies(tiny_model_dir: Path) -> None:
    model = load_dual_encoder(tiny_model_dir)
    assert model.family == "vision-text-dual-encoder"
    assert model.num_heads == 4 and len(model.blocks) == 2
    probabilities = classify(model, [Image.new("L", (28, 28), 200)], ["cat", "dog", "frog"])
    assert len(probabilities[0]) == 3
    assert sum(probabilities[0]) == pytest.approx(1.0, abs=1e-5)


def test_loads_a_clip_model_directory(tmp_path: Path) -> None:
    from transformers import CLIPConfig, CLIPModel

    from standin.factory import minilm_directory

    config = CLIPConfig(
        text_config={
            "vocab_size": 30522,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 6,
        },
        projection_dim=16,
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_directory())
    save_model_directory(CLIPModel(config), tokenizer, tmp_path / "clip", image_size=32)
    model = load_dual_encoder(tmp_path / "clip")
    assert model.family == "clip" and model.num_heads == 6 and len(model.blocks) == 2
    assert all(
        k.startswith(("vision_model.", "visual_projection.")) for k in model.image_encoder_state()
    )
    assert model.encode_images([Image.new("RGB", (40, 30))]).shape == (1, 16)


def test_refuses_pickled_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    target = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, target)
    model_file = target / "model.safetensors"
    torch.save({"x": torch.zeros(1)}, target / "pytorch_model.bin")
    model_file.unlink()
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_dual_encoder(target)


def test_refuses_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_dual_encoder(tmp_path)


def test_image_state_round_trip(tiny_model_dir: Path) -> None:
    model = load_dual_encoder(tiny_model_dir)
    state = model.image_encoder_state()
    changed = {k: v + 1 for k, v in state.items()}
    model.load_image_encoder_state(changed)
    assert all(torch.equal(model.image_encoder_state()[k], changed[k]) for k in state)
    with pytest.raises(ValueError, match="does not match"):
        model.load_image_encoder_state({"vision_model.nope": torch.zeros(1)})


def test_minilm_text_side_gives_semantic_embeddings() -> None:
    model, tokenizer = build_dual_encoder(vision=TEST_VISION, text="minilm")
    tokens = tokenizer(
        ["a photo of a cat", "a picture of a kitten", "a tax form"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = model.text_model(**tokens).last_hidden_state.mean(dim=1)
    hidden = torch.nn.functional.normalize(hidden, dim=-1)
    assert hidden[0] @ hidden[1] > hidden[0] @ hidden[2]


def test_siglip_loads_and_updates_through_the_same_interface(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, SiglipConfig, SiglipModel

    from standin.factory import minilm_directory
    from tests.model_fixtures import noise_examples
    from workers.engine.update import run_update

    config = SiglipConfig(
        text_config={
            "vocab_size": 30522,
            "hidden_size": 48,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "bos_token_id": 101,
            "eos_token_id": 102,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
    )
    tokenizer = AutoTokenizer.from_pretrained(minilm_directory())
    save_model_directory(SiglipModel(config), tokenizer, tmp_path / "siglip", image_size=32)
    model = load_dual_encoder(tmp_path / "siglip")
    assert model.family == "siglip" and len(model.blocks) == 2
    before = model.image_encoder_state()
    report = run_update(
        model,
        noise_examples(["a", "b"] * 4),
        method="lorsu",
        hyperparameters={"learning_rate": 1e-2, "epochs": 2, "top_k_heads": 2},
    ).report
    assert [len(heads) for heads in report.details["heads_per_layer"]] == [2, 2]
    after = model.image_encoder_state()
    assert any(not torch.equal(before[k], after[k]) for k in before)
