"""The answer objective on the committed stand-in VLM with real OpenMoji renderings: a label
correction becomes the answer the VLM is taught, the VLM then answers held-out renderings of
the corrected concepts right, and nothing the language model does not read is trained."""

from __future__ import annotations

import pytest
import torch

from bench.vlm.models import materialise_models
from catalogue.captions import answer_for_label
from service.modelling.examples import ImageExample
from service.modelling.vlm import VisionLanguageModel, load_vision_language_model
from standin.datasets import load_dataset
from workers.engine.answer_anchors import (
    AnswerAnchorWeights,
    answer_anchor_loss,
    prepare_answer_anchors,
)
from workers.engine.answers import VisionReader
from workers.engine.update import run_update
from workers.pipeline.evaluation import answer_hits
from workers.pipeline.job_inputs import answers_naming_labels

# OpenMoji concepts the stand-in VLM names on none of their test renderings.
CONCEPTS = ("dog", "moose", "pig", "frog")


@pytest.fixture(scope="module")
def vlm(tmp_path_factory: pytest.TempPathFactory) -> VisionLanguageModel:
    models = materialise_models(tmp_path_factory.mktemp("standin") / "models")
    return load_vision_language_model(models.vlm, models.pair)


def _examples(split: str, per_concept: int) -> list[ImageExample]:
    images = load_dataset("emoji-openmoji", split, limit_per_class=per_concept, seed=0)
    names = images.class_names
    chosen = images.only_classes([names.index(concept) for concept in CONCEPTS])
    return [
        ImageExample(image=image, label=names[label])
        for image, label in zip(chosen.images, chosen.labels, strict=True)
    ]


def _asked(examples: list[ImageExample]) -> list[ImageExample]:
    return [
        ImageExample(
            image=example.image,
            question="What is in the picture?",
            answer=answer_for_label(str(example.label)),
        )
        for example in examples
    ]


def _accuracy(vlm: VisionLanguageModel, examples: list[ImageExample]) -> float:
    hits = answer_hits(vlm, examples)
    return 100.0 * sum(hits) / len(hits)


def test_label_corrections_fix_the_answers_through_the_language_model(
    vlm: VisionLanguageModel,
) -> None:
    train = _examples("train", 5)
    test = _asked(_examples("test", 10))
    tower = vlm.model.model.vision_tower
    unread = {  # the last block and the post-layernorm: the VLM reads the block before
        name: tensor.clone()
        for name, tensor in tower.state_dict().items()
        if name.startswith(("encoder.layers.3.", "post_layernorm."))
    }
    before = _accuracy(vlm, test)

    outcome = run_update(
        vlm.encoder, train, method="lorsu", hyperparameters={"max_steps": 60}, seed=0, vlm=vlm
    )

    after = _accuracy(vlm, test)
    assert before <= 10.0
    assert after - before >= 30.0, (before, after)
    report = outcome.report
    assert report.hyperparameters["objective"] == "answer"
    # Heads and fc1 entries are chosen in the three blocks the read layer sees, none after it.
    assert len(report.details["heads_per_layer"]) == 3
    state = tower.state_dict()
    for name, tensor in unread.items():
        assert torch.equal(state[name], tensor), name


def test_answer_anchor_terms_start_at_zero_and_measure_drift(vlm: VisionLanguageModel) -> None:
    anchors = _asked(_examples("validation", 2))
    reader = VisionReader(vlm, vlm.encoder)
    pixels = vlm.encoder.pixel_values([anchor.image for anchor in anchors])
    pairs = [(str(anchor.question), str(anchor.answer)) for anchor in anchors]
    weights = AnswerAnchorWeights(read_distillation=1.0, answer_kl=1.0, answer_rehearsal=0.0)
    prepared = prepare_answer_anchors(vlm, reader, pixels, pairs, weights)
    chosen = torch.arange(len(anchors))
    with torch.no_grad():
        at_parent = answer_anchor_loss(vlm, prepared, weights, chosen, reader(pixels, False).read)
        fc1 = vlm.model.model.vision_tower.encoder.layers[0].mlp.fc1
        original = fc1.weight.clone()
        fc1.weight.add_(torch.randn_like(original) * 0.05)
        moved = answer_anchor_loss(vlm, prepared, weights, chosen, reader(pixels, False).read)
        fc1.weight.copy_(original)
    assert abs(float(at_parent)) < 1e-4
    assert float(moved) > 1e-3


def test_a_label_is_taught_as_the_answer_the_model_gives_for_it() -> None:
    image = _examples("validation", 1)[0].image
    known = answers_naming_labels(
        [
            ImageExample(image=image, question="What is in the picture?", answer="Grapes."),
            ImageExample(image=image, question="Is it an animal?", answer="No."),
            ImageExample(image=image, label="cat"),
        ]
    )
    assert known == {"grapes": "Grapes."}
    assert ImageExample(image=image, label="grapes").answer_given("A {}.", known) == "Grapes."
    assert ImageExample(image=image, label="ant").answer_given("A {}.", known) == "An ant."
    assert ImageExample(image=image, label="ant").answer_given("Das ist {}.", {}) == "Das ist ant."
    assert answer_for_label("umbrella") == "An umbrella."
    assert answer_for_label("unicorn") == "A unicorn."
