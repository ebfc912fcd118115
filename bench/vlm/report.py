"""Aggregates the saved VLM runs over seeds into the report's markdown tables."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.continual.protocol import (
    CORRECTED_CONCEPTS,
    SESSIONS,
    STYLE_SHIFT_TARGET,
    TRANSFER_CONCEPTS,
)
from bench.continual.report import ordered_methods, spread
from bench.vlm.models import ModelPaths
from bench.vlm.plot import write_plot
from bench.vlm.protocol import WHAT_ONLY
from bench.vlm.results import (
    ANSWERS,
    CLIP,
    CONTROLS,
    CORRECTED,
    DRIFT_KINDS,
    GROUPS,
    KIND_GROUPS,
    VlmRun,
    VlmSession,
    load_runs,
)


def by_method(runs: Sequence[VlmRun]) -> dict[str, list[VlmRun]]:
    """method (and corrections variant) -> its runs over seeds, in the report's order."""
    grouped: dict[str, list[VlmRun]] = defaultdict(list)
    for run in runs:
        grouped[run.label].append(run)
    return {method: grouped[method] for method in ordered_methods(list(grouped))}


def before_after_table(runs: Sequence[VlmRun], source: str, kinds: str) -> str:
    """method x {corrected, never corrected, controls} x before / after / change, mean ± std
    over seeds (before and after on the same images and concepts)."""
    header = ["method", "seeds"]
    for group in GROUPS:
        header += [f"{group}: before", "after", "change"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, method_runs in by_method(runs).items():
        cells = [method, str(len(method_runs))]
        for group in GROUPS:
            before = [run.accuracy(run.sessions[0], source, group, kinds) for run in method_runs]
            after = [run.accuracy(run.sessions[-1], source, group, kinds) for run in method_runs]
            change = [run.change(source, group, kinds) for run in method_runs]
            cells += [spread(before).plain(), spread(after).plain(), f"**{spread(change)}**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sessions_table(runs: Sequence[VlmRun], source: str, kinds: str) -> str:
    """Accuracy on the concepts corrected so far and on the controls after each measured
    session (mean over seeds): how the answers move session by session."""
    first = runs[0]
    measured = [session.session for session in first.measured()]
    header = ["method", *(f"s{index}: corrected so far / controls" for index in measured)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, method_runs in by_method(runs).items():
        cells = [method]
        for index in measured:
            so_far, controls = [], []
            for run in method_runs:
                session = run.sessions[index]
                measurement = session.measurement
                assert measurement is not None
                # Session 0 has corrected nothing: show it on what the run corrects in the end.
                concepts = session.corrected_so_far or run.corrected
                so_far.append(
                    measurement.accuracy(source, CORRECTED, KIND_GROUPS[kinds], concepts, [])
                )
                controls.append(run.accuracy(session, source, CONTROLS, kinds))
            cells.append(f"{statistics.fmean(so_far):.1f} / {statistics.fmean(controls):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def control_styles_table(runs: Sequence[VlmRun]) -> str:
    """Generated-answer accuracy per control style, before -> after, mean over seeds."""
    first = runs[0].sessions[0].measurement
    assert first is not None
    styles = [name for name in first.answers if name != STYLE_SHIFT_TARGET]
    header = ["method", *(f"{style} ({kinds})" for style in styles for kinds in KIND_GROUPS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, method_runs in by_method(runs).items():
        cells = [method]
        for style in styles:
            for kinds in KIND_GROUPS:
                before = [_style_accuracy(run.sessions[0], style, kinds) for run in method_runs]
                after = [_style_accuracy(run.sessions[-1], style, kinds) for run in method_runs]
                cells.append(f"{statistics.fmean(before):.1f} -> {statistics.fmean(after):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def drift_table(runs: Sequence[VlmRun]) -> str:
    """How far the images' features moved by the end (mean 1 - cos against the VLM before any
    update, x 1000), per group: the CLIP embedding the loss trains and the language model's
    input. Mean ± std over seeds."""
    header = ["method"] + [f"{group}: {kind}" for group in GROUPS for kind in DRIFT_KINDS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, method_runs in by_method(runs).items():
        cells = [method]
        for group in GROUPS:
            for kind in DRIFT_KINDS:
                values = []
                for run in method_runs:
                    measurement = run.sessions[-1].measurement
                    assert measurement is not None
                    values.append(1000.0 * measurement.drift[group][kind])
                cells.append(spread(values).plain())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _style_accuracy(session: VlmSession, style: str, kinds: str) -> float:
    assert session.measurement is not None
    return session.measurement.control_accuracies(ANSWERS, KIND_GROUPS[kinds])[style]


def cost_table(runs: Sequence[VlmRun]) -> str:
    """Per method: steps and train seconds summed over sessions, trainable parameters, and
    the wall time of a whole run (training and every measurement), mean over seeds."""
    lines = [
        "| method | steps (all sessions) | train s (all sessions) | trainable params | "
        "run wall s (train + measure) | measure s (one pass) |",
        "|---|---|---|---|---|---|",
    ]
    for method, method_runs in by_method(runs).items():
        steps = statistics.fmean(sum(s.steps for s in run.sessions) for run in method_runs)
        train = statistics.fmean(sum(s.train_seconds for s in run.sessions) for run in method_runs)
        params = max(s.trainable_parameters for run in method_runs for s in run.sessions)
        wall = statistics.fmean(run.seconds for run in method_runs)
        one = statistics.fmean(
            s.measurement.seconds for run in method_runs for s in run.measured() if s.measurement
        )
        lines.append(
            f"| {method} | {steps:.0f} | {train:.0f} | {params:,} | {wall:.0f} | {one:.0f} |"
        )
    return "\n".join(lines)


def tables(runs: Sequence[VlmRun]) -> str:
    """Every table of the report, answers first, CLIP space for reference."""
    return f"""### Generated answers: "What is in the picture?"

{before_after_table(runs, ANSWERS, "what")}

### Generated answers: yes/no questions

{before_after_table(runs, ANSWERS, "yes/no")}

### CLIP space, same images (reference): "What is in the picture?" among all concept names

{before_after_table(runs, CLIP, "what")}

### CLIP space, same images (reference): yes/no (the right answer's statement nearer)

{before_after_table(runs, CLIP, "yes/no")}

### Feature drift by the end (mean 1 - cos against before any update, x 1000)

The CLIP embedding is what the loss trains; the language-model input is the tower's hidden
state the VLM reads (its `vision_feature_layer`, patch tokens), which the answers depend on.

{drift_table(runs)}

### Generated answers per control style (before -> after)

{control_styles_table(runs)}

### Generated answers per measured session ("What is in the picture?")

{sessions_table(runs, ANSWERS, "what")}

### Cost

{cost_table(runs)}
"""


FINDINGS_FILE = "findings.md"  # hand-written, embedded in the report when present
_COMMON_HYPERPARAMETERS = (
    "learning_rate",
    "epochs",
    "max_steps",
    "batch_size",
    "anchor_distillation",
    "anchor_rehearsal",
    "anchor_batch_size",
)
_NOT_SHOWN = {"template", "warmup_fraction", "weight_decay", "max_grad_norm", "anchor_replay"}
_NOT_SHOWN |= {"stop_margin", "drift_budget"}


def hyperparameter_table(runs: Sequence[VlmRun]) -> str:
    """What each method trained with (resolved, as saved with its first run)."""
    keys = _COMMON_HYPERPARAMETERS
    lines = [
        "| method | " + " | ".join(keys) + " | method's own |",
        "|---|" + "---|" * (len(keys) + 1),
    ]
    for method, method_runs in by_method(runs).items():
        hp = method_runs[0].hyperparameters
        own = ", ".join(
            f"{key}={value}"
            for key, value in sorted(hp.items())
            if key not in keys and key not in _NOT_SHOWN
        )
        lines.append(f"| {method} | " + " | ".join(str(hp.get(k)) for k in keys) + f" | {own} |")
    return "\n".join(lines)


def models_description(models: ModelPaths, committed: bool) -> str:
    """Which VLM was corrected, and its own answer accuracy where its build facts say."""
    origin = (
        "the committed stand-in VLM (`standin/basemodel/vlm/release/`) assembled around the "
        "committed base pair's image tower"
        if committed
        else f"`{models.vlm}` with its pair `{models.pair}`"
    )
    text = (
        f"{origin}; weights sha256 `{models.weights_sha256[:16]}…`. "
        "`load_vision_language_model` shares the VLM's vision tower with the pair, so the "
        "pair's image encoder that the updates train is the tower the VLM answers with."
    )
    try:
        info = json.loads((models.vlm / "build_info.json").read_text())
    except (OSError, ValueError):
        return text
    figures = "; ".join(
        f"{name} {result['what']:.1f}% / {result['yes']:.1f}% / {result['no']:.1f}%"
        for name, result in info.get("test_accuracy", {}).items()
    )
    if figures:
        text += f" Its card, on test renderings (what / yes / no): {figures}."
    return text


def _protocol(runs: Sequence[VlmRun], info: dict[str, Any]) -> str:
    setting = runs[0].setting
    examples: dict[str, set[int]] = defaultdict(set)
    for run in runs:
        examples[run.corrections] |= {session.examples for session in run.sessions[1:]}
    per_session = "; ".join(f"{name}: {_range(sizes)}" for name, sizes in sorted(examples.items()))
    measured_when = "every session" if len(runs[0].measured()) > 2 else "the last session"
    controls = setting.get("control_concepts")
    control_concepts = (
        "every even-numbered concept"
        if controls is None
        else (f"the first {controls} even-numbered concepts")
    )
    seeds = sorted({run.seed for run in runs})
    anchors = max(s.anchors for run in runs for s in run.sessions)
    anchoring = (
        f"anchored as the service anchors ({anchors} anchors: `anchor_examples()`, train "
        "renderings of the odd-numbered concepts of the two training styles, Fashion-MNIST "
        "and textures train images)"
        if anchors
        else "without anchors (the hyperparameters ask for no anchor term)"
    )
    overrides = info.get("overrides") or {}
    defaults = (
        "each method's declared defaults (`resolve_hyperparameters`)"
        if not overrides
        else f"each method's declared defaults with the overrides `{json.dumps(overrides)}`"
    )
    bullets = [
        "**Concepts and sessions**: the continual benchmark's style shift "
        f"(`bench/continual/protocol.py`): {CORRECTED_CONCEPTS} fixed OpenMoji concepts in "
        f"{setting['sessions']} sessions of {CORRECTED_CONCEPTS // SESSIONS}; the first "
        f"{setting['applied_sessions']} applied in order, each from the previous merged tower "
        f"({len(runs[0].corrected)} concepts corrected in all). {TRANSFER_CONCEPTS} other "
        "OpenMoji concepts are never corrected.",
        f"**Corrections**: {setting['shots']} OpenMoji `train` renderings per corrected concept "
        "(drawn by the seed), each asked the VLM's own questions "
        '(`standin/basemodel/vlm/questions.py: question_answers`: "What is in the picture?" '
        '-> "A <name>.", the concept\'s yes question, one of its no questions). '
        f"Question/answer examples per session: {per_session}. The rows marked "
        f"({WHAT_ONLY}) are a control: the same images asked only what they show, whose "
        "statement is the label caption, so they train exactly what the continual "
        "benchmark's label corrections train.",
        f"**Training**: {_objectives(runs)}, through `run_update` on the pair whose image "
        "encoder is the VLM's tower, at "
        f"{defaults}, {anchoring}. The projector and language model never change.",
        f"**Measured** before the first session and after {measured_when}: the same questions "
        f"of {setting['target_renderings']} OpenMoji `test` renderings per corrected and "
        f"never-corrected concept, and of {setting['control_renderings']} `test` renderings "
        f"per concept of the two training styles for {control_concepts} (controls; never an "
        "anchored concept). Answers are greedy and scored by the service's `answer_hits` "
        '(normalised exact match). "corrected" is scored on the concepts corrected by the '
        'end, before and after; "controls" is the mean over the two styles. CLIP space '
        "scores the same images, for reference. The VLM names emoji concepts only (its "
        "card), so Fashion-MNIST and textures are not asked.",
        "Figures in percent (accuracies) and points (changes), mean ± sample std over "
        f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}).",
    ]
    return "\n".join(f"- {bullet}" for bullet in bullets)


def _objectives(runs: Sequence[VlmRun]) -> str:
    """What the runs trained with, in words (catalogue/objectives.py)."""
    used = sorted({str(run.hyperparameters.get("objective")) for run in runs})
    words = {
        "clip": "the CLIP loss (class-level contrastive loss on the `qa_statement` captions, "
        "the other concept names as negative captions)",
        "answer": "the answer objective (the language model's cross-entropy on the right "
        "answers' tokens, through the frozen projector and language model)",
        "clip+answer": "the CLIP loss and the answer objective together",
    }
    return "; ".join(f"`{name}`: {words.get(name, name)}" for name in used)


def _range(values: set[int]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]}" if len(ordered) == 1 else f"{ordered[0]}-{ordered[-1]}"


def write_report(out: Path, info: dict[str, Any]) -> Path:
    """Render ``out/report.md`` from every run saved under ``out/runs`` and the facts of the
    invocation that produced them (``info``)."""
    runs = load_runs(out / "runs")
    if not runs:
        raise SystemExit(f"no saved runs under {out / 'runs'}")
    write_plot(by_method(runs), out)
    findings = out / FINDINGS_FILE
    findings_text = findings.read_text().strip() if findings.is_file() else "(not written yet)"
    seconds = info.get("seconds")
    elapsed = f"{seconds / 60:.1f} min" if seconds is not None else "(not recorded)"
    invocations = info.get("invocations", 1)
    if invocations > 1:
        elapsed += f" over {invocations} invocations"
    workers = info.get("workers", 1)
    parallel = (
        f"{workers} worker processes on 1 torch thread each"
        if workers > 1
        else f"one process on {info.get('threads', '?')} torch thread(s)"
    )
    runs_line = f"{info.get('runs', '?')} runs"
    text = f"""# VLM scenario: question/answer corrections of the vision tower, answers measured

Command: `{info.get("command", "python -m bench.vlm.run")}`

Machine: {info.get("machine", "(not recorded)")}; wall time {elapsed} ({runs_line}; {parallel}).

Models: {info.get("models", "(not recorded)")}

## Findings

{findings_text}

## Protocol

{_protocol(runs, info)}

## Results ({len(runs[0].sessions) - 1} sessions)

![answers on the corrected concepts against the controls, per method](front.png)

{tables(runs)}
## What each method trained with (resolved)

{hyperparameter_table(runs)}

Every run, session by session, with per-concept hits: `runs/*.json`.
"""
    path = out / "report.md"
    path.write_text(text)
    return path
