"""Where TI and CC come from: held-out examples first, target sets otherwise, control sets
for CC; and what the auto gate makes of each case."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from service.versions.service import gate_verdict
from standin.datasets import load_dataset
from workers.pipeline.evaluation import Accuracies, build_plan, evaluation_records, measure
from workers.pipeline.stored_inputs import LoadedEvalSet

TEMPLATE = "a photo of a {}."


def _set(name: str, kind: str) -> LoadedEvalSet:
    return LoadedEvalSet(name=name, kind=kind, images=[], labels=[])


def _example(label: str) -> ImageExample:
    return ImageExample(image=Image.new("L", (8, 8)), label=label)


def test_held_out_examples_are_matched_against_every_caption_of_the_batch_and_negatives() -> None:
    plan = build_plan(
        [_example("sandal"), _example("boot")], [_example("boot")], ["bag"], [], TEMPLATE
    )
    assert plan.target is not None
    assert plan.target.captions == [
        "a photo of a sandal.",
        "a photo of a boot.",
        "a photo of a bag.",
    ]
    assert plan.target.targets == [1]


def test_ti_from_held_out_and_cc_as_the_mean_change_over_control_sets() -> None:
    sets = [_set("a", "control"), _set("b", "control"), _set("t", "target")]
    plan = build_plan([_example("x"), _example("y")], [_example("y")], [], sets, TEMPLATE)
    before = Accuracies(target=50.0, sets={"a": 80.0, "b": 60.0, "t": 10.0})
    after = Accuracies(target=100.0, sets={"a": 78.0, "b": 61.0, "t": 90.0})
    evaluation, sets_after = evaluation_records(plan, before, after)
    assert (evaluation.ti, evaluation.ti_source, evaluation.cc) == (50.0, "held_out", -0.5)
    [target] = [item for item in sets_after if item.set_name == "t"]
    assert (target.kind, target.accuracy_before, target.accuracy_after) == ("target", 10.0, 90.0)
    assert gate_verdict("auto", evaluation.ti, evaluation.cc, threshold=1.0).activated
    assert not gate_verdict("auto", evaluation.ti, evaluation.cc, threshold=0.25).activated


def test_without_held_out_examples_ti_is_measured_on_the_target_images_of_corrected_labels(
    tiny_model_dir: Path,
) -> None:
    images = load_dataset("fashion-mnist", "test", limit_per_class=3, seed=0)
    names = [images.class_names[label] for label in images.labels]
    target = LoadedEvalSet(name="t", kind="target", images=list(images.images), labels=names)
    plan = build_plan([_example("sandal"), _example("bag")], [], [], [target], TEMPLATE)
    assert plan.corrected_labels == {"sandal", "bag"}
    accuracies = measure(load_dual_encoder(tiny_model_dir), plan)
    # Scored against every label of the set, on the six images of the two corrected labels.
    assert round(accuracies.corrected["t"] * 6 / 100, 6).is_integer()
    assert round(accuracies.sets["t"] * 30 / 100, 6).is_integer()

    before = Accuracies(target=None, sets={"t": 40.0}, corrected={"t": 0.0})
    after = Accuracies(target=None, sets={"t": 39.0}, corrected={"t": 50.0})
    evaluation, [record] = evaluation_records(plan, before, after)
    assert (evaluation.ti, evaluation.ti_source) == (50.0, "target_sets")
    assert (record.accuracy_before, record.accuracy_after) == (40.0, 39.0)  # the whole set


def test_target_sets_without_any_corrected_label_give_ti_over_the_whole_sets() -> None:
    sets = [_set("t1", "target"), _set("t2", "target")]
    plan = build_plan([_example("x"), _example("y")], [], [], sets, TEMPLATE)
    before = Accuracies(target=None, sets={"t1": 40.0, "t2": 70.0})
    after = Accuracies(target=None, sets={"t1": 45.0, "t2": 69.0})
    evaluation, _ = evaluation_records(plan, before, after)
    assert (evaluation.ti, evaluation.ti_source, evaluation.cc) == (2.0, "target_sets", None)


def test_each_target_set_reports_its_own_ti_and_named_sets_alone_make_the_ti() -> None:
    """A user's own target set beside the built-in one: the correction names it, so TI (and
    the gate) is that set's gain, not the mean with a set the correction did not touch."""
    sets = [_set("builtin", "target"), _set("mine", "target"), _set("c", "control")]
    trained = [_example("x"), _example("y")]
    before = Accuracies(
        target=None, sets={"builtin": 30.0, "mine": 4.0, "c": 80.0}, corrected={"mine": 4.0}
    )
    after = Accuracies(
        target=None, sets={"builtin": 30.0, "mine": 46.0, "c": 80.0}, corrected={"mine": 46.0}
    )
    unnamed, records = evaluation_records(
        build_plan(trained, [], [], sets, TEMPLATE), before, after
    )
    # The corrected labels' images are in "mine" only: TI over it; every target set's own TI.
    assert (unnamed.ti, unnamed.ti_sets) == (42.0, ["mine"])
    assert {r.set_name: r.ti for r in records} == {"builtin": 0.0, "mine": 42.0, "c": None}

    named = build_plan(trained, [], [], sets, TEMPLATE, named_target_sets=["builtin", "mine"])
    evaluation, _ = evaluation_records(named, before, after)
    assert (evaluation.ti, evaluation.ti_source) == (21.0, "target_sets")
    assert evaluation.ti_sets == ["builtin", "mine"]

    # Named sets win over held-out examples; a named set deleted since is skipped.
    with_held_out = build_plan(
        trained, [_example("y")], [], sets, TEMPLATE, named_target_sets=["gone", "mine"]
    )
    before.target, after.target = 0.0, 100.0
    evaluation, _ = evaluation_records(with_held_out, before, after)
    assert (evaluation.ti, evaluation.ti_sets, evaluation.target_accuracy_after) == (
        42.0,
        ["mine"],
        100.0,
    )


def test_with_nothing_to_measure_ti_is_none_and_the_auto_gate_holds_the_version_back() -> None:
    plan = build_plan([_example("x"), _example("y")], [], [], [], TEMPLATE)
    evaluation, _ = evaluation_records(plan, Accuracies(target=None), Accuracies(target=None))
    assert (evaluation.ti, evaluation.ti_source, evaluation.cc) == (None, "none", None)
    assert not gate_verdict("auto", evaluation.ti, evaluation.cc, threshold=1.0).activated
    assert gate_verdict("always", evaluation.ti, evaluation.cc, threshold=1.0).activated


def test_question_items_are_matched_among_the_statements_of_their_own_question(
    tiny_model_dir: Path,
) -> None:
    from service.modelling.inference import zero_shot_predictions
    from workers.pipeline.evaluation import set_hits, split_control_sets

    images = load_dataset("fashion-mnist", "test", limit_per_class=2, seed=0)
    names = [images.class_names[label] for label in images.labels]
    shoe = {"sandal", "sneaker", "ankle boot"}
    questions: list[str | None] = [None] * 10 + ["Is it a shoe?"] * 10
    labels = names[:10] + ["yes" if name in shoe else "no" for name in names[10:]]
    mixed = LoadedEvalSet("m", "control", list(images.images), labels, questions)
    model = load_dual_encoder(tiny_model_dir)

    hits = set_hits(model, mixed, TEMPLATE)

    # Labelled items: among the labels of the labelled items only (never "yes" / "no").
    label_names = sorted(set(names[:10]))
    predicted = zero_shot_predictions(model, images.images[:10], label_names, TEMPLATE)
    assert hits[:10] == [
        label_names[int(p)] == n for p, n in zip(predicted, names[:10], strict=True)
    ]
    # Question items: between the two statements their question's answers make.
    statements = ["it is a shoe.", "it is not a shoe."]
    predicted = zero_shot_predictions(model, images.images[10:], statements, "{}")
    expected = ["it is a shoe." if label == "yes" else "it is not a shoe." for label in labels[10:]]
    assert hits[10:] == [statements[int(p)] == e for p, e in zip(predicted, expected, strict=True)]

    # Anchors keep the question: a question item trains through its statement.
    [measured], anchors = split_control_sets([mixed])
    assert measured.questions == questions[0::2]
    assert [anchor.question for anchor in anchors] == questions[1::2]
    assert anchors[-1].caption(TEMPLATE) in statements


def test_accuracy_counts_the_label_classify_answers_with(tiny_model_dir: Path) -> None:
    """The worker's accuracy and the API's classify are one zero-shot classification: an image
    counts as right exactly when the label classify ranks first is its own."""
    from service.modelling.inference import classify
    from workers.engine.accuracy import zero_shot_accuracy

    images = load_dataset("fashion-mnist", "test", limit_per_class=3, seed=1)
    model = load_dual_encoder(tiny_model_dir)
    answered = classify(model, images.images, images.class_names, TEMPLATE)
    right = [
        max(range(len(row)), key=row.__getitem__) == label
        for row, label in zip(answered, images.labels, strict=True)
    ]
    accuracy = zero_shot_accuracy(model, images.images, images.labels, images.class_names)
    assert accuracy == 100.0 * sum(right) / len(right)
    assert 0 < sum(right) < len(right)  # neither all right nor all wrong: the test can tell


def test_evaluation_images_a_job_trains_on_are_left_out_of_ti_and_cc() -> None:
    import io

    from workers.pipeline.evaluation import without_trained_images

    images = load_dataset("fashion-mnist", "test", limit_per_class=2, seed=0)
    names = [images.class_names[label] for label in images.labels]
    target = LoadedEvalSet("t", "target", list(images.images[:10]), names[:10], [None] * 10)
    control = LoadedEvalSet("c", "control", list(images.images[10:]), names[10:], [None] * 10)
    # The user flags two served answers whose images are in the target set, one in the
    # control set: uploaded again as PNG (other bytes, same pixels).
    uploads = []
    for image in (images.images[3], images.images[7], images.images[12]):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        uploads.append(ImageExample(image=Image.open(io.BytesIO(buffer.getvalue())), label="x"))
    # A picture that only looks alike (one pixel changed) is a different image.
    near = images.images[4].copy()
    near.putpixel((0, 0), (near.getpixel((0, 0)) + 1) % 256)  # type: ignore[operator]
    uploads.append(ImageExample(image=near, label="x"))

    kept, left_out = without_trained_images([target, control], uploads)

    assert left_out == 3
    assert kept[0].labels == [n for i, n in enumerate(names[:10]) if i not in (3, 7)]
    assert len(kept[0].images) == len(kept[0].questions) == 8
    assert kept[1].labels == [n for i, n in enumerate(names[10:]) if i != 2]
    assert (kept[0].name, kept[0].kind, kept[1].kind) == ("t", "target", "control")
