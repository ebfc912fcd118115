"""Run the continual-learning benchmark and write its table and plots.

    python -m bench.continual.run            # full: CL-5 and CL-20, 3 seeds, every target
    python -m bench.continual.run --quick    # smoke: style shift, CL-5, 1 seed, 2 sessions
    python -m bench.continual.run --report-only --out DIR   # re-render from saved runs

Every run is saved as JSON under ``OUT/runs/`` before the report is rendered, so the table and
plots can be regenerated without training anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.continual.protocol import (
    CORRECTED_CONCEPTS,
    EMOJI_CONTROL_RENDERINGS,
    EVALUATION_IMAGES_PER_CLASS,
    SESSIONS,
    STYLE_SHIFT_TARGET,
    TARGET_DATASETS,
    TRANSFER_CONCEPTS,
    Setting,
)
from bench.continual.report import METHOD_ORDER, goal_check, settings_table, write_plots
from bench.continual.results import RunResult, load_runs, run_key
from bench.continual.runner import ZERO_SHOT, run_method
from catalogue.declarations import method_names

# Every method the report knows, in its order (zero-shot first).
DEFAULT_METHODS = METHOD_ORDER
DEFAULT_BASE_MODEL = Path("models/standin-base")
DEFAULT_OUT = Path("bench/results/continual")
QUICK_OUT = Path("bench/results/continual-quick")


@dataclass(frozen=True)
class Job:
    """One method on one setting with one seed."""

    setting: Setting
    method: str
    seed: int
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    negatives: bool = True
    # Sub-folder of the runs folder the result is saved in ("" = the folder itself).
    label: str = ""

    def saved(self, runs_dir: Path) -> bool:
        key = run_key(self.setting.target, self.setting.shots, self.method, self.seed)
        return (runs_dir / self.label / f"{key}.json").exists()


def parse_grid_values(values: str) -> list[Any]:
    """``"1e-5,1e-4"`` -> ``[1e-05, 0.0001]`` (JSON values, comma-separated)."""
    return [json.loads(value) for value in values.split(",")]


def parse_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["lorsu.learning_rate=1e-4", "*.epochs=20"]`` -> per-method overrides (JSON values)."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, raw = item.partition("=")
        method, _, name = key.partition(".")
        if not name or not raw:
            raise SystemExit(f"--set expects METHOD.NAME=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides.setdefault(method, {})[name] = value
    return overrides


def hyperparameters_for(method: str, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``*`` overrides apply to every method, then the method's own on top."""
    if method == ZERO_SHOT:
        return {}
    return {**overrides.get("*", {}), **overrides.get(method, {})}


def _run_job(base_model: Path, job: Job) -> RunResult:
    return run_method(
        base_model, job.setting, job.method, job.seed, job.hyperparameters, job.negatives
    )


def _init_worker(threads: int) -> None:
    import torch

    # A model this small does not gain from more threads; parallel runs use the cores better.
    torch.set_num_threads(threads)


def run_jobs(base_model: Path, jobs: list[Job], runs_dir: Path, workers: int) -> None:
    """Run every job (in ``workers`` single-thread processes), saving each result on arrival."""
    started = time.perf_counter()
    context = get_context("spawn")  # never fork a process that already holds OpenMP threads
    with ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=(1,)) as pool:
        futures = {pool.submit(_run_job, base_model, job): job for job in jobs}
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            result.save(runs_dir / futures[future].label)
            final = result.sessions[-1]
            print(
                f"[{done}/{len(jobs)} {time.perf_counter() - started:6.0f}s] "
                f"{result.key}: TI {final.target_improvement:+.1f} CC {final.control_change:+.1f}",
                flush=True,
            )


def machine_description() -> str:
    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
        f"(CPU), Python {platform.python_version()}"
    )


def base_model_summary(base_model: Path) -> str:
    """Seed, steps and zero-shot accuracies from the base model's build facts."""
    from standin.basemodel.card import read_build_info

    try:
        info = read_build_info(base_model)
    except FileNotFoundError:
        return "no build_info.json"
    accuracies = ", ".join(
        f"{name} {result['accuracy']:.1f}%" for name, result in info["zero_shot"].items()
    )
    return f"seed {info['seed']}, {info['recipe']['steps']} steps; zero-shot {accuracies}"


def write_report(
    out: Path, base_model: Path, command: str, seconds: float | None, notes: str = ""
) -> Path:
    """Render ``results.md`` and the PNGs from every run saved under ``out/runs``."""
    runs = load_runs(out / "runs")
    if not runs:
        raise SystemExit(f"no saved runs under {out / 'runs'}")
    plots = write_plots(runs, out)
    hyperparameters = {run.method: run.hyperparameters for run in runs if run.hyperparameters}
    elapsed = f"{seconds / 60:.1f} min" if seconds is not None else "(re-rendered)"
    sessions = max(len(run.sessions) - 1 for run in runs)
    text = f"""# Continual-learning benchmark (few-shot, class-split sessions)

Command: `{command}`
Machine: {machine_description()}; wall time {elapsed}.

Base model: `{base_model}` ({base_model_summary(base_model)}).

Protocol (bench/continual/protocol.py): {SESSIONS} sessions per setting; the first
{sessions} are applied in order, each from the previous merged weights; every session brings
k correction images per class (CL-k).
- Style shift (`emoji-openmoji`): {CORRECTED_CONCEPTS} fixed OpenMoji concepts corrected,
  {CORRECTED_CONCEPTS // SESSIONS} per session, with k correction renderings each; TI on their
  held-out renderings; transfer = change on {TRANSFER_CONCEPTS} OpenMoji concepts never
  corrected; all against every concept name.
- New domain (`animal-mnist`, `digits`): the dataset's classes split into sessions; TI on the
  test images of the classes corrected so far, against all class names.
CC = mean over control sets of accuracy minus the base model's: held-out renderings of the
two training styles ({EMOJI_CONTROL_RENDERINGS} per concept), Fashion-MNIST and textures
({runs[0].evaluation_per_class} per class), plus the other new-domain dataset for a new-domain
target. All figures in points, mean ± sample std over seeds, after the last session.
{notes}
## Goal check (LoRSU CC >= -1, TI >= 80% of full-ft's)

{goal_check(runs)}

## Results after the last session

{settings_table(runs)}

Plots: {", ".join(f"[{path.name}]({path.name})" for path in plots)}

## Hyperparameters used (resolved)

```json
{json.dumps(hyperparameters, indent=1, sort_keys=True)}
```
"""
    path = out / "results.md"
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Few-shot continual-learning benchmark.")
    parser.add_argument(
        "--quick", action="store_true", help="style shift only, 1 seed, CL-5, 2 sessions"
    )
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--sessions", type=int, default=SESSIONS, help=f"apply only the first N of {SESSIONS}"
    )
    parser.add_argument("--targets", nargs="+", default=list(TARGET_DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="METHOD.NAME=VALUE",
        help="hyperparameter override; METHOD may be * for all methods",
    )
    parser.add_argument(
        "--negatives",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the target's other class names as negative captions, as the service does with "
        "a model's other known labels (default: on)",
    )
    parser.add_argument("--base-model", type=Path, default=DEFAULT_BASE_MODEL)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--eval-per-class", type=int, default=EVALUATION_IMAGES_PER_CLASS, help="test images"
    )
    parser.add_argument("--workers", type=int, default=2, help="parallel single-thread runs")
    parser.add_argument("--report-only", action="store_true", help="re-render from saved runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.shots, args.seeds, args.sessions = [5], [0], 2
        args.targets = [STYLE_SHIFT_TARGET]
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    command = "python -m bench.continual.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    info_path = out / "run_info.json"
    if args.report_only:
        # Keep the command and wall time of the run that produced the saved results.
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        print(
            write_report(
                out,
                args.base_model,
                info.get("command", command),
                info.get("seconds"),
                info.get("notes", ""),
            )
        )
        return
    unknown = set(args.methods) - {ZERO_SHOT, *method_names()}
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}")
    if not (args.base_model / "config.json").is_file():
        from standin.basemodel.release import materialise_release

        print(f"assembling the committed base model into {args.base_model}", flush=True)
        materialise_release(args.base_model)
    overrides = parse_overrides(args.overrides)
    jobs = [
        Job(
            Setting(
                target,
                shots,
                applied_sessions=args.sessions,
                evaluation_per_class=args.eval_per_class,
            ),
            method,
            seed,
            hyperparameters_for(method, overrides),
            args.negatives,
        )
        for shots in args.shots
        for target in args.targets
        for method in args.methods
        # The zero-shot row has no randomness: one seed is the whole story.
        for seed in (args.seeds[:1] if method == ZERO_SHOT else args.seeds)
    ]
    runs_dir = out / "runs"
    for stale in runs_dir.glob("*.json"):
        stale.unlink()
    started = time.perf_counter()
    run_jobs(args.base_model, jobs, runs_dir, args.workers)
    notes = ""
    if overrides:
        notes = (
            f"\nOverrides: `{json.dumps(overrides)}`"
            + ("" if args.negatives else " (negatives off)")
            + "\n"
        )
    if args.negatives:
        notes += "\nNegative captions: the target's other class names (as in the service).\n"
    seconds = time.perf_counter() - started
    info_path.write_text(json.dumps({"command": command, "seconds": seconds, "notes": notes}))
    print(write_report(out, args.base_model, command, seconds, notes))


if __name__ == "__main__":
    main()
