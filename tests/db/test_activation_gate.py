"""The activation gate: auto (TI > 0 and CC >= -threshold), manual, always."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.db.tables import VersionEvaluation, VersionSetAccuracy
from service.versions import repository
from service.versions.service import ControlResult, apply_activation_gate, gate_verdict
from tests.db.helpers import add_model, add_versions


@pytest.mark.parametrize(
    ("policy", "ti", "cc", "expected"),
    [
        ("auto", 5.0, 0.0, True),
        ("auto", 5.0, -1.0, True),  # exactly at the threshold passes
        ("auto", 5.0, -1.01, False),
        ("auto", 0.0, 2.0, False),  # no improvement, no activation
        ("auto", -3.0, 0.0, False),
        ("auto", None, 0.0, False),
        ("auto", 2.0, None, True),  # no control sets registered
        ("manual", 50.0, 0.0, False),
        ("always", -50.0, -50.0, True),
    ],
)
def test_gate_verdict(policy: str, ti: float | None, cc: float | None, expected: bool) -> None:
    verdict = gate_verdict(policy, ti, cc, threshold=1.0)
    assert verdict.activated is expected and verdict.reasons


def test_the_gate_names_each_control_set_that_regressed() -> None:
    controls = [
        ControlResult("fashion", 80.0, 77.5),
        ControlResult("textures", 90.0, 91.0),
        ControlResult("digits", 50.0, 49.5),
    ]
    verdict = gate_verdict("auto", 4.0, -0.5, threshold=1.0, controls=controls)
    assert verdict.activated
    assert verdict.reasons[1:] == [
        "control set 'fashion' fell 2.50 points (80.0 -> 77.5)",
        "control set 'digits' fell 0.50 points (50.0 -> 49.5)",
    ]


def test_a_control_set_with_its_own_limit_can_hold_a_version_the_mean_lets_through() -> None:
    controls = [
        ControlResult("fashion", 80.0, 78.0, max_drop=1.5),  # -2.0 against its own 1.5
        ControlResult("textures", 90.0, 91.5),
    ]
    verdict = gate_verdict("auto", 4.0, -0.25, threshold=1.0, controls=controls)
    assert not verdict.activated
    assert verdict.reasons[-1] == (
        "control set 'fashion' fell 2.00 points (80.0 -> 78.0), more than its max_drop 1.5"
    )
    # Within its limit it passes; the limit is the auto gate's, not "always"'s.
    controls[0] = ControlResult("fashion", 80.0, 79.0, max_drop=1.5)
    assert gate_verdict("auto", 4.0, 0.25, threshold=1.0, controls=controls).activated
    over = [ControlResult("fashion", 80.0, 70.0, max_drop=1.5)]
    assert gate_verdict("always", 4.0, -10.0, threshold=1.0, controls=over).activated


def test_the_gate_names_every_reason_it_holds_a_version() -> None:
    assert gate_verdict("auto", 0.0, -2.5, threshold=1.0).reasons == [
        "TI +0.00 points: the correction did not improve its target",
        "CC -2.50 points is below -1: the control sets regressed",
    ]


def test_gate_moves_the_pointer_only_when_it_passes(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        model, base = add_model(session)
        held, passed = add_versions(session, model, base, 2)
        held.evaluation = VersionEvaluation(ti=3.0, cc=-4.0, ti_source="held_out")
        passed.evaluation = VersionEvaluation(ti=3.0, cc=0.5, ti_source="held_out")
        session.flush()
        assert apply_activation_gate(session, model, held) is None
        assert repository.active_version_id(session, model.id) == base.id
        assert held.gate_decision is not None and held.gate_decision.activated is False
        assert held.gate_decision.reasons == [
            "CC -4.00 points is below -1: the control sets regressed"
        ]
        deployment = apply_activation_gate(session, model, passed)
        assert deployment is not None and deployment.actor == "gate"
        assert repository.active_version_id(session, model.id) == passed.id
        assert [d.action for d in repository.list_deployments(session, model.id)] == [
            "initial",
            "gate",
        ]


def test_for_a_generative_model_the_gate_judges_the_generated_answers(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        model, base = add_model(session, name="vlm")
        model.family, model.pair_path = "llava", "/nonexistent-pair"
        clip_only, answers_too = add_versions(session, model, base, 2)
        # CLIP space improved, the answers did not: held.
        clip_only.evaluation = VersionEvaluation(
            ti=40.0, cc=0.0, ti_source="target_sets", answer_ti=0.0, answer_cc=0.0
        )
        # The answers improved and a control set's answers fell within the threshold.
        answers_too.evaluation = VersionEvaluation(
            ti=0.0, cc=-5.0, ti_source="target_sets", answer_ti=50.0, answer_cc=-0.5
        )
        answers_too.set_accuracies = [
            VersionSetAccuracy(
                set_name="controls",
                kind="control",
                accuracy_before=80.0,
                accuracy_after=75.0,
                answer_accuracy_before=60.0,
                answer_accuracy_after=59.5,
            )
        ]
        session.flush()
        assert apply_activation_gate(session, model, clip_only) is None
        assert clip_only.gate_decision is not None
        assert clip_only.gate_decision.reasons == [
            "TI +0.00 points: the correction did not improve its target"
        ]
        assert apply_activation_gate(session, model, answers_too) is not None
        assert answers_too.gate_decision is not None
        assert answers_too.gate_decision.reasons[0] == "TI +50.00 > 0 and CC -0.50 >= -1"
        assert "(60.0 -> 59.5)" in answers_too.gate_decision.reasons[1]
