"""Validation of uploaded images: every bad upload becomes a 4xx with a stable code.

Codes: ``image_empty`` (zero bytes), ``image_too_large`` (over the byte limit, 413),
``image_not_an_image`` (not a format PIL recognises), ``image_truncated`` (a damaged or cut-off
file), ``image_too_many_pixels`` (decompression bomb / over the pixel limit). The image is
fully decoded here, so a file that passes can be used by the model without surprises.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from service.errors import InvalidInput, PayloadTooLarge
from service.storage.blobs import BlobStore


@dataclass(frozen=True)
class ImageLimits:
    """Upload limits (from settings)."""

    max_bytes: int
    max_pixels: int


def _too_many_pixels(field: str, limits: ImageLimits) -> InvalidInput:
    return InvalidInput(
        "image_too_many_pixels", f"{field}: more than the limit of {limits.max_pixels} pixels"
    )


def decode_image(data: bytes, limits: ImageLimits, field: str = "image") -> Image.Image:
    """Decode and fully load ``data`` as an RGB image, or raise a 4xx ServiceError."""
    if len(data) == 0:
        raise InvalidInput("image_empty", f"{field}: the file is empty")
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            "image_too_large",
            f"{field}: {len(data)} bytes is over the limit of {limits.max_bytes} bytes",
        )
    try:
        with warnings.catch_warnings():
            # PIL warns (instead of raising) between 1x and 2x MAX_IMAGE_PIXELS; treat as error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise _too_many_pixels(field, limits)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # PIL's own check (its threshold is at least the setting's upper bound): the same
        # answer as ours, so there is one limit and one message.
        raise _too_many_pixels(field, limits) from error
    except UnidentifiedImageError as error:
        raise InvalidInput(
            "image_not_an_image", f"{field}: not a recognised image format"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        # PIL reports truncated or damaged data as OSError ("image file is truncated") or
        # SyntaxError (broken PNG chunks).
        raise InvalidInput(
            "image_truncated", f"{field}: damaged or truncated image ({error})"
        ) from error
    if width == 0 or height == 0:
        raise InvalidInput("image_empty", f"{field}: the image has no pixels")
    return image.convert("RGB")


def load_stored_image(blobs: BlobStore, sha256: str) -> Image.Image:
    """An image the service stored earlier (validated at upload; the blob is hash-checked)."""
    with Image.open(io.BytesIO(blobs.get(sha256))) as image:
        return image.convert("RGB")
