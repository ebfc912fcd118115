"""The committed stand-in VLM: it assembles with the base tower, answers on the training styles
and fails on the held-out style, and a release or base that does not match is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from catalogue.captions import WHAT_IS_SHOWN_QUESTION, answer_key
from service.modelling.vlm import VisionLanguageModel, load_vision_language_model
from standin.basemodel.card import read_build_info
from standin.basemodel.release import ReleaseError, sha256_of
from standin.basemodel.vlm.card import CARD_FILE
from standin.basemodel.vlm.features import select_tower_features
from standin.basemodel.vlm.questions import concept_questions
from standin.basemodel.vlm.recipe import VlmRecipe
from standin.basemodel.vlm.release import (
    RELEASE_DIR,
    WEIGHTS_FILE,
    base_tower_state,
    materialise_vlm_release,
    vlm_release_info,
)
from standin.basemodel.vlm.sequences import QuestionBank
from standin.basemodel.vlm.training import (
    VISION_TOWER_PREFIX,
    build_skeleton,
    language_hidden_states,
    train_language_model,
)
from standin.datasets import LabelledImages, load_dataset
from standin.llava_factory import LanguageShape

CONCEPTS_ASKED = 40
# The committed release named 92.5% (Google and Twemoji) of these 40 test renderings and 2.5%
# of the OpenMoji ones, and answered 84% of the Google yes/no questions right (its card: 91 /
# 92 / 5% and about 90% over 804 renderings per style). Chance: 1 in 402; yes/no 50%.
THRESHOLD_TRAINING = 75.0
THRESHOLD_HELD_OUT = 20.0
THRESHOLD_YES_NO = 0.75


@pytest.fixture(scope="module")
def vlm(vlm_dir: Path, base_dir: Path) -> VisionLanguageModel:
    return load_vision_language_model(vlm_dir, base_dir)


def _spread_test_images(name: str) -> LabelledImages:
    """One test rendering each of CONCEPTS_ASKED concepts spread over the whole list."""
    data = load_dataset(name, "test", limit_per_class=1, seed=5)
    chosen = np.linspace(0, len(data.class_names) - 1, CONCEPTS_ASKED).round().astype(int)
    return data.only_classes([int(label) for label in chosen])


def _what_accuracy(vlm: VisionLanguageModel, data: LabelledImages) -> float:
    answers = vlm.answer(data.images, [WHAT_IS_SHOWN_QUESTION] * len(data), max_tokens=12)
    right = [
        answer_key(answer.text) == data.class_names[label]
        for answer, label in zip(answers, data.labels, strict=True)
    ]
    return 100.0 * sum(right) / len(right)


def test_release_is_small_matches_its_card_and_holds_no_vision_tower() -> None:
    info = vlm_release_info()  # raises when the weights and the build facts disagree
    digest = sha256_of(RELEASE_DIR / WEIGHTS_FILE)
    assert f"sha256 `{digest}`" in (RELEASE_DIR / CARD_FILE).read_text()
    assert (RELEASE_DIR / WEIGHTS_FILE).stat().st_size < 16 * 2**20
    names = set(load_file(RELEASE_DIR / WEIGHTS_FILE))
    assert not [name for name in names if name.startswith(VISION_TOWER_PREFIX)]
    assert any(name.startswith("model.multi_modal_projector.") for name in names)
    assert "lm_head.weight" in names
    assert info["seconds"]["total"] <= 15 * 60
    assert info["threads"] <= 2


def test_assembled_model_loads_with_the_base_as_its_pair(vlm_dir: Path, base_dir: Path) -> None:
    config = json.loads((vlm_dir / "config.json").read_text())
    assert config["model_type"] == "llava"
    assert (vlm_dir / "preprocessor_config.json").read_bytes() == (
        base_dir / "preprocessor_config.json"
    ).read_bytes()
    assert not [path for path in vlm_dir.iterdir() if path.suffix in (".bin", ".pt", ".pkl")]
    vlm = load_vision_language_model(vlm_dir, base_dir)
    assert vlm.encoder.model.vision_model is vlm.model.model.vision_tower
    assert vlm.image_tokens == 16


def test_vision_tower_is_the_base_image_tower_unchanged(vlm_dir: Path, base_dir: Path) -> None:
    from transformers import LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(vlm_dir, local_files_only=True)
    tower = model.model.vision_tower.state_dict()
    base = base_tower_state(base_dir)
    assert set(tower) == set(base)
    assert all(torch.equal(tower[name], tensor) for name, tensor in base.items())


def test_answers_right_on_training_styles_and_wrong_on_the_held_out_one(
    vlm: VisionLanguageModel,
) -> None:
    accuracy = {
        name: _what_accuracy(vlm, _spread_test_images(name))
        for name in ("emoji-google", "emoji-twitter", "emoji-openmoji")
    }
    # Chance is 1 in 402 concepts.
    assert accuracy["emoji-google"] >= THRESHOLD_TRAINING, accuracy
    assert accuracy["emoji-twitter"] >= THRESHOLD_TRAINING, accuracy
    assert accuracy["emoji-openmoji"] <= THRESHOLD_HELD_OUT, accuracy
    card = read_build_info(RELEASE_DIR)["test_accuracy"]
    assert card["emoji-google"]["what"] >= 85.0 and card["emoji-twitter"]["what"] >= 85.0
    assert card["emoji-openmoji"]["what"] <= 15.0


def test_yes_no_answers_follow_the_subject(vlm: VisionLanguageModel) -> None:
    data = _spread_test_images("emoji-google")
    table = concept_questions()
    questions, expected, images = [], [], []
    for image, label in zip(data.images, data.labels, strict=True):
        concept = table[data.class_names[label]]
        for question, answer in [
            *((q, "yes") for q in concept.yes_questions[:1]),
            *((q, "no") for q in concept.no_questions[:1]),
        ]:
            questions.append(question)
            expected.append(answer)
            images.append(image)
    answers = vlm.answer(images, questions, max_tokens=4)
    right = [answer_key(a.text) == e for a, e in zip(answers, expected, strict=True)]
    assert sum(right) / len(right) >= THRESHOLD_YES_NO
    assert {answer_key(a.text) for a in answers} == {"yes", "no"}


def test_training_forward_is_the_serving_forward(vlm: VisionLanguageModel) -> None:
    data = _spread_test_images("emoji-twitter").select([0, 1, 2])
    model = vlm.model
    inputs = vlm._inputs(data.images, [WHAT_IS_SHOWN_QUESTION, "Is it food?", "What is this?"])
    served = model(**inputs).logits
    features = select_tower_features(model, inputs["pixel_values"])
    hidden = language_hidden_states(model, features, inputs["input_ids"], inputs["attention_mask"])
    trained = model.lm_head(hidden)
    real = inputs["attention_mask"].bool()
    torch.testing.assert_close(trained[real], served[real], rtol=1e-4, atol=1e-4)


def test_a_release_whose_weights_do_not_match_their_sha256_is_refused(
    base_dir: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    shutil.copytree(RELEASE_DIR, release)
    weights = bytearray((release / WEIGHTS_FILE).read_bytes())
    weights[-1] ^= 0xFF
    (release / WEIGHTS_FILE).write_bytes(bytes(weights))
    with pytest.raises(ReleaseError, match="sha256"):
        materialise_vlm_release(tmp_path / "vlm", base_dir, release)
    assert not (tmp_path / "vlm").exists()


def test_a_base_with_another_image_tower_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="not the base tower"):
        materialise_vlm_release(tmp_path / "vlm", tiny_model_dir)


def test_training_is_deterministic_and_leaves_the_tower_alone(base_dir: Path) -> None:
    recipe = VlmRecipe(
        steps=3,
        batch_size=8,
        language=LanguageShape(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2),
    )
    data = _spread_test_images("emoji-google").select(list(range(8)))
    states = []
    for _ in range(2):
        skeleton = build_skeleton(base_dir, recipe, seed=4)
        before = {k: v.clone() for k, v in skeleton.model.state_dict().items()}
        pixels = skeleton.preprocessor(data.images)
        with torch.no_grad():
            features = select_tower_features(skeleton.model, pixels)
        bank = QuestionBank.build(skeleton.tokenizer, data.class_names, 16)
        losses = train_language_model(
            skeleton.model, features, torch.tensor(data.labels), bank, recipe, 4, progress=False
        )
        assert len(losses) == 3
        after = skeleton.model.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert not [k for k in changed if k.startswith(VISION_TOWER_PREFIX)]
        assert "model.multi_modal_projector.linear_1.weight" in changed
        assert "lm_head.weight" in changed
        states.append(after)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
