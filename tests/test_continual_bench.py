"""The continual benchmark: session protocol, a real run over real images, and its report."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from bench.continual.protocol import (
    CORRECTED_CONCEPTS,
    TRANSFER_CONCEPTS,
    Setting,
    anchor_examples,
    evaluation_sets,
    session_classes,
    session_examples,
)
from bench.continual.results import RunResult, load_runs
from bench.continual.run import hyperparameters_for, main, parse_overrides, write_report
from bench.continual.runner import ZERO_SHOT, run_method
from catalogue.methods.lorsu import default_head_count
from standin.basemodel.recipe import EMOJI_TRAINING_DATASETS, PIXEL_DATASETS
from standin.factory import VisionShape, build_tiny_dual_encoder
from tests.markdown_tables import markdown_tables
from tests.test_basemodel import one_thread

__all__ = ["one_thread"]  # the module-wide single-thread fixture, shared with the base model

# A tiny random dual encoder: the benchmark mechanics do not need the real base model, and it
# keeps every run here to a few seconds.
TINY = VisionShape(
    image_size=28, patch_size=7, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4
)
# No anchor terms: the mechanics tests do not need the emoji anchors rendered.
LEARNS = {
    "learning_rate": 1e-3,
    "epochs": 10,
    "anchor_distillation": 0.0,
    "anchor_rehearsal": 0.0,
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_dual_encoder(tmp_path_factory.mktemp("models") / "tiny", vision=TINY)


@pytest.fixture(scope="module")
def runs(tiny_model: Path) -> list[RunResult]:
    setting = Setting("digits", shots=5, applied_sessions=2)
    return [
        run_method(tiny_model, setting, ZERO_SHOT, seed=0),
        run_method(tiny_model, setting, "full-ft", seed=0, hyperparameters=LEARNS),
        run_method(tiny_model, setting, "lorsu", seed=0, hyperparameters=LEARNS),
        run_method(tiny_model, setting, "lora", seed=0, hyperparameters=LEARNS),
    ]


def test_classes_split_in_order_into_sessions() -> None:
    assert session_classes(10) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert [len(group) for group in session_classes(7)] == [1, 2, 1, 2, 1]
    with pytest.raises(ValueError, match="cannot fill"):
        session_classes(3)


def test_session_examples_are_the_sessions_classes_at_k_shots() -> None:
    setting = Setting("animal-mnist", shots=5)
    examples = session_examples(setting, [2, 3], seed=0)
    assert sorted(example.label for example in examples) == ["cat"] * 5 + ["cow"] * 5
    again = session_examples(setting, [2, 3], seed=0)
    other = session_examples(setting, [2, 3], seed=1)
    assert [e.image.tobytes() for e in examples] == [e.image.tobytes() for e in again]
    assert [e.image.tobytes() for e in examples] != [e.image.tobytes() for e in other]


def test_the_repeat_scenario_corrects_one_failure_mode_with_fresh_examples_each_session() -> None:
    digits = Setting("digits", shots=5, sessions=3, repeat=True)
    assert digits.session_groups(10) == [list(range(10))] * 3  # a new domain: every class
    emoji = Setting("emoji-openmoji", shots=5, sessions=3, repeat=True)
    [first, *_] = Setting("emoji-openmoji", shots=5).session_groups(402)
    assert emoji.session_groups(402) == [first] * 3  # the style shift: CL-5's first group
    sessions = [session_examples(digits, [0, 1], seed=0, session=s) for s in (1, 2, 3)]
    for examples in sessions:
        labels = [example.label for example in examples]
        assert len(set(labels)) == 2 and all(labels.count(label) == 5 for label in labels)
    seen = [e.image.tobytes() for examples in sessions for e in examples]
    assert len(set(seen)) == len(seen) == 30  # no session sees another's images


def test_controls_are_trained_domains_plus_the_unseen_other_target() -> None:
    trained = ["emoji-google", "emoji-twitter", "fashion-mnist", "textures"]
    assert Setting("animal-mnist", 5).control_datasets() == [*trained, "digits"]
    assert Setting("digits", 5).control_datasets() == [*trained, "animal-mnist"]
    assert Setting("emoji-openmoji", 5).control_datasets() == trained


def test_style_shift_corrects_fixed_concepts_with_renderings_never_evaluated() -> None:
    setting = Setting("emoji-openmoji", shots=5)
    sets = evaluation_sets(setting)
    names = sets.target.class_names
    corrected = setting.corrected_classes(len(names))
    transfer = setting.transfer_classes(len(names))
    assert len(corrected) == CORRECTED_CONCEPTS and len(transfer) == TRANSFER_CONCEPTS
    assert not set(corrected) & set(transfer)
    groups = setting.session_groups(len(names))
    assert [len(group) for group in groups] == [10] * 5 and [
        c for g in groups for c in g
    ] == corrected
    # The target set holds only corrected and transfer concepts, scored against every name.
    assert set(sets.target.labels) == set(corrected) | set(transfer) and len(names) > 300
    examples = session_examples(setting, groups[0], seed=0)
    assert len(examples) == 10 * 5
    assert {example.label for example in examples} == {names[label] for label in groups[0]}
    evaluated = {image.tobytes() for image in sets.target.images}
    assert not any(example.image.tobytes() in evaluated for example in examples)
    twenty = session_examples(Setting("emoji-openmoji", shots=20), groups[0], seed=0)
    assert len(twenty) == 10 * 20 and len({e.image.tobytes() for e in twenty}) == 200


def test_style_shift_run_reports_transfer(tiny_model: Path) -> None:
    setting = Setting("emoji-openmoji", shots=5, applied_sessions=1, evaluation_per_class=2)
    run = run_method(tiny_model, setting, "full-ft", seed=0, hyperparameters=LEARNS)
    first = run.sessions[1]
    assert len(first.classes_seen) == 10
    assert first.transfer_accuracy is not None and first.transfer_improvement is not None
    assert set(first.control_accuracies) == set(setting.control_datasets())
    assert run.sessions[0].transfer_improvement == 0.0


def test_anchors_are_train_images_of_other_emoji_concepts_than_those_cc_measures() -> None:
    controls = evaluation_sets(Setting("emoji-openmoji", shots=5)).controls
    anchors = anchor_examples()
    for name in EMOJI_TRAINING_DATASETS:
        measured = {controls[name].class_names[label] for label in controls[name].labels}
        assert measured and len(measured) == len(controls[name].class_names[::2])
    anchored = {str(anchor.label) for anchor in anchors}
    emoji_measured = {
        controls[name].class_names[label]
        for name in EMOJI_TRAINING_DATASETS
        for label in controls[name].labels
    }
    assert anchored & emoji_measured == set()
    # The pixel domains share classes, never images (train split vs test split).
    tested = {image.tobytes() for name in PIXEL_DATASETS for image in controls[name].images}
    assert not any(anchor.image.tobytes() in tested for anchor in anchors)
    assert {"fashion-mnist", "textures"} == set(PIXEL_DATASETS)


def test_an_anchored_run_records_drift_and_the_gate_view_of_each_session(
    tiny_model: Path,
) -> None:
    setting = Setting("digits", shots=5, applied_sessions=2, evaluation_per_class=5)
    anchored = {**LEARNS, "anchor_distillation": 10.0, "drift_budget": 1e-6}
    run = run_method(tiny_model, setting, "lora", seed=0, hyperparameters=anchored)
    for session in run.sessions[1:]:
        assert session.anchor_drift is not None and session.anchor_drift > 0
        # The budget is tiny: training stops at the first check (after one epoch).
        assert session.stop_reason == "drift_budget" and session.steps == 2
        assert session.version_ti is not None and session.version_cc is not None
    second = run.sessions[2]
    cc_from_first = statistics.fmean(
        second.control_accuracies[name] - run.sessions[1].control_accuracies[name]
        for name in second.control_accuracies
    )
    assert second.version_cc == pytest.approx(cc_from_first)


def test_zero_shot_row_never_moves(runs: list[RunResult]) -> None:
    zero_shot = runs[0]
    assert [s.session for s in zero_shot.sessions] == [0, 1, 2]
    assert all(s.target_improvement == 0.0 and s.control_change == 0.0 for s in zero_shot.sessions)
    assert zero_shot.sessions[2].classes_seen == [0, 1, 2, 3]


def test_updates_learn_the_seen_target_classes(runs: list[RunResult]) -> None:
    full_ft = runs[1]
    last = full_ft.sessions[-1]
    # From chance level (a random model) to well above it on the four classes taught so far.
    assert last.target_improvement > 10.0
    assert last.steps == 10 * 2  # 10 images, batch 8 -> 2 steps per epoch
    assert last.optimizer_state_bytes > 0
    lorsu = runs[2]
    heads = lorsu.sessions[1].details["heads_per_layer"]
    # The default head count: 1 of this tiny model's 4 heads per layer.
    expected = default_head_count(TINY.num_heads)
    assert expected == 1
    assert len(heads) == TINY.num_layers and all(len(layer) == expected for layer in heads)
    # Same images before and after: TI is after minus the base model on the same classes.
    base_on_seen = runs[0].sessions[2].target_accuracy
    assert last.target_improvement == pytest.approx(last.target_accuracy - base_on_seen)


def test_report_has_every_method_the_goal_check_and_plots(
    runs: list[RunResult], tmp_path: Path
) -> None:
    for run in runs:
        run.save(tmp_path / "runs")
    assert [run.key for run in load_runs(tmp_path / "runs")] == sorted(run.key for run in runs)
    report = write_report(tmp_path, tmp_path / "no-model", "python -m bench.continual.run", 1.0)
    text = report.read_text()
    assert "### digits, CL-5 (new domain)" in text
    goal, results = markdown_tables(text)
    last = {run.method: run.sessions[-1] for run in runs}

    # One row per method (the report's order), each holding its run's final session.
    assert [cells[0] for cells in results.rows] == ["zero-shot", "lorsu", "lora", "full-ft"]
    controls = list(last["lorsu"].control_accuracies)
    assert len(controls) == 5 and set(controls) <= set(results.header)
    for run in runs:
        row, session = results.row(run.method), last[run.method]
        assert row["seeds"] == "1" and row["transfer"] == "n/a"  # a new-domain target
        assert row["TI"] == f"{session.target_improvement:+.1f}"
        assert row["CC"] == f"{session.control_change:+.1f}"
        assert row["target acc (all classes)"] == f"{session.target_accuracy_all:.1f}"
        for name in controls:
            assert row[name] == f"{session.control_accuracies[name]:.1f}", name
        params = max(s.trainable_parameters for s in run.sessions)
        assert row["trainable params"] == f"{params:,}"
    assert results.row("zero-shot")["TI"] == "+0.0" and results.row("zero-shot")["CC"] == "+0.0"

    # The goal check: LoRSU's figures against full-ft's and LoRA's, and the verdicts.
    check = goal.row("digits CL-5")
    lorsu, full_ft, lora = last["lorsu"], last["full-ft"], last["lora"]
    assert check["LoRSU TI"] == f"{lorsu.target_improvement:+.1f}"
    assert check["full-ft TI"] == f"{full_ft.target_improvement:+.1f}"
    assert check["LoRSU CC"] == f"{lorsu.control_change:+.1f}"
    assert full_ft.target_improvement > 0  # learned (test_updates_learn_the_seen_target_classes)
    assert check["TI share"] == f"{lorsu.target_improvement / full_ft.target_improvement:.0%}"
    verdicts = [check["CC >= -1"], check["CC > full-ft CC"], check["CC > lora CC"]]
    expected = [
        lorsu.control_change >= -1.0,
        lorsu.control_change > full_ft.control_change,
        lorsu.control_change > lora.control_change,
    ]
    assert verdicts == ["yes" if met else "**no**" for met in expected]
    for plot in ("ti_vs_cc.png", "accuracy_per_session.png"):
        assert (tmp_path / plot).stat().st_size > 10_000


def test_overrides_apply_to_all_methods_then_one() -> None:
    overrides = parse_overrides(["*.epochs=20", "lorsu.learning_rate=1e-4", "lorsu.epochs=3"])
    assert hyperparameters_for("lora", overrides) == {"epochs": 20}
    assert hyperparameters_for("lorsu", overrides) == {"epochs": 3, "learning_rate": 1e-4}
    assert hyperparameters_for(ZERO_SHOT, overrides) == {}


def test_command_runs_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    main(
        [
            "--base-model", str(tiny_model), "--out", str(tmp_path), "--targets", "digits",
            "--methods", "zero-shot", "spu", "--shots", "5", "--seeds", "0", "1",
            "--sessions", "2", "--workers", "1", "--set", "spu.learning_rate=1e-3",
        ]
    )  # fmt: skip
    keys = sorted(path.stem for path in (tmp_path / "runs").glob("*.json"))
    assert keys == [
        "digits__cl5__spu__seed0",
        "digits__cl5__spu__seed1",
        "digits__cl5__zero-shot__seed0",
    ]
    text = (tmp_path / "results.md").read_text()
    _, results = markdown_tables(text)
    assert results.column("method") == ["zero-shot", "spu"]
    assert results.column("seeds") == ["1", "2"]
    # Two seeds: the mean and the sample standard deviation of the saved runs' final TI.
    saved = load_runs(tmp_path / "runs")
    spu = [run.sessions[-1].target_improvement for run in saved if run.method == "spu"]
    mean, std = statistics.fmean(spu), statistics.stdev(spu)
    assert results.row("spu")["TI"] == f"{mean:+.1f} ± {std:.1f}"
    resolved = json.loads(text.split("```json")[1].split("```")[0])
    assert resolved["spu"]["learning_rate"] == 0.001
