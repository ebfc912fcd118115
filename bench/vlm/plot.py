"""The answer TI / CC plot of the VLM scenario: the corrected concepts' "what" answers against
the controls', one point per grid point or method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.vlm.results import ANSWERS, CONTROLS, CORRECTED, VlmRun

PLOT_FILE = "front.png"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


_SHORT_NAMES = {
    "learning_rate": "lr",
    "anchor_read_distillation": "read",
    "anchor_answer_kl": "kl",
    "max_steps": "steps",
    "anchor_replay": "replay",
}


def _short(label: str) -> str:
    """A grid point's label with short hyperparameter names, for the plot."""
    point = label.split("[", 1)[-1].rstrip("]")
    for name, short in _SHORT_NAMES.items():
        point = point.replace(name, short)
    return point


def write_plot(grouped: Mapping[str, Sequence[VlmRun]], out: Path) -> Path:
    """``out/front.png``: each group's (grid point's or method's) corrected "what" change
    against its control "what" change (means over seeds, ``grouped`` as ``by_method`` gives
    them), one colour per method, the -1 control line dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 5))
    methods = sorted({method_runs[0].method for method_runs in grouped.values()})
    colours = {name: plt.get_cmap("tab10")(index) for index, name in enumerate(methods)}
    for label, method_runs in grouped.items():
        control = _mean([run.change(ANSWERS, CONTROLS, "what") for run in method_runs])
        corrected = _mean([run.change(ANSWERS, CORRECTED, "what") for run in method_runs])
        axis.scatter(control, corrected, color=colours[method_runs[0].method], s=30, alpha=0.8)
        axis.annotate(_short(label), (control, corrected), fontsize=6, alpha=0.7)
    for method, colour in colours.items():
        axis.scatter([], [], color=colour, label=method)
    axis.axvline(-1.0, color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel('control answers, "what": change after the last session (points)')
    axis.set_ylabel('corrected concepts\' answers, "what": change (points)')
    axis.set_title("VLM scenario: answer TI / CC of each grid point")
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path = out / PLOT_FILE
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
