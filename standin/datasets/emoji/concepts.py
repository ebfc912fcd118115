"""The curated emoji concepts: visually distinct things with plain names and keywords.

Taken from emojibase (CLDR English labels and tags): animals, plants, food and drink,
vehicles, sports and musical instruments. Dropped: faces and people (skin-tone, gendered and
role variants), flags, keycaps, clocks and other symbols, "oncoming" vehicle variants, and a
"<animal> face" when the whole animal is also a concept (near-identical captions). Every kept
concept has artwork in all three styles.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from standin.datasets.emoji.sources import STYLES, artwork_file, package_directory

# emojibase subgroup keys kept, in this order (the concept order follows emojibase's).
KEPT_SUBGROUPS = (
    "animal-mammal",
    "animal-bird",
    "animal-amphibian",
    "animal-reptile",
    "animal-marine",
    "animal-bug",
    "plant-flower",
    "plant-other",
    "food-fruit",
    "food-vegetable",
    "food-prepared",
    "food-asian",
    "food-sweet",
    "drink",
    "transport-ground",
    "transport-water",
    "transport-air",
    "sport",
    "game",
    "musical-instrument",
)
_DROPPED_PREFIXES = ("oncoming ",)


@dataclass(frozen=True)
class EmojiConcept:
    """One concept: its emojibase hexcode, caption name and keywords."""

    hexcode: str
    name: str
    keywords: tuple[str, ...]
    subgroup: str


def _caption_name(label: str) -> str:
    # CLDR labels use typographic apostrophes and the odd colon ("family: man, woman").
    name = label.replace("\u2019", "'").lower()
    return re.sub(r"\s+", " ", name).strip()


@lru_cache(maxsize=1)
def emoji_concepts() -> tuple[EmojiConcept, ...]:
    """The curated concepts in emojibase order (the same list on every machine)."""
    directory = package_directory("emojibase") / "en"
    entries = json.loads((directory / "data.json").read_text())
    messages = json.loads((directory / "messages.json").read_text())
    subgroup_keys = {group["order"]: group["key"] for group in messages["subgroups"]}
    candidates: list[EmojiConcept] = []
    for entry in entries:
        subgroup = subgroup_keys.get(entry.get("subgroup", -1))
        if subgroup not in KEPT_SUBGROUPS:
            continue
        name = _caption_name(entry["label"])
        if name.startswith(_DROPPED_PREFIXES) or not re.fullmatch(r"[a-z -]+", name):
            continue
        keywords = tuple(
            _caption_name(tag) for tag in entry.get("tags", []) if _caption_name(tag) != name
        )
        candidates.append(EmojiConcept(entry["hexcode"], name, keywords, str(subgroup)))
    names = {concept.name for concept in candidates}
    kept = [
        concept
        for concept in candidates
        if not (concept.name.endswith(" face") and concept.name.removesuffix(" face") in names)
        and all(artwork_file(style, concept.hexcode) is not None for style in STYLES)
    ]
    if len({concept.name for concept in kept}) != len(kept):
        raise ValueError("two curated emoji concepts share a name")
    return tuple(kept)
