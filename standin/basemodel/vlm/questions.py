"""The templated questions and answers the stand-in VLM learns, per emoji concept.

Every question is one :func:`catalogue.captions.qa_statement` turns into a sensible CLIP
statement, so a user's question/answer correction of this VLM trains the very caption the
label corrections use:

- "What is in the picture?" (and two other phrasings) -> "A cat." (``answer_key`` of the answer
  is the concept's label: "cat");
- yes/no questions about the subject, derived from the concept's emojibase subgroup: "Is it an
  animal?" -> "Yes." for an animal, "No." for a vehicle.

A yes/no question is only asked where its answer is clear from the picture: a category lists the
names inside its subgroups that are clearly not members ("Is it a vehicle?" of a bus stop is
"No.") and those whose answer is unclear ("Is it an animal?" of paw prints), and the subgroups
whose concepts are never asked ("Is it food?" of a chicken, "Is it a plant?" of a banana).
Only emoji concepts: the base model's Fashion-MNIST and texture classes are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from catalogue.captions import WHAT_IS_SHOWN_QUESTION
from standin.datasets.emoji import EmojiConcept, emoji_concepts

# The question the service asks a generative model about a labelled image, then further
# phrasings trained alongside (the card's figures use the first).
WHAT_QUESTIONS = (WHAT_IS_SHOWN_QUESTION, "What is in the image?", "What is this?")
YES = "Yes."
NO = "No."
# Names read without an article: plurals and things not counted one by one.
_WITHOUT_ARTICLE = frozenset(
    {
        "paw prints",
        "grapes",
        "cherries",
        "blueberries",
        "peanuts",
        "beans",
        "pancakes",
        "french fries",
        "popcorn",
        "butter",
        "salt",
        "bread",
        "bacon",
        "cooked rice",
        "curry rice",
        "spaghetti",
        "sushi",
        "oden",
        "dango",
        "custard",
        "candy",
        "canned food",
        "sake",
        "mate",
        "bubble tea",
        "ice",
        "clinking beer mugs",
        "clinking glasses",
        "pouring liquid",
        "tennis",
        "bowling",
        "lacrosse",
        "ping pong",
        "badminton",
        "field hockey",
        "ice hockey",
        "american football",
        "skis",
        "maracas",
        "nesting dolls",
        "flower playing cards",
        "construction",
        "cooking",
        "leafy green",
        "shaved ice",
        "ice cream",
        "soft ice cream",
    }
)
# Names starting with a vowel letter that is said as a consonant ("a unicorn").
_CONSONANT_SOUND = ("uni", "use", "one")


@dataclass(frozen=True)
class YesNoCategory:
    """One yes/no question about the subject and which concepts it is asked of."""

    question: str
    subgroup_prefixes: tuple[str, ...]  # concepts of these subgroups are members ("Yes.")
    not_members: frozenset[str] = frozenset()  # names in those subgroups that are not ("No.")
    unclear: frozenset[str] = frozenset()  # names never asked this question
    unclear_subgroups: tuple[str, ...] = ()  # subgroup prefixes never asked this question

    def truth(self, concept: EmojiConcept) -> bool | None:
        """Whether ``concept`` is a member; None where the answer is not clear."""
        if concept.name in self.unclear or concept.subgroup.startswith(self.unclear_subgroups):
            return None
        in_subgroup = concept.subgroup.startswith(self.subgroup_prefixes)
        return in_subgroup and concept.name not in self.not_members


CATEGORIES = (
    YesNoCategory(
        "Is it an animal?",
        ("animal-",),
        unclear=frozenset(
            {"paw prints", "pig nose", "feather", "wing", "spider web", "spiral shell"}
            | {"coral", "microbe"}
        ),
    ),
    YesNoCategory(
        "Is it a plant?",
        ("plant-",),
        not_members=frozenset({"empty nest", "nest with eggs"}),
        unclear=frozenset({"mushroom"}),
        # Fruit and vegetables are plants as well as food.
        unclear_subgroups=("food-fruit", "food-vegetable"),
    ),
    YesNoCategory(
        "Is it food?",
        ("food-",),
        # Animals, plants and drinks can be food or not, depending on who asks.
        unclear_subgroups=("animal-", "plant-", "drink"),
    ),
    YesNoCategory(
        "Is it a drink?",
        ("drink",),
        unclear=frozenset({"ice", "teapot"}),
        unclear_subgroups=("food-",),
    ),
    YesNoCategory(
        "Is it a vehicle?",
        ("transport-",),
        not_members=frozenset(
            {
                "station",
                "bus stop",
                "motorway",
                "railway track",
                "oil drum",
                "fuel pump",
                "wheel",
                "police car light",
                "horizontal traffic light",
                "vertical traffic light",
                "stop sign",
                "construction",
                "anchor",
                "ring buoy",
                "seat",
            }
        ),
        unclear=frozenset(
            {
                "roller skate",
                "skateboard",
                "kick scooter",
                "manual wheelchair",
                "motorized wheelchair",
                "parachute",
                "satellite",
                "sled",
                "skis",
                "ice skate",
            }
        ),
    ),
    YesNoCategory("Is it a musical instrument?", ("musical-instrument",)),
    YesNoCategory(
        "Is it used in sport?",
        ("sport",),
        # Games, vehicles (racing, sailing) and animals (horses) can be.
        unclear_subgroups=("game", "transport-", "animal-"),
    ),
)
YES_NO_QUESTIONS = tuple(category.question for category in CATEGORIES)


def article_answer(name: str) -> str:
    """The answer naming ``name``: "A cat.", "An ant.", "Grapes." (first letter capitalised)."""
    if name in _WITHOUT_ARTICLE:
        phrase = name
    elif name[0] in "aeiou" and not name.startswith(_CONSONANT_SOUND):
        phrase = f"an {name}"
    else:
        phrase = f"a {name}"
    return f"{phrase[0].upper()}{phrase[1:]}."


@dataclass(frozen=True)
class ConceptQuestions:
    """Everything the VLM is taught about one concept."""

    label: str
    what_answer: str
    yes_questions: tuple[str, ...]
    no_questions: tuple[str, ...]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (question, answer) pair: all what phrasings, then each yes/no question."""
        return [
            *((question, self.what_answer) for question in WHAT_QUESTIONS),
            *((question, YES) for question in self.yes_questions),
            *((question, NO) for question in self.no_questions),
        ]


@lru_cache(maxsize=1)
def concept_questions() -> dict[str, ConceptQuestions]:
    """The questions of every curated emoji concept, by label, in concept order."""
    table = {}
    for concept in emoji_concepts():
        truths = [(category.question, category.truth(concept)) for category in CATEGORIES]
        table[concept.name] = ConceptQuestions(
            label=concept.name,
            what_answer=article_answer(concept.name),
            yes_questions=tuple(question for question, truth in truths if truth is True),
            no_questions=tuple(question for question, truth in truths if truth is False),
        )
    return table


def question_answers(label: str) -> list[tuple[str, str]]:
    """A balanced set of (question, answer) pairs for ``label``, as the card measures them.

    "What is in the picture?", then the concept's yes question (if it has one) and one no
    question (if it has one; which one rotates over the concepts, so every category's "No."
    is asked). Raises ``KeyError`` for a label that is not a curated emoji concept.
    """
    questions = concept_questions()[label]
    pairs = [(WHAT_IS_SHOWN_QUESTION, questions.what_answer)]
    pairs += [(question, YES) for question in questions.yes_questions[:1]]
    if questions.no_questions:
        rotation = list(concept_questions()).index(label) % len(questions.no_questions)
        pairs.append((questions.no_questions[rotation], NO))
    return pairs
