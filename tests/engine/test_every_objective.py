"""Every update method trains through a VLM's answers: on a (tiny, random) llava model its
answer loss alone and beside the CLIP loss (which every method's own tests train), with the
answer-space anchors; whatever the
objective does not reach (blocks after the layer the VLM reads) keeps its weights exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from catalogue.declarations import method_names
from service.modelling.examples import ImageExample
from service.modelling.vlm import VisionLanguageModel, load_vision_language_model
from standin.llava_factory import build_tiny_llava
from tests.model_fixtures import noise_examples
from workers.engine.errors import InvalidHyperparameter
from workers.engine.update import run_update


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, Path]:
    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "vlm", tiny_model_dir), tiny_model_dir


@pytest.fixture
def vlm(tiny_vlm: tuple[Path, Path]) -> VisionLanguageModel:
    return load_vision_language_model(*tiny_vlm)


def _qa(examples: list[ImageExample]) -> list[ImageExample]:
    return [
        ImageExample(image=example.image, question="Is it an animal?", answer="Yes.")
        for example in examples[:2]
    ] + examples[2:]


ANCHORS_ON = {
    "anchor_read_distillation": 10.0,
    "anchor_answer_kl": 1.0,
    "anchor_answer_rehearsal": 0.5,
    "anchor_batch_size": 4,
}


@pytest.mark.parametrize("method", method_names())
@pytest.mark.parametrize("objective", ["answer", "clip+answer"])
def test_every_method_trains_with_every_objective(
    vlm: VisionLanguageModel, method: str, objective: str
) -> None:
    examples = _qa(noise_examples(["sandal", "sneaker"] * 4))
    anchors = noise_examples(["coat", "shirt"] * 3, seed=1)
    tower = vlm.model.model.vision_tower
    before = {name: tensor.clone() for name, tensor in tower.state_dict().items()}
    hyperparameters = {"objective": objective, "max_steps": 3, "batch_size": 4, **ANCHORS_ON}

    outcome = run_update(
        vlm.encoder,
        examples,
        method=method,
        hyperparameters=hyperparameters,
        anchors=anchors,
        vlm=vlm,
    )

    assert outcome.report.steps == 3
    assert all(torch.isfinite(torch.tensor(outcome.report.losses)))
    after = tower.state_dict()
    changed = {name for name in after if not torch.equal(after[name], before[name])}
    assert changed, "the update changed nothing"
    if objective == "answer" and method != "full-ft":
        # The tiny VLM reads hidden state -2 of 2 blocks: only block 0 is reachable (full
        # fine-tuning trains every tensor, so the CLIP anchors may move the rest).
        assert all(name.startswith("encoder.layers.0.") for name in changed), changed


def test_the_answer_objective_needs_the_language_model(vlm: VisionLanguageModel) -> None:
    examples = noise_examples(["sandal", "sneaker"] * 2)
    with pytest.raises(InvalidHyperparameter, match="language model"):
        run_update(vlm.encoder, examples, hyperparameters={"objective": "answer"})
