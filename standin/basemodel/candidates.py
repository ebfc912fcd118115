"""Compare candidate base models on short budgets: ``python -m standin.basemodel.candidates``.

Each candidate (an image-tower shape and training recipe) is built with the same seed and
data, then measured on *validation* renderings (never the held-out test renderings) and by
the robustness reference correction. The table is written to
``standin/basemodel/release/candidates.json`` and shown on the model card.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from standin.basemodel.builder import build_base_model
from standin.basemodel.card import read_build_info
from standin.basemodel.recipe import BASE_VISION, TrainingRecipe
from standin.basemodel.release import RELEASE_DIR
from standin.factory import VisionShape

CANDIDATES: dict[str, TrainingRecipe] = {
    "w192-L4-H8-p8": TrainingRecipe(vision=VisionShape(32, 8, 192, 768, 4, 8)),
    "w256-L6-H8-p8": TrainingRecipe(vision=VisionShape(32, 8, 256, 1024, 6, 8)),
    "w192-L4-H8-p4": TrainingRecipe(vision=VisionShape(32, 4, 192, 768, 4, 8)),
    # Twice as deep: the VLM's read layer (-2) sits 7/8 of the way up instead of 3/4, nearer
    # LLaVA-1.5's 23/24 (the VLM probe of bench/results/vlm-choose/deeper-tower/).
    "w192-L8-H8-p8": TrainingRecipe(vision=VisionShape(32, 8, 192, 768, 8, 8)),
    # Twice as wide (heads still an eighth of a layer): more room per read token.
    "w384-L4-H8-p8": TrainingRecipe(vision=VisionShape(32, 8, 384, 1536, 4, 8)),
    "default": TrainingRecipe(vision=BASE_VISION),
}


def candidate_row(name: str, model_dir: Path, minutes_budget: float) -> dict:
    """The comparison figures of one built candidate."""
    info = read_build_info(model_dir)
    validation = {key: value["accuracy"] for key, value in info["zero_shot_validation"].items()}
    reference = info["reference"].get("validation", {})
    return {
        "name": name,
        "vision": info["recipe"]["vision"],
        "steps": info["recipe"]["steps"],
        "batch_size": info["recipe"]["batch_size"],
        "train_seconds": info["train_seconds"],
        "budget_minutes": minutes_budget,
        "validation_accuracy": validation,
        "reference": reference,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--out", type=Path, default=Path("build/candidates"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", type=Path, default=RELEASE_DIR / "candidates.json")
    args = parser.parse_args(argv)
    rows = json.loads(args.table.read_text()) if args.table.is_file() else []
    for name in args.names:
        recipe = replace(CANDIDATES[name], steps=args.steps)
        started = time.perf_counter()
        model_dir = build_base_model(
            args.out / f"{name}-{args.steps}", recipe=recipe, threads=args.threads
        )
        row = candidate_row(name, model_dir, (time.perf_counter() - started) / 60)
        rows = [r for r in rows if (r["name"], r["steps"]) != (name, args.steps)] + [row]
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(json.dumps(rows, indent=1) + "\n")
        print(json.dumps(row, indent=1), flush=True)


if __name__ == "__main__":
    main()
