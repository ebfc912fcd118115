"""Each method's TI-CC front on the continual protocol, with and without anchors, defaults marked.

    python -m bench.continual.frontier                     # the recorded points (POINTS below)
    python -m bench.continual.frontier --methods lorsu:0,5 full-ft:0 --targets digits --out DIR
    python -m bench.continual.frontier --report-only --out DIR   # re-render from saved runs

Every point runs the whole CL-5 protocol (5 sessions) for every seed and target and is saved as
JSON under ``OUT/runs/<method>/<point>/``; runs already saved are not run again, so the command
resumes. Methods without recorded points (and ``--defaults-of M``) run at their declared
defaults. The report gives, per target and method, final TI / CC / transfer (mean ± std over
seeds), the share of sessions whose version the service's auto gate would activate (TI on the
session's own classes > 0 and CC >= -1 against the version it was trained from), which points
are on the method's Pareto front, which point is the method's declared default (decided from
the resolved hyperparameters the runs saved), and whether LoRSU's default point is dominated by
any point of another method.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.continual.protocol import STYLE_SHIFT_TARGET, Setting
from bench.continual.report import (
    CC_FLOOR,
    Spread,
    final,
    ordered_methods,
    session_mean,
    spread,
)
from bench.continual.results import RunResult
from bench.continual.run import (
    DEFAULT_BASE_MODEL,
    Job,
    base_model_summary,
    machine_description,
    run_jobs,
)
from catalogue.architecture import VisionArchitecture, read_vision_architecture
from catalogue.declarations import resolve_hyperparameters
from service.db.values import ActivationPolicy
from service.settings import Settings
from service.versions.service import gate_verdict

FRONTIER_OUT = Path("bench/results/continual-frontier")
# Every point lists its knobs explicitly (not as overrides of today's defaults), so a saved
# run means the same after the defaults change; which point is a method's default is decided
# when the report is rendered, from the resolved hyperparameters each run saved.
_NO_ANCHORS: dict[str, Any] = {}
_ANCHORS: dict[str, Any] = {"anchor_distillation": 100.0, "anchor_rehearsal": 1.0}
_STRONG_ANCHORS: dict[str, Any] = {"anchor_distillation": 300.0, "anchor_rehearsal": 1.0}
_WIDE = {"anchor_batch_size": 64}
_LORSU_K1 = {"top_k_heads": 1, "sparsity": 0.05}
_LORSU_K2 = {"top_k_heads": 2, "sparsity": 0.1}
_LONG = {"epochs": 40}  # so that max_steps, not epochs, ends a 10-image session


def _steps(count: int) -> dict[str, Any]:
    return {"max_steps": count, **(_LONG if count > 40 else {"epochs": 20})}


_WIDE_STRONG = {"learning_rate": 2e-3, **_steps(80), **_LORSU_K2, **_STRONG_ANCHORS, **_WIDE}

# The recorded points: each method's learning rate x steps, with and without the anchor terms
# (and their weight), and LoRSU's structure (heads per layer, fc1 fraction). The first point
# of the four swept methods is their previous default.
POINTS: dict[str, list[dict[str, Any]]] = {
    "lorsu": [
        {"learning_rate": 1e-4, **_steps(40), **_LORSU_K1, **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(40), **_LORSU_K1, **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_LORSU_K2, **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_LORSU_K1, **_ANCHORS},
        {"learning_rate": 1e-3, **_steps(40), **_LORSU_K2, **_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_LORSU_K2, **_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_LORSU_K2, "anchor_distillation": 100.0},
        {"learning_rate": 1e-3, **_steps(80), **_LORSU_K2, **_ANCHORS, "anchor_batch_size": 64},
        {"learning_rate": 1e-3, **_steps(80), **_LORSU_K2, **_STRONG_ANCHORS},
        {"learning_rate": 2e-3, **_steps(80), **_LORSU_K2, **_STRONG_ANCHORS},
        # More anchors per step with strong distillation, at larger steps.
        _WIDE_STRONG,
        {**_WIDE_STRONG, "learning_rate": 3e-3},
        {**_WIDE_STRONG, "learning_rate": 3e-3, "anchor_distillation": 1000.0},
        # Budgeted stopping and replay of earlier corrections on the point above.
        {**_WIDE_STRONG, "stop_margin": 0.05},
        {**_WIDE_STRONG, "drift_budget": 0.002},
        {**_WIDE_STRONG, "anchor_replay": True},
    ],
    "full-ft": [
        {"learning_rate": 1e-5, **_steps(40), **_NO_ANCHORS},
        {"learning_rate": 1e-4, **_steps(40), **_NO_ANCHORS},
        {"learning_rate": 1e-4, **_steps(40), **_ANCHORS},
        {"learning_rate": 1e-4, **_steps(40), **_STRONG_ANCHORS},
        {"learning_rate": 5e-5, **_steps(80), **_ANCHORS},
        {"learning_rate": 5e-5, **_steps(80), **_STRONG_ANCHORS},
        {"learning_rate": 3e-5, **_steps(80), **_STRONG_ANCHORS},
    ],
    "lora": [
        {"learning_rate": 1e-4, **_steps(40), **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(40), **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_STRONG_ANCHORS},
    ],
    "spu": [
        {"learning_rate": 1e-4, **_steps(40), **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_NO_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_ANCHORS},
        {"learning_rate": 1e-3, **_steps(80), **_STRONG_ANCHORS},
    ],
    # The other methods at their declared defaults, and the same without the anchor terms.
    **{
        method: [{}, {"anchor_distillation": 0.0, "anchor_rehearsal": 0.0}]
        for method in ("lorsu-rand", "lorsu-aah", "codyra", "keeplora")
    },
}
_SHORT_NAMES = {
    "learning_rate": "lr",
    "max_steps": "steps",
    "top_k_heads": "k",
    "sparsity": "fc1",
    "anchor_distillation": "distil",
    "anchor_rehearsal": "rehearse",
    "anchor_batch_size": "anchor_batch",
    "anchor_replay": "replay",
    "stop_margin": "margin",
    "drift_budget": "drift",
}
# The service's default activation threshold (CC >= -threshold), judged by its own gate.
GATE_THRESHOLD: float = Settings.model_fields["activation_threshold"].default


@dataclass(frozen=True)
class Point:
    """One method at one set of hyperparameter values."""

    method: str
    values: dict[str, Any]

    @property
    def name(self) -> str:
        shown = {k: v for k, v in self.values.items() if k != "epochs"}
        return (
            "_".join(
                f"{_SHORT_NAMES.get(k, k)}={v:g}"
                if isinstance(v, float)
                else f"{_SHORT_NAMES.get(k, k)}={v}"
                for k, v in shown.items()
            )
            or "defaults"
        )

    @property
    def anchored(self) -> bool:
        return any(self.values.get(key, 0) for key in ("anchor_distillation", "anchor_rehearsal"))


@dataclass(frozen=True)
class PointResult:
    """A point's runs on one target, aggregated over seeds."""

    point: Point
    runs: list[RunResult]
    is_default: bool = False

    @property
    def ti(self) -> Spread:
        return final(self.runs, lambda session: session.target_improvement)

    @property
    def cc(self) -> Spread:
        return final(self.runs, lambda session: session.control_change)

    @property
    def transfer(self) -> Spread | None:
        values = [run.sessions[-1].transfer_improvement for run in self.runs]
        return None if None in values else spread([v for v in values if v is not None])

    @property
    def gate_share(self) -> float:
        """Share of sessions whose version the auto gate would activate."""
        verdicts = [
            gate_verdict(
                ActivationPolicy.AUTO, session.version_ti, session.version_cc, GATE_THRESHOLD
            ).activated
            for run in self.runs
            for session in run.sessions[1:]
        ]
        return sum(verdicts) / len(verdicts)

    @property
    def mean_steps(self) -> float:
        return session_mean(self.runs, lambda session: session.steps).mean

    def dominates(self, other: PointResult) -> bool:
        """More TI and a better CC (both strictly)."""
        return self.ti.mean > other.ti.mean and self.cc.mean > other.cc.mean


def pareto_front(results: Sequence[PointResult]) -> list[PointResult]:
    """Points no other point of ``results`` dominates, by CC."""
    front = [r for r in results if not any(other.dominates(r) for other in results)]
    return sorted(front, key=lambda r: r.cc.mean)


def declared_defaults(method: str, architecture: VisionArchitecture) -> dict[str, Any]:
    """``method``'s default hyperparameters today, resolved for the benchmark's model."""
    return resolve_hyperparameters(method, {}, architecture).model_dump()


def collect(
    runs_dir: Path, points: Sequence[Point], architecture: VisionArchitecture
) -> dict[str, list[PointResult]]:
    """target -> every point's result on it (points without saved runs are skipped)."""
    by_target: dict[str, list[PointResult]] = {}
    for point in points:
        directory = runs_dir / point.method / point.name
        runs = [RunResult.load(path) for path in sorted(directory.glob("*.json"))]
        defaults = declared_defaults(point.method, architecture)
        for target in sorted({run.target for run in runs}):
            chosen = [run for run in runs if run.target == target]
            is_default = all(run.hyperparameters == defaults for run in chosen)
            by_target.setdefault(target, []).append(PointResult(point, chosen, is_default))
    return by_target


def domination_check(results: Sequence[PointResult], method: str = "lorsu") -> str:
    """Whether ``method``'s default point is dominated by any other method's point."""
    default = next((r for r in results if r.point.method == method and r.is_default), None)
    if default is None:
        return f"({method} defaults not run)"
    dominating = [r for r in results if r.point.method != method and r.dominates(default)]
    if not dominating:
        return f"{method}'s default point is dominated by no other method's point."
    names = ", ".join(f"{r.point.method} {r.point.name} ({r.ti}, {r.cc})" for r in dominating)
    return f"{method}'s default point is **dominated** by: {names}."


def target_table(results: Sequence[PointResult]) -> str:
    lines = [
        "| method | point | seeds | TI | CC | transfer | auto gate activates | steps/session "
        "| front |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method in ordered_methods(sorted({r.point.method for r in results})):
        own = [r for r in results if r.point.method == method]
        front = {id(r) for r in pareto_front(own)}
        for result in sorted(own, key=lambda r: (not r.is_default, r.point.name)):
            name = f"**{result.point.name}**" if result.is_default else result.point.name
            transfer = result.transfer
            lines.append(
                f"| {method} | {name} | {len(result.runs)} | {result.ti} | {result.cc} | "
                f"{'-' if transfer is None else transfer} | {result.gate_share:.0%} | "
                f"{result.mean_steps:.0f} | {'yes' if id(result) in front else ''} |"
            )
    return "\n".join(lines)


def write_plot(by_target: dict[str, list[PointResult]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted(by_target)
    figure, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 5), squeeze=False)
    methods = ordered_methods(sorted({r.point.method for rs in by_target.values() for r in rs}))
    colours = {name: plt.get_cmap("tab10")(index) for index, name in enumerate(methods)}
    for axis, target in zip(axes[0], targets, strict=True):
        for method in methods:
            own = [r for r in by_target[target] if r.point.method == method]
            if not own:
                continue
            colour = colours[method]
            for result in own:
                axis.scatter(
                    result.cc.mean,
                    result.ti.mean,
                    color=colour,
                    marker="^" if result.point.anchored else "o",
                    s=22,
                    alpha=0.6,
                )
            front = pareto_front(own)
            axis.plot(
                [r.cc.mean for r in front], [r.ti.mean for r in front], color=colour, label=method
            )
            default = next((r for r in own if r.is_default), None)
            if default is not None:
                axis.scatter(
                    default.cc.mean,
                    default.ti.mean,
                    color=colour,
                    marker="*",
                    s=220,
                    edgecolors="black",
                    zorder=5,
                )
        axis.axvline(CC_FLOOR, color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"{target} CL-5: TI-CC fronts (star = default, triangle = anchored)")
        axis.set_xlabel("CC after 5 sessions (points)")
        axis.set_ylabel("TI after 5 sessions (points)")
        axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path = out / "fronts.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(
    out: Path, points: Sequence[Point], base_model: Path, command: str, seconds: float | None
) -> Path:
    by_target = collect(out / "runs", points, read_vision_architecture(base_model))
    if not by_target:
        raise SystemExit(f"no saved runs under {out / 'runs'}")
    plot = write_plot(by_target, out)
    elapsed = f"{seconds / 60:.1f} min" if seconds is not None else "(re-rendered)"
    sections = "\n\n".join(
        f"## {target} CL-5\n\n{domination_check(results)}\n\n{target_table(results)}"
        for target, results in sorted(by_target.items(), key=lambda kv: kv[0] != STYLE_SHIFT_TARGET)
    )
    seeds = sorted({run.seed for results in by_target.values() for r in results for run in r.runs})
    text = f"""# TI-CC fronts of every method (continual protocol, CL-5, 5 sessions)

Command: `{command}`
Machine: {machine_description()}; wall time {elapsed}.
Base model: `{base_model}` ({base_model_summary(base_model)}).

Seeds {seeds}; TI, CC, transfer in points after the last session against the base model (mean
± std over seeds). Point names list the knobs set (lr, steps = max_steps, k = LoRSU heads per
layer, fc1 = fraction of fc1 entries, distil / rehearse = anchor term weights; anchors:
train-split images of the trained domains, never the CC images, emoji concepts disjoint from
the measured ones); "defaults" = the method's declared defaults when it ran. Bold = the
method's declared defaults today (the star on the plot). "auto gate activates": share of
sessions whose version the service's auto gate would activate (TI on the session's own classes
> 0 and CC >= -{GATE_THRESHOLD:g} against the version it was trained from). "front": not
dominated (more TI and better CC) by another point of the same method.

Plot: [{plot.name}]({plot.name})

{sections}
"""
    path = out / "fronts.md"
    path.write_text(text)
    return path


def selected_points(item: str) -> list[Point]:
    """``"lorsu"`` -> every recorded point of LoRSU; ``"lorsu:0,5"`` -> its points 0 and 5."""
    method, _, indices = item.partition(":")
    recorded = POINTS.get(method, [{}])
    chosen = [recorded[int(i)] for i in indices.split(",")] if indices else recorded
    return [Point(method, values) for values in chosen]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="TI-CC fronts of the update methods.")
    parser.add_argument(
        "--methods",
        nargs="*",
        default=list(POINTS),
        metavar="METHOD[:I,J]",
        help="methods whose recorded points run (optionally only the points at those indices)",
    )
    parser.add_argument(
        "--defaults-of", nargs="*", default=[], help="methods to run at their declared defaults"
    )
    parser.add_argument("--targets", nargs="+", default=[STYLE_SHIFT_TARGET])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--base-model", type=Path, default=DEFAULT_BASE_MODEL)
    parser.add_argument("--out", type=Path, default=FRONTIER_OUT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="re-render from saved runs")
    args = parser.parse_args(argv)
    points = [point for item in args.methods for point in selected_points(item)]
    points += [Point(method, {}) for method in args.defaults_of]
    started = time.perf_counter()
    if not args.report_only:
        jobs = [
            Job(Setting(target, 5), point.method, seed, point.values, True, label)
            for point in points
            for label in [f"{point.method}/{point.name}"]
            for target in args.targets
            for seed in args.seeds
        ]
        jobs = [job for job in jobs if not job.saved(args.out / "runs")]
        print(f"{len(points)} points, {len(jobs)} runs to do", flush=True)
        run_jobs(args.base_model, jobs, args.out / "runs", args.workers)
    # The command that produces the runs (a re-render names it without --report-only).
    arguments = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--report-only"]
    command = " ".join(["python -m bench.continual.frontier", shlex.join(arguments)]).strip()
    seconds = None if args.report_only else time.perf_counter() - started
    print(write_report(args.out, points, args.base_model, command, seconds).read_text())


if __name__ == "__main__":
    main()
