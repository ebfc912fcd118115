"""LLaVA-family vision-language models whose vision tower the service corrects.

A registered ``llava`` model is two local Hugging Face directories (safetensors only):

- the VLM (``LlavaForConditionalGeneration``: vision tower, projector, language model) that
  answers questions, and
- a CLIP-style dual encoder whose text tower pairs with the VLM's vision tower: the CLIP loss
  the update methods train with needs one (LLaVA-1.5 pairs with
  ``openai/clip-vit-large-patch14-336``).

:func:`load_vision_language_model` loads both and *shares* the VLM's vision tower with the
dual encoder (``dual.model.vision_model`` is the very module ``vlm.model.vision_tower``), so
everything that updates, snapshots or restores the dual encoder's image encoder updates the
VLM's vision tower with it. For a ``llava`` model the image encoder is the vision tower alone
(the pair's ``visual_projection`` is not part of the VLM and stays frozen), so a version's
snapshot holds vision-tower tensors only.

Prompts use LLaVA-1.5's conversation format (:func:`llava_prompt`), with the image token
repeated once per image feature the projector produces.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from catalogue.architecture import read_layer_of
from service.db.values import ModelFamily
from service.modelling.dual_encoder import DualEncoder
from service.modelling.loading import ModelLoadError, load_dual_encoder
from service.modelling.preprocess import ImagePreprocessor

VISION_TOWER_CHILDREN = ("vision_model",)
IMAGE_TOKEN = "<image>"
# Vision-config fields that must agree for two towers to be the same architecture.
_ARCHITECTURE_FIELDS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "image_size",
    "patch_size",
    "num_channels",
    "hidden_act",
)


def llava_prompt(question: str, image_tokens: int) -> str:
    """LLaVA-1.5's single-turn prompt: ``USER: <image>\\n{question} ASSISTANT:``."""
    return f"USER: {IMAGE_TOKEN * image_tokens}\n{question.strip()} ASSISTANT:"


def vision_config_of(directory: Path | str) -> dict[str, Any]:
    """The ``vision_config`` of a checkpoint's ``config.json`` (no torch)."""
    config = json.loads((Path(directory) / "config.json").read_text())
    vision = config.get("vision_config")
    if not isinstance(vision, dict):
        raise ModelLoadError("the checkpoint's config.json describes no vision tower")
    return vision


def architecture_differences(vlm_dir: Path | str, pair_dir: Path | str) -> list[str]:
    """Fields in which the two vision towers' architectures differ (empty: the same)."""
    from transformers import CLIPVisionConfig

    defaults = CLIPVisionConfig().to_dict()
    vlm, pair = vision_config_of(vlm_dir), vision_config_of(pair_dir)
    differences = []
    for field in _ARCHITECTURE_FIELDS:
        ours = vlm.get(field, defaults.get(field))
        theirs = pair.get(field, defaults.get(field))
        if field == "model_type":  # clip_vision_model either way
            ours, theirs = str(ours).removesuffix("_model"), str(theirs).removesuffix("_model")
        if ours != theirs:
            differences.append(f"{field}: {ours} vs {theirs}")
    return differences


def image_token_count(config: Any) -> int:
    """How many image tokens a llava config's prompt holds: one per patch, plus the class
    token under the "full" feature selection."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    strategy = getattr(config, "vision_feature_select_strategy", "default")
    return int(patches + (1 if strategy == "full" else 0))


def answer_sequence(
    tokenizer: Any, image_tokens: int, question: str, answer: str
) -> tuple[list[int], list[int]]:
    """The token ids of ``question``'s prompt (exactly as the VLM tokenizes it to answer) and
    of ``answer`` after it, ending with the end-of-sequence token: what the language model
    predicts when it answers right. The answer's ids are those of the whole text
    ``prompt + " " + answer`` after the prompt's, where the tokenizer splits it there, so a
    tokenizer that merges across the join still gets the ids it would produce."""
    prompt = llava_prompt(question, image_tokens)
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    whole = list(tokenizer(f"{prompt} {answer.strip()}")["input_ids"])
    if whole[: len(prompt_ids)] == prompt_ids:
        answer_ids = whole[len(prompt_ids) :]
    else:
        answer_ids = list(tokenizer(f" {answer.strip()}", add_special_tokens=False)["input_ids"])
    return prompt_ids, [*answer_ids, int(tokenizer.eos_token_id)]


@dataclass(frozen=True)
class StreamPiece:
    """A piece of a streamed answer; the last piece carries the finish reason."""

    text: str
    finish_reason: str | None = None


@dataclass(frozen=True)
class Answer:
    """One generated answer and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of sequence) or "length" (max_tokens reached)


class VisionLanguageModel:
    """A loaded LLaVA model, its tokenizer and preprocessor, and the dual encoder sharing its
    vision tower (see the module docstring)."""

    def __init__(
        self, model: Any, tokenizer: Any, preprocessor: ImagePreprocessor, encoder: DualEncoder
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        # Batched prompts are padded on the left, so every answer starts at the same column.
        self.tokenizer.padding_side = "left"
        self.preprocessor = preprocessor
        self.encoder = encoder
        config = model.config
        self.image_tokens = image_token_count(config)
        self.image_token_id = int(config.image_token_id)
        self.eos_token_id = int(tokenizer.eos_token_id)
        self.pad_token_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_id
        )
        # generate() is not safe to run concurrently on one model in every configuration.
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def with_model(self, model: Any, encoder: DualEncoder) -> VisionLanguageModel:
        """The same VLM (tokenizer, preprocessor) around ``model`` and its paired ``encoder``
        (structurally identical, e.g. sharing everything but a copied vision tower)."""
        return VisionLanguageModel(model, self.tokenizer, self.preprocessor, encoder)

    def _inputs(self, images: list[Image.Image], questions: list[str]) -> dict[str, torch.Tensor]:
        prompts = [llava_prompt(question, self.image_tokens) for question in questions]
        tokens = self.tokenizer(prompts, return_tensors="pt", padding=True)
        pixels = self.preprocessor(images).to(self.device)
        return {
            "input_ids": tokens["input_ids"].to(self.device),
            "attention_mask": tokens["attention_mask"].to(self.device),
            "pixel_values": pixels,
        }

    def answer_sequence(self, question: str, answer: str) -> tuple[list[int], list[int]]:
        """The token ids of ``question``'s prompt and of ``answer`` after it
        (:func:`answer_sequence`)."""
        return answer_sequence(self.tokenizer, self.image_tokens, question, answer)

    def prompt_tokens(self, question: str) -> int:
        """How many tokens the prompt of ``question`` takes (image tokens included)."""
        return len(self.tokenizer(llava_prompt(question, self.image_tokens))["input_ids"])

    @torch.no_grad()
    def answer(
        self,
        images: list[Image.Image],
        questions: list[str],
        max_tokens: int = 16,
        temperature: float = 0.0,
        batch_size: int = 32,
    ) -> list[Answer]:
        """One answer per (image, question); ``temperature`` 0 is greedy (deterministic)."""
        answers: list[Answer] = []
        for start in range(0, len(images), batch_size):
            inputs = self._inputs(
                images[start : start + batch_size], questions[start : start + batch_size]
            )
            with self._lock:
                generated = self.model.generate(**inputs, **self._sampling(max_tokens, temperature))
            prompt_length = inputs["input_ids"].shape[1]
            prompt_counts = inputs["attention_mask"].sum(dim=1).tolist()
            for row, prompt_count in zip(generated, prompt_counts, strict=True):
                answers.append(self._decode(row[prompt_length:], int(prompt_count), max_tokens))
        return answers

    @property
    def context_length(self) -> int:
        """Tokens the language model can attend to (prompt and answer together)."""
        return int(self.model.config.text_config.max_position_embeddings)

    def stream(
        self, image: Image.Image, question: str, max_tokens: int = 16, temperature: float = 0.0
    ) -> Iterator[StreamPiece]:
        """The answer as it is generated: text pieces (joined, the same text :meth:`answer`
        gives for the same request at temperature 0), the last one with its finish reason."""
        inputs = self._inputs([image], [question])
        tokens: queue.Queue[list[int] | None] = queue.Queue()
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with self._lock, torch.no_grad():
                    self.model.generate(
                        **inputs,
                        streamer=_TokenQueue(tokens),
                        **self._sampling(max_tokens, temperature),
                    )
            except BaseException as error:  # re-raised in the consumer below
                failure.append(error)
            finally:
                tokens.put(None)

        worker = threading.Thread(target=generate, name="vlm-stream", daemon=True)
        worker.start()
        ids: list[int] = []
        said = ""
        stopped = False
        while (new := tokens.get()) is not None:
            if stopped:
                continue
            for token in new:
                if token == self.eos_token_id:
                    stopped = True
                    break
                ids.append(token)
            text = self.tokenizer.decode(ids, skip_special_tokens=True).lstrip()
            # A multi-byte character split across tokens decodes to U+FFFD until it is whole.
            if len(text) > len(said) and not text.endswith("\ufffd"):
                yield StreamPiece(text[len(said) :])
                said = text
        worker.join()
        if failure:
            raise failure[0]
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        rest = text[len(said) :] if text.startswith(said) else ""
        finish = "stop" if stopped or len(ids) < max_tokens else "length"
        yield StreamPiece(rest, finish_reason=finish)

    def _sampling(self, max_tokens: int, temperature: float) -> dict[str, Any]:
        sampling: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        }
        if temperature > 0:
            return {**sampling, "do_sample": True, "temperature": temperature, "top_k": 0}
        return {**sampling, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}

    def _decode(self, completion: torch.Tensor, prompt_tokens: int, max_tokens: int) -> Answer:
        ids = completion.tolist()
        stopped = self.eos_token_id in ids
        if stopped:
            ids = ids[: ids.index(self.eos_token_id)]
        ids = [token for token in ids if token != self.pad_token_id]
        text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        finish = "stop" if stopped or len(ids) < max_tokens else "length"
        return Answer(text, prompt_tokens, len(ids) + (1 if stopped else 0), finish)


def load_vision_language_model(
    vlm_path: Path | str, pair_path: Path | str, device: str = "cpu"
) -> VisionLanguageModel:
    """Load the VLM and its CLIP-style pair, sharing the VLM's vision tower with the pair.

    On CUDA the projector and language model run in bfloat16; the vision tower stays in
    float32 everywhere, so the tensors a version snapshots (and their hashes) are the same
    whichever device trained or serves it. The projector casts the tower's features.
    """
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    vlm_path, pair_path = Path(vlm_path), Path(pair_path)
    config = json.loads((vlm_path / "config.json").read_text())
    if config.get("model_type") != ModelFamily.LLAVA:
        raise ModelLoadError(f"model type {config.get('model_type')!r} is not a llava model")
    if not any(vlm_path.glob("*.safetensors")):
        raise ModelLoadError(f"{vlm_path} holds no .safetensors weights (pickle is refused)")
    differences = architecture_differences(vlm_path, pair_path)
    if differences:
        raise ModelLoadError(f"the vision towers differ: {'; '.join(differences)}")
    num_layers = int(config["vision_config"]["num_hidden_layers"])
    dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    model: Any = LlavaForConditionalGeneration.from_pretrained(
        vlm_path, use_safetensors=True, local_files_only=True, dtype=dtype
    )
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.model.vision_tower.float()
    model.model.multi_modal_projector.register_forward_pre_hook(_cast_to_projector_dtype)
    tokenizer = AutoTokenizer.from_pretrained(vlm_path, local_files_only=True)
    preprocessor = ImagePreprocessor.from_directory(
        vlm_path, default_size=int(model.config.vision_config.image_size)
    )
    encoder = load_dual_encoder(pair_path, device=device)
    encoder.share_image_encoder(
        model.model.vision_tower, VISION_TOWER_CHILDREN, read_layer_of(config, num_layers)
    )
    model.to(device)
    encoder.model.to(device)
    return VisionLanguageModel(model, tokenizer, preprocessor, encoder)


def _cast_to_projector_dtype(
    projector: torch.nn.Module, inputs: tuple[Any, ...]
) -> tuple[Any, ...]:
    dtype = next(projector.parameters()).dtype
    return tuple(
        value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value
        for value in inputs
    )


class _TokenQueue:
    """A ``generate`` streamer that hands the new token ids to a queue (the prompt skipped)."""

    def __init__(self, tokens: queue.Queue[list[int] | None]) -> None:
        self._tokens = tokens
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self._tokens.put([int(token) for token in value.reshape(-1).tolist()])

    def end(self) -> None:
        pass
