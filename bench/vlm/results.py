"""Result records of the VLM scenario, saved as JSON so the report never needs a rerun.

Hits are kept per concept (by name) for every set and question kind, so any group of concepts
(the corrected ones so far, the never-corrected ones) is scored from the saved runs.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.continual.protocol import STYLE_SHIFT_TARGET
from bench.vlm.protocol import ALL_QUESTIONS, NO_KIND, WHAT, YES_KIND

# How the same images are scored: by the VLM's generated answers, or in the CLIP space of
# the pair sharing its vision tower (for reference).
ANSWERS, CLIP = "answers", "clip"
# Groups of the report: OpenMoji concepts corrected, OpenMoji concepts never corrected, and
# the controls (mean over the two training styles).
CORRECTED, NEVER_CORRECTED, CONTROLS = "corrected", "never corrected", "controls"
GROUPS = (CORRECTED, NEVER_CORRECTED, CONTROLS)
# How far an image's features moved from the VLM's before any update: its CLIP embedding (what
# the loss trains) and the features the language model reads (the tower's hidden state at the
# VLM's feature layer, patch tokens).
CLIP_EMBEDDING, LANGUAGE_MODEL_INPUT = "CLIP embedding", "language-model input"
DRIFT_KINDS = (CLIP_EMBEDDING, LANGUAGE_MODEL_INPUT)
# Question kinds as the report shows them.
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "what": (WHAT,),
    "yes/no": (YES_KIND, NO_KIND),
}


@dataclass
class ConceptHits:
    """Right answers and questions asked, per concept, of one set and question kind."""

    correct: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def add(self, concept: str, hit: bool) -> None:
        self.correct[concept] = self.correct.get(concept, 0) + int(hit)
        self.total[concept] = self.total.get(concept, 0) + 1

    def counts(self, concepts: Collection[str] | None = None) -> tuple[int, int]:
        """(right, asked) over ``concepts`` (all when None)."""
        names = self.total if concepts is None else [c for c in concepts if c in self.total]
        return sum(self.correct[c] for c in names), sum(self.total[c] for c in names)


def percent(parts: Iterable[ConceptHits], concepts: Collection[str] | None = None) -> float:
    """Accuracy (percent) over ``parts`` together, on ``concepts`` (all when None)."""
    right = asked = 0
    for part in parts:
        r, a = part.counts(concepts)
        right, asked = right + r, asked + a
    if asked == 0:
        raise ValueError("no question was asked of these concepts")
    return 100.0 * right / asked


@dataclass
class Measurement:
    """Every set's hits by question kind, scored both ways, and what measuring took."""

    # set name -> question kind -> hits
    answers: dict[str, dict[str, ConceptHits]]
    clip: dict[str, dict[str, ConceptHits]]
    seconds: float = 0.0
    # group -> feature kind (DRIFT_KINDS) -> mean 1 - cos against the VLM before any update
    drift: dict[str, dict[str, float]] = field(default_factory=dict)

    def accuracy(
        self,
        source: str,
        group: str,
        kinds: Collection[str],
        corrected: Collection[str],
        transfer: Collection[str],
    ) -> float:
        """Percent right on ``group`` for questions of ``kinds``; controls are the mean over
        the control sets (as CC is)."""
        scored = self.answers if source == ANSWERS else self.clip
        if group == CONTROLS:
            controls = [name for name in scored if name != STYLE_SHIFT_TARGET]
            return statistics.fmean(
                percent([scored[name][kind] for kind in kinds]) for name in controls
            )
        concepts = corrected if group == CORRECTED else transfer
        return percent([scored[STYLE_SHIFT_TARGET][kind] for kind in kinds], concepts)

    def control_accuracies(self, source: str, kinds: Collection[str]) -> dict[str, float]:
        scored = self.answers if source == ANSWERS else self.clip
        return {
            name: percent([by_kind[kind] for kind in kinds])
            for name, by_kind in scored.items()
            if name != STYLE_SHIFT_TARGET
        }


@dataclass
class VlmSession:
    """One session (0: the VLM before any update) and, where measured, the measurement."""

    session: int
    corrected_so_far: list[str]
    measurement: Measurement | None
    train_seconds: float = 0.0
    steps: int = 0
    examples: int = 0
    trainable_parameters: int = 0
    optimizer_state_bytes: int = 0
    stop_reason: str = ""
    anchors: int = 0
    anchor_drift: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def run_label(method: str, corrections: str = ALL_QUESTIONS, variant: str = "") -> str:
    """How the report names a method run with these corrections (and grid point)."""
    label = method if corrections == ALL_QUESTIONS else f"{method} ({corrections})"
    return f"{label} [{variant}]" if variant else label


def run_key(method: str, seed: int, corrections: str = ALL_QUESTIONS, variant: str = "") -> str:
    """The file stem a run is saved under."""
    asked = "" if corrections == ALL_QUESTIONS else f"__{corrections}"
    point = f"__{variant.replace(' ', '')}" if variant else ""
    return f"vlm-openmoji__{method}{asked}{point}__seed{seed}"


@dataclass
class VlmRun:
    """One method with one seed through every applied session."""

    method: str
    seed: int
    setting: dict[str, int | str | None]
    hyperparameters: dict[str, Any]
    # The VLM's released weights (sha256): a saved run of another release is not reused.
    vlm_weights_sha256: str
    sessions: list[VlmSession]
    transfer: list[str]
    seconds: float = 0.0
    corrections: str = ALL_QUESTIONS  # which questions the corrections ask (protocol)
    # A point of a hyperparameter grid ("name=value,..."; empty: the declared defaults).
    variant: str = ""

    @property
    def key(self) -> str:
        return run_key(self.method, self.seed, self.corrections, self.variant)

    @property
    def label(self) -> str:
        return run_label(self.method, self.corrections, self.variant)

    @property
    def corrected(self) -> list[str]:
        """The concepts corrected by the last session."""
        return self.sessions[-1].corrected_so_far

    def measured(self) -> list[VlmSession]:
        return [session for session in self.sessions if session.measurement is not None]

    def accuracy(self, session: VlmSession, source: str, group: str, kinds: str) -> float:
        """Accuracy after ``session`` on ``group`` ("what" or "yes/no" questions), on the
        concepts corrected by the end of the run (so before and after score the same)."""
        if session.measurement is None:
            raise ValueError(f"session {session.session} was not measured")
        return session.measurement.accuracy(
            source, group, KIND_GROUPS[kinds], self.corrected, self.transfer
        )

    def change(self, source: str, group: str, kinds: str) -> float:
        """After the last session minus before the first, in points."""
        return self.accuracy(self.sessions[-1], source, group, kinds) - self.accuracy(
            self.sessions[0], source, group, kinds
        )

    def save(self, directory: Path) -> Path:
        """One JSON file per run; hits as ``{concept: [right, asked]}`` (compact: a run holds
        tens of thousands of them)."""
        directory.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        for session in data["sessions"]:
            measured = session["measurement"]
            if measured is not None:
                for source in (ANSWERS, CLIP):
                    measured[source] = {
                        name: {kind: _pairs(hits) for kind, hits in by_kind.items()}
                        for name, by_kind in measured[source].items()
                    }
        path = directory / f"{self.key}.json"
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> VlmRun:
        data = json.loads(path.read_text())
        data["sessions"] = [_session(session) for session in data["sessions"]]
        return cls(**data)


def _pairs(hits: dict[str, dict[str, int]]) -> dict[str, list[int]]:
    return {concept: [hits["correct"][concept], asked] for concept, asked in hits["total"].items()}


def _hits(data: dict[str, dict[str, dict[str, list[int]]]]) -> dict[str, dict[str, ConceptHits]]:
    return {
        name: {
            kind: ConceptHits(
                correct={concept: pair[0] for concept, pair in pairs.items()},
                total={concept: pair[1] for concept, pair in pairs.items()},
            )
            for kind, pairs in by_kind.items()
        }
        for name, by_kind in data.items()
    }


def _session(data: dict[str, Any]) -> VlmSession:
    measured = data.pop("measurement")
    measurement = None
    if measured is not None:
        measurement = Measurement(
            answers=_hits(measured["answers"]),
            clip=_hits(measured["clip"]),
            seconds=measured["seconds"],
            drift=measured.get("drift", {}),
        )
    return VlmSession(**data, measurement=measurement)


def load_runs(directory: Path) -> list[VlmRun]:
    """Every run saved under ``directory``, in file-name order."""
    return [VlmRun.load(path) for path in sorted(directory.glob("*.json"))]
