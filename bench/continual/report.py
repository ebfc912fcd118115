"""Aggregates saved runs over seeds into the markdown table, the goal check and the plots."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.continual.protocol import scenario_of
from bench.continual.results import RunResult, SessionResult
from bench.continual.runner import ZERO_SHOT

METHOD_ORDER = (
    ZERO_SHOT,
    "lorsu",
    "lorsu-rand",
    "lorsu-relative",
    "lorsu-aah",
    "lora",
    "spu",
    "full-ft",
    "codyra",
    "keeplora",
)
# The benchmark's goal: LoRSU forgets at most 1 point on average and keeps 80% of full-ft's TI.
CC_FLOOR = -1.0
TI_SHARE_OF_FULL_FT = 0.8


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation over seeds."""

    mean: float
    std: float
    count: int

    def __str__(self) -> str:
        return f"{self.mean:+.1f} ± {self.std:.1f}" if self.count > 1 else f"{self.mean:+.1f}"

    def plain(self) -> str:
        return f"{self.mean:.1f} ± {self.std:.1f}" if self.count > 1 else f"{self.mean:.1f}"


def spread(values: Sequence[float]) -> Spread:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(statistics.fmean(values), std, len(values))


def group_runs(runs: Sequence[RunResult]) -> dict[tuple[str, int], dict[str, list[RunResult]]]:
    """setting (target, shots) -> method -> runs over seeds."""
    grouped: dict[tuple[str, int], dict[str, list[RunResult]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for run in runs:
        grouped[(run.target, run.shots)][run.method].append(run)
    return grouped


def ordered_methods(methods: Sequence[str]) -> list[str]:
    known = [name for name in METHOD_ORDER if name in methods]
    return known + sorted(name for name in methods if name not in METHOD_ORDER)


def control_accuracy(name: str) -> Callable[[SessionResult], float]:
    """The metric: a session's accuracy on the control set ``name``."""
    return lambda session: session.control_accuracies[name]


def final(runs: Sequence[RunResult], metric: Callable[[SessionResult], float]) -> Spread:
    """``metric`` after the last session, over seeds."""
    return spread([metric(run.sessions[-1]) for run in runs])


def session_mean(runs: Sequence[RunResult], metric: Callable[[SessionResult], float]) -> Spread:
    """``metric`` averaged over the updated sessions (1..n), over seeds."""
    return spread([statistics.fmean(metric(s) for s in run.sessions[1:]) for run in runs])


def total(runs: Sequence[RunResult], metric: Callable[[SessionResult], float]) -> Spread:
    """``metric`` summed over sessions, over seeds."""
    return spread([sum(metric(session) for session in run.sessions) for run in runs])


def peak(runs: Sequence[RunResult], metric: Callable[[SessionResult], float]) -> float:
    return max(metric(session) for run in runs for session in run.sessions)


def settings_table(runs: Sequence[RunResult]) -> str:
    """One markdown table per setting: method x final TI, CC, per-set accuracy, cost."""
    sections = []
    for (target, shots), by_method in sorted(group_runs(runs).items()):
        controls = list(next(iter(by_method.values()))[0].sessions[-1].control_accuracies)
        style_shift = scenario_of(target) == "style shift"
        header = (
            "| method | seeds | TI | CC | transfer | TI avg over sessions | "
            + ("target acc (corrected + transfer)" if style_shift else "target acc (all classes)")
            + " | "
            + " | ".join(controls)
            + " | train s (all sessions) | trainable params | optimizer bytes |"
        )
        title = f"### {target}, CL-{shots} ({scenario_of(target)})"
        lines = [title, "", header, "|" + "---|" * (11 + len(controls) - 1)]
        for method in ordered_methods(list(by_method)):
            method_runs = by_method[method]
            cells = [
                method,
                str(len(method_runs)),
                str(final(method_runs, lambda s: s.target_improvement)),
                str(final(method_runs, lambda s: s.control_change)),
                str(final(method_runs, lambda s: s.transfer_improvement or 0.0))
                if style_shift
                else "n/a",
                str(session_mean(method_runs, lambda s: s.target_improvement)),
                final(method_runs, lambda s: s.target_accuracy_all).plain(),
                *(final(method_runs, control_accuracy(name)).plain() for name in controls),
                f"{total(method_runs, lambda s: s.train_seconds).mean:.1f}",
                f"{peak(method_runs, lambda s: s.trainable_parameters):,.0f}",
                f"{peak(method_runs, lambda s: s.optimizer_state_bytes):,.0f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def goal_check(runs: Sequence[RunResult], method: str = "lorsu") -> str:
    """The goal (``CC_FLOOR``, ``TI_SHARE_OF_FULL_FT``), per setting, from the final-session
    means."""
    lines = [
        "| setting | LoRSU TI | full-ft TI | TI share | LoRSU CC | CC >= -1 | "
        "CC > full-ft CC | CC > lora CC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (target, shots), by_method in sorted(group_runs(runs).items()):
        if not {method, "full-ft", "lora"} <= set(by_method):
            continue
        ti = {
            name: final(by_method[name], lambda s: s.target_improvement).mean for name in by_method
        }
        cc = {name: final(by_method[name], lambda s: s.control_change).mean for name in by_method}
        share = (
            f"{ti[method] / ti['full-ft']:.0%}" if ti["full-ft"] > 0 else "n/a (full-ft TI <= 0)"
        )
        lines.append(
            f"| {target} CL-{shots} | {ti[method]:+.1f} | {ti['full-ft']:+.1f} | {share} | "
            f"{cc[method]:+.1f} | {_yes(cc[method] >= CC_FLOOR)} | "
            f"{_yes(cc[method] > cc['full-ft'])} | {_yes(cc[method] > cc['lora'])} |"
        )
    return "\n".join(lines)


def _yes(value: bool) -> str:
    return "yes" if value else "**no**"


def write_plots(runs: Sequence[RunResult], out_dir: Path) -> list[Path]:
    """``ti_vs_cc.png`` (final TI against CC) and ``accuracy_per_session.png``."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = sorted(group_runs(runs).items())
    methods = ordered_methods(sorted({run.method for run in runs}))
    colours = {name: plt.get_cmap("tab10")(index) for index, name in enumerate(methods)}

    figure, axes = plt.subplots(1, len(grouped), figsize=(4.5 * len(grouped), 4), squeeze=False)
    for axis, ((target, shots), by_method) in zip(axes[0], grouped, strict=True):
        for method in ordered_methods(list(by_method)):
            ti = final(by_method[method], lambda s: s.target_improvement)
            cc = final(by_method[method], lambda s: s.control_change)
            axis.errorbar(
                cc.mean,
                ti.mean,
                xerr=cc.std,
                yerr=ti.std,
                fmt="o",
                color=colours[method],
                label=method,
                capsize=3,
            )
        axis.axvline(CC_FLOOR, color="grey", linestyle=":", linewidth=1)
        axis.axvline(0.0, color="grey", linewidth=0.5)
        axis.set_title(f"{target} CL-{shots}")
        axis.set_xlabel("CC (points, controls)")
        axis.set_ylabel("TI (points, target)")
    axes[0][-1].legend(fontsize=8, loc="best")
    figure.tight_layout()
    ti_path = out_dir / "ti_vs_cc.png"
    figure.savefig(ti_path, dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(len(grouped), 2, figsize=(10, 3.2 * len(grouped)), squeeze=False)
    for row, ((target, shots), by_method) in zip(axes, grouped, strict=True):
        for method in ordered_methods(list(by_method)):
            method_runs = by_method[method]
            every = [session.session for session in method_runs[0].sessions]
            # Target panel from session 1: session 0 has no seen classes to compare on (the
            # zero-shot row is the base model on the same classes).
            for axis, metric, sessions in (
                (row[0], lambda s: s.target_accuracy, every[1:]),
                (row[1], lambda s: statistics.fmean(s.control_accuracies.values()), every),
            ):
                values = [[metric(run.sessions[i]) for run in method_runs] for i in sessions]
                means = [statistics.fmean(v) for v in values]
                stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
                axis.plot(sessions, means, marker="o", color=colours[method], label=method)
                axis.fill_between(
                    sessions,
                    [m - s for m, s in zip(means, stds, strict=True)],
                    [m + s for m, s in zip(means, stds, strict=True)],
                    color=colours[method],
                    alpha=0.15,
                )
        row[0].set_title(f"{target} CL-{shots}: target accuracy, classes corrected so far")
        row[1].set_title(f"{target} CL-{shots}: mean control accuracy")
        for axis in row:
            axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            axis.set_xlabel("session (0 = base model)")
            axis.set_ylabel("accuracy (%)")
    axes[0][1].legend(fontsize=8, loc="best")
    figure.tight_layout()
    session_path = out_dir / "accuracy_per_session.png"
    figure.savefig(session_path, dpi=110)
    plt.close(figure)
    return [ti_path, session_path]
