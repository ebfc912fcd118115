"""``POST /v1/chat/completions``: OpenAI-compatible answers from a generative model."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from service.api.deps import BlobsDep, SessionDep, SessionFactoryDep
from service.api.openapi import ErrorResponse
from service.auth.dependencies import InferencePrincipal
from service.chat.schemas import ChatCompletion, ChatRequest
from service.chat.service import (
    capture_chat,
    check_context,
    complete,
    parse_turn,
    resolve_generator,
    stream_events,
)
from service.serving.dependencies import InferenceSlot, ServingDep

router = APIRouter(prefix="/v1/chat", tags=["inference"])


@router.post(
    "/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": "with stream: true, server-sent events of "
                        "chat.completion.chunk objects, then 'data: [DONE]'",
                    }
                }
            }
        },
        404: {"model": ErrorResponse, "description": "model_not_found (or not visible to the key)"},
        422: {
            "model": ErrorResponse,
            "description": "not_generative, image_required, too_many_images, "
            "image_not_data_url, too_many_tokens, context_too_long, multi_turn_unsupported, "
            "last_message_not_user, empty_question, or an invalid body",
        },
    },
)
def chat_completions(
    body: ChatRequest,
    principal: InferencePrincipal,
    __: InferenceSlot,
    session: SessionDep,
    serving: ServingDep,
    blobs: BlobsDep,
    session_factory: SessionFactoryDep,
) -> ChatCompletion | StreamingResponse:
    """Answer a question about an image with the model's active version (or ``version_id``).

    One user turn with one image (a data URL) and text; ``temperature`` 0 is greedy;
    ``stream: true`` answers with server-sent events. The response names the version that
    answered (``version_id``, ``version_number``, ``system_fingerprint``). Its ``id`` is the
    answer id: while the model captures feedback, the answer is kept so that it can be
    flagged with the right answer (``POST /v1/answers/{id}/feedback``).
    """
    turn = parse_turn(body, serving.settings)
    loaded, generator = resolve_generator(session, serving.cache, principal, body, serving.models)
    check_context(generator, turn)
    if body.stream:

        def keep(completion_id: str, answer: str) -> None:
            # The request's session ends with the handler: the stream keeps its answer in a
            # transaction of its own.
            with session_factory() as stream_session:
                if capture_chat(
                    stream_session, blobs, serving.models, loaded, turn, completion_id, answer
                ):
                    stream_session.commit()

        return StreamingResponse(
            stream_events(loaded, generator, turn, body.model, on_finish=keep),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    completion = complete(loaded, generator, serving.generation_batcher, turn, body.model)
    answer = completion.choices[0].message.content
    if capture_chat(session, blobs, serving.models, loaded, turn, completion.id, answer):
        session.commit()
    return completion
