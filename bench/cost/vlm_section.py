"""The VLM section of the cost benchmark: an update of a VLM's vision tower per training
objective and anchor terms (``bench.cost.vlm_measure``), against a CLIP-objective update.

Every configuration runs in its own fresh process, the same examples and steps for all, rounds
interleaving the configurations; ratios are against ``clip/clip-anchors`` of the same run.
On CPU it measures the stand-in VLM (``bench.vlm.models``) and writes its section into
bench/results/cost.md and cost.json beside what is there; ``--vlm-model llava-1.5-7b`` (CUDA
only) measures a LLaVA-1.5-7B-shaped model with random weights into cost-gpu-llava-1.5-7b.*.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.continual.protocol import anchor_examples, session_examples
from bench.cost.vlm_measure import (
    BASELINE,
    BY_NAME,
    LLAVA_7B,
    STANDIN,
    UpdateInputs,
    not_on_cpu,
)
from bench.vlm.models import materialise_models
from bench.vlm.protocol import VlmSetting, qa_corrections
from catalogue.captions import WHAT_IS_SHOWN_QUESTION
from service.modelling.examples import ImageExample
from standin.datasets import load_dataset
from standin.factory import VIT_L14_336_VISION, build_dual_encoder, save_model_directory

# Where the section starts in cost.md (what the tower benchmark keeps when it rewrites the file).
HEADING = "## VLM: update cost per training objective and anchors"
JSON_KEY = "vlm"
GOAL = 2.0  # answer objective with its anchors / CLIP objective with its anchors, s/step
# The 7B rows' default configurations (device time is scarce) and anchors (the anchors' parent
# pass runs the 7B language model once per anchor; the steps sample anchor_batch_size of them).
# Its inputs are random images of the scenario's sizes (random_inputs).
LLAVA_7B_CONFIGURATIONS = ["clip/clip-anchors", "answer", "answer/defaults", "clip+answer/defaults"]
LLAVA_7B_ANCHORS = 128
SEED = 0


def scenario_inputs(seed: int = SEED) -> UpdateInputs:
    """The VLM scenario's first session (its concepts' renderings, each asked its questions),
    the other concepts' names as negative captions, and the scenario's anchors."""
    setting = VlmSetting().continual
    names = load_dataset(setting.target, "train", limit_per_class=1, seed=seed).class_names
    first = setting.session_groups(len(names))[0]
    own = {names[concept] for concept in first}
    return UpdateInputs(
        examples=qa_corrections(session_examples(setting, first, seed)),
        negative_labels=[name for name in names if name not in own],
        anchors=anchor_examples(),
    )


def random_inputs(
    images: int = 50, anchors: int = LLAVA_7B_ANCHORS, size: int = 336, seed: int = SEED
) -> UpdateInputs:
    """Inputs of the scenario's sizes (an image asked what it shows, a yes and a no question;
    labelled anchors) with random pixels: the 7B row needs none of the stand-in's datasets."""
    rng = np.random.default_rng(seed)

    def image() -> Image.Image:
        return Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))

    names = [f"concept {index}" for index in range(10)]
    examples = []
    for index in range(images):
        label, other = names[index % 10], names[(index + 1) % 10]
        picture = image()
        examples += [
            ImageExample(image=picture, question=question, answer=answer)
            for question, answer in [
                (WHAT_IS_SHOWN_QUESTION, f"A {label}."),
                (f"Is it a {label}?", "Yes."),
                (f"Is it a {other}?", "No."),
            ]
        ]
    return UpdateInputs(
        examples=examples,
        negative_labels=[f"other {index}" for index in range(40)],
        anchors=[ImageExample(image=image(), label=f"anchor {i % 20}") for i in range(anchors)],
    )


def configurations_of(args: argparse.Namespace) -> list[str]:
    if args.vlm_configurations:
        names = [name.strip() for name in args.vlm_configurations.split(",")]
    else:
        names = LLAVA_7B_CONFIGURATIONS if args.vlm_model == LLAVA_7B else list(BY_NAME)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown or BASELINE not in names:
        raise SystemExit(
            f"--vlm-configurations: unknown {unknown}; {BASELINE} (the baseline) is required; "
            f"known: {', '.join(BY_NAME)}"
        )
    return names


def results_stem(args: argparse.Namespace) -> str:
    """cost (CPU, the stand-in: a section of cost.md), else cost[-gpu]-<model>."""
    if args.device == "cpu" and args.vlm_model == STANDIN:
        return "cost"
    model = "vlm-standin" if args.vlm_model == STANDIN else args.vlm_model
    return "-".join(["cost", *(["gpu"] if args.device != "cpu" else []), model])


def run_one(configuration: str, args: argparse.Namespace, files: dict[str, Path]) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.cost.vlm_measure",
        "--configuration",
        configuration,
        "--model",
        args.vlm_model,
        "--inputs",
        str(files["inputs"]),
        "--pair-dir",
        str(files["pair"]),
        "--steps",
        str(args.vlm_steps),
        "--warmup-steps",
        str(args.vlm_warmup_steps),
        "--batch-size",
        str(args.batch_size),
        "--anchor-batch-size",
        str(args.anchor_batch_size),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        "--mixed-precision",
        args.mixed_precision,
    ]
    if "vlm" in files:
        command += ["--vlm-dir", str(files["vlm"])]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        # Kept as a row (a 7B configuration may run out of GPU memory where others fit).
        lines = finished.stderr.strip().splitlines() or [f"exit {finished.returncode}"]
        print(finished.stderr[-4000:], file=sys.stderr)
        return {"configuration": configuration, "error": lines[-1][:300]}
    line = next(line for line in finished.stdout.splitlines() if line.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


def summarise(runs: list[dict], names: list[str]) -> dict[str, dict]:
    summary: dict[str, dict] = {}
    for name in names:
        mine = [run for run in runs if run["configuration"] == name and "error" not in run]
        if not mine:
            failed = next(run for run in runs if run["configuration"] == name)
            summary[name] = {"error": failed["error"]}
            continue
        first = mine[0]
        summary[name] = {
            "objective": first["objective"],
            "anchor_weights": first["anchor_weights"],
            # Median over every steady step of every round.
            "seconds_per_step": statistics.median(
                seconds for run in mine for seconds in run["step_seconds"][run["warmup_steps"] :]
            ),
            "seconds_per_step_by_round": [run["seconds_per_step"] for run in mine],
            "train_seconds": statistics.median(run["train_seconds"] for run in mine),
            "steps": first["steps"],
            "prepare_seconds": statistics.median(run["prepare_seconds"] for run in mine),
            "peak_memory_bytes": statistics.median(run["peak_memory_bytes"] for run in mine),
            "added_memory_bytes": statistics.median(run["added_memory_bytes"] for run in mine),
            "trainable_parameters": first["trainable_parameters"],
            "vlm_parameters": first["vlm_parameters"],
            "anchors": first["anchors"],
            "examples": first["examples"],
        }
    return summary


def command_of(args: argparse.Namespace, names: list[str]) -> str:
    parts = ["python -m bench.cost.run --vlm"]
    default_model = LLAVA_7B if args.device != "cpu" else STANDIN
    if args.vlm_model != default_model:
        parts.append(f"--vlm-model {args.vlm_model}")
    if args.device != "cpu":
        parts.append(f"--device {args.device} --mixed-precision {args.mixed_precision}")
    if args.vlm_configurations:
        parts.append(f"--vlm-configurations {','.join(names)}")
    parts.append(
        f"--rounds {args.rounds} --vlm-steps {args.vlm_steps} "
        f"--vlm-warmup-steps {args.vlm_warmup_steps} --batch-size {args.batch_size} "
        f"--anchor-batch-size {args.anchor_batch_size} --threads {args.threads}"
    )
    return " ".join(parts)


def machine_line(runs: list[dict], args: argparse.Namespace) -> str:
    done = [run for run in runs if "error" not in run]
    first = done[0] if done else {}
    if args.device == "cpu":
        load = "/".join(f"{value:.1f}" for value in os.getloadavg())
        return (
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared; load average "
            f"1/5/15 min at the end {load}), {args.threads} torch threads, "
            f"torch {first.get('torch')}"
        )
    return (
        f"Machine: {first.get('device_name')} ({args.device}), CUDA {first.get('cuda')}, "
        f"torch {first.get('torch')}, transformers {first.get('transformers')}; autocast of "
        f"the tower {first.get('mixed_precision')} (--mixed-precision {args.mixed_precision})"
    )


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def render(
    summary: dict[str, dict],
    args: argparse.Namespace,
    names: list[str],
    runs: list[dict],
    seconds: float,
) -> str:
    base = summary[BASELINE]
    done = next((row for row in summary.values() if "error" not in row), {})
    anchors = max((row.get("anchors", 0) for row in summary.values()), default=0)
    model = (
        "the stand-in VLM (bench.vlm.models: 32 px tower of 4 blocks, 2-layer Llama)"
        if args.vlm_model == STANDIN
        else "a LLaVA-1.5-7B-shaped model with random weights (CLIP ViT-L/14-336 tower in "
        "float32, 7B Llama language model and projector in bfloat16)"
    )
    if args.vlm_model == STANDIN:
        inputs = (
            f"the VLM scenario's first session ({done.get('examples')} question/answer "
            f"corrections), its {anchors} anchors (bench.continual.protocol.anchor_examples)"
        )
    else:
        inputs = (
            f"{done.get('examples')} question/answer corrections and {anchors} labelled "
            "anchors on random images (vlm_section.random_inputs)"
        )
    if args.device == "cpu":
        peak = (
            "Peak memory = the process's peak resident memory during the update (weights, "
            "examples and anchors included); added = that peak above the resident memory at "
            "the update's start (the update's own memory)."
        )
    else:
        peak = (
            "Peak memory = torch.cuda.max_memory_allocated during the update (weights "
            "included); added = that peak above the allocated memory at the update's start."
        )
    lines = [
        HEADING,
        "",
        f"LoRSU at its defaults on {model}, {done.get('vlm_parameters', 0):,} parameters; "
        f"{inputs}; batch {args.batch_size}, {args.anchor_batch_size} anchors per step; "
        f"{args.vlm_warmup_steps} warm-up + {args.vlm_steps} measured steps per update, every "
        f"configuration in its own process, rounds interleaved; {seconds / 60:.1f} min.",
        "",
        f"Command: `{command_of(args, names)}`  ",
        f"{machine_line(runs, args)}; s/step = median over {args.rounds} rounds x "
        f"{args.vlm_steps} steady steps.  ",
        f"{peak} Ratios are against `{BASELINE}` (CLIP objective, CLIP anchors) of the same "
        "run; prepare = setup, the anchors' parent pass and the importance pass.",
        "",
        "| configuration | objective | anchor terms | s/step | x clip/clip-anchors | "
        "s/step by round | train s (steps) | prepare s | peak memory | x | added memory | x |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        row, configuration = summary[name], BY_NAME[name]
        if "error" in row:
            lines.append(
                f"| {name} | {configuration.objective} | {configuration.anchors} | "
                f"failed: {row['error']} |" + " |" * 8
            )
            continue
        rounds = ", ".join(f"{value:.3f}" for value in row["seconds_per_step_by_round"])
        lines.append(
            f"| {name} | {row['objective']} | {configuration.anchors} | "
            f"{row['seconds_per_step']:.3f} | "
            f"{row['seconds_per_step'] / base['seconds_per_step']:.2f} | {rounds} | "
            f"{row['train_seconds']:.1f} ({row['steps']}) | {row['prepare_seconds']:.1f} | "
            f"{_gib(row['peak_memory_bytes'])} | "
            f"{row['peak_memory_bytes'] / base['peak_memory_bytes']:.2f} | "
            f"{_gib(row['added_memory_bytes'])} | "
            f"{row['added_memory_bytes'] / max(1, base['added_memory_bytes']):.2f} |"
        )
    lines += [
        "",
        "Goal: an answer-objective update costs at most 2x a CLIP-objective update "
        "(anchors included, same steps).",
        "",
    ]
    answer = summary.get("answer/defaults", {})
    if "error" not in base and "seconds_per_step" in answer:
        ratio = answer["seconds_per_step"] / base["seconds_per_step"]
        verdict = "met" if ratio <= GOAL else f"MISSED by {ratio - GOAL:.2f}"
        memory = answer["peak_memory_bytes"] / base["peak_memory_bytes"]
        mine, theirs = answer["seconds_per_step_by_round"], base["seconds_per_step_by_round"]
        rounds = (  # paired only where every round of both finished
            " (round by round: "
            + ", ".join(f"{a / b:.2f}" for a, b in zip(mine, theirs, strict=True))
            + ")"
            if len(mine) == len(theirs)
            else ""
        )
        lines.append(
            f"- answer/defaults: {ratio:.2f} x clip/clip-anchors s/step (goal <= {GOAL}) - "
            f"{verdict}{rounds}; peak memory {memory:.2f} x"
        )
    return "\n".join(lines) + "\n"


def without_section(markdown: str) -> str:
    """``markdown`` up to this section (all of it when it has none)."""
    head, _, _ = markdown.partition(HEADING)
    return head.rstrip() + "\n"


def kept_section(results: Path, stem: str) -> tuple[str, dict | None]:
    """This section of ``stem``'s results as they are (markdown, JSON), for a rewrite of the
    rest of the files to keep."""
    markdown, document = results / f"{stem}.md", results / f"{stem}.json"
    section = ""
    if markdown.is_file():
        _, found, rest = markdown.read_text().partition(HEADING)
        section = found + rest if found else ""
    kept = json.loads(document.read_text()).get(JSON_KEY) if document.is_file() else None
    return section, kept


def write_results(results: Path, stem: str, section: str, data: dict) -> None:
    """The section into ``stem``'s markdown and JSON (after what is there, replacing an
    earlier version of it); a file of its own for any stem but ``cost``."""
    markdown, document = results / f"{stem}.md", results / f"{stem}.json"
    shared = stem == "cost"
    if shared and markdown.is_file():
        text = without_section(markdown.read_text()) + "\n" + section
    else:
        text = f"# Update cost of a VLM's vision tower (random weights)\n\n{section}"
    existing = json.loads(document.read_text()) if shared and document.is_file() else {}
    existing[JSON_KEY] = data
    markdown.write_text(text)
    document.write_text(json.dumps(existing, indent=2))


def run_section(args: argparse.Namespace, results: Path) -> str:
    """Measure the configurations, write the results; returns the section's markdown."""
    reason = not_on_cpu(args.vlm_model, args.device)
    if reason is None and args.device == "cuda" and not torch.cuda.is_available():
        reason = "--device cuda: torch finds no CUDA device here"
    if reason is not None:
        raise SystemExit(reason)
    names = configurations_of(args)
    stem = results_stem(args)
    started = time.perf_counter()
    runs: list[dict] = []
    results.mkdir(parents=True, exist_ok=True)
    partial = results / f"{stem}-{JSON_KEY}.partial.json"
    with tempfile.TemporaryDirectory() as scratch:
        files = {"inputs": Path(scratch) / "inputs.pickle"}
        if args.vlm_model == STANDIN:
            inputs = scenario_inputs()
            paths = materialise_models()
            files.update(vlm=paths.vlm, pair=paths.pair)
        else:
            inputs = random_inputs()
            model, tokenizer = build_dual_encoder(
                vision=VIT_L14_336_VISION, text="tiny", projection_dim=768, seed=SEED
            )
            files["pair"] = save_model_directory(
                model, tokenizer, Path(scratch) / "pair", image_size=VIT_L14_336_VISION.image_size
            )
            del model
        files["inputs"].write_bytes(pickle.dumps(inputs))
        jobs = [name for _ in range(args.rounds) for name in names]
        for name in tqdm(jobs, desc="VLM cost", unit="run"):
            runs.append(run_one(name, args, files))
            partial.write_text(json.dumps({"command": command_of(args, names), "runs": runs}))
    summary = summarise(runs, names)
    section = render(summary, args, names, runs, time.perf_counter() - started)
    data = {"command": command_of(args, names), "summary": summary, "runs": runs}
    write_results(results, stem, section, data)
    partial.unlink(missing_ok=True)
    return section
