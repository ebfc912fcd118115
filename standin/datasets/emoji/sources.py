"""Where the emoji artwork lives and how one picture of it is read.

The npm packages are fetched by ``scripts/fetch-emoji-data.sh`` (run by ``make install``) into
``data/emoji/<package>/`` at the repository root, or into ``$VLMC_EMOJI_DIR``. Nothing here
downloads anything: a missing package raises :class:`DatasetUnavailableError` naming the
command that installs it.

Styles: Google Noto and Twemoji PNGs (64x64, RGBA) are the training styles; OpenMoji colour
SVGs are rasterised here at run time (with ``cairosvg``) and cached under the data folder,
never committed (their licence is CC-BY-SA-4.0).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from standin.datasets.errors import DatasetUnavailableError

ARTWORK_SIZE = 64
FETCH_COMMAND = "make install (or: bash scripts/fetch-emoji-data.sh)"


@dataclass(frozen=True)
class EmojiPackage:
    """One npm package the emoji data comes from."""

    name: str
    version: str
    licence: str
    attribution: str


PACKAGES = {
    "google": EmojiPackage(
        "emoji-datasource-google",
        "16.0.0",
        "Apache-2.0 (images); MIT (metadata)",
        "Noto Emoji artwork by Google, via emoji-datasource by Cal Henderson / iamcal",
    ),
    "twitter": EmojiPackage(
        "emoji-datasource-twitter",
        "16.0.0",
        "CC-BY-4.0 (images); MIT (metadata)",
        "Twemoji artwork, Copyright 2019 Twitter, Inc and other contributors, CC-BY-4.0",
    ),
    "openmoji": EmojiPackage(
        "openmoji",
        "17.0.0",
        "CC-BY-SA-4.0",
        "OpenMoji, the open-source emoji and icon project, CC-BY-SA-4.0",
    ),
    "emojibase": EmojiPackage(
        "emojibase-data", "17.0.0", "MIT", "Emojibase data (CLDR names and tags) by Miles Johnson"
    ),
}
# Styles the base model trains on, and the one it never sees (the correction target).
TRAINING_STYLES = ("google", "twitter")
HELD_OUT_STYLE = "openmoji"
STYLES = (*TRAINING_STYLES, HELD_OUT_STYLE)


def emoji_data_directory() -> Path:
    """``$VLMC_EMOJI_DIR`` if set, else ``data/emoji`` at the repository root."""
    configured = os.environ.get("VLMC_EMOJI_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "data" / "emoji"


def package_directory(key: str) -> Path:
    """The unpacked folder of one package; raises with the install command when missing."""
    package = PACKAGES[key]
    directory = emoji_data_directory() / package.name
    manifest = directory / "package.json"
    if not manifest.is_file():
        raise DatasetUnavailableError(
            f"npm package {package.name}@{package.version} not found in {directory}: "
            f"run `{FETCH_COMMAND}` (needs npm: `apt-get install npm`)"
        )
    found = json.loads(manifest.read_text()).get("version")
    if found != package.version:
        raise DatasetUnavailableError(
            f"{directory} holds {package.name}@{found}, expected {package.version}: "
            f"run `{FETCH_COMMAND}` again"
        )
    return directory


def _rgba_array(image: Image.Image) -> np.ndarray:
    image = image.convert("RGBA")
    if image.size != (ARTWORK_SIZE, ARTWORK_SIZE):
        image = image.resize((ARTWORK_SIZE, ARTWORK_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def artwork_file(style: str, hexcode: str) -> Path | None:
    """The file of ``hexcode`` in ``style`` (with or without the FE0F selector), or None."""
    candidates = [hexcode, hexcode.replace("-FE0F", ""), f"{hexcode}-FE0F"]
    if style in TRAINING_STYLES:
        folder = package_directory(style) / "img" / style / "64"
        names = [f"{code.lower()}.png" for code in candidates]
    elif style == HELD_OUT_STYLE:
        folder = package_directory(style) / "color" / "svg"
        names = [f"{code.upper()}.svg" for code in candidates]
    else:
        raise ValueError(f"unknown emoji style {style!r}; known: {', '.join(STYLES)}")
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def rasterise_svg(path: Path, size: int = ARTWORK_SIZE) -> np.ndarray:
    """An SVG drawn at ``size`` px as an RGBA uint8 array (cairosvg, needs libcairo2)."""
    try:
        import cairosvg
    except (ImportError, OSError) as error:  # OSError: the cairo shared library is missing
        raise DatasetUnavailableError(
            f"cannot rasterise OpenMoji SVGs ({error}): `pip install cairosvg` and "
            "`apt-get install libcairo2`"
        ) from error
    png = cairosvg.svg2png(url=str(path), output_width=size, output_height=size)
    return _rgba_array(Image.open(io.BytesIO(png)))


@lru_cache(maxsize=8)
def load_artwork(style: str, hexcodes: tuple[str, ...]) -> np.ndarray:
    """RGBA artwork ``(len(hexcodes), 64, 64, 4)`` uint8 of each concept in ``style``."""
    arrays = []
    for hexcode in hexcodes:
        path = artwork_file(style, hexcode)
        if path is None:
            raise DatasetUnavailableError(f"no {style} artwork for emoji {hexcode}")
        if path.suffix == ".svg":
            arrays.append(rasterise_svg(path))
        else:
            with Image.open(path) as image:
                arrays.append(_rgba_array(image))
    return np.stack(arrays)
