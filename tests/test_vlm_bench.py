"""The VLM scenario of the continual benchmark, end to end on a tiny random pair and VLM: the
question/answer corrections, the measurements, the saved runs, resuming and the report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from bench.continual.protocol import anchor_concepts, measured_concepts, session_examples
from bench.vlm.measure import embed_captions, measure
from bench.vlm.models import ModelPaths, given_models
from bench.vlm.protocol import WHAT_ONLY, VlmSetting, qa_corrections, scenario_data
from bench.vlm.results import (
    ANSWERS,
    CLIP,
    CLIP_EMBEDDING,
    CONTROLS,
    CORRECTED,
    DRIFT_KINDS,
    LANGUAGE_MODEL_INPUT,
    NEVER_CORRECTED,
    VlmRun,
    load_runs,
)
from bench.vlm.run import main
from bench.vlm.runner import run_method
from catalogue.captions import WHAT_IS_SHOWN_QUESTION
from service.modelling.vlm import load_vision_language_model
from standin.basemodel.vlm.questions import question_answers
from standin.factory import VisionShape, build_tiny_dual_encoder
from standin.llava_factory import build_tiny_llava
from tests.markdown_tables import only_table
from tests.test_basemodel import one_thread

__all__ = ["one_thread"]  # the module-wide single-thread fixture, shared with the base model

TINY = VisionShape(
    image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4
)
# No anchor terms (the mechanics do not need the emoji anchors rendered); a step size that moves.
LEARNS = {
    "learning_rate": 1e-3,
    "max_steps": 6,
    "anchor_distillation": 0.0,
    "anchor_rehearsal": 0.0,
    "anchor_read_distillation": 0.0,
    "anchor_answer_kl": 0.0,
    "anchor_answer_rehearsal": 0.0,
}
SMALL = VlmSetting(shots=1, applied_sessions=2, target_renderings=1, control_concepts=10)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelPaths:
    root = tmp_path_factory.mktemp("vlm-bench")
    pair = build_tiny_dual_encoder(root / "pair", vision=TINY)
    return given_models(build_tiny_llava(root / "vlm", pair), pair)


@pytest.fixture(scope="module")
def runs(models: ModelPaths) -> list[VlmRun]:
    return [
        run_method(models, SMALL, method, seed=0, hyperparameters=LEARNS)
        for method in ("full-ft", "lorsu")
    ]


def test_corrections_ask_each_image_its_concepts_questions() -> None:
    data = scenario_data(SMALL)
    labelled = session_examples(SMALL.continual, data.sessions[0], seed=0)
    corrections = qa_corrections(labelled)
    expected = [pair for e in labelled for pair in question_answers(str(e.label))]
    assert [(c.question, c.answer) for c in corrections] == expected
    assert {c.question for c in corrections} >= {WHAT_IS_SHOWN_QUESTION, "Is it an animal?"}
    assert all(c.label is None for c in corrections)
    what_only = qa_corrections(labelled, WHAT_ONLY)
    assert [(c.question, c.answer) for c in what_only] == [
        pair for pair in expected if pair[0] == WHAT_IS_SHOWN_QUESTION
    ]
    assert len(what_only) == len(labelled)
    # OpenMoji train renderings; the measured ones are test renderings, never trained on.
    measured = {image.tobytes() for image in data.target.images}
    assert not any(e.image.tobytes() in measured for e in labelled)


def test_sets_are_the_continual_split_and_controls_never_an_anchored_concept() -> None:
    data = scenario_data(SMALL)
    assert len(data.sessions) == 2 and [len(s) for s in data.sessions] == [10, 10]
    assert not set(data.corrected) & set(data.transfer)
    assert set(data.target.concepts) == set(data.corrected) | set(data.transfer)
    anchored = {data.concept_names[c] for c in anchor_concepts(len(data.concept_names))}
    measured = {data.concept_names[c] for c in measured_concepts(len(data.concept_names))}
    for controls in data.controls.values():
        assert set(controls.concepts) <= measured and not set(controls.concepts) & anchored
        assert len(set(controls.concepts)) == 10 and len(controls.images) == 20
    # Every image is asked every question of its concept, once.
    asked = sorted((data.target.concepts[q.image], q.question) for q in data.target.questions)
    wanted = sorted((c, q) for c in data.target.concepts for q, _ in question_answers(c))
    assert asked == wanted


def test_before_is_the_same_for_every_method_and_after_differs(runs: list[VlmRun]) -> None:
    full_ft, lorsu = runs
    before, after = full_ft.sessions[0].measurement, full_ft.sessions[-1].measurement
    other = lorsu.sessions[0].measurement
    assert before is not None and after is not None and other is not None
    assert (before.answers, before.clip) == (other.answers, other.clip)
    # The tower moved: in CLIP space some match flips (the pair's tower *is* the VLM's).
    assert before.clip != after.clip
    assert before.drift == {} and after.drift[CORRECTED][CLIP_EMBEDDING] > 0
    assert after.drift[CORRECTED][LANGUAGE_MODEL_INPUT] > 0
    for run in runs:
        assert [s.session for s in run.sessions] == [0, 1, 2]
        assert [len(s.corrected_so_far) for s in run.sessions] == [0, 10, 20]
        assert all(s.measurement is not None for s in run.sessions)
        assert all(s.steps == 6 and s.anchors == 0 for s in run.sessions[1:])
        # One rendering per concept, each asked its questions (what + yes/no).
        questions = sum(len(question_answers(c)) for c in run.sessions[1].corrected_so_far)
        assert run.sessions[1].examples == questions
        for source in (ANSWERS, CLIP):
            for group in (CORRECTED, NEVER_CORRECTED, CONTROLS):
                for kinds in ("what", "yes/no"):
                    value = run.accuracy(run.sessions[-1], source, group, kinds)
                    assert 0.0 <= value <= 100.0
                    assert run.change(source, group, kinds) == pytest.approx(
                        value - run.accuracy(run.sessions[0], source, group, kinds)
                    )


def test_measurement_counts_every_question_and_repeats_exactly(models: ModelPaths) -> None:
    data = scenario_data(SMALL)
    vlm = load_vision_language_model(models.vlm, models.pair)
    captions = embed_captions(vlm.encoder, data)
    (first, features), (again, _) = measure(vlm, data, captions), measure(vlm, data, captions)
    assert first.answers == again.answers and first.clip == again.clip
    # Against itself nothing drifted; the drift covers every group and feature kind.
    same, _ = measure(vlm, data, captions, base=features)
    assert set(same.drift) == {CORRECTED, NEVER_CORRECTED, CONTROLS}
    for kinds in same.drift.values():
        assert set(kinds) == set(DRIFT_KINDS)
        assert all(abs(value) < 1e-5 for value in kinds.values())
    target = first.answers["emoji-openmoji"]
    assert sum(hits.counts()[1] for hits in target.values()) == len(data.target.questions)
    assert target["what"].total == dict.fromkeys(data.target.concepts, 1)


def test_saved_runs_load_back_equal(runs: list[VlmRun], tmp_path: Path) -> None:
    for run in runs:
        run.save(tmp_path)
    assert load_runs(tmp_path) == sorted(runs, key=lambda run: run.key)


def test_command_runs_resumes_and_reports(models: ModelPaths, tmp_path: Path) -> None:
    args = [
        "--vlm", str(models.vlm), "--pair", str(models.pair), "--out", str(tmp_path),
        "--methods", "lora", "--what-only-methods", "lora", "--seeds", "0,1",
        "--sessions", "1", "--shots", "1", "--target-renderings", "1", "--control-concepts", "10",
        "--workers", "1", "--threads", "1", "--no-every-session",
        "--set", "*.anchor_distillation=0", "--set", "*.anchor_rehearsal=0",
        "--set", "*.max_steps=2",
    ]  # fmt: skip
    main(args)
    saved = sorted((tmp_path / "runs").glob("*.json"))
    assert [path.stem for path in saved] == [
        "vlm-openmoji__lora__seed0",
        "vlm-openmoji__lora__seed1",
        "vlm-openmoji__lora__what-only__seed0",
        "vlm-openmoji__lora__what-only__seed1",
    ]
    written = {path: path.stat().st_mtime_ns for path in saved}
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert (info["ran"], info["reused"]) == (4, 0)
    report = (tmp_path / "report.md").read_text()
    _check_report(report, load_runs(tmp_path / "runs"))
    what_only = VlmRun.load(saved[2])
    # One rendering of each of 10 concepts, asked only what it shows.
    assert what_only.corrections == "what-only" and what_only.sessions[1].examples == 10
    # A second call reuses both runs; another setting would not.
    main(args)
    assert {path: path.stat().st_mtime_ns for path in saved} == written
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert (info["ran"], info["reused"], info["invocations"]) == (0, 4, 2)
    # Another setting makes the saved runs stale: they are replaced, not mixed in.
    main([*args, "--seeds", "0", "--shots", "2", "--what-only-methods"])
    assert [path.stem for path in sorted((tmp_path / "runs").glob("*.json"))] == [
        "vlm-openmoji__lora__seed0"
    ]
    assert load_runs(tmp_path / "runs")[0].setting["shots"] == 2


def _check_report(report: str, runs: list[VlmRun]) -> None:
    """The answers table ("What is in the picture?") and the cost table hold, per method, the
    mean and sample std over seeds of the saved runs."""
    by_label: dict[str, list[VlmRun]] = {}
    for run in runs:
        by_label.setdefault(run.label, []).append(run)
    assert sorted(by_label) == ["lora", "lora (what-only)"]

    section = report.split('### Generated answers: "What is in the picture?"')[1]
    answers = only_table(section.split("###")[0])
    assert answers.column("method") == ["lora", "lora (what-only)"]
    for cells in answers.rows:
        label_runs = by_label[cells[0]]
        assert cells[1] == str(len(label_runs)) == "2"
        expected = []
        for group in (CORRECTED, NEVER_CORRECTED, CONTROLS):
            before = [run.accuracy(run.sessions[0], ANSWERS, group, "what") for run in label_runs]
            after = [run.accuracy(run.sessions[-1], ANSWERS, group, "what") for run in label_runs]
            change = [run.change(ANSWERS, group, "what") for run in label_runs]
            expected += [
                f"{statistics.fmean(before):.1f} ± {statistics.stdev(before):.1f}",
                f"{statistics.fmean(after):.1f} ± {statistics.stdev(after):.1f}",
                f"**{statistics.fmean(change):+.1f} ± {statistics.stdev(change):.1f}**",
            ]
        assert cells[2:] == expected, cells[0]

    cost = only_table(report.split("### Cost")[1].split("##")[0])
    assert cost.column("method") == ["lora", "lora (what-only)"]
    for cells in cost.rows:
        label_runs = by_label[cells[0]]
        steps = statistics.fmean(sum(s.steps for s in run.sessions) for run in label_runs)
        params = max(s.trainable_parameters for run in label_runs for s in run.sessions)
        assert steps == 2  # one session, max_steps 2
        assert (cells[1], cells[3]) == (f"{steps:.0f}", f"{params:,}")
