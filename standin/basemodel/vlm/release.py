"""The committed stand-in VLM: what was trained here, in ``standin/basemodel/vlm/release/``.

Only the trained tensors are committed (``language-model.safetensors``: projector, language
model and ``lm_head``), with the LLaVA config, generation config, tokenizer, preprocessor config
(the base model's: the tower sees the pixels it was trained on), build facts and card. The
vision tower is the committed base model's image tower, unchanged:
:func:`materialise_vlm_release` joins it (from a materialised base directory) with the release
into a loadable Hugging Face LLaVA directory in seconds, after checking the weights against
the sha256 in the build facts and the base tower against the digest of the tower the VLM was
trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from service.modelling.loading import load_dual_encoder
from service.modelling.preprocess import PREPROCESSOR_FILE, ImagePreprocessor
from service.modelling.snapshots import state_sha256
from standin.basemodel.release import ReleaseError, assembling, release_info, sha256_of
from standin.basemodel.vlm.card import BUILD_INFO_FILE, CARD_FILE
from standin.basemodel.vlm.training import VISION_TOWER_PREFIX

RELEASE_DIR = Path(__file__).resolve().parent / "release"
WEIGHTS_FILE = "language-model.safetensors"


def base_tower_state(base_dir: Path) -> dict[str, torch.Tensor]:
    """The image tower (``CLIPVisionModel`` state) of the base dual encoder in ``base_dir``."""
    state: dict[str, torch.Tensor] = load_dual_encoder(base_dir).model.vision_model.state_dict()
    return state


def trained_state(model: Any) -> dict[str, torch.Tensor]:
    """Every tensor of the LLaVA ``model`` except the (frozen) vision tower's."""
    return {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in sorted(model.state_dict().items())
        if not name.startswith(VISION_TOWER_PREFIX)
    }


def export_vlm_release(
    model: Any, tokenizer: Any, preprocessor: ImagePreprocessor, release_dir: Path, info: dict
) -> str:
    """Write the trained tensors, configs, tokenizer, preprocessor config and ``info`` (plus
    the weights' sha256) into ``release_dir``; returns the sha256."""
    release_dir.mkdir(parents=True, exist_ok=True)
    save_file(trained_state(model), release_dir / WEIGHTS_FILE, metadata={"format": "pt"})
    model.config.save_pretrained(release_dir)
    model.generation_config.save_pretrained(release_dir)
    tokenizer.save_pretrained(release_dir)
    preprocessor.save(release_dir)
    digest = sha256_of(release_dir / WEIGHTS_FILE)
    write_vlm_build_info(
        release_dir, {**info, "weights_file": WEIGHTS_FILE, "weights_sha256": digest}
    )
    return digest


def write_vlm_build_info(release_dir: Path, info: dict) -> None:
    (release_dir / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def vlm_release_info(release_dir: Path = RELEASE_DIR) -> dict:
    """The release's build facts, checked against its weights' sha256."""
    return release_info(release_dir, WEIGHTS_FILE, "VLM")


def assemble_vlm(release_dir: Path, tower_state: dict[str, torch.Tensor]) -> Any:
    """A ``LlavaForConditionalGeneration`` of the release's weights around ``tower_state``."""
    from transformers import GenerationConfig, LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig.from_pretrained(release_dir, local_files_only=True)
    model: Any = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(tower_state)
    missing, unexpected = model.load_state_dict(load_file(release_dir / WEIGHTS_FILE), strict=False)
    untouched = [name for name in missing if not name.startswith(VISION_TOWER_PREFIX)]
    if untouched or unexpected:
        raise ReleaseError(f"release weights do not fit: missing {untouched}, extra {unexpected}")
    model.generation_config = GenerationConfig.from_pretrained(release_dir, local_files_only=True)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def trained_on(base_dir: Path, release_dir: Path = RELEASE_DIR) -> bool:
    """Whether ``base_dir``'s image tower is the one the release was trained around."""
    return state_sha256(base_tower_state(Path(base_dir))) == vlm_release_info(release_dir).get(
        "base_tower_sha256"
    )


def materialise_vlm_release(out_dir: Path, base_dir: Path, release_dir: Path = RELEASE_DIR) -> Path:
    """Join the release with the image tower of ``base_dir`` (a materialised base dual encoder)
    into a loadable LLaVA directory ``out_dir`` (replaced if present)."""
    from transformers import AutoTokenizer

    out_dir, base_dir = Path(out_dir), Path(base_dir)
    info = vlm_release_info(release_dir)
    tower_state = base_tower_state(base_dir)
    if state_sha256(tower_state) != info.get("base_tower_sha256"):
        raise ReleaseError(
            f"the image tower in {base_dir} is not the base tower this VLM was trained on"
        )
    model = assemble_vlm(release_dir, tower_state)
    tokenizer = AutoTokenizer.from_pretrained(release_dir, local_files_only=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with assembling(
        out_dir, release_dir, (PREPROCESSOR_FILE, BUILD_INFO_FILE, CARD_FILE)
    ) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return out_dir
