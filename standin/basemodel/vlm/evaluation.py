"""Answer accuracy of a VLM on labelled emoji images, through the serving ``answer`` path.

Normalised exact match: an answer is right when its ``answer_key`` (lower case, no article, no
final period) equals the expected answer's. Three figures per image set: "What is in the
picture?" (the expected answer names the concept), and the concept's balanced yes/no questions
(``questions.question_answers``), "Yes." and "No." counted apart so a model that always says
one of them shows as such.
"""

from __future__ import annotations

from catalogue.captions import WHAT_IS_SHOWN_QUESTION, answer_key
from service.modelling.vlm import VisionLanguageModel
from standin.basemodel.vlm.questions import NO, YES, question_answers
from standin.datasets import LabelledImages

MAX_ANSWER_TOKENS = 12


def answer_accuracy(
    vlm: VisionLanguageModel, data: LabelledImages, batch_size: int = 256
) -> dict[str, float]:
    """Percent right per question kind ("what", "yes", "no") and the image count."""
    images, questions, expected = [], [], []
    for image, label in zip(data.images, data.labels, strict=True):
        for question, answer in question_answers(data.class_names[label]):
            images.append(image)
            questions.append(question)
            expected.append(answer)
    answers = vlm.answer(images, questions, max_tokens=MAX_ANSWER_TOKENS, batch_size=batch_size)
    right: dict[str, list[bool]] = {"what": [], "yes": [], "no": []}
    for question, wanted, given in zip(questions, expected, answers, strict=True):
        kind = "what" if question == WHAT_IS_SHOWN_QUESTION else {YES: "yes", NO: "no"}[wanted]
        right[kind].append(answer_key(given.text) == answer_key(wanted))
    result = {kind: 100.0 * sum(hits) / max(1, len(hits)) for kind, hits in right.items()}
    return {**result, "images": float(len(data))}
