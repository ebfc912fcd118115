"""Hyperparameter sweeps over the continual protocol (the evidence behind default changes).

    python -m bench.continual.sweep --name lr --grid learning_rate=1e-5,1e-4 --grid epochs=5,20

Every grid point runs the listed methods on every target (one seed by default) and is saved
under ``OUT/NAME/<point>/runs``; ``OUT/NAME.md`` tabulates what each point did: TI after the
first session (can the method learn at all?), TI and CC after the last one.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.continual.protocol import SESSIONS, TARGET_DATASETS, TRAINED_DOMAINS, Setting
from bench.continual.report import ordered_methods
from bench.continual.results import RunResult, load_runs
from bench.continual.run import (
    DEFAULT_BASE_MODEL,
    Job,
    machine_description,
    parse_grid_values,
    run_jobs,
)

SWEEP_OUT = Path("bench/results/continual-sweeps")


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["learning_rate=1e-5,1e-4"]`` -> ``{"learning_rate": [1e-05, 0.0001]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, _, values = item.partition("=")
        grid[name] = parse_grid_values(values)
    return grid


def point_name(point: dict[str, Any]) -> str:
    return "_".join(f"{name}={value}" for name, value in point.items()) or "defaults"


def sweep_table(points: dict[str, list[RunResult]]) -> str:
    """One row per (grid point, method, target), means over seeds."""
    lines = [
        "| point | method | target | TI after session 1 | TI final | CC final | "
        "trained-domain acc (mean) | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in points.items():
        for method in ordered_methods(sorted({run.method for run in runs})):
            for target in sorted({run.target for run in runs}):
                chosen = [r for r in runs if r.method == method and r.target == target]
                if not chosen:
                    continue
                first = statistics.fmean(r.sessions[1].target_improvement for r in chosen)
                ti = statistics.fmean(r.sessions[-1].target_improvement for r in chosen)
                cc = statistics.fmean(r.sessions[-1].control_change for r in chosen)
                trained = statistics.fmean(
                    accuracy
                    for r in chosen
                    for name, accuracy in r.sessions[-1].control_accuracies.items()
                    if name in TRAINED_DOMAINS
                )
                seconds = statistics.fmean(sum(s.train_seconds for s in r.sessions) for r in chosen)
                lines.append(
                    f"| {name} | {method} | {target} | {first:+.1f} | {ti:+.1f} | {cc:+.1f} | "
                    f"{trained:.1f} | {seconds:.1f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Sweep hyperparameters over the protocol.")
    parser.add_argument("--name", required=True, help="sweep name (output file stem)")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2")
    parser.add_argument("--methods", nargs="+", default=["lorsu", "lora", "full-ft"])
    parser.add_argument("--targets", nargs="+", default=list(TARGET_DATASETS))
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--eval-per-class", type=int, default=50)
    parser.add_argument("--negatives", action="store_true")
    parser.add_argument("--base-model", type=Path, default=DEFAULT_BASE_MODEL)
    parser.add_argument("--out", type=Path, default=SWEEP_OUT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="re-tabulate saved runs")
    args = parser.parse_args(argv)
    grid = parse_grid(args.grid)
    points: dict[str, list[RunResult]] = {}
    for values in itertools.product(*grid.values()):
        if args.report_only:
            name = point_name(dict(zip(grid, values, strict=True)))
            points[name] = load_runs(args.out / args.name / name / "runs")
            continue
        point = dict(zip(grid, values, strict=True))
        name = point_name(point)
        setting_kwargs = {
            "applied_sessions": args.sessions,
            "evaluation_per_class": args.eval_per_class,
        }
        jobs = [
            Job(Setting(target, args.shots, **setting_kwargs), method, seed, point, args.negatives)
            for target in args.targets
            for method in args.methods
            for seed in args.seeds
        ]
        runs_dir = args.out / args.name / name / "runs"
        run_jobs(args.base_model, jobs, runs_dir, args.workers)
        points[name] = load_runs(runs_dir)
    command = "python -m bench.continual.sweep " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    report = args.out / f"{args.name}.md"
    report.write_text(
        f"# Sweep `{args.name}`\n\nCommand: `{command}`\nMachine: {machine_description()}\n\n"
        f"CL-{args.shots}, seeds {args.seeds}, first {args.sessions} sessions, "
        f"{args.eval_per_class} evaluation images per class, negatives "
        f"{'on' if args.negatives else 'off'}. TI/CC in points against the base model.\n\n"
        f"{sweep_table(points)}\n"
    )
    print(report.read_text())


if __name__ == "__main__":
    main()
