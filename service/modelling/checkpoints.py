"""One loader for every registered model: a dual encoder, or a VLM with its CLIP-style pair.

What serving, the worker and registration load for a model row: ``base_path`` (the checkpoint)
and, for ``llava`` models, ``pair_path`` (the dual encoder whose text tower pairs with the
VLM's vision tower). Everything that updates or evaluates in CLIP space uses ``encoder``; the
``generator`` (``llava`` only) answers questions with the same, shared vision tower.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from service.db.values import ModelFamily
from service.modelling.dual_encoder import DualEncoder
from service.modelling.loading import ModelLoadError, detect_family, load_dual_encoder
from service.modelling.vlm import VisionLanguageModel, load_vision_language_model


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model's encoder (CLIP space) and, for generative models, its VLM."""

    encoder: DualEncoder
    generator: VisionLanguageModel | None = None

    def with_own_image_encoder(self) -> LoadedCheckpoint:
        """A checkpoint whose image encoder is a copy of this one's and whose every other
        module (text tower, projector, language model) *is* this one's, not a copy: what each
        loaded version of a model needs, since versions differ only in the image encoder.
        Loading a version's state into the copy leaves this checkpoint untouched."""
        encoder = self.encoder
        own = {
            name: copy.deepcopy(getattr(encoder.model, name))
            for name in encoder.image_encoder_children
            if hasattr(encoder.model, name)
        }
        if self.generator is None:
            return LoadedCheckpoint(encoder.with_model(_sharing_shell(encoder.model, own)))
        # llava: the pair's ``vision_model`` is the VLM's ``model.vision_tower`` (one module).
        tower = own["vision_model"]
        vlm: Any = self.generator.model
        shell = _sharing_shell(vlm, {"model": _sharing_shell(vlm.model, {"vision_tower": tower})})
        pair = encoder.with_model(_sharing_shell(encoder.model, own))
        return LoadedCheckpoint(pair, self.generator.with_model(shell, pair))


def _sharing_shell(module: nn.Module, children: dict[str, nn.Module]) -> nn.Module:
    """A shallow copy of ``module`` with ``children`` replaced: its parameters, buffers and
    every other child are the original's objects (shared, not copied)."""
    shell = copy.copy(module)
    shell._modules = {**module._modules, **children}
    return shell


def checkpoint_family(path: Path | str) -> ModelFamily:
    """The family of a checkpoint directory: ``llava`` or a dual-encoder family."""
    config_path = Path(path) / "config.json"
    try:
        model_type = json.loads(config_path.read_text()).get("model_type", "")
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} has no readable config.json: {error}") from error
    return ModelFamily.LLAVA if model_type == ModelFamily.LLAVA else detect_family(Path(path))


def load_checkpoint(
    base_path: Path | str, pair_path: Path | str | None, device: str = "cpu"
) -> LoadedCheckpoint:
    """Load what a model row names (see the module docstring)."""
    if checkpoint_family(base_path) != ModelFamily.LLAVA:
        return LoadedCheckpoint(encoder=load_dual_encoder(base_path, device=device))
    if pair_path is None:
        raise ModelLoadError("a llava model needs the CLIP-style checkpoint it pairs with")
    generator = load_vision_language_model(base_path, pair_path, device=device)
    return LoadedCheckpoint(encoder=generator.encoder, generator=generator)
