"""The model card (``README.md``) of an exported checkpoint: what the checkpoint is (model,
version, parent, method), what its update measured, and the base model's licence and card.

The card names checkpoint directories by their name only, never by a server path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.db.tables import Model, Version
from service.db.values import ModelFamily
from service.exports.checkpoint import BASE_CARD_COPY, base_card

# The transformers class that loads each family's export (the card's loading snippet).
_LOADER = {
    ModelFamily.CLIP: "CLIPModel",
    ModelFamily.SIGLIP: "SiglipModel",
    ModelFamily.VISION_TEXT_DUAL_ENCODER: "VisionTextDualEncoderModel",
    ModelFamily.LLAVA: "LlavaForConditionalGeneration",
}


@dataclass(frozen=True)
class CardFacts:
    """What the card says beyond the version row."""

    model: Model
    version: Version
    parent: Version | None
    active: bool
    base_dir: Path


def base_licence(base_dir: Path) -> str | None:
    """The ``license:`` of the base card's YAML front matter (Hugging Face's card format),
    or None when the base has no card or its card states none."""
    card = base_card(base_dir)
    if card is None:
        return None
    lines = card.read_text(errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip().strip("'\"")
    return None


def model_card(facts: CardFacts) -> str:
    """The exported checkpoint's ``README.md``."""
    model, version = facts.model, facts.version
    licence = base_licence(facts.base_dir)
    header = ["---", "library_name: transformers", "tags:", "- vlm-correct"]
    if licence is not None:
        header.append(f"license: {licence}")
    header.append("---")
    loader = _LOADER.get(model.family, "AutoModel")
    parent = (
        f"version {facts.parent.number} (`{facts.parent.id}`)"
        if facts.parent is not None
        else "none: this is the base checkpoint"
    )
    rows = [
        ("model", f"{model.name} (`{model.id}`), family {model.family}"),
        ("version", f"{version.number} (`{version.id}`)"),
        ("parent", parent),
        ("method", version.method),
        ("created", version.created_at.isoformat()),
        ("active when exported", "yes" if facts.active else "no"),
        ("image-encoder sha256", f"`{version.content_sha256}`"),
        ("correction data hash", f"`{version.data_hash}`" if version.data_hash else "none"),
    ]
    parts = [
        "\n".join(header),
        f"# {model.name}, version {version.number}",
        "A checkpoint exported by vlm-correct. Only the image encoder (the vision tower) "
        "differs from the base checkpoint: it holds this version's weights, the base's with "
        "every correction up to this version merged in. Everything else (text tower, "
        "projector, language model, tokenizer, processor) is the base checkpoint's.",
        _table(("field", "value"), rows),
        "## Metrics (measured when the version was made)",
        _metrics(version),
        "## Base model",
        _base(facts.base_dir, licence),
        "## Loading",
        "```python\n"
        f"from transformers import AutoProcessor, {loader}\n\n"
        f'model = {loader}.from_pretrained("DIR")\n'
        'processor = AutoProcessor.from_pretrained("DIR")\n'
        "```",
    ]
    return "\n\n".join(parts) + "\n"


def _metrics(version: Version) -> str:
    evaluation = version.evaluation
    if evaluation is None:
        return "None: the base checkpoint is not an update."
    rows = [
        ("TI (target improvement, points)", _points(evaluation.ti)),
        ("CC (control change, points)", _points(evaluation.cc)),
        ("TI measured on", str(evaluation.ti_source)),
    ]
    if evaluation.answer_ti is not None or evaluation.answer_cc is not None:
        rows.append(("TI by generated answers", _points(evaluation.answer_ti)))
        rows.append(("CC by generated answers", _points(evaluation.answer_cc)))
    lines = [_table(("metric", "value"), rows)]
    if version.set_accuracies:
        sets = [
            (
                item.set_name,
                str(item.kind),
                f"{item.accuracy_before:.1f}%",
                f"{item.accuracy_after:.1f}%",
            )
            for item in version.set_accuracies
        ]
        lines.append(_table(("evaluation set", "kind", "accuracy before", "after"), sets))
    gate = version.gate_decision
    if gate is not None:
        verdict = "activated" if gate.activated else "held back"
        reasons = "; ".join(gate.reasons) if gate.reasons else "no reasons recorded"
        lines.append(f"Activation gate ({gate.policy}): {verdict} ({reasons}).")
    return "\n\n".join(lines)


def _base(base_dir: Path, licence: str | None) -> str:
    card = base_card(base_dir)
    stated = (
        f"Licence: **{licence}** (stated by the base checkpoint's card)."
        if licence is not None
        else "Licence: not stated by the base checkpoint; check the base model's terms "
        "before redistributing this checkpoint."
    )
    kept = (
        f" The base checkpoint's own card (attribution, training, limitations) is included "
        f"as `{BASE_CARD_COPY}`."
        if card is not None
        else ""
    )
    return f"Base checkpoint: `{base_dir.name}`. {stated}{kept}"


def _points(value: float | None) -> str:
    return "not measured" if value is None else f"{value:+.2f}"


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
