"""The models the VLM scenario corrects: the committed base pair and stand-in VLM, assembled
once into a cache directory (git-ignored ``var/`` by default) and reused while they match the
committed releases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from standin.basemodel.builder import is_built
from standin.basemodel.card import read_build_info
from standin.basemodel.release import image_tower_matches, materialise_release, sha256_of
from standin.basemodel.vlm.release import RELEASE_DIR, materialise_vlm_release, vlm_release_info

DEFAULT_CACHE = Path("var/bench/vlm")


@dataclass(frozen=True)
class ModelPaths:
    """A loadable VLM directory, its CLIP-style pair, and the VLM release's weights sha256
    (saved with every run, so a run of another release is never reused)."""

    vlm: Path
    pair: Path
    weights_sha256: str


def materialise_models(cache: Path = DEFAULT_CACHE, release_dir: Path = RELEASE_DIR) -> ModelPaths:
    """The base dual encoder and the stand-in VLM under ``cache``, assembled from the committed
    releases where missing or out of date (raises ``ReleaseError`` without a VLM release)."""
    info = vlm_release_info(release_dir)
    base, vlm = cache / "standin-base", cache / "standin-vlm"
    if not (is_built(base) and image_tower_matches(base)):
        print(f"assembling the committed base model into {base}", flush=True)
        materialise_release(base)
    current = (vlm / "build_info.json").is_file() and read_build_info(vlm).get(
        "weights_sha256"
    ) == info["weights_sha256"]
    if not current:
        print(f"assembling the committed stand-in VLM into {vlm}", flush=True)
        materialise_vlm_release(vlm, base, release_dir)
    return ModelPaths(vlm=vlm, pair=base, weights_sha256=str(info["weights_sha256"]))


def given_models(vlm: Path, pair: Path) -> ModelPaths:
    """Models assembled elsewhere (another VLM and its pair); its weights' sha256 is that of
    the VLM directory's safetensors files."""
    weights = sorted(vlm.glob("*.safetensors"))
    if not weights:
        raise SystemExit(f"{vlm} holds no .safetensors weights")
    digest = "+".join(sha256_of(path) for path in weights)
    return ModelPaths(vlm=vlm, pair=pair, weights_sha256=digest)
