"""The process's recently read model rows (a FastAPI dependency): a change of a model's
feedback capture is dropped from them at once, so this process's next answer follows it
(other processes read the row again within ``VLMC_LOOKUP_CACHE_TTL_S``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.registry.lookup import ModelLookup


async def get_model_lookup(request: Request) -> ModelLookup:
    models: ModelLookup = request.app.state.runtime.models
    return models


ModelLookupDep = Annotated[ModelLookup, Depends(get_model_lookup)]
