"""Writes a loaded version as a standard Hugging Face checkpoint directory.

The directory is what ``from_pretrained`` of the family's transformers class (and vLLM or
TGI, which read the same files) loads offline: ``config.json``, the merged weights in one
``model.safetensors`` (the base checkpoint with the version's image encoder, exactly the
tensors that answer the service's requests for that version), and the base checkpoint's
tokenizer and processor files, copied as they are. No pickle is read or written: weights
come from the hash-verified loaded version, and pickled files of the base directory are not
copied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from service.modelling.preprocess import PREPROCESSOR_FILE
from service.modelling.vlm import IMAGE_TOKEN, VisionLanguageModel
from service.serving.cache import LoadedVersion

WEIGHTS_FILE = "model.safetensors"
# Files of the base directory the export does not copy: its weights (replaced by the merged
# ones), anything pickled, what ``save_pretrained`` writes itself, and its model card (the
# export's README.md is its own; the base's is kept as BASE_MODEL_CARD.md).
_NOT_COPIED_SUFFIXES = (
    ".safetensors",
    ".safetensors.index.json",
    ".bin",
    ".bin.index.json",
    ".pt",
    ".pth",
    ".ckpt",
    ".pkl",
    ".pickle",
    ".h5",
    ".msgpack",
    ".onnx",
)
_WRITTEN_BY_SAVE = ("config.json", "generation_config.json")
BASE_CARD_NAMES = ("README.md", "MODEL_CARD.md")
PROCESSOR_FILE = "processor_config.json"
BASE_CARD_COPY = "BASE_MODEL_CARD.md"
# Far above any model the service loads: the weights stay in one file.
_ONE_SHARD = "100000GB"


def exported_model(loaded: LoadedVersion) -> Any:
    """The transformers model a version exports: the VLM of a generative model (its vision
    tower is the corrected one), else the dual encoder."""
    return loaded.generator.model if loaded.generator is not None else loaded.encoder.model


def write_checkpoint(loaded: LoadedVersion, base_dir: Path, out_dir: Path) -> None:
    """Write ``loaded``'s checkpoint directory into ``out_dir`` (see the module docstring)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_supporting_files(base_dir, out_dir)
    exported_model(loaded).save_pretrained(
        out_dir, safe_serialization=True, max_shard_size=_ONE_SHARD
    )
    if not (out_dir / PREPROCESSOR_FILE).is_file():
        # The base had none (the service then preprocesses as CLIP at the tower's size):
        # write the processor the service uses, so AutoProcessor finds the same one.
        preprocessor = (loaded.generator or loaded.encoder).preprocessor
        preprocessor.save(out_dir)
    if loaded.generator is not None and not (out_dir / PROCESSOR_FILE).is_file():
        write_llava_processor_config(loaded.generator, out_dir)
    if not (out_dir / WEIGHTS_FILE).is_file():
        raise RuntimeError(f"save_pretrained wrote no {WEIGHTS_FILE}")


def base_card(base_dir: Path) -> Path | None:
    """The base checkpoint's model card, if it has one."""
    for name in BASE_CARD_NAMES:
        if (base_dir / name).is_file():
            return base_dir / name
    return None


def copy_supporting_files(base_dir: Path, out_dir: Path) -> None:
    """Copy the base directory's top-level files but its weights, pickles, config and card
    (tokenizer, processor, chat template, licence): the files the family's processor reads;
    the base's card as ``BASE_MODEL_CARD.md``."""
    for path in sorted(base_dir.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith(".") or name in BASE_CARD_NAMES:
            continue
        if name.endswith(_NOT_COPIED_SUFFIXES) or name in _WRITTEN_BY_SAVE:
            continue
        shutil.copyfile(path, out_dir / name)
    card = base_card(base_dir)
    if card is not None:
        shutil.copyfile(card, out_dir / BASE_CARD_COPY)


def write_llava_processor_config(generator: VisionLanguageModel, out_dir: Path) -> None:
    """``processor_config.json`` for ``LlavaProcessor``, so that one ``<image>`` in a prompt
    expands to as many image tokens as the service's prompts hold (``image_token_count``:
    one per patch, plus the class token under the "full" feature selection)."""
    config = generator.model.config
    facts = {
        "processor_class": "LlavaProcessor",
        "image_token": IMAGE_TOKEN,
        "patch_size": int(config.vision_config.patch_size),
        "vision_feature_select_strategy": getattr(
            config, "vision_feature_select_strategy", "default"
        ),
        # CLIP's class token: LlavaProcessor drops it again under the "default" selection.
        "num_additional_image_tokens": 1,
    }
    (out_dir / PROCESSOR_FILE).write_text(json.dumps(facts, indent=2) + "\n")
