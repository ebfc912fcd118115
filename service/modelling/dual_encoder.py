"""One small interface over CLIP-style dual encoders (CLIP, VisionTextDualEncoder, SigLIP).

The update engine and the serving path only talk to :class:`DualEncoder`: image and text
features, the image encoder's transformer blocks with their q/k/v/out/fc1/fc2 linears, the head
count, and the image encoder's state (what a version snapshot holds).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from catalogue.architecture import VisionArchitecture
from service.db.values import ModelFamily
from service.modelling.preprocess import ImagePreprocessor

# Top-level children of the model that make up "the image encoder" (what updates may change).
_IMAGE_ENCODER_CHILDREN = ("vision_model", "visual_projection")


@dataclass(frozen=True)
class EncoderBlock:
    """The linears of one transformer block of the image encoder, and where they live."""

    index: int
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    out: nn.Linear
    fc1: nn.Linear
    fc2: nn.Linear
    attention: nn.Module
    mlp: nn.Module
    # Attribute paths (relative to ``attention`` / ``mlp``) so wrappers can replace the linears.
    q_name: str
    k_name: str
    v_name: str
    out_name: str
    fc1_name: str
    fc2_name: str


def _find_blocks(vision: nn.Module) -> list[EncoderBlock]:
    blocks: list[EncoderBlock] = []
    for module in vision.modules():
        attention = getattr(module, "self_attn", None)
        mlp = getattr(module, "mlp", None)
        if attention is not None and mlp is not None and hasattr(attention, "q_proj"):
            # CLIP / SigLIP naming.
            blocks.append(
                EncoderBlock(
                    index=len(blocks),
                    q=attention.q_proj,
                    k=attention.k_proj,
                    v=attention.v_proj,
                    out=attention.out_proj,
                    fc1=mlp.fc1,
                    fc2=mlp.fc2,
                    attention=attention,
                    mlp=mlp,
                    q_name="q_proj",
                    k_name="k_proj",
                    v_name="v_proj",
                    out_name="out_proj",
                    fc1_name="fc1",
                    fc2_name="fc2",
                )
            )
    return blocks


class DualEncoder:
    """A loaded dual encoder with its tokenizer and image preprocessor."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: object,
        preprocessor: ImagePreprocessor,
        family: ModelFamily,
        num_heads: int,
        max_text_length: int = 77,
    ) -> None:
        # transformers models expose get_image_features etc. dynamically: typed as Any.
        self.model: Any = model.eval()
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.family = family
        self.num_heads = num_heads
        self.max_text_length = max_text_length
        self.image_encoder_children: tuple[str, ...] = _IMAGE_ENCODER_CHILDREN
        # The hidden state a VLM sharing this tower reads (``share_image_encoder``); None: the
        # tower is read whole, as a dual encoder's.
        self.read_layer: int | None = None
        self.blocks = _find_blocks(self.vision_model)
        if not self.blocks:
            raise ValueError(f"no transformer blocks found in the image encoder of {family}")

    # -- structure -------------------------------------------------------------------------
    @property
    def vision_model(self) -> nn.Module:
        vision: nn.Module = self.model.vision_model
        return vision

    @property
    def architecture(self) -> VisionArchitecture:
        """The image encoder's shape (what hyperparameters are resolved against)."""
        return VisionArchitecture(
            num_layers=len(self.blocks),
            num_heads=self.num_heads,
            hidden_size=self.blocks[0].q.in_features,
            read_layer=self.read_layer,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> DualEncoder:
        self.model.to(device)
        return self

    def with_model(self, model: nn.Module) -> DualEncoder:
        """The same encoder (tokenizer, preprocessor, image-encoder children) around ``model``
        (a structurally identical model, e.g. one whose image encoder is a copy)."""
        encoder = DualEncoder(
            model,
            self.tokenizer,
            self.preprocessor,
            self.family,
            self.num_heads,
            self.max_text_length,
        )
        encoder.image_encoder_children = self.image_encoder_children
        encoder.read_layer = self.read_layer
        return encoder

    def share_image_encoder(
        self, vision_model: nn.Module, children: tuple[str, ...], read_layer: int | None = None
    ) -> None:
        """Use another model's vision tower (the same module, not a copy) as this encoder's
        ``vision_model``; only ``children`` count as the image encoder from now on (a VLM's
        tower is shared this way with the dual encoder that pairs with it, which reads its
        hidden state ``read_layer``)."""
        self.model.vision_model = vision_model
        self.image_encoder_children = children
        self.read_layer = read_layer
        self.blocks = _find_blocks(self.vision_model)

    def image_encoder_prefixes(self) -> tuple[str, ...]:
        return tuple(
            f"{name}." for name in self.image_encoder_children if hasattr(self.model, name)
        )

    def image_encoder_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        prefixes = self.image_encoder_prefixes()
        for name, parameter in self.model.named_parameters():
            if name.startswith(prefixes):
                yield name, parameter

    def image_encoder_state(self) -> dict[str, torch.Tensor]:
        """A detached CPU copy of every image-encoder tensor (the content of a snapshot)."""
        prefixes = self.image_encoder_prefixes()
        return {
            name: tensor.detach().to("cpu", copy=True).contiguous()
            for name, tensor in self.model.state_dict().items()
            if name.startswith(prefixes)
        }

    def load_image_encoder_state(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the image-encoder weights; the key set must match exactly."""
        expected = set(self.image_encoder_state_keys())
        given = set(state)
        if expected != given:
            missing = sorted(expected - given)[:5]
            unexpected = sorted(given - expected)[:5]
            raise ValueError(
                f"image encoder state does not match the model: missing {missing}, "
                f"unexpected {unexpected}"
            )
        current = self.model.state_dict()
        with torch.no_grad():
            for name, tensor in state.items():
                target = current[name]
                if target.shape != tensor.shape:
                    raise ValueError(f"shape mismatch for {name}: {tuple(tensor.shape)}")
                target.copy_(tensor.to(target.dtype))

    def image_encoder_state_keys(self) -> list[str]:
        prefixes = self.image_encoder_prefixes()
        return [name for name in self.model.state_dict() if name.startswith(prefixes)]

    # -- features --------------------------------------------------------------------------
    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        return self.preprocessor(images).to(self.device)

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected image features (not normalised); differentiable."""
        return _pooled(self.model.get_image_features(pixel_values=pixel_values))

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Projected text features (not normalised)."""
        tokens = self.tokenizer(  # type: ignore[operator]
            texts,
            padding="max_length" if self.family == ModelFamily.SIGLIP else True,
            truncation=True,
            max_length=self.max_text_length,
            return_tensors="pt",
        )
        tokens = {key: value.to(self.device) for key, value in tokens.items()}
        return _pooled(self.model.get_text_features(**tokens))

    @torch.no_grad()
    def encode_images(self, images: list[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """L2-normalised image embeddings, computed in batches."""
        chunks = [
            F.normalize(self.image_features(self.pixel_values(images[i : i + batch_size])), dim=-1)
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(chunks)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings."""
        return F.normalize(self.text_features(texts), dim=-1)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().item())


def _pooled(output: object) -> torch.Tensor:
    # transformers 5 returns a model output whose pooler_output holds the projected features;
    # transformers 4 returned the tensor itself.
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output  # type: ignore[attr-defined]
