"""Measure one update of a VLM's vision tower, per training objective and anchor terms, in a
fresh process (clean peak memory).

Run as ``python -m bench.cost.vlm_measure --configuration answer/defaults --inputs FILE
--vlm-dir DIR --pair-dir DIR`` (the stand-in VLM and its pair) or ``--model llava-1.5-7b
--pair-dir DIR --device cuda`` (a LLaVA-1.5-7B-shaped model with random weights, built in GPU
memory around the pair's CLIP ViT-L/14-336 tower); prints one ``RESULT`` JSON line. LoRSU at
its defaults, trained for ``--warmup-steps`` + ``--steps`` optimizer steps; seconds per step
is the median of the steps after the warm-up (the first one also pays the update's setup).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.cost.measure import device_facts
from catalogue.architecture import read_layer_of
from catalogue.captions import DEFAULT_ANSWER_TEMPLATE
from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from service.modelling.vlm import (
    VISION_TOWER_CHILDREN,
    VisionLanguageModel,
    load_vision_language_model,
)
from standin.llava_factory import LanguageShape, build_llava, build_tokenizer
from workers.engine.precision import MIXED_PRECISION_MODES
from workers.engine.update import run_update

STANDIN, LLAVA_7B = "standin", "llava-1.5-7b"
VLM_MODELS = (STANDIN, LLAVA_7B)
# LLaVA-1.5-7B's language model (Vicuna-7B v1.5, a Llama 2 7B) and llava-hf's vocabulary
# (Llama's 32,000 tokens, <image> and padding): 6.74 B parameters, 7.06 B with the tower.
LLAMA_7B = LanguageShape(
    hidden_size=4096, intermediate_size=11008, num_layers=32, num_heads=32, max_positions=4096
)
LLAVA_15_VOCAB = 32064
METHOD = "lorsu"

_NO_ANSWER_ANCHORS = {
    "anchor_read_distillation": 0.0,
    "anchor_answer_kl": 0.0,
    "anchor_answer_rehearsal": 0.0,
}
_NO_ANCHORS = {"anchor_distillation": 0.0, "anchor_rehearsal": 0.0, **_NO_ANSWER_ANCHORS}


@dataclass(frozen=True)
class Configuration:
    """One row: a training objective and the anchor terms it trains with."""

    name: str
    objective: str
    anchors: str  # the anchor terms, in words
    overrides: Mapping[str, float] = field(default_factory=dict)  # over the llava defaults

    def hyperparameters(self, steps: int, anchor_batch_size: int, batch_size: int) -> dict:
        return {
            "objective": self.objective,
            **self.overrides,
            "max_steps": steps,
            "epochs": 1000,  # max_steps decides
            "batch_size": batch_size,
            "anchor_batch_size": anchor_batch_size,
        }


# "defaults": a llava model's resolved anchors (catalogue/objectives.py: read-feature
# distillation 1000, answer KL and rehearsal off; CLIP-space: distillation 300, rehearsal 1).
CLIP_TERMS, ALL_TERMS = "CLIP (distill, rehearse)", "the defaults: CLIP + read distill"
CONFIGURATIONS = [
    Configuration("clip", "clip", "none", _NO_ANCHORS),
    Configuration("clip/clip-anchors", "clip", CLIP_TERMS, _NO_ANSWER_ANCHORS),
    Configuration("clip/defaults", "clip", ALL_TERMS),
    Configuration("answer", "answer", "none", _NO_ANCHORS),
    Configuration("answer/clip-anchors", "answer", CLIP_TERMS, _NO_ANSWER_ANCHORS),
    Configuration("answer/defaults", "answer", ALL_TERMS),
    Configuration(
        "answer/read-distillation",
        "answer",
        "read distill alone",
        {**_NO_ANCHORS, "anchor_read_distillation": 100.0},
    ),
    Configuration(
        "answer/answer-kl", "answer", "answer KL alone", {**_NO_ANCHORS, "anchor_answer_kl": 1.0}
    ),
    Configuration(
        "answer/answer-rehearsal",
        "answer",
        "answer rehearsal alone (weight 1)",
        {**_NO_ANCHORS, "anchor_answer_rehearsal": 1.0},
    ),
    Configuration("clip+answer/defaults", "clip+answer", ALL_TERMS),
]
BY_NAME = {configuration.name: configuration for configuration in CONFIGURATIONS}
# What the ratios are against: a CLIP-objective update with its CLIP anchors.
BASELINE = "clip/clip-anchors"


@dataclass(frozen=True)
class UpdateInputs:
    """What every configuration trains on: question/answer corrections, the other concepts'
    names (negative captions) and the anchors."""

    examples: list[ImageExample]
    negative_labels: list[str]
    anchors: list[ImageExample]

    def texts(self) -> list[str]:
        """Every question and answer the update tokenizes (a tokenizer is trained on them)."""
        pairs = [
            (example.question_asked(), example.answer_given(DEFAULT_ANSWER_TEMPLATE, {}))
            for example in [*self.examples, *self.anchors]
        ]
        return [f"USER: {question} ASSISTANT: {answer}" for question, answer in pairs]


def not_on_cpu(model: str, device: str) -> str | None:
    """Why ``model`` cannot be measured on ``device`` (None: it can)."""
    if model == LLAVA_7B and torch.device(device).type != "cuda":
        return (
            f"--vlm-model {LLAVA_7B} needs --device cuda: its 7B-parameter language model "
            "(12.6 GiB of bfloat16 weights, activations on top) is built in GPU memory only"
        )
    return None


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_random_llava(
    vision_config: Any,
    vision_state: dict,
    tokenizer: Any,
    language: LanguageShape = LLAMA_7B,
    vocabulary: int = LLAVA_15_VOCAB,
) -> Any:
    """A LLaVA of ``language``'s shape (LLaVA-1.5-7B's by default) around ``vision_state``,
    random projector and language model, its vocabulary padded to ``vocabulary``; built on the
    current default device and dtype (a ``torch.device`` context: meta to count)."""
    model = build_llava(vision_config, vision_state, tokenizer, language=language)
    if vocabulary > len(tokenizer):
        model.resize_token_embeddings(vocabulary, mean_resizing=False)
    return model


def _cast_to_dtype_of(module: torch.nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """The loader's projector hook: the float32 tower's features in the projector's dtype."""
    dtype = next(module.parameters()).dtype
    return tuple(
        value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value
        for value in inputs
    )


def load_random_llava(
    pair_dir: str | Path,
    device: str,
    texts: list[str],
    language: LanguageShape = LLAMA_7B,
    vocabulary: int = LLAVA_15_VOCAB,
) -> VisionLanguageModel:
    """What ``load_vision_language_model`` gives on CUDA, for a random LLaVA built in
    ``device``'s memory around the pair's tower (shared): language model and projector in
    bfloat16, the tower in float32. Checks nothing: see :func:`load_llava_7b_shaped`."""
    encoder = load_dual_encoder(pair_dir, device=device)
    tokenizer = build_tokenizer(texts, vocab_size=1000)
    tower = encoder.model.vision_model
    with torch.device(device), default_dtype(torch.bfloat16):
        model = build_random_llava(
            tower.config, tower.state_dict(), tokenizer, language, vocabulary
        )
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.model.vision_tower.float()
    model.model.multi_modal_projector.register_forward_pre_hook(_cast_to_dtype_of)
    read_layer = read_layer_of(model.config.to_dict(), tower.config.num_hidden_layers)
    encoder.share_image_encoder(model.model.vision_tower, VISION_TOWER_CHILDREN, read_layer)
    return VisionLanguageModel(model, tokenizer, encoder.preprocessor, encoder)


def load_llava_7b_shaped(
    pair_dir: str | Path, device: str, texts: list[str]
) -> VisionLanguageModel:
    """The LLaVA-1.5-7B-shaped model (random weights) on CUDA; SystemExit elsewhere."""
    reason = not_on_cpu(LLAVA_7B, device)
    if reason is not None:
        raise SystemExit(reason)
    return load_random_llava(pair_dir, device, texts)


def measure(
    configuration: Configuration,
    vlm: VisionLanguageModel,
    inputs: UpdateInputs,
    steps: int,
    warmup_steps: int,
    batch_size: int = 8,
    anchor_batch_size: int = 16,
    device: str = "cpu",
    mixed_precision: str = "off",
    seed: int = 0,
) -> dict:
    """One update with ``configuration``; its step times, peak memory and what it trained."""
    if warmup_steps < 1:
        raise ValueError("warmup_steps must be >= 1: the first step's time includes the setup")
    cuda = torch.device(device).type == "cuda"
    step_times: list[float] = []
    last = [0.0]

    def on_progress(step: int, total: int, loss: float) -> None:
        if cuda:
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now

    last[0] = time.perf_counter()
    report = run_update(
        vlm.encoder,
        inputs.examples,
        method=METHOD,
        hyperparameters=configuration.hyperparameters(
            warmup_steps + steps, anchor_batch_size, batch_size
        ),
        seed=seed,
        device=device,
        negative_labels=inputs.negative_labels,
        on_progress=on_progress,
        anchors=inputs.anchors,
        mixed_precision=mixed_precision,
        vlm=vlm,
    ).report
    steady = step_times[warmup_steps:]
    hp = report.hyperparameters
    return {
        "configuration": configuration.name,
        "objective": hp["objective"],
        "anchor_weights": {name: hp[name] for name in _NO_ANCHORS},
        "batch_size": batch_size,
        "anchor_batch_size": anchor_batch_size,
        "steps": report.steps,
        "warmup_steps": warmup_steps,
        "seconds_per_step": statistics.median(steady),
        "step_seconds": step_times,
        "train_seconds": report.train_seconds,
        # Setup, the anchors' parent pass and the importance pass (before the first step).
        "prepare_seconds": report.total_seconds - report.train_seconds,
        "peak_memory_bytes": report.peak_memory_bytes,
        "added_memory_bytes": report.added_memory_bytes,
        "peak_memory_by_phase": report.peak_memory_by_phase,
        "peak_memory_source": "cuda_max_memory_allocated" if cuda else "sampled_rss",
        "mixed_precision": report.mixed_precision,
        "trainable_parameters": report.trainable_parameters,
        "vlm_parameters": sum(parameter.numel() for parameter in vlm.model.parameters()),
        "examples": report.examples,
        "anchors": report.anchors,
        "first_loss": report.losses[0],
        "last_loss": report.losses[-1],
        **device_facts(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configuration", choices=sorted(BY_NAME), required=True)
    parser.add_argument("--inputs", required=True, help="a pickled UpdateInputs")
    parser.add_argument("--model", choices=VLM_MODELS, default=STANDIN)
    parser.add_argument("--vlm-dir", help="the VLM directory (--model standin)")
    parser.add_argument("--pair-dir", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--anchor-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mixed-precision", choices=MIXED_PRECISION_MODES, default="off")
    args = parser.parse_args()
    reason = not_on_cpu(args.model, args.device)
    if reason is not None:
        parser.error(reason)
    torch.set_num_threads(args.threads)
    # Our own file, written by bench.cost.vlm_section for this run.
    inputs: UpdateInputs = pickle.loads(Path(args.inputs).read_bytes())
    if args.model == STANDIN:
        if args.vlm_dir is None:
            parser.error("--model standin needs --vlm-dir")
        vlm = load_vision_language_model(args.vlm_dir, args.pair_dir, device=args.device)
    else:
        vlm = load_llava_7b_shaped(args.pair_dir, args.device, inputs.texts())
    result = measure(
        BY_NAME[args.configuration],
        vlm,
        inputs,
        args.steps,
        args.warmup_steps,
        args.batch_size,
        args.anchor_batch_size,
        args.device,
        args.mixed_precision,
    )
    print("RESULT " + json.dumps({"model": args.model, "threads": args.threads, **result}))


if __name__ == "__main__":
    main()
