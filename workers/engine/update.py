"""``run_update``: one correction session from current weights to merged weights and a report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from catalogue.declarations import DEFAULT_METHOD, declaration_of, resolve_hyperparameters
from catalogue.hyperparameters import CommonHyperparameters, HyperparameterError
from service.db.values import StopReason
from service.modelling.dual_encoder import DualEncoder
from service.modelling.examples import ImageExample
from service.modelling.vlm import VisionLanguageModel
from workers.engine.activations import lean_activations
from workers.engine.anchors import AnchorTerm, AnswerAnchors, prepare_anchors
from workers.engine.answer_anchors import AnswerAnchorWeights, prepare_answer_anchors
from workers.engine.answers import AnswerSequences, VisionReader, answer_loss, answer_sequences
from workers.engine.errors import InvalidHyperparameter
from workers.engine.examples import build_captioned_batch
from workers.engine.loss import class_level_contrastive_loss
from workers.engine.memory import PeakMemory, return_freed_memory_to_os
from workers.engine.method import UpdateContext
from workers.engine.method_builder import create_method
from workers.engine.precision import autocast_dtype, autocast_to, precision_name
from workers.engine.trainer import Budget, ProgressCallback, train
from workers.engine.training_data import TrainingData


@dataclass
class UpdateReport:
    """What an update did and what it cost (JSON-able through :meth:`to_dict`)."""

    method: str
    hyperparameters: dict[str, Any]
    seed: int
    device: str
    examples: int
    captions: list[str]
    trainable_parameters: int
    optimizer_state_bytes: int
    train_seconds: float
    total_seconds: float
    peak_memory_bytes: int
    added_memory_bytes: int
    steps: int
    losses: list[float]
    details: dict[str, Any] = field(default_factory=dict)
    # Why training ended.
    stop_reason: StopReason = StopReason.PLANNED_STEPS
    anchors: int = 0
    # Mean 1 - cos between the anchors' embeddings after the update and the parent's.
    anchor_drift: float | None = None
    # Autocast of the training forward passes: "off" or "bf16" (workers/engine/precision.py).
    mixed_precision: str = "off"
    # Peak memory (same measure as peak_memory_bytes) within each phase of the update:
    # setup, anchors, prepare (importance pass, wrappers), training, merge.
    peak_memory_by_phase: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UpdateOutcome:
    report: UpdateReport
    # State the method wants stored with the new version (KeepLoRA's subspace); usually None.
    carried_state: dict[str, torch.Tensor] | None = None


def run_update(
    model: DualEncoder,
    examples: Sequence[ImageExample],
    *,
    method: str = DEFAULT_METHOD,
    hyperparameters: CommonHyperparameters | Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | None = None,
    negative_labels: Sequence[str] = (),
    carried_state: dict[str, torch.Tensor] | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    anchors: Sequence[ImageExample] = (),
    mixed_precision: str = "off",
    vlm: VisionLanguageModel | None = None,
    known_answers: Mapping[str, str] | None = None,
    base_state: Mapping[str, torch.Tensor] | None = None,
    replayed: Sequence[ImageExample] = (),
) -> UpdateOutcome:
    """Fine-tune the image encoder of ``model`` on ``examples`` and merge the update in place.

    Only the image encoder changes; the architecture stays exactly as it was (all adapters are
    merged). On any error the image-encoder weights are restored to their state at the call.
    The same seed, inputs and thread count give bit-identical weights on CPU.

    ``hyperparameters``: the resolved set of ``method`` (what a job stores), or overrides
    (a mapping) that are resolved here against ``model``; either way they are checked.
    ``anchors``: labelled control images the anchor terms and the drift budget use (never
    the images CC is measured on); ignored unless the hyperparameters ask for them.
    ``mixed_precision``: "off", "bf16" or "auto" (CUDA only; see workers/engine/precision.py):
    parameters, optimizer state and merged weights stay float32 either way.
    ``vlm``: the generative model sharing ``model``'s tower (a llava model), which the answer
    objective and the answer-space anchors train through; ``known_answers``: label -> the
    answer the model gives for it (from its eval sets), used before ``answer_template``.
    ``base_state``: the model's base image-encoder weights, which the anchor terms hold the
    anchors to when ``anchor_reference`` is "base" (required then; the weights at the call,
    the parent, otherwise).
    ``replayed``: earlier corrections' examples that join the anchors (``anchor_replay``);
    they are always held to the weights at the call, where they are as corrected, even when
    the other anchors are held to the base (which would otherwise take the corrections back).
    """
    hp = checked_hyperparameters(model, method, hyperparameters)
    objective = hp.resolved_objective()
    if hp.anchor_reference == "base" and base_state is None and anchors and hp.uses_anchors():
        raise InvalidHyperparameter("anchor_reference 'base' needs the model's base weights")
    reference = base_state if hp.anchor_reference == "base" else None
    if vlm is None and (objective.trains_answers or hp.uses_answer_anchors()):
        raise InvalidHyperparameter(
            f"objective {objective} and the answer anchors need the model's language model "
            "(a llava model)"
        )
    answers_of = known_answers or {}
    batch = build_captioned_batch(
        examples, hp.template, negative_labels, contrastive=objective.trains_clip
    )
    started = time.perf_counter()
    if device is not None:
        model.to(device)
    torch_device = model.device
    amp_dtype = autocast_dtype(mixed_precision, torch_device)
    update_method = create_method(method, hp)
    # The weights at the call, restored on any error. A method that trains the weights in place
    # needs them copied now; for the others they only change in merge, so the copy is taken
    # then, after training's memory is freed (it would otherwise sit in the training peak).
    original = EncoderTensors(model) if update_method.trains_weights_in_place else None
    return_freed_memory_to_os()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    try:
        with PeakMemory(torch_device) as memory, lean_activations(model):
            with memory.phase("setup"):
                # The text tower is frozen: caption embeddings are computed once per session.
                caption_embeddings = model.encode_texts(batch.captions)
                logit_scale = model.logit_scale
                data = TrainingData(
                    pixels=model.pixel_values(batch.images),
                    targets=torch.tensor(batch.targets, device=torch_device),
                )

                same_answer = torch.tensor(batch.same_answer_pairs(), device=torch_device)
                reader = (
                    VisionReader(vlm, model, lambda: autocast_to(torch_device, amp_dtype))
                    if vlm is not None
                    else None
                )
                sequences: AnswerSequences | None = None
                if vlm is not None and objective.trains_answers:
                    sequences = answer_sequences(
                        vlm,
                        [e.question_and_answer(hp.answer_template, answers_of) for e in examples],
                        torch_device,
                    )

            def features_of(pixels: torch.Tensor) -> torch.Tensor:
                # The encoder's forward (and so its backward) in the autocast dtype, if any;
                # the loss on top of it in float32.
                with autocast_to(torch_device, amp_dtype):
                    features = model.image_features(pixels)
                return features.float()

            def clip_loss(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
                targets = data.targets[rows]
                return class_level_contrastive_loss(
                    features, caption_embeddings, targets, logit_scale, same_answer[targets]
                )

            def loss_of(pixels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
                if sequences is None or reader is None or vlm is None:
                    return clip_loss(features_of(pixels), rows)
                # One tower pass: what the language model reads, and the CLIP embedding when
                # the objective trains it too.
                outputs = reader(pixels, clip=objective.trains_clip)
                loss = hp.answer_loss_weight * answer_loss(vlm, outputs.read, sequences.rows(rows))
                if outputs.clip is not None:
                    loss = loss + clip_loss(outputs.clip, rows)
                return loss

            with memory.phase("anchors"):
                anchor_term = None
                held = [*anchors, *replayed]
                if held and hp.uses_anchors():
                    # The distillation targets, from the parent's weights or the base's.
                    with encoder_weights(model, reference):
                        anchor_set = prepare_anchors(model, held, hp.template)
                        answer_anchors = _answer_anchors(
                            vlm, reader, anchor_set.pixels, held, hp, answers_of
                        )
                    if reference is not None and replayed:
                        # The replayed corrections' targets from the parent's weights instead.
                        as_corrected = prepare_anchors(model, held, hp.template)
                        corrected_answers = _answer_anchors(
                            vlm, reader, anchor_set.pixels, held, hp, answers_of
                        )
                        rows = torch.arange(len(anchors), len(held), device=torch_device)
                        anchor_set.hold_rows_to(as_corrected, rows)
                        if answer_anchors is not None and corrected_answers is not None:
                            answer_anchors.anchors.hold_rows_to(corrected_answers.anchors, rows)
                    anchor_term = AnchorTerm(
                        model,
                        anchor_set,
                        hp.anchor_distillation,
                        hp.anchor_rehearsal,
                        hp.anchor_batch_size,
                        image_features=features_of,
                        answers=answer_anchors,
                    )
            budget = _budget(hp, data, anchor_term, caption_embeddings, same_answer, model)
            context = UpdateContext(
                model=model,
                data=data,
                loss_of=loss_of,
                generator=generator,
                carried_state=carried_state,
                # The answers alone reach only the blocks up to the layer the model reads.
                reached_blocks=(None if objective.trains_clip else model.architecture.blocks_read),
                **_anchor_importance(anchor_term, features_of),
            )
            with memory.phase("prepare"):
                update_method.prepare(context)
            trainable = update_method.trainable_parameters()
            with memory.phase("training"):
                result = train(
                    update_method,
                    hp,
                    data,
                    loss_of,
                    generator,
                    on_progress,
                    should_cancel,
                    anchor_term.loss if anchor_term is not None and anchor_term.active else None,
                    budget,
                )
            with memory.phase("merge"):
                if original is None:
                    original = EncoderTensors(model)
                update_method.merge()
            drift = anchor_term.drift() if anchor_term is not None else None
    except BaseException:
        update_method.discard()
        if original is not None:
            original.restore()
        raise
    finally:
        for _, parameter in model.image_encoder_parameters():
            parameter.requires_grad_(False)
    report = UpdateReport(
        method=method,
        hyperparameters=hp.model_dump(),
        seed=seed,
        device=str(torch_device),
        examples=len(batch.images),
        captions=batch.captions[: batch.positive_count],
        trainable_parameters=sum(parameter.numel() for parameter in trainable),
        optimizer_state_bytes=result.optimizer_state_bytes,
        train_seconds=result.seconds,
        total_seconds=time.perf_counter() - started,
        peak_memory_bytes=memory.peak_bytes,
        added_memory_bytes=memory.added_bytes,
        peak_memory_by_phase=dict(memory.phase_peaks),
        steps=result.steps,
        losses=result.losses,
        details=update_method.details(),
        stop_reason=result.stop_reason,
        anchors=anchor_term.anchors.size if anchor_term is not None else 0,
        anchor_drift=drift,
        mixed_precision=precision_name(amp_dtype),
    )
    return UpdateOutcome(report=report, carried_state=update_method.carried_state())


class EncoderTensors:
    """A CPU copy of every image-encoder tensor, matched to the tensor itself (not its name),
    so it restores the weights even once wrappers have moved them in the state dict."""

    def __init__(self, model: DualEncoder) -> None:
        prefixes = model.image_encoder_prefixes()
        self.copies = [
            (tensor, tensor.detach().to("cpu", copy=True))
            for name, tensor in model.model.state_dict(keep_vars=True).items()
            if name.startswith(prefixes)
        ]

    @torch.no_grad()
    def restore(self) -> None:
        for tensor, copy in self.copies:
            tensor.copy_(copy)


def checked_hyperparameters(
    model: DualEncoder,
    method: str,
    hyperparameters: CommonHyperparameters | Mapping[str, Any] | None,
) -> CommonHyperparameters:
    """``method``'s resolved hyperparameters for ``model`` (InvalidHyperparameter if not)."""
    try:
        if isinstance(hyperparameters, CommonHyperparameters):
            schema = declaration_of(method).hyperparameters
            if type(hyperparameters) is not schema:
                raise HyperparameterError(
                    "invalid_hyperparameter",
                    f"{method} takes {schema.__name__}, not {type(hyperparameters).__name__}",
                )
            return hyperparameters.resolve(model.architecture)
        return resolve_hyperparameters(method, hyperparameters, model.architecture)
    except HyperparameterError as error:
        raise InvalidHyperparameter(error.message) from error


def _anchor_importance(
    anchor_term: AnchorTerm | None, features_of: Callable[[torch.Tensor], torch.Tensor]
) -> dict[str, Any]:
    """``UpdateContext`` fields for methods that weigh importance against the anchors: the
    anchors as data and their own contrastive loss (nothing without anchors)."""
    if anchor_term is None or not anchor_term.active:
        return {}
    anchors = anchor_term.anchors

    def anchor_loss_of(pixels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return class_level_contrastive_loss(
            features_of(pixels),
            anchors.caption_embeddings,
            anchors.targets[rows],
            anchor_term.model.logit_scale,
        )

    return {
        "anchor_data": TrainingData(pixels=anchors.pixels, targets=anchors.targets),
        "anchor_loss_of": anchor_loss_of,
    }


@contextmanager
def encoder_weights(model: DualEncoder, state: Mapping[str, torch.Tensor] | None) -> Iterator[None]:
    """``model``'s image encoder holding ``state`` inside the block (None: as it is), its own
    weights restored after."""
    if state is None:
        yield
        return
    own = model.image_encoder_state()  # a copy
    model.load_image_encoder_state(dict(state))
    try:
        yield
    finally:
        model.load_image_encoder_state(own)


def _answer_anchors(
    vlm: VisionLanguageModel | None,
    reader: VisionReader | None,
    pixels: torch.Tensor,
    anchors: Sequence[ImageExample],
    hp: CommonHyperparameters,
    known_answers: Mapping[str, str],
) -> AnswerAnchors | None:
    """The answer-space anchor terms of a VLM's update (None: a dual encoder, or all off)."""
    if vlm is None or reader is None or not hp.uses_answer_anchors():
        return None
    weights = AnswerAnchorWeights(
        read_distillation=hp.anchor_read_distillation or 0.0,
        answer_kl=hp.anchor_answer_kl or 0.0,
        answer_rehearsal=hp.anchor_answer_rehearsal or 0.0,
    )
    pairs = [anchor.question_and_answer(hp.answer_template, known_answers) for anchor in anchors]
    prepared = prepare_answer_anchors(vlm, reader, pixels, pairs, weights)
    return AnswerAnchors(vlm, reader, prepared, weights)


def _budget(
    hp: CommonHyperparameters,
    data: TrainingData,
    anchor_term: AnchorTerm | None,
    caption_embeddings: torch.Tensor,
    same_answer: torch.Tensor,
    model: DualEncoder,
) -> Budget | None:
    """The early stop the hyperparameters ask for, checked once per epoch (None: none)."""
    learned = None
    if hp.stop_margin is not None and hp.resolved_objective().trains_clip:
        margin = hp.stop_margin

        def learned() -> bool:
            return examples_learned(model, data, caption_embeddings, same_answer, margin)

    drift = anchor_term.drift if anchor_term is not None and hp.drift_budget else None
    if learned is None and drift is None:
        return None
    return Budget(
        check_every=data.steps_per_epoch(hp.batch_size),
        learned=learned,
        drift=drift,
        drift_budget=hp.drift_budget,
    )


@torch.no_grad()
def examples_learned(
    model: DualEncoder,
    data: TrainingData,
    caption_embeddings: torch.Tensor,
    same_answer: torch.Tensor,
    margin: float,
) -> bool:
    """Whether every training example's own caption beats every other caption (those that
    state the same answer aside) by ``margin`` in cosine similarity."""
    for pixels, rows in data.batches_in_order(64):
        targets = data.targets[rows]
        embeddings = torch.nn.functional.normalize(model.image_features(pixels), dim=-1)
        similarity = embeddings @ caption_embeddings.T
        own = similarity.gather(1, targets.unsqueeze(1)).squeeze(1)
        others = similarity.masked_fill(same_answer[targets], float("-inf"))
        others = others.scatter(1, targets.unsqueeze(1), float("-inf"))
        if bool((own - others.max(dim=1).values < margin).any()):
            return False
    return True
