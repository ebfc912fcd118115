"""What a route needs to answer inference: the process's model cache, its batchers and an
inference slot (FastAPI dependencies; 503 ``serving_disabled`` in a process that does not
serve)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from service.errors import Unavailable
from service.serving.admission import InferenceAdmission
from service.serving.batching import Batcher
from service.serving.cache import ModelCache


def _serving(request: Request, name: str) -> object:
    value = getattr(request.app.state.runtime, name)
    if value is None:
        raise Unavailable("serving_disabled", "this process does not serve inference")
    return value


async def get_model_cache(request: Request) -> ModelCache:
    cache = _serving(request, "cache")
    assert isinstance(cache, ModelCache)
    return cache


async def get_image_batcher(request: Request) -> Batcher:
    """The batcher of image forward passes (classify, embed)."""
    batcher = _serving(request, "batcher")
    assert isinstance(batcher, Batcher)
    return batcher


async def get_generation_batcher(request: Request) -> Batcher:
    """The batcher of chat generations (its own thread: a long generation never holds up
    classify or embed)."""
    batcher = _serving(request, "generation_batcher")
    assert isinstance(batcher, Batcher)
    return batcher


async def _inference_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the process's inference slots for the request (503 server_busy if none
    frees up in time). Waits on the event loop, before the request body is read."""
    admission = _serving(request, "admission")
    assert isinstance(admission, InferenceAdmission)
    await admission.enter()
    try:
        yield
    finally:
        admission.leave()


ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
ImageBatcherDep = Annotated[Batcher, Depends(get_image_batcher)]
GenerationBatcherDep = Annotated[Batcher, Depends(get_generation_batcher)]
InferenceSlot = Annotated[None, Depends(_inference_slot)]
