"""The stand-in VLM's build facts (``build_info.json``) and model card (``MODEL_CARD.md``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalogue.captions import WHAT_IS_SHOWN_QUESTION
from standin.basemodel.card import SOURCES_TABLE
from standin.basemodel.vlm.questions import WHAT_QUESTIONS, YES_NO_QUESTIONS
from standin.basemodel.vlm.recipe import HELD_OUT_DATASET, VlmRecipe

BUILD_INFO_FILE = "build_info.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass
class VlmBuildInfo:
    """What was built, from what, how long it took and how well it answers."""

    seed: int
    recipe: VlmRecipe
    threads: int
    base_tower_sha256: str  # state_sha256 of the base image tower it was trained around
    trained_parameters: int
    vocabulary: int
    image_tokens: int
    train_images: int
    concepts: int
    final_loss: float
    # phase -> seconds ("data", "features", "training", "evaluation", "total")
    seconds: dict[str, float] = field(default_factory=dict)
    # dataset -> {"what": %, "yes": %, "no": %, "images": count}
    test_accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    validation_accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    test_limit_per_class: int | None = None
    notes: list[str] = field(default_factory=list)  # hand-written, kept across rebuilds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_command(info: dict[str, Any]) -> str:
    return (
        f"python -m standin.basemodel.vlm build --seed {info['seed']} "
        f"--steps {info['recipe']['steps']} --threads {info['threads']}"
    )


def _style(name: str) -> str:
    return "held out (never seen)" if name == HELD_OUT_DATASET else "training style"


def accuracy_table(accuracy: dict[str, dict[str, float]]) -> str:
    """Markdown rows: dataset, style, images, what / yes / no accuracy."""
    lines = [
        f'| dataset | style | images | "{WHAT_IS_SHOWN_QUESTION}" | yes questions | no questions |',
        "|---|---|---|---|---|---|",
    ]
    for name, figures in accuracy.items():
        lines.append(
            f"| {name} | {_style(name)} | {int(figures['images'])} | {figures['what']:.1f}% "
            f"| {figures['yes']:.1f}% | {figures['no']:.1f}% |"
        )
    return "\n".join(lines)


def card_text(info: dict[str, Any]) -> str:
    """The model card in markdown from the build facts."""
    recipe = info["recipe"]
    language = recipe["language"]
    seconds = info["seconds"]
    limit = info.get("test_limit_per_class")
    test_images = "all 10" if limit is None else f"{limit}"
    sha = info.get("weights_sha256", "")
    what = ", ".join(f'"{question}"' for question in WHAT_QUESTIONS)
    yes_no = ", ".join(f'"{question}"' for question in YES_NO_QUESTIONS)
    timing = ", ".join(f"{phase} {value:.0f} s" for phase, value in seconds.items())
    augmented = (
        f" plus {recipe['augmented_per_concept']} augmented renderings per concept and style"
        if recipe["augmented_per_concept"]
        else ""
    )
    notes = "".join(f"- {note}\n" for note in info.get("notes", []))
    notes_section = f"\n## Notes\n\n{notes}" if notes else ""
    return f"""# Stand-in VLM v1 (vlm-correct)

A LLaVA-1.5-shaped vision-language model (`LlavaForConditionalGeneration`) built offline here by
`{build_command(info)}`: {seconds["total"] / 60:.1f} min of wall time on
{info["threads"]} torch thread(s) of a 2-core machine ({timing}; the budget is 15 min); seed
{info["seed"]}; final loss {info["final_loss"]:.3f}.

- Vision tower: the image tower of the stand-in base model v2 (`standin/basemodel/release/`,
  see its `MODEL_CARD.md`), unchanged and frozen while this model trained. As in LLaVA-1.5 the
  language model sees the tower's second-to-last hidden state without the class token:
  {info["image_tokens"]} image tokens per picture. Digest of the tower's tensors (checked when
  the model is assembled): `{info["base_tower_sha256"]}`.
- Projector: LLaVA-1.5's two-layer MLP (GELU), trained here from random initialisation.
- Language model: Llama, width {language["hidden_size"]}, MLP {language["intermediate_size"]},
  {language["num_layers"]} layers, {language["num_heads"]} heads, trained here from random
  initialisation; byte-level BPE tokenizer of {info["vocabulary"]} tokens trained on the prompts
  and answers. {info["trained_parameters"] / 1e6:.2f}M trained parameters (projector, language
  model, `lm_head`).
- Questions (`standin/basemodel/vlm/questions.py`), in LLaVA-1.5's prompt format: {what}
  -> "A cat." (the concept's name); yes/no questions about the subject, answered from the
  concept's emojibase subgroup and asked only where the answer is clear: {yes_no}
  -> "Yes." / "No.".
- Training: teacher forcing, cross-entropy on the answer and end-of-sequence tokens only.
  {info["train_images"]} training images of {info["concepts"]} emoji concepts: the fixed training
  renderings of the Google Noto and Twemoji artwork{augmented}; the frozen tower's features of
  each computed once. Every image of a batch of {recipe["batch_size"]} is asked one question:
  {recipe["what_share"]:.0%} what it shows, the rest a yes/no question (each yes/no question
  answered "Yes." and "No." equally often).
  {recipe["steps"]} AdamW steps, learning rate {recipe["learning_rate"]} (warm-up
  {recipe["warmup_fraction"]:.0%}, cosine), weight decay {recipe["weight_decay"]} on matrices.
- Never shown during training: OpenMoji artwork (the held-out style) and every validation or
  test rendering.
- Weights: `{info.get("weights_file", "")}` (projector, language model, `lm_head`;
  safetensors), sha256 `{sha}`. The vision tower is not committed twice:
  `python -m standin.basemodel.vlm materialise OUT_DIR` joins it from the base model.

## Answer accuracy on held-out test renderings

Greedy answers of the assembled model through the serving path
(`service.modelling.vlm.VisionLanguageModel.answer`), {test_images} test renderings per concept
and style. Normalised exact match (`catalogue.captions.answer_key`: lower case, no
article, no final period). Per image: "What is in the picture?" (chance 1 in
{info["concepts"]}), the concept's yes question (where it has one) and one of its no questions
(`questions.question_answers`).

{accuracy_table(info["test_accuracy"])}

On validation renderings (what choices were made on; never the test renderings):

{accuracy_table(info["validation_accuracy"])}

## Limits

It knows the {info["concepts"]} curated emoji concepts and the templated questions above, no
more: another question ("How many legs does it have?") gets one of the trained answers (a
concept's name, "Yes." or "No.") whatever it asks, and other objects (the base model's
Fashion-MNIST and texture classes included) get a wrong concept's name. Its yes/no answers are
per question, not reasoned from the name it gives: it can name a pizza and still say "Yes." to
"Is it an animal?" (the note on yes/no balance gives the weakest questions). It names the
concept of a held-out OpenMoji drawing mostly wrong: that is the gap corrections of its vision
tower are for.
{notes_section}
## Data sources, licences and attributions

The same artwork as the base model (its card lists versions and licences in full):

{SOURCES_TABLE}
| emojibase-data (CLDR names, tags) | 17.0.0 | names; subgroups for the yes/no answers | MIT |

These weights were trained on features of the Google Noto and Twemoji artwork; they contain
no image, but credit the artists as the licences ask (Twemoji: CC-BY-4.0 attribution).
OpenMoji images are only ever rasterised on the machine that evaluates the model.
"""


def write_vlm_card(release_dir: Path, info: dict[str, Any]) -> None:
    """Write ``MODEL_CARD.md`` from the build facts."""
    (Path(release_dir) / CARD_FILE).write_text(card_text(info))
