"""Request and response bodies of the API-key endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from service.db.values import Scope
from service.validation import Identifier, Name

MAX_MODELS_PER_KEY = 100


class ApiKeyCreate(BaseModel):
    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    model_ids: list[Identifier] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MODELS_PER_KEY,
        description="restrict the key to these models (other models answer 404 and are left "
        "out of lists); null: every model. Admin keys cannot be restricted.",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="the key stops working at this time (with a UTC offset)"
    )


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[Scope]
    model_ids: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="recorded to the minute")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """Returned once at creation: the only time the key itself is shown."""

    key: str
