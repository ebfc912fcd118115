"""The frontier report: Pareto fronts, the default marked from saved hyperparameters, the gate
share, and LoRSU's default checked against every other method's points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.continual.frontier import (
    Point,
    PointResult,
    declared_defaults,
    domination_check,
    pareto_front,
    write_report,
)
from bench.continual.results import RunResult, SessionResult
from catalogue.architecture import read_vision_architecture
from standin.factory import VisionShape, build_tiny_dual_encoder

TINY = VisionShape(
    image_size=28, patch_size=7, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_dual_encoder(tmp_path_factory.mktemp("models") / "tiny", vision=TINY)


def session(
    index: int, ti: float, cc: float, version_ti: float, version_cc: float
) -> SessionResult:
    return SessionResult(
        session=index,
        classes_seen=[],
        target_accuracy=0.0,
        target_accuracy_all=0.0,
        control_accuracies={"controls": 50.0 + cc},
        target_improvement=ti,
        control_change=cc,
        steps=40,
        version_ti=version_ti,
        version_cc=version_cc,
    )


def run(
    method: str, seed: int, ti: float, cc: float, hyperparameters: dict[str, Any] | None = None
) -> RunResult:
    """Two sessions: the first passes the auto gate, the second only when ``cc`` >= -1."""
    return RunResult(
        target="emoji-openmoji",
        shots=5,
        method=method,
        seed=seed,
        hyperparameters=hyperparameters or {},
        sessions=[
            session(0, 0.0, 0.0, 0.0, 0.0),
            session(1, ti / 2, cc / 2, 5.0, 0.0),
            session(2, ti, cc, 3.0, cc),
        ],
    )


def result(method: str, name: str, ti: float, cc: float) -> PointResult:
    return PointResult(Point(method, {"learning_rate": name}), [run(method, 0, ti, cc)])


def test_the_front_keeps_the_points_nothing_beats_on_both_ti_and_cc() -> None:
    points = [
        result("lora", "a", 10.0, -1.0),
        result("lora", "b", 20.0, -3.0),
        result("lora", "c", 5.0, -2.0),  # beaten by a: less TI and worse CC
        result("lora", "d", 20.0, -4.0),  # b ties its TI: not strictly beaten, kept
    ]
    front = pareto_front(points)
    assert [r.point.values["learning_rate"] for r in front] == ["d", "b", "a"]


def test_the_gate_share_counts_sessions_the_auto_gate_would_activate() -> None:
    assert result("lora", "a", 10.0, -0.5).gate_share == 1.0
    assert result("lora", "a", 10.0, -2.0).gate_share == 0.5


def test_lorsus_default_is_checked_against_every_other_methods_points() -> None:
    lorsu = PointResult(Point("lorsu", {}), [run("lorsu", 0, 20.0, -1.0)], is_default=True)
    assert "dominated by no other" in domination_check([lorsu, result("lora", "a", 30.0, -2.0)])
    verdict = domination_check([lorsu, result("full-ft", "x", 25.0, -0.5)])
    assert "**dominated** by: full-ft" in verdict


def test_the_report_marks_the_point_that_ran_with_todays_defaults(
    tiny_model: Path, tmp_path: Path
) -> None:
    defaults = declared_defaults("lora", read_vision_architecture(tiny_model))
    slower = {**defaults, "learning_rate": defaults["learning_rate"] / 10}
    points = [Point("lora", {}), Point("lora", {"learning_rate": slower["learning_rate"]})]
    for seed in (0, 1):
        run("lora", seed, 12.0 + seed, -0.8, defaults).save(tmp_path / "runs/lora/defaults")
        run("lora", seed, 4.0, -0.2, slower).save(tmp_path / f"runs/lora/{points[1].name}")
    report = write_report(tmp_path, points, tiny_model, "python -m bench.continual.frontier", 1.0)
    text = report.read_text()
    assert "| lora | **defaults** | 2 | +12.5 ± 0.7 | -0.8 ± 0.0 |" in text
    assert f"| lora | {points[1].name} | 2 | +4.0 ± 0.0 | -0.2 ± 0.0 |" in text
    assert "100%" in text  # every session of both points passes the gate
    assert (tmp_path / "fronts.png").stat().st_size > 10_000
