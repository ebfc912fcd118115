"""Runs one method through the VLM scenario's sessions: correct the tower, ask the VLM.

Each session trains the pair's image encoder, which *is* the VLM's vision tower
(``load_vision_language_model`` shares it), on the session's question/answer corrections,
through ``run_update`` with the VLM (so the answer objective and its anchors are available) at
the method's declared defaults for a llava model (the service's: the answer objective, anchors
from ``bench.continual.protocol.anchor_examples``). The projector and the language model are
never touched.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from bench.continual.protocol import anchor_examples, session_examples
from bench.vlm.measure import embed_captions, measure
from bench.vlm.models import ModelPaths
from bench.vlm.protocol import (
    ALL_QUESTIONS,
    ScenarioData,
    VlmSetting,
    qa_corrections,
    scenario_data,
)
from bench.vlm.results import VlmRun, VlmSession
from catalogue.declarations import resolve_hyperparameters
from service.modelling.examples import ImageExample
from service.modelling.vlm import load_vision_language_model
from workers.engine.update import run_update

# Rendering the evaluation renderings and the anchors takes tens of seconds: once per process.
_data = lru_cache(maxsize=2)(scenario_data)
_anchors = lru_cache(maxsize=1)(anchor_examples)


def run_method(
    models: ModelPaths,
    setting: VlmSetting,
    method: str,
    seed: int,
    hyperparameters: Mapping[str, Any] | None = None,
    measure_every_session: bool = True,
    corrections: str = ALL_QUESTIONS,
    variant: str = "",
) -> VlmRun:
    """Apply the setting's sessions in order, each from the previous merged tower, measuring
    before the first and after each session (only after the last when
    ``measure_every_session`` is off). ``corrections``: which of its concept's questions
    each correction image is asked (``protocol.CORRECTIONS``). The concepts' other names are
    negative captions, as the service passes a model's other known labels."""
    started = time.perf_counter()
    vlm = load_vision_language_model(models.vlm, models.pair)
    architecture = vlm.encoder.architecture
    resolved = resolve_hyperparameters(method, dict(hyperparameters or {}), architecture)
    data: ScenarioData = _data(setting)
    anchors = list(_anchors()) if resolved.uses_anchors() else []
    captions = embed_captions(vlm.encoder, data)
    # The base tower, which "anchor_reference": "base" distils the anchors towards.
    base_state = vlm.encoder.image_encoder_state()
    before, base = measure(vlm, data, captions)
    sessions = [VlmSession(0, [], before)]
    replayed: list[ImageExample] = []
    corrected: list[str] = []
    for index, classes in enumerate(data.sessions, start=1):
        own = {data.concept_names[c] for c in classes}
        corrected = corrected + [data.concept_names[c] for c in classes]
        examples = qa_corrections(session_examples(setting.continual, classes, seed), corrections)
        outcome = run_update(
            vlm.encoder,
            examples,
            method=method,
            hyperparameters=resolved,
            # Each session its own seed, as in the continual benchmark.
            seed=seed * 1000 + index,
            device="cpu",
            negative_labels=[name for name in data.concept_names if name not in own],
            anchors=anchors,
            replayed=replayed,
            vlm=vlm,
            base_state=base_state,
        )
        if resolved.anchor_replay:
            replayed = replayed + examples
        report = outcome.report
        last = index == len(data.sessions)
        sessions.append(
            VlmSession(
                session=index,
                corrected_so_far=corrected,
                measurement=(
                    measure(vlm, data, captions, base)[0] if measure_every_session or last else None
                ),
                train_seconds=report.train_seconds,
                steps=report.steps,
                examples=report.examples,
                trainable_parameters=report.trainable_parameters,
                optimizer_state_bytes=report.optimizer_state_bytes,
                stop_reason=report.stop_reason,
                anchors=report.anchors,
                anchor_drift=report.anchor_drift,
                details={k: v for k, v in report.details.items() if k == "heads_per_layer"},
            )
        )
    return VlmRun(
        method=method,
        seed=seed,
        setting=setting.describe(),
        hyperparameters=resolved.model_dump(),
        vlm_weights_sha256=models.weights_sha256,
        sessions=sessions,
        transfer=data.transfer,
        seconds=time.perf_counter() - started,
        corrections=corrections,
        variant=variant,
    )
