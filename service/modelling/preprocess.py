"""Turns PIL images into the pixel tensors an image encoder expects.

The work is done by transformers' own image processor for the checkpoint, built from the
checkpoint's ``preprocessor_config.json``, so a CLIP, SigLIP or LLaVA checkpoint sees exactly
the pixels it was trained on (its resize rule, crop, rescale and normalisation), and serving
and training share that one code path. The PIL/NumPy backend is always chosen: it needs no
torchvision and gives the same pixels on every machine, whatever else is installed there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

if TYPE_CHECKING:
    from transformers.image_processing_utils import BaseImageProcessor

PREPROCESSOR_FILE = "preprocessor_config.json"


class PreprocessorConfigError(ValueError):
    """The preprocessor config cannot feed a fixed-size image encoder."""


class ImagePreprocessor:
    """A checkpoint's transformers image processor (PIL backend) and the fixed size of what it
    produces. One instance per loaded model; calls are thread-safe (the processor keeps no
    state between calls)."""

    def __init__(self, processor: BaseImageProcessor) -> None:
        self.processor = processor
        self.height, self.width = _output_size(processor)

    @classmethod
    def from_directory(cls, path: Path | str, default_size: int) -> ImagePreprocessor:
        """The processor ``path``'s ``preprocessor_config.json`` describes, or (without that
        file) CLIP's at ``default_size``."""
        from transformers import AutoImageProcessor

        if not (Path(path) / PREPROCESSOR_FILE).is_file():
            return cls.clip(default_size)
        processor = AutoImageProcessor.from_pretrained(
            str(path), backend="pil", local_files_only=True
        )
        return cls(processor)

    @classmethod
    def clip(cls, image_size: int) -> ImagePreprocessor:
        """CLIP's processor (bicubic resize of the shortest edge, centre crop, CLIP mean and
        std) at ``image_size``: what the models built here are trained and served with."""
        from transformers import CLIPImageProcessorPil

        processor: Any = CLIPImageProcessorPil(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
        )
        return cls(processor)

    def save(self, path: Path | str) -> None:
        """Write ``preprocessor_config.json`` into ``path`` (loadable by either backend)."""
        self.processor.save_pretrained(str(path))

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        """Stack images into a ``(N, 3, height, width)`` float32 tensor, in one call of the
        processor for the whole batch."""
        features = self.processor(images, return_tensors="pt")
        pixels: torch.Tensor = features["pixel_values"]
        return pixels.to(torch.float32)

    def from_unit_range(self, pixels: torch.Tensor) -> torch.Tensor:
        """What the processor's rescale and normalise steps make of ``(N, 3, H, W)`` RGB pixels
        given in [0, 1] (an image already resized to ``(height, width)`` in float, as the base
        model's training augmentation renders them)."""
        processor: Any = self.processor
        values = pixels * 255.0
        if processor.do_rescale:
            values = values * float(processor.rescale_factor)
        if processor.do_normalize:
            mean = torch.tensor(processor.image_mean, dtype=values.dtype).view(1, -1, 1, 1)
            std = torch.tensor(processor.image_std, dtype=values.dtype).view(1, -1, 1, 1)
            values = (values - mean) / std
        return values


def _output_size(processor: Any) -> tuple[int, int]:
    """``(height, width)`` of every image the processor returns; refuses a config whose
    images keep their own aspect ratio (no crop after a shortest-edge resize, or no resize)."""
    if processor.do_center_crop and processor.crop_size is not None:
        crop = processor.crop_size
        return int(crop.height), int(crop.width)
    size = processor.size
    if processor.do_resize and size is not None and size.height and size.width:
        return int(size.height), int(size.width)
    raise PreprocessorConfigError(
        f"{type(processor).__name__} with size={dict(size or {})}, "
        f"do_resize={processor.do_resize}, do_center_crop={processor.do_center_crop} gives "
        "images of varying size; an image encoder here needs one fixed size"
    )
