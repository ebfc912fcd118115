"""Run the VLM scenario of the continual benchmark and write its report.

    python -m bench.vlm.run                        # every method below, seeds 0,1,2
    python -m bench.vlm.run --methods lorsu full-ft --seeds 0
    python -m bench.vlm.run --quick                # smoke: lorsu, seed 0, 1 session
    python -m bench.vlm.run --report-only          # re-render from the saved runs
    python -m bench.vlm.run --split validation --methods lorsu --seeds 0 \
        --grid lorsu.learning_rate=1e-3,2e-3 --grid lorsu.anchor_read_distillation=30,100
                                                   # a front (bench/vlm/front.py)

Question/answer corrections of OpenMoji concepts (the VLM's held-out style) update the stand-in
VLM's vision tower at each method's defaults for a llava model (the answer objective;
bench/vlm/protocol.py, runner.py); the VLM's
greedy answers are scored before and after on the corrected concepts, on concepts never
corrected and on controls. Every run is saved as JSON under ``OUT/runs/`` as it finishes; a
run saved with the same VLM weights, setting and hyperparameters is not run again, so the
command resumes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.continual.protocol import SESSIONS
from bench.continual.run import hyperparameters_for, machine_description, parse_overrides
from bench.vlm.front import write_front
from bench.vlm.models import DEFAULT_CACHE, ModelPaths, given_models, materialise_models
from bench.vlm.protocol import (
    ALL_QUESTIONS,
    SPLITS,
    TARGET_RENDERINGS,
    TEST,
    VALIDATION,
    WHAT_ONLY,
    VlmSetting,
)
from bench.vlm.report import models_description, write_report
from bench.vlm.results import VlmRun, run_key
from bench.vlm.runner import run_method
from catalogue.architecture import read_vision_architecture
from catalogue.declarations import method_names, resolve_hyperparameters
from standin.basemodel.builder import torch_threads

DEFAULT_METHODS = ("lorsu", "lorsu-rand", "lora", "spu", "full-ft", "codyra", "keeplora")
# The control rows: the same methods trained on the "what" questions alone.
WHAT_ONLY_METHODS = ("lorsu", "full-ft")
DEFAULT_OUT = Path("bench/results/vlm")
QUICK_OUT = Path("var/bench/vlm-quick")
INFO_FILE = "run_info.json"


@dataclass(frozen=True)
class Job:
    """One method with one seed (at one grid point)."""

    method: str
    seed: int
    hyperparameters: dict[str, Any]
    corrections: str = ALL_QUESTIONS
    variant: str = ""


def grid_points(items: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``["lorsu.learning_rate=1e-3,2e-3", "lorsu.anchor_answer_kl=0,1"]`` -> per method,
    every combination of the listed values (JSON values)."""
    axes: dict[str, list[tuple[str, list[Any]]]] = {}
    for item in items:
        key, _, raw = item.partition("=")
        method, _, name = key.partition(".")
        if not name or not raw:
            raise SystemExit(f"--grid expects METHOD.NAME=V1,V2,..., got {item!r}")
        values = [parse_overrides([f"{key}={value}"])[method][name] for value in raw.split(",")]
        axes.setdefault(method, []).append((name, values))
    points: dict[str, list[dict[str, Any]]] = {}
    for method, method_axes in axes.items():
        combos: list[dict[str, Any]] = [{}]
        for name, values in method_axes:
            combos = [{**combo, name: value} for combo in combos for value in values]
        points[method] = combos
    return points


def variant_name(point: dict[str, Any]) -> str:
    return ",".join(f"{name}={value}" for name, value in point.items())


def _run(
    models: ModelPaths, setting: VlmSetting, job: Job, every_session: bool, threads: int
) -> VlmRun:
    with torch_threads(threads):
        return run_method(
            models,
            setting,
            job.method,
            job.seed,
            job.hyperparameters,
            every_session,
            job.corrections,
            job.variant,
        )


def reusable(path: Path, models: ModelPaths, setting: VlmSetting, resolved: dict[str, Any]) -> bool:
    """Whether a saved run is the one this job would produce (same VLM weights, setting and
    resolved hyperparameters)."""
    if not path.is_file():
        return False
    saved = VlmRun.load(path)
    return (
        saved.vlm_weights_sha256 == models.weights_sha256
        and saved.setting == setting.describe()
        and saved.hyperparameters == resolved
    )


def run_jobs(
    models: ModelPaths,
    setting: VlmSetting,
    jobs: list[Job],
    runs_dir: Path,
    workers: int,
    every_session: bool = False,
    threads: int = 2,
) -> None:
    """Run ``jobs`` in ``workers`` single-thread processes (or here on ``threads`` threads
    with one worker), saving each run as it finishes."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(jobs), desc="VLM scenario", unit="run") as progress:

        def saved(run: VlmRun) -> None:
            run.save(runs_dir)
            progress.set_postfix_str(
                f"{run.key}: what on corrected {run.change('answers', 'corrected', 'what'):+.1f}"
            )
            progress.update()

        if workers <= 1:
            for job in jobs:
                saved(_run(models, setting, job, every_session, threads))
            return
        # Models this small gain little from a second thread: two single-thread runs use two
        # cores better. Spawned: never fork a process that already holds OpenMP threads.
        context = get_context("spawn")
        with ProcessPoolExecutor(workers, context) as pool:
            futures = [pool.submit(_run, models, setting, job, every_session, 1) for job in jobs]
            for future in as_completed(futures):
                saved(future.result())


def _list(value: str) -> list[str]:
    return [item for item in value.replace(",", " ").split() if item]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="VLM scenario of the continual benchmark.")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument(
        "--what-only-methods",
        nargs="*",
        default=list(WHAT_ONLY_METHODS),
        help='also run these with only the "What is in the picture?" corrections (a control '
        "whose captions are the label corrections'); none: leave the control out",
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="lorsu, seed 0, 1 session")
    parser.add_argument("--shots", type=int, default=5, help="renderings per corrected concept")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="apply the first N")
    parser.add_argument(
        "--target-renderings", type=int, default=TARGET_RENDERINGS, help="OpenMoji test ones"
    )
    parser.add_argument(
        "--control-concepts", type=int, default=None, help="measure the first N (default: all)"
    )
    parser.add_argument(
        "--every-session",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also measure after every session, not only before the first and after the last "
        "(about 15 s a measurement on one thread: off by default to keep the run near 30 min)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="METHOD.NAME=VALUE",
        help="hyperparameter override (default: none, every method at its declared defaults)",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="METHOD.NAME=V1,V2",
        help="run every combination of these values (per method, on top of --set); the "
        "report is then the front (bench/vlm/front.py)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=TEST,
        help="validation: choose on the transfer concepts' validation renderings "
        "(bench/vlm/protocol.py); test: the scenario",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="assembled models")
    parser.add_argument("--vlm", type=Path, default=None, help="another VLM (with --pair)")
    parser.add_argument("--pair", type=Path, default=None, help="the pair of --vlm")
    parser.add_argument("--workers", type=int, default=2, help="parallel single-thread runs")
    parser.add_argument(
        "--threads", type=int, default=2, choices=(1, 2), help="torch threads of one worker"
    )
    parser.add_argument("--report-only", action="store_true", help="re-render from saved runs")
    args = parser.parse_args(argv)
    methods = [method for item in args.methods for method in _list(item)]
    seeds = [int(seed) for seed in _list(args.seeds)]
    what_only = [method for item in args.what_only_methods for method in _list(item)]
    if args.quick:
        methods, seeds, args.sessions, what_only = ["lorsu"], [0], 1, []
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    info_path = out / INFO_FILE
    given = shlex.join(sys.argv[1:] if argv is None else argv)
    command = f"python -m bench.vlm.run {given}".strip()
    grid = grid_points(args.grid)
    fronts = bool(grid) or args.split == VALIDATION
    if args.report_only:
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        print(_write(out, info, fronts))
        return
    unknown = set(methods + what_only) - set(method_names())
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}")
    if (args.vlm is None) != (args.pair is None):
        raise SystemExit("--vlm and --pair go together")
    models = given_models(args.vlm, args.pair) if args.vlm else materialise_models(args.cache)
    setting = VlmSetting(
        args.shots, args.sessions, args.target_renderings, args.control_concepts, args.split
    )
    overrides = parse_overrides(args.overrides)
    architecture = read_vision_architecture(models.vlm)
    runs_dir = out / "runs"
    for saved in runs_dir.glob("*.json"):
        # Runs of another VLM or setting would mix into the report: they are stale here.
        run = VlmRun.load(saved)
        if run.vlm_weights_sha256 != models.weights_sha256 or run.setting != setting.describe():
            saved.unlink()
    jobs, reused = [], 0
    variants = [(m, ALL_QUESTIONS) for m in methods] + [(m, WHAT_ONLY) for m in what_only]
    for method, corrections in variants:
        for point in grid.get(method, [{}]):
            hyperparameters = {**hyperparameters_for(method, overrides), **point}
            resolved = resolve_hyperparameters(method, hyperparameters, architecture)
            variant = variant_name(point)
            for seed in seeds:
                path = runs_dir / f"{run_key(method, seed, corrections, variant)}.json"
                if reusable(path, models, setting, resolved.model_dump()):
                    reused += 1
                else:
                    jobs.append(Job(method, seed, hyperparameters, corrections, variant))
    started = time.perf_counter()
    run_jobs(models, setting, jobs, runs_dir, args.workers, args.every_session, args.threads)
    seconds = time.perf_counter() - started
    # A resumed invocation adds its time to the one(s) that ran the reused runs.
    earlier = json.loads(info_path.read_text()) if reused and info_path.is_file() else {}
    info = {
        "command": command,
        "models": models_description(models, args.vlm is None),
        "overrides": overrides,
        "seconds": earlier.get("seconds", 0.0) + seconds,
        "invocations": earlier.get("invocations", 0) + 1,
        "machine": machine_description(),
        "runs": len(jobs) + reused,
        "ran": len(jobs),
        "reused": reused,
        "workers": args.workers,
        "threads": args.threads,
    }
    info_path.write_text(json.dumps(info, indent=1))
    print(_write(out, info, fronts))


def _write(out: Path, info: dict[str, Any], fronts: bool) -> Path:
    if not fronts:
        return write_report(out, info)
    return write_front(out, str(info.get("command", "")), str(info.get("models", "")))


if __name__ == "__main__":
    main()
