"""The repeat scenario: the same failure mode corrected again and again.

    python -m bench.continual.repeat                 # 3 sessions, CL-5, 3 seeds (resumable)
    python -m bench.continual.repeat --report-only   # re-render from saved runs

Every session corrects the same classes (the standard first group: 10 OpenMoji concepts for
the style shift; every class of a new domain), each with fresh examples (disjoint
slices of the train split), each from the previous session's merged weights: a user who
keeps feeding examples of one failure mode. Reported per session: TI against its parent (what
the service's gate sees; "stacks" when every session's is >= 0), TI against the base model
(cumulative), CC against the base model. Goals (issue "corrections that stack"): every
session's TI against its parent >= 0; cumulative TI after three sessions >= 1.5x the first
session's; CC >= -1 after all of them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.continual.protocol import STYLE_SHIFT_TARGET, Setting
from bench.continual.report import METHOD_ORDER, Spread, spread
from bench.continual.results import RunResult, load_runs
from bench.continual.run import (
    DEFAULT_BASE_MODEL,
    Job,
    base_model_summary,
    hyperparameters_for,
    machine_description,
    parse_overrides,
    run_jobs,
)

DEFAULT_OUT = Path("bench/results/continual-repeat")
PROTOCOL = """Every session corrects the same classes (the standard first group: 10 OpenMoji
concepts for the style shift; every class of a new domain), each with fresh examples
(disjoint slices of the train split), each from the previous session's merged weights.
Goals: every session's TI against its parent >= 0 (in every seed); cumulative TI after the
last session >= 1.5x the first session's; CC >= -1 after all of them."""
REPEAT_SESSIONS = 3
GROWTH_GOAL = 1.5
CC_GOAL = -1.0


def _per_session(runs: Sequence[RunResult], metric: str, session: int) -> Spread:
    return spread([float(getattr(run.sessions[session], metric) or 0.0) for run in runs])


def goals(runs: Sequence[RunResult]) -> tuple[bool, bool, bool]:
    """(every session's TI against its parent >= 0 in every seed, cumulative TI after the
    last session >= 1.5x the first's (means over seeds), final CC >= -1 (mean))."""
    last = len(runs[0].sessions) - 1
    stacks = all((session.version_ti or 0.0) >= 0 for run in runs for session in run.sessions[1:])
    first = _per_session(runs, "target_improvement", 1).mean
    final = _per_session(runs, "target_improvement", last).mean
    grows = first > 0 and final >= GROWTH_GOAL * first
    return stacks, grows, _per_session(runs, "control_change", last).mean >= CC_GOAL


def repeat_table(runs: Sequence[RunResult]) -> str:
    """One block per target: per method, per session, TI vs parent, TI vs base, CC."""
    by_target: dict[tuple[str, int], dict[str, list[RunResult]]] = {}
    for run in runs:
        by_target.setdefault((run.target, run.shots), {}).setdefault(run.method, []).append(run)
    blocks = []
    for (target, shots), methods in sorted(by_target.items()):
        sessions = len(next(iter(methods.values()))[0].sessions) - 1
        header = ["method", "seeds"]
        for session in range(1, sessions + 1):
            header += [f"s{session} TI vs parent", f"s{session} TI", f"s{session} CC"]
        header += ["each >= 0", f"grows {GROWTH_GOAL}x", f"CC >= {CC_GOAL:g}"]
        lines = [
            f"### {target} CL-{shots}, {sessions} sessions on the same classes",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        order = {name: index for index, name in enumerate(METHOD_ORDER)}
        for method in sorted(methods, key=lambda name: order.get(name, len(order))):
            group = methods[method]
            cells = [method, str(len(group))]
            for session in range(1, sessions + 1):
                cells += [
                    str(_per_session(group, "version_ti", session)),
                    str(_per_session(group, "target_improvement", session)),
                    str(_per_session(group, "control_change", session)),
                ]
            cells += ["yes" if met else "**no**" for met in goals(group)]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def write_report(out: Path, base_model: Path, command: str, seconds: float | None) -> Path:
    runs = load_runs(out / "runs")
    if not runs:
        raise SystemExit(f"no saved runs under {out / 'runs'}")
    elapsed = f"{seconds / 60:.1f} min" if seconds is not None else "(re-rendered)"
    hyperparameters = {run.method: run.hyperparameters for run in runs if run.hyperparameters}
    text = f"""# Repeat scenario: the same classes corrected session after session

Command: `{command}`
Machine: {machine_description()}; wall time {elapsed}.
Base model: `{base_model}` ({base_model_summary(base_model)}).

{PROTOCOL}

Figures in points, mean ± sample std over seeds. "TI vs parent": on the repeated classes'
test images, this session's version against the one it was trained from (what the gate
judges). "TI" and "CC": against the base model, after the session.

{repeat_table(runs)}

## Hyperparameters used (resolved)

```json
{json.dumps(hyperparameters, indent=1, sort_keys=True)}
```
"""
    path = out / "repeat.md"
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The repeat scenario of the continual bench.")
    parser.add_argument("--targets", nargs="+", default=[STYLE_SHIFT_TARGET, "digits"])
    parser.add_argument("--methods", nargs="+", default=["lorsu", "lorsu-rand", "lora"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=REPEAT_SESSIONS)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--base-model", type=Path, default=DEFAULT_BASE_MODEL)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m bench.continual.repeat " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    info_path = args.out / "run_info.json"
    if args.report_only:
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        print(
            write_report(
                args.out, args.base_model, info.get("command", command), info.get("seconds")
            )
        )
        return
    if not (args.base_model / "config.json").is_file():
        from standin.basemodel.release import materialise_release

        materialise_release(args.base_model)
    overrides = parse_overrides(args.overrides)
    runs_dir = args.out / "runs"
    jobs = [
        Job(
            Setting(target, args.shots, sessions=args.sessions, repeat=True),
            method,
            seed,
            hyperparameters_for(method, overrides),
        )
        for target in args.targets
        for method in args.methods
        for seed in args.seeds
    ]
    pending = [job for job in jobs if not job.saved(runs_dir)]
    print(f"{len(pending)} of {len(jobs)} runs to do", flush=True)
    started = time.perf_counter()
    run_jobs(args.base_model, pending, runs_dir, args.workers)
    args.out.mkdir(parents=True, exist_ok=True)
    info_path.write_text(
        json.dumps({"command": command, "seconds": time.perf_counter() - started}, indent=1)
    )
    print(write_report(args.out, args.base_model, command, time.perf_counter() - started))


if __name__ == "__main__":
    main()
