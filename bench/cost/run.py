"""Cost of one update per method on a ViT-B/16-shaped image encoder (random weights).

Every method runs in its own fresh process (so peak memory is its own), rounds interleave the
methods (so machine noise hits all of them alike), and ratios against full-ft come from the
same run. Writes bench/results/cost.md and cost.json.

    python -m bench.cost.run [--rounds 2] [--steps 4] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from service.modelling.factory import (
    VIT_B16_VISION,
    VisionShape,
    build_dual_encoder,
    save_model_directory,
)

METHODS = ["full-ft", "lorsu", "lorsu-rand", "lorsu-aah", "lora", "spu"]
RESULTS = Path(__file__).resolve().parents[1] / "results"
TARGETS = {  # LoRSU / full-ft, from the update-engine issue
    "optimizer_state_bytes": 0.15,
    "seconds_per_step": 0.85,
    "peak_memory_bytes": 0.75,
}


def build_model(directory: Path, vision: VisionShape) -> Path:
    model, tokenizer = build_dual_encoder(vision=vision, text="tiny", projection_dim=512, seed=0)
    return save_model_directory(model, tokenizer, directory, image_size=vision.image_size)


def run_one(model_dir: Path, method: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.cost.measure",
        "--model-dir",
        str(model_dir),
        "--method",
        method,
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def summarise(runs: list[dict]) -> dict[str, dict]:
    summary: dict[str, dict] = {}
    for method in METHODS:
        mine = [run for run in runs if run["method"] == method]
        summary[method] = {
            "seconds_per_step": statistics.median(run["seconds_per_step"] for run in mine),
            "peak_memory_bytes": statistics.median(run["peak_memory_bytes"] for run in mine),
            "prepare_seconds": statistics.median(run["prepare_seconds"] for run in mine),
            "trainable_parameters": mine[0]["trainable_parameters"],
            "optimizer_state_bytes": mine[0]["optimizer_state_bytes"],
            "delta_bytes": mine[0]["delta_bytes"],
            "full_snapshot_bytes": mine[0]["full_snapshot_bytes"],
        }
    return summary


def render(summary: dict[str, dict], args: argparse.Namespace, seconds: float) -> str:
    full = summary["full-ft"]
    lines = [
        "# Update cost per method (ViT-B/16-shaped image encoder, random weights)",
        "",
        f"Command: `python -m bench.cost.run --rounds {args.rounds} --steps {args.steps} "
        f"--batch-size {args.batch_size} --threads {args.threads}`  ",
        f"Machine: {platform.machine()}, {args.threads} torch threads, CPU; "
        f"batch {args.batch_size}; "
        f"median over {args.rounds} interleaved rounds x {args.steps - 1} steady steps; "
        f"benchmark wall time {seconds / 60:.1f} min.  ",
        "Peak memory = peak resident memory of the method's own process during the update "
        "(model weights included). Ratios are against full-ft in the same run.",
        "",
        "| method | s/step | x full-ft | peak memory | x full-ft | importance pass s "
        "| trainable params | optimizer state | x full-ft | delta | x full snapshot |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, row in summary.items():
        lines.append(
            f"| {method} | {row['seconds_per_step']:.2f} | "
            f"{row['seconds_per_step'] / full['seconds_per_step']:.2f} | "
            f"{row['peak_memory_bytes'] / 2**30:.2f} GiB | "
            f"{row['peak_memory_bytes'] / full['peak_memory_bytes']:.2f} | "
            f"{row['prepare_seconds']:.2f} | {row['trainable_parameters']:,} | "
            f"{row['optimizer_state_bytes'] / 2**20:.1f} MiB | "
            f"{row['optimizer_state_bytes'] / full['optimizer_state_bytes']:.3f} | "
            f"{row['delta_bytes'] / 2**20:.1f} MiB | "
            f"{row['delta_bytes'] / row['full_snapshot_bytes']:.3f} |"
        )
    lorsu = summary["lorsu"]
    lines += ["", "## LoRSU against the targets", ""]
    for key, target in TARGETS.items():
        ratio = lorsu[key] / full[key]
        verdict = "met" if ratio <= target else f"MISSED by {ratio - target:.2f}"
        lines.append(f"- {key}: {ratio:.3f} x full-ft (target <= {target}) - {verdict}")
    delta_ratio = lorsu["delta_bytes"] / lorsu["full_snapshot_bytes"]
    verdict = "met" if delta_ratio <= 0.15 else f"MISSED by {delta_ratio - 0.15:.2f}"
    lines.append(
        f"- delta size: {delta_ratio:.3f} x a full encoder snapshot (target <= 0.15) - {verdict}"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="a tiny encoder, for a smoke run")
    args = parser.parse_args()
    vision = (
        VisionShape(
            image_size=64,
            patch_size=16,
            hidden_size=128,
            intermediate_size=512,
            num_layers=2,
            num_heads=4,
        )
        if args.small
        else VIT_B16_VISION
    )
    started = time.perf_counter()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = build_model(Path(scratch) / "vit-b16", vision)
        jobs = [(round_, method) for round_ in range(args.rounds) for method in METHODS]
        for _, method in tqdm(jobs, desc="cost benchmark", unit="run"):
            runs.append(run_one(model_dir, method, args))
    summary = summarise(runs)
    seconds = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-small" if args.small else ""
    (RESULTS / f"cost{suffix}.json").write_text(
        json.dumps({"summary": summary, "runs": runs}, indent=2)
    )
    (RESULTS / f"cost{suffix}.md").write_text(render(summary, args, seconds))
    print(render(summary, args, seconds))


if __name__ == "__main__":
    main()
