"""Cost of one update per method on a ViT-shaped image encoder (random weights).

Every method runs in its own fresh process (so peak memory is its own), rounds interleave the
methods (so machine noise hits all of them alike), and ratios against full-ft come from the
same run. Shapes: ``vit-b16`` (ViT-B/16 at 224 px, the default) and ``vit-l14-336`` (CLIP
ViT-L/14 at 336 px: LLaVA-1.5's vision tower). Writes bench/results/cost.md and cost.json on
CPU with the default shape; other runs write cost-<gpu->-<shape>[-fp32].md/.json beside them.

    python -m bench.cost.run [--rounds 2] [--steps 4] [--batch-size 8]
    python -m bench.cost.run --shape vit-l14-336 --device cuda [--mixed-precision auto]

``--vlm`` runs the VLM section instead (bench/cost/vlm_section.py): an update of a VLM's vision
tower per training objective and anchor terms, against a CLIP-objective one. On CPU the
stand-in VLM, written into cost.md/cost.json beside the tower's results (which a later run
without ``--vlm`` keeps); with ``--device cuda`` a LLaVA-1.5-7B-shaped model (random weights)
into cost-gpu-llava-1.5-7b.md/.json:

    python -m bench.cost.run --vlm [--rounds 3] [--vlm-steps 20] [--vlm-warmup-steps 2]
    python -m bench.cost.run --vlm --device cuda --rounds 1 --vlm-steps 10

The 7B rows at the service's batch sizes (8 examples, 16 anchors a step, each a ~600-token
sequence through the language model for the answer terms) may need more than an H100's memory;
a row that runs out is recorded as failed, and ``--batch-size``/``--anchor-batch-size`` apply.

On CUDA, peak memory is ``torch.cuda.max_memory_allocated`` during the update and step times
are taken after ``torch.cuda.synchronize``; ``--mixed-precision`` is the worker's setting of
the same name (``auto``: bfloat16 autocast on CUDA; ``off``: float32).
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

from bench.cost.vlm_measure import LLAVA_7B, STANDIN, VLM_MODELS
from bench.cost.vlm_section import JSON_KEY, kept_section, run_section
from standin.factory import (
    VIT_B16_VISION,
    VIT_L14_336_VISION,
    VisionShape,
    build_dual_encoder,
    save_model_directory,
)
from workers.engine.precision import MIXED_PRECISION_MODES

METHODS = ["full-ft", "lorsu", "lorsu-rand", "lorsu-aah", "lora", "spu"]
RESULTS = Path(__file__).resolve().parents[1] / "results"
# name: (shape, title, projection dim of the dual encoder around it)
SHAPES: dict[str, tuple[VisionShape, str, int]] = {
    "vit-b16": (VIT_B16_VISION, "ViT-B/16-shaped image encoder", 512),
    "vit-l14-336": (
        VIT_L14_336_VISION,
        "LLaVA-1.5-shaped vision tower: CLIP ViT-L/14 at 336 px",
        768,
    ),
}
SMALL_VISION = VisionShape(
    image_size=64,
    patch_size=16,
    hidden_size=128,
    intermediate_size=512,
    num_layers=2,
    num_heads=4,
)
TARGETS = {  # LoRSU / full-ft
    "optimizer_state_bytes": 0.15,
    "seconds_per_step": 0.85,
    "peak_memory_bytes": 0.75,
}
# Peak memory / full-ft's, per method.
PEAK_MEMORY_TARGETS = {"lorsu": 0.65, "lora": 0.75}
# Columns of the per-phase peak-memory table (measure.py records these and setup, anchors).
PHASES = ["load", "prepare", "training", "merge", "snapshot"]


def build_model(directory: Path, vision: VisionShape, projection_dim: int = 512) -> Path:
    model, tokenizer = build_dual_encoder(
        vision=vision, text="tiny", projection_dim=projection_dim, seed=0
    )
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
        "--device",
        args.device,
        "--mixed-precision",
        args.mixed_precision,
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(
            f"{method} failed (exit {finished.returncode}):\n{finished.stderr[-4000:]}"
        )
    line = next(line for line in finished.stdout.splitlines() if line.startswith("RESULT "))
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
            "peak_memory_by_phase": {
                phase: statistics.median(run["peak_memory_by_phase"][phase] for run in mine)
                for phase in mine[0]["peak_memory_by_phase"]
            },
        }
    return summary


def command_of(args: argparse.Namespace) -> str:
    """The command line that reproduces a run (options at their defaults left out)."""
    parts = ["python -m bench.cost.run"]
    if args.small:
        parts.append("--small")
    elif args.shape != "vit-b16":
        parts.append(f"--shape {args.shape}")
    if args.device != "cpu":
        parts.append(f"--device {args.device} --mixed-precision {args.mixed_precision}")
    parts.append(
        f"--rounds {args.rounds} --steps {args.steps} --batch-size {args.batch_size} "
        f"--threads {args.threads}"
    )
    return " ".join(parts)


def results_stem(args: argparse.Namespace) -> str:
    """cost (CPU, ViT-B/16), cost-small, cost-<shape>, cost-gpu-<shape>[-fp32]."""
    parts = ["cost"]
    if args.device != "cpu":
        parts.append("gpu")
    if args.small:
        parts.append("small")
    elif args.shape != "vit-b16" or args.device != "cpu":
        parts.append(args.shape)
    if args.device != "cpu" and args.mixed_precision == "off":
        parts.append("fp32")
    return "-".join(parts)


def machine_line(runs: list[dict], args: argparse.Namespace) -> str:
    first = runs[0]
    if args.device == "cpu":
        return f"Machine: {platform.machine()}, {args.threads} torch threads, CPU"
    precisions = sorted({run["mixed_precision"] for run in runs})
    return (
        f"Machine: {first['device_name']} ({args.device}), CUDA {first['cuda']}, "
        f"torch {first['torch']}, transformers {first['transformers']}; "
        f"autocast {'/'.join(precisions)} (--mixed-precision {args.mixed_precision}), "
        f"TF32 matmul {'on' if first['tf32_matmul'] else 'off'}"
    )


def render(
    summary: dict[str, dict], args: argparse.Namespace, seconds: float, runs: list[dict]
) -> str:
    full = summary["full-ft"]
    title = "tiny smoke-run encoder" if args.small else SHAPES[args.shape][1]
    if args.device == "cpu":
        peak = (
            "Peak memory = peak resident memory of the method's own process during the update "
            "(model weights included)."
        )
    else:
        peak = (
            "Peak memory = torch.cuda.max_memory_allocated of the method's own process during "
            "the update (the allocator's peak, model weights included); step times are taken "
            "after torch.cuda.synchronize."
        )
    lines = [
        f"# Update cost per method ({title}, random weights)",
        "",
        f"Command: `{command_of(args)}`  ",
        f"{machine_line(runs, args)}; "
        f"batch {args.batch_size}; "
        f"median over {args.rounds} interleaved rounds x {args.steps - 1} steady steps; "
        f"benchmark wall time {seconds / 60:.1f} min.  ",
        f"{peak} Ratios are against full-ft in the same run.",
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
    lines += [
        "",
        "## Peak memory per phase",
        "",
        "The same measure as the peak above, within each phase: model load; prepare (the "
        "importance pass and the wrappers, where a method has them); training (the optimizer "
        "steps); merge; snapshot (the new encoder state and its delta against the parent). "
        "The update's peak is the largest of prepare, training and merge (and its setup).",
        "",
        "| method | " + " | ".join(PHASES) + " |",
        "|---|" + "---|" * len(PHASES),
    ]
    for method, row in summary.items():
        phases = row["peak_memory_by_phase"]
        lines.append(
            f"| {method} | "
            + " | ".join(f"{phases[phase] / 2**30:.2f} GiB" for phase in PHASES)
            + " |"
        )
    lines += ["", "## Peak memory against its targets (per method)", ""]
    for method, target in PEAK_MEMORY_TARGETS.items():
        ratio = summary[method]["peak_memory_bytes"] / full["peak_memory_bytes"]
        verdict = "met" if ratio <= target else f"MISSED by {ratio - target:.2f}"
        lines.append(f"- {method}: {ratio:.3f} x full-ft (target <= {target}) - {verdict}")
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
    parser.add_argument("--shape", choices=sorted(SHAPES), default="vit-b16")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION_MODES,
        default="auto",
        help="autocast of the training passes (the worker's setting; CUDA only)",
    )
    parser.add_argument("--vlm", action="store_true", help="the VLM section instead (see above)")
    parser.add_argument(
        "--vlm-model",
        choices=VLM_MODELS,
        help=f"{STANDIN} (the default on CPU) or {LLAVA_7B} (CUDA only; its default there)",
    )
    parser.add_argument(
        "--vlm-configurations", help="comma-separated (default: all; a core set for the 7B)"
    )
    parser.add_argument("--vlm-steps", type=int, default=20, help="measured steps per update")
    parser.add_argument("--vlm-warmup-steps", type=int, default=2)
    parser.add_argument("--anchor-batch-size", type=int, default=16, help="anchors per step")
    args = parser.parse_args()
    if args.vlm:
        if args.vlm_model is None:
            args.vlm_model = LLAVA_7B if args.device == "cuda" else STANDIN
        print(run_section(args, RESULTS))
        return
    vision, _, projection_dim = SHAPES[args.shape]
    if args.small:
        vision = SMALL_VISION
    started = time.perf_counter()
    runs: list[dict] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = results_stem(args)
    # Every finished run is kept here at once, so a run cut short leaves what it measured.
    partial = RESULTS / f"{stem}.partial.json"
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = build_model(Path(scratch) / args.shape, vision, projection_dim)
        jobs = [(round_, method) for round_ in range(args.rounds) for method in METHODS]
        for _, method in tqdm(jobs, desc="cost benchmark", unit="run"):
            runs.append(run_one(model_dir, method, args))
            partial.write_text(json.dumps({"command": command_of(args), "runs": runs}, indent=2))
    summary = summarise(runs)
    seconds = time.perf_counter() - started
    report = render(summary, args, seconds, runs)
    # The VLM section (--vlm) of these files stays as it is.
    vlm_section, vlm_data = kept_section(RESULTS, stem)
    data = {"command": command_of(args), "summary": summary, "runs": runs}
    if vlm_data is not None:
        data[JSON_KEY] = vlm_data
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2))
    (RESULTS / f"{stem}.md").write_text(report + ("\n" + vlm_section if vlm_section else ""))
    partial.unlink(missing_ok=True)
    print(report)


if __name__ == "__main__":
    main()
