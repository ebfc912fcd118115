"""Turns PIL images into the pixel tensors an image encoder expects.

Reads the usual Hugging Face ``preprocessor_config.json`` keys (CLIP style: resize the shortest
edge, centre crop, scale, normalise) and implements them with PIL and NumPy only, so serving
and training share one exact code path and no torchvision is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PREPROCESSOR_FILE = "preprocessor_config.json"
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImagePreprocessor:
    """Resize (shortest edge), centre crop, normalise; RGB output in CHW float32."""

    shortest_edge: int
    crop_height: int
    crop_width: int
    mean: tuple[float, float, float] = _CLIP_MEAN
    std: tuple[float, float, float] = _CLIP_STD
    resample: int = int(Image.Resampling.BICUBIC)

    @classmethod
    def from_config(cls, config: dict) -> ImagePreprocessor:
        size = config.get("size", 224)
        if isinstance(size, dict):
            shortest = int(
                size.get("shortest_edge") or min(int(size["height"]), int(size["width"]))
            )
        else:
            shortest = int(size)
        crop = config.get("crop_size", shortest)
        if isinstance(crop, dict):
            crop_h, crop_w = int(crop["height"]), int(crop["width"])
        else:
            crop_h = crop_w = int(crop)
        if not config.get("do_center_crop", True):
            crop_h = crop_w = shortest
        mean = tuple(float(x) for x in config.get("image_mean", _CLIP_MEAN))
        std = tuple(float(x) for x in config.get("image_std", _CLIP_STD))
        return cls(
            shortest_edge=shortest,
            crop_height=crop_h,
            crop_width=crop_w,
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            resample=int(config.get("resample", int(Image.Resampling.BICUBIC))),
        )

    @classmethod
    def from_directory(cls, path: Path, default_size: int) -> ImagePreprocessor:
        config_path = Path(path) / PREPROCESSOR_FILE
        if config_path.is_file():
            return cls.from_config(json.loads(config_path.read_text()))
        return cls(shortest_edge=default_size, crop_height=default_size, crop_width=default_size)

    def to_config(self) -> dict:
        """The ``preprocessor_config.json`` content that reproduces this preprocessor."""
        return {
            "image_processor_type": "CLIPImageProcessor",
            "do_resize": True,
            "size": {"shortest_edge": self.shortest_edge},
            "do_center_crop": True,
            "crop_size": {"height": self.crop_height, "width": self.crop_width},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.mean),
            "image_std": list(self.std),
            "resample": self.resample,
            "do_convert_rgb": True,
        }

    def save(self, path: Path) -> None:
        (Path(path) / PREPROCESSOR_FILE).write_text(json.dumps(self.to_config(), indent=2))

    def _one(self, image: Image.Image) -> np.ndarray:
        image = image.convert("RGB")
        width, height = image.size
        scale = self.shortest_edge / min(width, height)
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if new_size != (width, height):
            image = image.resize(new_size, resample=Image.Resampling(self.resample))
        width, height = image.size
        left = (width - self.crop_width) // 2
        top = (height - self.crop_height) // 2
        image = image.crop((left, top, left + self.crop_width, top + self.crop_height))
        scaled = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        normalised: np.ndarray = (scaled - mean) / std
        return normalised.transpose(2, 0, 1)

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        """Stack images into a ``(N, 3, crop_height, crop_width)`` float32 tensor."""
        return torch.from_numpy(np.stack([self._one(image) for image in images]))
