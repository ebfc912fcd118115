"""Question/answer corrections train through declarative statements, and a caption that
states an image's right answer is never a negative for it (in training or in TI)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from catalogue.captions import qa_statement
from service.modelling.examples import ImageExample
from workers.engine.examples import build_captioned_batch
from workers.engine.loss import class_level_contrastive_loss
from workers.pipeline.evaluation import build_plan

TEMPLATE = "a photo of a {}."


@pytest.mark.parametrize(
    ("question", "answer", "statement"),
    [
        ("What is in the picture?", "A cat.", "a photo of a cat."),
        ("what is this", "dog", "a photo of a dog."),
        ("Which animal is shown?", "the horse", "a photo of a horse."),
        ("Is it an animal?", "Yes", "it is an animal."),
        ("Is this edible?", "no", "it is not edible."),
        ("How many legs does it have?", "4", 'the answer to "How many legs does it have?" is "4".'),
    ],
)
def test_statements(question: str, answer: str, statement: str) -> None:
    assert qa_statement(question, answer, TEMPLATE) == statement


def _image() -> Image.Image:
    return Image.new("RGB", (8, 8), "white")


def test_a_what_question_trains_the_caption_classify_uses() -> None:
    batch = build_captioned_batch(
        [
            ImageExample(_image(), question="What is in the picture?", answer="a cat"),
            ImageExample(_image(), label="cat"),
            ImageExample(_image(), label="dog"),
        ],
        TEMPLATE,
    )
    assert batch.captions == ["a photo of a cat.", "a photo of a dog."]
    assert batch.targets == [0, 0, 1]


def test_captions_stating_the_same_answer_are_never_negatives() -> None:
    batch = build_captioned_batch(
        [
            ImageExample(_image(), question="Which pet sleeps most?", answer="Cat"),
            ImageExample(_image(), label="dog"),
        ],
        TEMPLATE,
        negative_labels=["cat", "horse"],
    )
    assert batch.captions == [
        'the answer to "Which pet sleeps most?" is "Cat".',
        "a photo of a dog.",
        "a photo of a cat.",
        "a photo of a horse.",
    ]
    same = batch.same_answer_pairs()
    # The statement's image: "a photo of a cat." states its answer too; dog/horse do not.
    assert same[0] == [False, False, True, False]
    assert same[1] == [False, False, False, False]


def test_an_excluded_caption_does_not_act_in_the_loss() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(1, 16, generator=generator, requires_grad=True)
    captions = F.normalize(torch.randn(3, 16, generator=generator), dim=-1)
    target = torch.tensor([0])
    masked = class_level_contrastive_loss(
        features, captions, target, 10.0, torch.tensor([[False, False, True]])
    )
    without = class_level_contrastive_loss(features, captions[:2], target, 10.0)
    assert torch.isfinite(masked) and torch.allclose(masked, without)
    masked.backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


def test_held_out_question_answers_are_measured_as_they_were_trained() -> None:
    trained = [
        ImageExample(_image(), question="Is it an animal?", answer="yes"),
        ImageExample(_image(), label="car"),
    ]
    held_out = [ImageExample(_image(), question="Is it an animal?", answer="yes")]
    plan = build_plan(trained, held_out, ["animal"], [], TEMPLATE)
    assert plan.target is not None
    assert plan.target.captions[plan.target.targets[0]] == "it is an animal."
    assert plan.target.captions == ["it is an animal.", "a photo of a car.", "a photo of a animal."]
    # "yes" is not the label "animal": nothing is excluded here.
    assert plan.target.excluded == [[False, False, False]]
