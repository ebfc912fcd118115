"""Builds small LLaVA models around an existing CLIP-style vision tower (random elsewhere).

Used for tests (a tiny random VLM in seconds), for the cost benchmark's LLaVA-shaped rows and
as the skeleton the stand-in VLM is trained from. The tokenizer is a byte-level BPE trained in
a second on the texts the model will see, with LLaVA's special tokens (``<image>``, ``<pad>``,
``<s>``, ``</s>``); decoding gives back exactly the text that was encoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from service.modelling.preprocess import ImagePreprocessor
from service.modelling.vlm import IMAGE_TOKEN

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN)


@dataclass(frozen=True)
class LanguageShape:
    """The shape of a Llama language model."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    max_positions: int = 256


TINY_LANGUAGE = LanguageShape()


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` (a ``PreTrainedTokenizerFast``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    bos = core.token_to_id("<s>")
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
    )


def build_llava(
    vision_config: Any,
    vision_state: dict[str, torch.Tensor],
    tokenizer: Any,
    language: LanguageShape = TINY_LANGUAGE,
    seed: int = 0,
) -> Any:
    """A ``LlavaForConditionalGeneration`` whose vision tower holds ``vision_state`` (a
    ``CLIPVisionModel`` state) and whose projector and Llama language model are random."""
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(seed)
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=language.hidden_size,
        intermediate_size=language.intermediate_size,
        num_hidden_layers=language.num_layers,
        num_attention_heads=language.num_heads,
        num_key_value_heads=language.num_heads,
        max_position_embeddings=language.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    patches = (vision_config.image_size // vision_config.patch_size) ** 2
    config = LlavaConfig(  # type: ignore[call-arg]  # image_token_id: transformers 5 name
        vision_config=vision_config,
        text_config=text_config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=patches,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    model: Any = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(vision_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model.eval()


def save_llava_directory(
    model: Any, tokenizer: Any, preprocessor: ImagePreprocessor, out_dir: Path
) -> Path:
    """Weights (safetensors), tokenizer and preprocessor config in one loadable directory."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    preprocessor.save(out_dir)
    return out_dir


def build_tiny_llava(
    out_dir: Path, pair_dir: Path, seed: int = 0, language: LanguageShape = TINY_LANGUAGE
) -> Path:
    """A tiny random LLaVA whose vision tower is a copy of ``pair_dir``'s image encoder (so
    registration finds the towers equal), saved to ``out_dir``. For tests."""
    from service.modelling.loading import load_dual_encoder

    pair = load_dual_encoder(pair_dir)
    texts = [
        "USER: What is in the picture? ASSISTANT: A cat.",
        "USER: Is it an animal? ASSISTANT: Yes.",
        "A dog. A cow. A car. No.",
    ]
    tokenizer = build_tokenizer(texts, vocab_size=300)
    model = build_llava(
        pair.model.vision_model.config,
        pair.model.vision_model.state_dict(),
        tokenizer,
        language=language,
        seed=seed,
    )
    return save_llava_directory(model, tokenizer, pair.preprocessor, out_dir)
