"""Bodies of ``POST /v1/chat/completions``, shaped like OpenAI's so its clients work unchanged.

Extensions (ignored by OpenAI clients, readable with ``extra_body`` / the raw response):
``version_id`` in the request pins a version (its id, or its number as an integer);
``version_id`` / ``version_number`` in every response (and in each streamed chunk) name the
version that produced the answer, which is also the ``system_fingerprint``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.validation import (
    MAX_BASE64_LENGTH,
    MAX_TEXT_LENGTH,
    NONBLANK_MULTILINE_PATTERN,
    VersionRef,
)

# More new tokens than any model's context could hold: a bound for the document (the
# model's own context answers 422 ``too_many_tokens`` / ``context_too_long`` first).
MAX_NEW_TOKENS = 1 << 20

# Text as the service checks it (control and invisible characters are refused, 422
# ``invalid_characters``; blank: ``empty_question``), documented here.
ChatText = Annotated[
    str,
    Field(max_length=MAX_TEXT_LENGTH, json_schema_extra={"pattern": NONBLANK_MULTILINE_PATTERN}),
]


class ImageUrl(BaseModel):
    url: str = Field(
        max_length=MAX_BASE64_LENGTH + 256, description="a data URL: data:image/png;base64,..."
    )
    detail: str | None = Field(default=None, max_length=16)


class TextPart(BaseModel):
    type: Literal["text"]
    text: ChatText


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: ChatText | Annotated[list[TextPart | ImagePart], Field(max_length=64)] = Field(
        description="text, or a list of text and image_url parts"
    )


class ChatRequest(BaseModel):
    # Unknown OpenAI fields (user, seed, ...) are accepted and ignored, as OpenAI-compatible
    # servers do, so clients that send them work.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200, description="the registered model's name")
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(default=0.0, ge=0, le=2, description="0: greedy")
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1, description="one choice per request")
    version_id: VersionRef | None = Field(
        default=None, description="answer with this version (id or number), not the active one"
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[Choice]
    usage: Usage
    version_id: str
    version_number: int


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChunkChoice]
    version_id: str
    version_number: int
