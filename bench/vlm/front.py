"""The answer-TI / answer-CC front of a hyperparameter grid (``python -m bench.vlm.run --grid``).

One row per grid point (method and variant), mean ± std over seeds after the last session:
the change of the generated answers on the corrected concepts ("what" and yes/no) and on the
controls, and the same in CLIP space, with the seconds a session trained. Rows sorted by the
corrected "what" change; a point is on the front when no other point has both a larger
"what" change and a better control change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.continual.report import spread
from bench.vlm.plot import write_plot
from bench.vlm.report import by_method
from bench.vlm.results import ANSWERS, CLIP, CONTROLS, CORRECTED, VlmRun, load_runs

FRONT_FILE = "front.md"
_COLUMNS = (
    ("answers: corrected what", ANSWERS, CORRECTED, "what"),
    ("corrected yes/no", ANSWERS, CORRECTED, "yes/no"),
    ("controls what", ANSWERS, CONTROLS, "what"),
    ("controls yes/no", ANSWERS, CONTROLS, "yes/no"),
    ("CLIP: corrected what", CLIP, CORRECTED, "what"),
    ("CLIP controls what", CLIP, CONTROLS, "what"),
)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def front_table(runs: Sequence[VlmRun]) -> str:
    """The grid's rows (see the module docstring)."""
    rows = []
    for label, method_runs in by_method(runs).items():
        changes = [
            [run.change(source, group, kinds) for run in method_runs]
            for _, source, group, kinds in _COLUMNS
        ]
        seconds = [
            _mean([session.train_seconds for session in run.sessions[1:]]) for run in method_runs
        ]
        rows.append((label, len(method_runs), changes, _mean(seconds)))
    means = [(_mean(row[2][0]), _mean(row[2][2])) for row in rows]
    on_front = [not any(o[0] > m[0] and o[1] > m[1] for o in means if o is not m) for m in means]
    order = sorted(range(len(rows)), key=lambda i: -means[i][0])
    header = ["point", "seeds", *(name for name, *_ in _COLUMNS), "s/session", "front"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i in order:
        label, seeds, changes, mean_seconds = rows[i]
        cells = [label, str(seeds), *(str(spread(values)) for values in changes)]
        cells += [f"{mean_seconds:.0f}", "yes" if on_front[i] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_front(out: Path, command: str, description: str) -> Path:
    """``out/front.md`` (and ``front.png``) from the runs saved under ``out/runs``."""
    runs = load_runs(out / "runs")
    write_plot(by_method(runs), out)
    text = f"""# VLM scenario: hyperparameter front

{description}

Command: `{command}`

Changes in points after the last session (mean ± std over seeds). Answers are the VLM's
greedy answers (normalised exact match); CLIP is the same images scored in CLIP space.

{front_table(runs)}

![front](front.png)
"""
    path = out / FRONT_FILE
    path.write_text(text)
    return path
