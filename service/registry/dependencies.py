"""The process's recently read model rows, for routes on the request path (a FastAPI
dependency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.registry.lookup import ModelLookup


async def get_model_lookup(request: Request) -> ModelLookup:
    models: ModelLookup = request.app.state.runtime.models
    return models


ModelLookupDep = Annotated[ModelLookup, Depends(get_model_lookup)]
