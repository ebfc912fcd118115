"""Answer a chat completion with the version that should answer (active or pinned).

A request is one user turn (system messages are accepted and not used: LLaVA-1.5's prompt has
no system part) with exactly one image, given as a data URL, and the question as text parts.
Everything is validated before the model is touched: nothing is recorded for a bad request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PIL import Image
from sqlalchemy.orm import Session

from service.answers.capture import AnswerContext, ServedAnswer, capture_answers
from service.answers.ids import new_answer_id
from service.api.uploads import decode_base64
from service.auth.principal import Principal
from service.auth.service import require_model
from service.chat.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ImagePart,
    TextPart,
    Usage,
)
from service.db.values import AnswerKind
from service.errors import InvalidInput, NotFound
from service.images import ImageLimits, decode_image
from service.modelling.vlm import Answer, VisionLanguageModel
from service.observability import INFERENCE_LATENCY
from service.registry import repository as registry_repository
from service.registry.lookup import ModelLookup
from service.serving.batching import Batcher
from service.serving.cache import LoadedVersion, ModelCache
from service.serving.service import resolve_encoder
from service.settings import Settings
from service.storage.blobs import BlobStore
from service.validation import check_characters

_DATA_URL_PREFIX = "data:image/"


@dataclass(frozen=True)
class ChatTurn:
    """What a valid request asks: one image (decoded, and as sent: the inbox keeps it), one
    question, how to generate."""

    image: Image.Image
    image_bytes: bytes
    question: str
    max_tokens: int
    temperature: float


def parse_turn(request: ChatRequest, settings: Settings) -> ChatTurn:
    """The request's single user turn (422 with a code for anything this service cannot do)."""
    dialogue = [message for message in request.messages if message.role != "system"]
    if not dialogue or dialogue[-1].role != "user":
        raise InvalidInput("last_message_not_user", "messages: the last message must be the user's")
    if len(dialogue) > 1:
        raise InvalidInput(
            "multi_turn_unsupported", "messages: send one user turn (earlier turns are not used)"
        )
    content = dialogue[-1].content
    parts: list[TextPart | ImagePart] = (
        [TextPart(type="text", text=content)] if isinstance(content, str) else content
    )
    images = [part for part in parts if isinstance(part, ImagePart)]
    if not images:
        raise InvalidInput("image_required", "messages: the user turn needs one image_url part")
    if len(images) > settings.max_chat_images:
        raise InvalidInput(
            "too_many_images", f"messages: at most {settings.max_chat_images} image per request"
        )
    question = " ".join(part.text.strip() for part in parts if isinstance(part, TextPart))
    question = check_characters(question.strip(), "messages", multiline=True)
    if not question:
        raise InvalidInput("empty_question", "messages: the user turn needs a text part")
    requested = request.max_completion_tokens or request.max_tokens or settings.chat_max_tokens
    if requested > settings.chat_max_tokens:
        raise InvalidInput(
            "too_many_tokens", f"max_tokens: at most {settings.chat_max_tokens} tokens"
        )
    image_bytes, image = _image(images[0].image_url.url, settings)
    return ChatTurn(
        image=image,
        image_bytes=image_bytes,
        question=question,
        max_tokens=requested,
        temperature=request.temperature,
    )


def _image(url: str, settings: Settings) -> tuple[bytes, Image.Image]:
    if not url.startswith(_DATA_URL_PREFIX) or ";base64," not in url[:100]:
        raise InvalidInput(
            "image_not_data_url",
            "image_url.url: send the image inline as a data URL (data:image/png;base64,...); "
            "the service fetches nothing",
        )
    limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)
    data = decode_base64(url, "image_url.url")
    return data, decode_image(data, limits, "image_url.url")


def resolve_generator(
    session: Session,
    cache: ModelCache,
    principal: Principal,
    request: ChatRequest,
    models: ModelLookup | None = None,
) -> tuple[LoadedVersion, VisionLanguageModel]:
    """The loaded version of the named model (404 if the key cannot see it) and its VLM
    (422 ``not_generative`` for a model that cannot generate)."""
    model = (
        models.by_name(session, request.model)
        if models is not None
        else registry_repository.get_by_name(session, request.model)
    )
    if model is None:
        raise NotFound("model_not_found", f"no model named {request.model!r}")
    require_model(principal, model.id)
    if model.pair_path is None:
        raise InvalidInput(
            "not_generative",
            f"model {model.name!r} is a {model.family} dual encoder: it classifies and embeds "
            "but cannot answer questions (use /v1/models/{id}/classify)",
        )
    loaded = resolve_encoder(session, cache, model.id, request.version_id, models)
    assert loaded.generator is not None  # a model with a pair loads its VLM
    return loaded, loaded.generator


def check_context(generator: VisionLanguageModel, turn: ChatTurn) -> int:
    """The prompt's token count (422 ``context_too_long`` if it and the answer do not fit)."""
    prompt_tokens = generator.prompt_tokens(turn.question)
    limit = generator.context_length
    if prompt_tokens + turn.max_tokens > limit:
        raise InvalidInput(
            "context_too_long",
            f"messages: the prompt takes {prompt_tokens} tokens; with max_tokens "
            f"{turn.max_tokens} it exceeds the model's context of {limit}",
        )
    return prompt_tokens


def complete(
    loaded: LoadedVersion,
    generator: VisionLanguageModel,
    batcher: Batcher,
    turn: ChatTurn,
    model_name: str,
) -> ChatCompletion:
    """The whole answer at once, generated in one batch with concurrent requests to the same
    version that ask for the same sampling and whose prompts have as many tokens (so no row is
    padded and each answer is the one the request would get alone)."""
    started = time.perf_counter()

    def answer_all(items: list[tuple[Image.Image, str]]) -> list[Answer]:
        return generator.answer(
            [image for image, _ in items],
            [question for _, question in items],
            max_tokens=turn.max_tokens,
            temperature=turn.temperature,
        )

    key = (
        *loaded.batch_key,
        "chat",
        turn.max_tokens,
        turn.temperature,
        generator.prompt_tokens(turn.question),
    )
    [answer] = batcher.run(key, answer_all, [(turn.image, turn.question)])
    INFERENCE_LATENCY.labels(operation="chat").observe(time.perf_counter() - started)
    return ChatCompletion(
        id=new_answer_id(AnswerKind.CHAT, loaded.model_id),
        created=int(time.time()),
        model=model_name,
        system_fingerprint=loaded.version_id,
        choices=[
            Choice(
                message=AssistantMessage(content=answer.text), finish_reason=answer.finish_reason
            )
        ],
        usage=Usage(
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            total_tokens=answer.prompt_tokens + answer.completion_tokens,
        ),
        version_id=loaded.version_id,
        version_number=loaded.version_number,
    )


def stream_events(
    loaded: LoadedVersion,
    generator: VisionLanguageModel,
    turn: ChatTurn,
    model_name: str,
    on_finish: Callable[[str, str], None] | None = None,
) -> Iterator[str]:
    """Server-sent events: a role chunk, one chunk per piece of text, a finish chunk,
    ``[DONE]`` (OpenAI's streaming format). ``on_finish(completion id, whole answer)`` runs
    once the answer is complete, before ``[DONE]``."""
    completion_id = new_answer_id(AnswerKind.CHAT, loaded.model_id)
    created = int(time.time())
    pieces: list[str] = []

    def chunk(delta: Delta, finish_reason: str | None = None) -> str:
        body = ChatCompletionChunk(
            id=completion_id,
            created=created,
            model=model_name,
            system_fingerprint=loaded.version_id,
            choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)],
            version_id=loaded.version_id,
            version_number=loaded.version_number,
        )
        return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

    started = time.perf_counter()
    yield chunk(Delta(role="assistant", content=""))
    for piece in generator.stream(
        turn.image, turn.question, max_tokens=turn.max_tokens, temperature=turn.temperature
    ):
        if piece.text:
            pieces.append(piece.text)
            yield chunk(Delta(content=piece.text))
        if piece.finish_reason is not None:
            INFERENCE_LATENCY.labels(operation="chat").observe(time.perf_counter() - started)
            yield chunk(Delta(), finish_reason=piece.finish_reason)
    if on_finish is not None:
        on_finish(completion_id, "".join(pieces))
    yield "data: [DONE]\n\n"


def capture_chat(
    session: Session,
    blobs: BlobStore,
    models: ModelLookup,
    loaded: LoadedVersion,
    turn: ChatTurn,
    completion_id: str,
    answer: str,
) -> bool:
    """Keep the answer for the inbox if the model captures feedback (the model's row from
    ``models``: no query while it is fresh); whether a row was added (then commit)."""
    return capture_answers(
        session,
        blobs,
        models.get(session, loaded.model_id),
        AnswerContext(
            kind=AnswerKind.CHAT,
            version_id=loaded.version_id,
            version_number=loaded.version_number,
            question=turn.question,
        ),
        [ServedAnswer(answer_id=completion_id, image=turn.image_bytes, served=answer)],
    )
