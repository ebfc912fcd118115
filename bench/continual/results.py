"""Result records of one benchmark run, saved as JSON so reports never need a rerun."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.db.values import StopReason


@dataclass
class SetAccuracy:
    """Accuracy (percent) of one evaluation set, with per-class correct/total counts."""

    accuracy: float
    correct_per_class: dict[int, int]
    total_per_class: dict[int, int]

    def on_classes(self, classes: list[int]) -> float:
        """Accuracy over the images of ``classes`` only (percent)."""
        correct = sum(self.correct_per_class.get(label, 0) for label in classes)
        total = sum(self.total_per_class.get(label, 0) for label in classes)
        return 100.0 * correct / total


@dataclass
class SessionResult:
    """Metrics after one session (session 0 is the base model before any update)."""

    session: int
    classes_seen: list[int]
    target_accuracy: float  # on the images of every class corrected so far
    target_accuracy_all: float  # on the whole target test split
    control_accuracies: dict[str, float]
    target_improvement: float  # TI against the base model, same images
    control_change: float  # CC against the base model (mean over control sets)
    # Style shift: accuracy on target classes never corrected, and its change from the base.
    transfer_accuracy: float | None = None
    transfer_improvement: float | None = None
    train_seconds: float = 0.0
    trainable_parameters: int = 0
    optimizer_state_bytes: int = 0
    steps: int = 0
    # Why the session's training ended (a StopReason value), and the anchors' mean 1 - cos
    # from the parent afterwards (None without anchor terms).
    stop_reason: str = StopReason.PLANNED_STEPS
    anchor_drift: float | None = None
    # The session's version against its parent (what the service's activation gate judges):
    # TI on the session's own classes, CC over the control sets.
    version_ti: float | None = None
    version_cc: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def run_key(target: str, shots: int, method: str, seed: int) -> str:
    """The file stem a run is saved under."""
    return f"{target}__cl{shots}__{method}__seed{seed}"


@dataclass
class RunResult:
    """One method on one setting with one seed: every session in order."""

    target: str
    shots: int
    method: str
    seed: int
    hyperparameters: dict[str, Any]
    sessions: list[SessionResult]
    evaluation_per_class: int = 100

    @property
    def key(self) -> str:
        return run_key(self.target, self.shots, self.method, self.seed)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.key}.json"
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: Path) -> RunResult:
        data = json.loads(path.read_text())
        data["sessions"] = [SessionResult(**session) for session in data["sessions"]]
        return cls(**data)


def load_runs(directory: Path) -> list[RunResult]:
    """Every run saved under ``directory``, in file-name order."""
    return [RunResult.load(path) for path in sorted(directory.glob("*.json"))]
