"""The one training loop all methods share.

AdamW over the method's trainable parameters, linear warm-up then cosine decay stepped per
optimizer step (the schedule is sized in steps and stepped in steps), gradient clipping,
progress after every step, cooperative cancel, and a hard stop on a non-finite loss.
Optionally an anchor term joins the loss, and training stops early by budget (``Budget``):
once the correction's examples are learned, or once the anchors drifted far enough.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from catalogue.hyperparameters import CommonHyperparameters
from service.db.values import StopReason
from workers.engine.errors import NonFiniteLoss, UpdateCancelled
from workers.engine.method import LossFunction, UpdateMethod
from workers.engine.training_data import TrainingData

ProgressCallback = Callable[[int, int, float], None]


@dataclass
class TrainingResult:
    losses: list[float]
    steps: int
    seconds: float
    optimizer_state_bytes: int
    stop_reason: StopReason = StopReason.PLANNED_STEPS


@dataclass
class Budget:
    """When to stop before the planned steps (checked every ``check_every`` steps)."""

    check_every: int
    learned: Callable[[], bool] | None = None
    drift: Callable[[], float] | None = None
    drift_budget: float | None = None

    def stop_reason(self) -> StopReason | None:
        if self.learned is not None and self.learned():
            return StopReason.LEARNED
        over_budget = (
            self.drift is not None
            and self.drift_budget is not None
            and self.drift() >= self.drift_budget
        )
        return StopReason.DRIFT_BUDGET if over_budget else None


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    )


def planned_steps(hyperparameters: CommonHyperparameters, data: TrainingData) -> int:
    """Optimizer steps of an update: ``epochs`` over the data, capped at ``max_steps``."""
    steps = hyperparameters.epochs * data.steps_per_epoch(hyperparameters.batch_size)
    if hyperparameters.max_steps is not None:
        steps = min(steps, hyperparameters.max_steps)
    return steps


def train(
    method: UpdateMethod,
    hyperparameters: CommonHyperparameters,
    data: TrainingData,
    loss_of: LossFunction,
    generator: torch.Generator,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    anchor_loss: Callable[[torch.Generator], torch.Tensor] | None = None,
    budget: Budget | None = None,
) -> TrainingResult:
    """Train ``method``'s parameters; raises UpdateCancelled / NonFiniteLoss.

    ``anchor_loss`` (if given) is added to every step's loss; ``budget`` may end training
    before the planned steps (the result says why it stopped)."""
    parameters = method.trainable_parameters()
    optimizer = torch.optim.AdamW(
        parameters, lr=hyperparameters.learning_rate, weight_decay=hyperparameters.weight_decay
    )
    total_steps = planned_steps(hyperparameters, data)
    warmup_steps = int(hyperparameters.warmup_fraction * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps)
    )
    losses: list[float] = []
    started = time.perf_counter()
    # Epochs of shuffled batches, cut at ``total_steps`` (the max_steps cap may end training
    # mid-epoch); lazy, so no epoch past the cap is shuffled or gathered.
    batches = itertools.islice(
        (
            batch
            for _ in range(hyperparameters.epochs)
            for batch in data.shuffled_batches(hyperparameters.batch_size, generator)
        ),
        total_steps,
    )
    step = 0
    stop_reason = StopReason.PLANNED_STEPS
    for pixels, rows in batches:
        if should_cancel is not None and should_cancel():
            raise UpdateCancelled(f"cancelled at step {step} of {total_steps}")
        loss = loss_of(pixels, rows)
        if anchor_loss is not None:
            loss = loss + anchor_loss(generator)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hyperparameters.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, hyperparameters.max_grad_norm)
        optimizer.step()
        scheduler.step()
        method.after_optimizer_step(step, total_steps)
        step += 1
        losses.append(float(loss.detach()))
        if on_progress is not None:
            on_progress(step, total_steps, losses[-1])
        if budget is not None and step % budget.check_every == 0 and step < total_steps:
            reason = budget.stop_reason()
            if reason is not None:
                stop_reason = reason
                break
    return TrainingResult(
        losses=losses,
        steps=step,
        seconds=time.perf_counter() - started,
        optimizer_state_bytes=optimizer_state_bytes(optimizer),
        stop_reason=stop_reason,
    )
