"""``max_steps`` caps an update's optimizer steps whatever the batch size; progress reports
the capped total; ``max_steps=None`` leaves ``epochs`` in charge."""

from __future__ import annotations

from catalogue.declarations import parse_hyperparameters
from service.modelling.dual_encoder import DualEncoder
from tests.model_fixtures import noise_examples
from workers.engine.update import run_update


def _update(model: DualEncoder, images: int, **overrides: object) -> tuple[int, list[int]]:
    labels = ["boot", "bag"] * (images // 2)
    totals: list[int] = []
    report = run_update(
        model,
        noise_examples(labels),
        hyperparameters={"batch_size": 4, "learning_rate": 1e-3, **overrides},
        on_progress=lambda step, total, loss: totals.append(total),
    ).report
    return report.steps, totals


def test_default_cap_is_eighty_steps() -> None:
    assert parse_hyperparameters("lorsu", {}).max_steps == 80
    assert parse_hyperparameters("full-ft", {"max_steps": None}).max_steps is None


def test_a_bigger_batch_trains_no_longer_than_the_cap(model: DualEncoder) -> None:
    # 24 images at batch 4: 6 steps per epoch; 3 epochs would be 18 steps.
    steps, totals = _update(model, 24, epochs=3, max_steps=7)
    assert steps == 7 and set(totals) == {7} and len(totals) == 7


def test_without_a_cap_epochs_decide(model: DualEncoder) -> None:
    steps, totals = _update(model, 24, epochs=3, max_steps=None)
    assert steps == 18 and set(totals) == {18}
    # A cap above the epochs' steps changes nothing.
    assert _update(model, 8, epochs=2, max_steps=40)[0] == 4
