"""How a label becomes the caption an image is matched against (training, evaluation, serving).

One home for the caption template, so classify, the update loss and TI/CC measure the same
sentences. Torch-free: the API and the method declarations import it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

DEFAULT_CAPTION_TEMPLATE = "a photo of a {}."
LABEL_SLOT = "{}"


def caption_for_label(label: str, template: str = DEFAULT_CAPTION_TEMPLATE) -> str:
    """The caption a label is matched against."""
    return template.format(label)


def captions_for_labels(
    labels: Sequence[str], template: str = DEFAULT_CAPTION_TEMPLATE
) -> list[str]:
    return [caption_for_label(label, template) for label in labels]


def has_label_slot(template: str) -> bool:
    return LABEL_SLOT in template


# -- question/answer corrections -------------------------------------------------------------
# A question/answer pair trains the image encoder through the CLIP loss, so it must become a
# caption: a declarative statement about the image. Questions that ask what the image shows
# become the label caption of the answer, so a Q/A correction teaches the same sentence that
# classify and the label corrections use; yes/no questions about the subject become "it is
# (not) ..."; anything else becomes "the answer to '...' is '...'".
_WHAT_IS_SHOWN = re.compile(
    r"^(what|which \w+)\s+(is|'s|are)\s+(this|that|it|these|those|shown|"
    r"(in|on)\s+(the|this)\s+(picture|image|photo|photograph))(\s+(a|an)\s+\w+\s+of)?$",
    re.IGNORECASE,
)
_YES_NO_ABOUT_SUBJECT = re.compile(
    r"^(is|are)\s+(it|this|that|they|these|those)\s+(?P<rest>.+)$", re.IGNORECASE
)
_YES = {"yes", "yes.", "true"}
_NO = {"no", "no.", "false"}
_ARTICLE = re.compile(r"^(a|an|the)\s+", re.IGNORECASE)


def answer_key(answer: str) -> str:
    """The answer as compared between examples: lower case, no article, no final period."""
    return _ARTICLE.sub("", answer.strip().rstrip(".").strip()).lower()


# The question a generative model is asked about a labelled image (eval sets, label examples).
WHAT_IS_SHOWN_QUESTION = "What is in the picture?"


def shown_label(question: str, answer: str) -> str | None:
    """The label a question/answer pair names when the question asks what the image shows
    ("What is in the picture?" / "A cat." -> "cat"); None for any other question."""
    asked = " ".join(question.strip().rstrip("?").split())
    if not _WHAT_IS_SHOWN.match(asked):
        return None
    return _ARTICLE.sub("", answer.strip().rstrip(".").strip())


def qa_statement(question: str, answer: str, template: str = DEFAULT_CAPTION_TEMPLATE) -> str:
    """The declarative caption of a question/answer pair (see the comment above)."""
    asked = " ".join(question.strip().rstrip("?").split())
    said = answer.strip().rstrip(".").strip()
    label = shown_label(question, answer)
    if label is not None:
        return caption_for_label(label, template)
    yes_no = _YES_NO_ABOUT_SUBJECT.match(asked)
    if yes_no and said.lower() in _YES | _NO:
        negation = "" if said.lower() in _YES else "not "
        return f"it is {negation}{yes_no.group('rest')}."
    return f'the answer to "{asked}?" is "{said}".'


# -- label corrections of a generative model ---------------------------------------------------
# A llava model is taught a label as the answer to WHAT_IS_SHOWN_QUESTION, in its answer format.
DEFAULT_ANSWER_TEMPLATE = "A {}."
_ARTICLE_SLOT = re.compile(r"^(a|an)\s+\{\}", re.IGNORECASE)
# Vowel letters that start with a consonant sound, and consonants that start with a vowel one.
_CONSONANT_SOUND = ("uni", "use", "usu", "eu", "one", "ur")
_VOWEL_SOUND = ("hour", "honest", "honour", "heir")


def indefinite_article(word: str) -> str:
    """ "an" before a vowel sound, else "a" (by spelling, with the common exceptions)."""
    lowered = word.lower()
    if lowered.startswith(_VOWEL_SOUND):
        return "an"
    vowel = lowered[:1] in tuple("aeiou") and not lowered.startswith(_CONSONANT_SOUND)
    return "an" if vowel else "a"


def answer_for_label(label: str, template: str = DEFAULT_ANSWER_TEMPLATE) -> str:
    """The answer naming ``label`` through ``template``: an article slot ("A {}.") follows the
    label ("A cat.", "An ant."); a label that brings its own article keeps it ("The moon.")."""
    name = label.strip()
    article = _ARTICLE_SLOT.match(template)
    if article is None:
        return template.format(name)
    rest = template[article.end() :]
    phrase = name if _ARTICLE.match(name + " ") else f"{indefinite_article(name)} {name}"
    return f"{phrase[0].upper()}{phrase[1:]}" + rest
