"""Preprocessing gives, on real images, the pixels transformers' image processor gives for the
checkpoint's own ``preprocessor_config.json`` (published CLIP, SigLIP and LLaVA configs in
``preprocessor_configs/``), honours every switch of the config, and leaves the stand-in
models' pixels as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from service.modelling.preprocess import (
    PREPROCESSOR_FILE,
    ImagePreprocessor,
    PreprocessorConfigError,
)
from standin.basemodel.release import RELEASE_DIR
from standin.basemodel.vlm.release import RELEASE_DIR as VLM_RELEASE_DIR
from standin.datasets import load_dataset
from standin.datasets.emoji.concepts import emoji_concepts
from standin.datasets.emoji.sources import load_artwork

CONFIGS = Path(__file__).parent / "preprocessor_configs"
CLIP_L14_336 = CONFIGS / "clip-vit-large-patch14-336"
SIGLIP_B16_224 = CONFIGS / "siglip-base-patch16-224"
LLAVA_15 = CONFIGS / "llava-1.5-7b-hf"
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


@pytest.fixture(scope="module")
def real_images() -> list[Image.Image]:
    """Photographs of several sizes and aspect ratios (wide, tall, square, grayscale, one
    whose scaled long side ends in .6), emoji renderings, a Fashion-MNIST image smaller than
    every crop, and transparent emoji artwork (RGBA)."""
    import skimage.data

    chelsea = skimage.data.chelsea()  # 300 x 451
    astronaut = skimage.data.astronaut()  # 512 x 512
    photos = [
        Image.fromarray(chelsea),
        Image.fromarray(skimage.data.coffee()),  # 400 x 600
        Image.fromarray(skimage.data.rocket()),  # 427 x 640: 640 * 336 / 427 = 503.6
        Image.fromarray(skimage.data.camera()),  # 512 x 512, grayscale
        Image.fromarray(astronaut[:, 150:350]),  # 512 x 200, tall
        Image.fromarray(chelsea[100:190]),  # 90 x 451, wide
    ]
    emoji = load_dataset("emoji-google", "test", limit_per_class=1, seed=0).images[:2]
    fashion = load_dataset("fashion-mnist", "test", limit_per_class=1, seed=0).images[:1]
    hexcodes = tuple(concept.hexcode for concept in emoji_concepts()[:2])
    artwork = [Image.fromarray(rgba, "RGBA") for rgba in load_artwork("google", hexcodes)]
    return photos + emoji + fashion + artwork


def _write_config(directory: Path, config: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PREPROCESSOR_FILE).write_text(json.dumps(config))
    return directory


def _published(directory: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((directory / PREPROCESSOR_FILE).read_text())
    return config


def _reference(directory: Path, images: list[Image.Image]) -> list[np.ndarray]:
    """Pixels of transformers' processor for ``directory``'s config, one image per call."""
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(directory, backend="pil", local_files_only=True)
    return [processor(image, return_tensors="np")["pixel_values"][0] for image in images]


def _clip_by_hand(image: Image.Image, edge: int, crop: int, rounding: Any) -> np.ndarray:
    """CLIP's preprocessing written out: shortest edge to ``edge`` (the long side's new
    length from ``rounding``), centre crop, scale to [0, 1], normalise; CHW float32."""
    image = image.convert("RGB")
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new_long = int(rounding(long * edge / short))
    new_size = (edge, new_long) if width <= height else (new_long, edge)
    image = image.resize(new_size, resample=Image.Resampling.BICUBIC)
    left, top = (new_size[0] - crop) // 2, (new_size[1] - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    scaled = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    return ((scaled - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)


@pytest.mark.parametrize(
    "directory", [CLIP_L14_336, SIGLIP_B16_224, LLAVA_15], ids=lambda p: p.name
)
def test_published_configs_give_the_pixels_of_transformers_processor(
    directory: Path, real_images: list[Image.Image]
) -> None:
    preprocessor = ImagePreprocessor.from_directory(directory, default_size=8)
    pixels = preprocessor(real_images)
    size = (224, 224) if directory == SIGLIP_B16_224 else (336, 336)
    assert pixels.dtype == torch.float32
    assert tuple(pixels.shape) == (len(real_images), 3, *size)
    assert (preprocessor.height, preprocessor.width) == size
    for ours, theirs in zip(pixels.numpy(), _reference(directory, real_images), strict=True):
        assert np.array_equal(ours, theirs)


def test_clip_resizes_the_shortest_edge_truncating_the_long_side(
    real_images: list[Image.Image],
) -> None:
    pixels = ImagePreprocessor.from_directory(LLAVA_15, default_size=8)(real_images).numpy()
    for image, ours in zip(real_images, pixels, strict=True):
        truncated = _clip_by_hand(image, 336, 336, np.floor)
        if image.mode == "RGBA":  # transparency is composited onto white first
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            truncated = _clip_by_hand(Image.alpha_composite(white, image), 336, 336, np.floor)
        np.testing.assert_allclose(ours, truncated, atol=1e-6)
    # The rocket's long side scales to 503.6 px: rounding would shift the crop by a pixel.
    rocket, rocket_pixels = real_images[2], pixels[2]
    rounded = _clip_by_hand(rocket, 336, 336, np.round)
    assert np.abs(rocket_pixels - rounded).max() > 0.5


def test_siglip_squashes_to_its_size_without_a_crop(real_images: list[Image.Image]) -> None:
    pixels = ImagePreprocessor.from_directory(SIGLIP_B16_224, default_size=8)(real_images[:3])
    for image, ours in zip(real_images[:3], pixels.numpy(), strict=True):
        squashed = image.convert("RGB").resize((224, 224), resample=Image.Resampling.BICUBIC)
        expected = (np.asarray(squashed, dtype=np.float32) / np.float32(255.0) - 0.5) / 0.5
        np.testing.assert_allclose(ours, expected.transpose(2, 0, 1), atol=1e-6)
        # What shortest-edge resizing and a centre crop would give is another picture.
        cropped = _clip_by_hand(image, 224, 224, np.floor) * CLIP_STD[:, None, None]
        cropped = (cropped + CLIP_MEAN[:, None, None] - 0.5) / 0.5
        assert np.abs(ours - cropped).mean() > 0.05


@pytest.mark.parametrize(
    ("change", "low", "high"),
    [
        ({"do_normalize": False}, 0.0, 1.0),
        ({"do_normalize": False, "do_rescale": False}, 0.0, 255.0),
        ({"do_center_crop": False, "size": {"height": 336, "width": 336}}, -1.8, 2.2),
        ({"do_resize": False}, -1.8, 2.2),
        ({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, -1.0, 1.0),
        ({"rescale_factor": 1 / 510, "do_normalize": False}, 0.0, 0.5),
    ],
    ids=["no-normalize", "no-rescale", "squash-no-crop", "no-resize", "mean-std", "factor"],
)
def test_every_switch_of_the_config_is_honoured(
    tmp_path: Path,
    real_images: list[Image.Image],
    change: dict[str, Any],
    low: float,
    high: float,
) -> None:
    directory = _write_config(tmp_path / "changed", {**_published(LLAVA_15), **change})
    pixels = ImagePreprocessor.from_directory(directory, default_size=8)(real_images)
    assert tuple(pixels.shape[1:]) == (3, 336, 336)
    for ours, theirs in zip(pixels.numpy(), _reference(directory, real_images), strict=True):
        assert np.array_equal(ours, theirs)
    assert low - 1e-6 <= float(pixels.min()) and float(pixels.max()) <= high + 1e-6
    published = ImagePreprocessor.from_directory(LLAVA_15, default_size=8)(real_images)
    assert not torch.equal(pixels, published)


def test_switches_off_give_the_plain_pixel_values(
    tmp_path: Path, real_images: list[Image.Image]
) -> None:
    config = {**_published(LLAVA_15), "do_normalize": False, "do_rescale": False}
    preprocessor = ImagePreprocessor.from_directory(_write_config(tmp_path, config), 8)
    values = preprocessor(real_images[3:4]).numpy()[0]  # the 512 px grayscale camera
    camera = real_images[3].convert("RGB").resize((336, 336), resample=Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(values, np.asarray(camera, dtype=np.float32).transpose(2, 0, 1))


def test_a_config_without_a_fixed_output_size_is_refused(tmp_path: Path) -> None:
    directory = _write_config(
        tmp_path / "varying", {**_published(LLAVA_15), "do_center_crop": False}
    )
    with pytest.raises(PreprocessorConfigError, match="varying size"):
        ImagePreprocessor.from_directory(directory, default_size=8)


def test_a_directory_without_a_config_gets_clip_at_the_model_size(
    tmp_path: Path, real_images: list[Image.Image]
) -> None:
    preprocessor = ImagePreprocessor.from_directory(tmp_path, default_size=48)
    assert (preprocessor.height, preprocessor.width) == (48, 48)
    for image, ours in zip(real_images[:6], preprocessor(real_images[:6]).numpy(), strict=True):
        np.testing.assert_allclose(ours, _clip_by_hand(image, 48, 48, np.floor), atol=1e-6)


def test_saved_config_loads_back_to_the_same_pixels(
    tmp_path: Path, real_images: list[Image.Image]
) -> None:
    original = ImagePreprocessor.from_directory(SIGLIP_B16_224, default_size=8)
    original.save(tmp_path)
    saved = _published(tmp_path)
    assert saved["image_processor_type"] == "SiglipImageProcessor"
    again = ImagePreprocessor.from_directory(tmp_path, default_size=8)
    assert torch.equal(again(real_images), original(real_images))


def test_stand_in_models_keep_their_pixels() -> None:
    """The committed base model and VLM carry CLIP's config at 32 px, which gives exactly the
    pixels they were trained on (the former in-house implementation: a bicubic resize of the
    square renderings and photos, /255, CLIP mean and std)."""
    release = _published(RELEASE_DIR)
    assert _published(VLM_RELEASE_DIR) == release
    assert release["size"] == {"shortest_edge": 32}
    assert release["crop_size"] == {"height": 32, "width": 32}
    preprocessor = ImagePreprocessor.from_directory(RELEASE_DIR, default_size=8)
    for name in ("emoji-google", "emoji-twitter", "fashion-mnist", "textures"):
        images = load_dataset(name, "test", limit_per_class=1, seed=0).images[:20]
        former = np.stack(
            [
                (
                    (
                        np.asarray(
                            image.convert("RGB").resize((32, 32), Image.Resampling.BICUBIC),
                            dtype=np.float32,
                        )
                        / np.float32(255.0)
                        - CLIP_MEAN
                    )
                    / CLIP_STD
                ).transpose(2, 0, 1)
                for image in images
            ]
        )
        assert torch.equal(preprocessor(images), torch.from_numpy(former)), name


@pytest.mark.parametrize("change", [{}, {"do_normalize": False}, {"image_mean": [0.5] * 3}])
def test_training_renderings_are_rescaled_and_normalised_like_images(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    """``from_unit_range`` (the base model's float renderings) matches the processor on an
    image that is already at the model's size (where the resize changes nothing)."""
    directory = _write_config(tmp_path / "changed", {**_published(RELEASE_DIR), **change})
    preprocessor = ImagePreprocessor.from_directory(directory, default_size=8)
    images = [
        image.resize((32, 32), Image.Resampling.BICUBIC)
        for image in load_dataset("emoji-twitter", "test", limit_per_class=1, seed=0).images[:8]
    ]
    unit = torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2)
    torch.testing.assert_close(
        preprocessor.from_unit_range(unit.float() / 255.0), preprocessor(images), atol=1e-6, rtol=0
    )
