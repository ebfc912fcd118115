"""Whether a llava model's corrections fit its language model's context (checked at submission).

The answer objective trains on prompt + answer token sequences (``service.modelling.vlm.
answer_sequence``); one longer than the language model's context cannot train, so it is a 422
``answer_too_long`` before anything is queued, not a failed job. Only the tokenizer and the
config are loaded (once per checkpoint directory), never the weights.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from catalogue.captions import WHAT_IS_SHOWN_QUESTION, answer_for_label
from service.corrections.schemas import SubmittedExample
from service.errors import InvalidInput
from service.modelling.vlm import answer_sequence, image_token_count


@dataclass(frozen=True)
class AnswerFormat:
    tokenizer: Any
    image_tokens: int
    context_length: int


@functools.lru_cache(maxsize=16)
def answer_format(checkpoint: str) -> AnswerFormat:
    """The tokenizer, image-token count and context length of a llava checkpoint directory
    (registered checkpoints are immutable: read once)."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
    return AnswerFormat(
        tokenizer=AutoTokenizer.from_pretrained(checkpoint, local_files_only=True),
        image_tokens=image_token_count(config),
        context_length=int(config.text_config.max_position_embeddings),
    )


def check_answers_fit(
    checkpoint: str, examples: Sequence[SubmittedExample], answer_template: str
) -> None:
    """422 ``answer_too_long`` naming the first example whose question and answer (a label:
    its answer through ``answer_template``) do not fit the model's context."""
    form = answer_format(checkpoint)
    for position, example in enumerate(examples):
        question = example.question or WHAT_IS_SHOWN_QUESTION
        answer = example.answer or answer_for_label(example.label or "", answer_template)
        prompt, said = answer_sequence(form.tokenizer, form.image_tokens, question, answer)
        if len(prompt) + len(said) > form.context_length:
            raise InvalidInput(
                "answer_too_long",
                f"example {position}: its question and answer take {len(prompt) + len(said)} "
                f"tokens with the image, more than the model's context of "
                f"{form.context_length}; shorten them",
            )
