"""The VLM's templated questions become sensible CLIP statements and are balanced."""

from __future__ import annotations

from collections import Counter

from catalogue.captions import WHAT_IS_SHOWN_QUESTION, answer_key, qa_statement
from standin.basemodel.vlm.questions import (
    NO,
    WHAT_QUESTIONS,
    YES,
    YES_NO_QUESTIONS,
    article_answer,
    concept_questions,
    question_answers,
)

TEMPLATE = "a photo of a {}."


def test_what_answers_name_the_concept_and_become_its_label_caption() -> None:
    table = concept_questions()
    assert len(table) > 300
    for label, questions in table.items():
        assert answer_key(questions.what_answer) == label
        for question in WHAT_QUESTIONS:
            statement = qa_statement(question, questions.what_answer, TEMPLATE)
            assert statement.lower() == TEMPLATE.format(label)


def test_yes_no_questions_become_statements_about_the_subject() -> None:
    assert qa_statement("Is it an animal?", YES, TEMPLATE) == "it is an animal."
    assert qa_statement("Is it a vehicle?", NO, TEMPLATE) == "it is not a vehicle."
    for question in YES_NO_QUESTIONS:
        for answer in (YES, NO):
            assert qa_statement(question, answer, TEMPLATE).startswith("it is ")


def test_answers_read_as_english() -> None:
    assert article_answer("cat") == "A cat."
    assert article_answer("ant") == "An ant."
    assert article_answer("unicorn") == "A unicorn."
    assert article_answer("grapes") == "Grapes."


def test_subjects_get_the_right_answers() -> None:
    assert question_answers("cat")[:2] == [
        (WHAT_IS_SHOWN_QUESTION, "A cat."),
        ("Is it an animal?", YES),
    ]
    table = concept_questions()
    assert "Is it a vehicle?" in table["bicycle"].yes_questions
    assert "Is it a vehicle?" in table["bus stop"].no_questions
    assert "Is it an animal?" in table["pizza"].no_questions
    # Unclear answers are never asked: a banana is food and a plant, paw prints are no animal.
    assert "Is it a plant?" not in table["banana"].yes_questions + table["banana"].no_questions
    assert not table["paw prints"].yes_questions


def test_yes_and_no_are_balanced() -> None:
    answers = Counter(
        answer for label in concept_questions() for _, answer in question_answers(label)[1:]
    )
    assert answers[YES] > 300 and answers[NO] > 300
    assert 0.8 < answers[YES] / answers[NO] < 1.2
