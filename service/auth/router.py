"""``/v1/api-keys``: create, list and revoke keys (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter, status

from service.api.deps import ResourceId, SessionDep
from service.auth import repository
from service.auth.dependencies import AdminPrincipal, AnyPrincipal, KeyCacheDep
from service.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from service.auth.service import create_key, get_key, revoke_key

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses={
        201: {
            "links": {
                "RevokeKey": {
                    "operationId": "revoke_api_key",
                    "parameters": {"key_id": "$response.body#/id"},
                }
            }
        }
    },
)
def create_api_key(body: ApiKeyCreate, session: SessionDep, _: AdminPrincipal) -> ApiKeyCreated:
    """Create a key; the response is the only place the key is ever shown."""
    key, plain = create_key(session, body.name, list(body.scopes), body.model_ids, body.expires_at)
    session.commit()
    return ApiKeyCreated(
        **ApiKeyOut.model_validate(key, from_attributes=True).model_dump(), key=plain
    )


@router.get("", response_model=list[ApiKeyOut])
def list_api_keys(session: SessionDep, _: AdminPrincipal) -> list[ApiKeyOut]:
    return [
        ApiKeyOut.model_validate(key, from_attributes=True) for key in repository.list_keys(session)
    ]


@router.get("/me", response_model=ApiKeyOut)
def read_own_api_key(session: SessionDep, principal: AnyPrincipal) -> ApiKeyOut:
    """The calling key itself (any scope): its scopes and models say what it may do, which
    is what the dashboard offers."""
    return ApiKeyOut.model_validate(get_key(session, principal.key_id), from_attributes=True)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyOut,
)
def revoke_api_key(
    key_id: ResourceId, session: SessionDep, keys: KeyCacheDep, _: AdminPrincipal
) -> ApiKeyOut:
    """Revoke a key (revoking a revoked key changes nothing). It stops working at once on
    this API process, and within ``VLMC_LOOKUP_CACHE_TTL_S`` seconds on the others."""
    key = revoke_key(session, key_id)
    session.commit()
    keys.forget(key.id)
    return ApiKeyOut.model_validate(key, from_attributes=True)
