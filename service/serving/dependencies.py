"""What a route needs to answer inference, as FastAPI dependencies: the process's serving
resources (one dependency: fewer steps on the hottest path) and an inference slot (503
``serving_disabled`` in a process that does not serve)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.errors import Unavailable
from service.registry.lookup import ModelLookup
from service.serving.admission import InferenceAdmission
from service.serving.batching import Batcher
from service.serving.cache import ModelCache
from service.settings import Settings


@dataclass(frozen=True)
class Serving:
    """The serving side of an API process."""

    settings: Settings
    cache: ModelCache
    # Image forward passes (classify, embed) and chat generations batch on threads of their
    # own: a long generation never holds up classify or embed.
    image_batcher: Batcher
    generation_batcher: Batcher
    # Recently read model rows (no query on the request path while they are fresh).
    models: ModelLookup


def _serving_disabled() -> Unavailable:
    return Unavailable("serving_disabled", "this process does not serve inference")


async def get_serving(request: Request) -> Serving:
    runtime = request.app.state.runtime
    if runtime.cache is None or runtime.batcher is None or runtime.generation_batcher is None:
        raise _serving_disabled()
    return Serving(
        settings=runtime.settings,
        cache=runtime.cache,
        image_batcher=runtime.batcher,
        generation_batcher=runtime.generation_batcher,
        models=runtime.models,
    )


async def _inference_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the process's inference slots for the request (503 server_busy if none
    frees up in time). Waits on the event loop, before the request body is read."""
    admission: InferenceAdmission | None = request.app.state.runtime.admission
    if admission is None:
        raise _serving_disabled()
    await admission.enter()
    try:
        yield
    finally:
        admission.leave()


ServingDep = Annotated[Serving, Depends(get_serving)]
InferenceSlot = Annotated[None, Depends(_inference_slot)]
