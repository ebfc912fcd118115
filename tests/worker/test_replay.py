"""Replay: a model's earlier corrections join the anchors of its next job."""

from __future__ import annotations

from service.db.session import session_scope
from service.versions import repository as versions_repository
from tests.worker.harness import Shots, Stack
from workers.pipeline.replay import replayed_examples
from workers.pipeline.runner import Outcome, process_job

ANCHORED = {
    "learning_rate": 1e-3,
    "max_steps": 4,
    "batch_size": 8,
    "anchor_distillation": 10.0,
    "anchor_rehearsal": 1.0,
}


def test_the_next_job_replays_the_trained_examples_of_every_earlier_correction(
    stack: Stack, shots: Shots
) -> None:
    stack.add_eval_set("others", "control", shots.control)
    control_anchors = len(shots.control[1::2])  # the odd positions of the one control set
    first = process_job(
        stack.context,
        stack.submit(shots.train, shots.held_out, hyperparameters=ANCHORED),
    )
    assert first.outcome is Outcome.SUCCEEDED
    replaying = {**ANCHORED, "anchor_replay": True}
    second = process_job(
        stack.context, stack.submit(shots.train[:4], shots.held_out, hyperparameters=replaying)
    )
    assert second.outcome is Outcome.SUCCEEDED
    third = process_job(
        stack.context, stack.submit(shots.train[:2], shots.held_out, hyperparameters=replaying)
    )
    assert third.outcome is Outcome.SUCCEEDED
    [_base, v_first, v_second, v_third] = stack.versions()
    assert v_first.cost is not None and v_second.cost is not None and v_third.cost is not None
    # Without replay: only the control set's anchor half.
    assert v_first.cost.anchors == control_anchors
    # With it: every trained example of the chain behind the parent (never held-out ones).
    assert v_second.cost.anchors == control_anchors + len(shots.train)
    assert v_third.cost.anchors == control_anchors + len(shots.train) + 4

    with session_scope(stack.runtime.session_factory) as session:
        parent = versions_repository.get(session, v_third.parent_id or "")
        assert parent is not None
        replayed = replayed_examples(session, stack.runtime.blobs, parent)
        newest_first = [label for _, label in shots.train[:4]] + [label for _, label in shots.train]
        assert [example.label for example in replayed] == newest_first
        assert len(replayed_examples(session, stack.runtime.blobs, parent, limit=3)) == 3


def test_an_anchored_job_says_what_its_anchors_hold_and_warns_when_there_are_none(
    stack: Stack, shots: Shots
) -> None:
    unanchored = stack.submit(shots.train, shots.held_out, hyperparameters=ANCHORED)
    assert process_job(stack.context, unanchored).outcome is Outcome.SUCCEEDED
    [warning] = [event for event in stack.events(unanchored) if event.type == "log"]
    assert warning.message is not None and warning.message.startswith("no anchors")
    version = stack.versions()[-1]
    assert version.cost is not None and version.cost.anchors == 0

    stack.add_eval_set("others", "control", shots.control)
    anchored = stack.submit(shots.train, shots.held_out, hyperparameters=ANCHORED)
    assert process_job(stack.context, anchored).outcome is Outcome.SUCCEEDED
    [note] = [event for event in stack.events(anchored) if event.type == "log"]
    # LoRSU replays a dual encoder's earlier corrections by default: the first job's examples.
    halves, replayed = len(shots.control[1::2]), len(shots.train)
    assert note.message == f"anchor terms on {halves + replayed} images ({halves} from the " + (
        f"control sets' anchor halves, {replayed} replayed from earlier corrections)"
    )
