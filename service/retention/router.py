"""``/v1/storage``: blob store usage and garbage collection, and archiving a version (admin
keys)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from service.api.deps import (
    BlobsDep,
    ResourceId,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    VersionRefPath,
)
from service.auth.dependencies import AdminPrincipal, ModelAdmin
from service.registry.service import get_model
from service.retention.archive import archive_version
from service.retention.collection import collect_garbage, storage_usage
from service.retention.schemas import (
    GarbageCollectionOut,
    GarbageCollectionRequest,
    StorageUsageOut,
)
from service.versions import repository as versions_repository
from service.versions.schemas import VersionOut

router = APIRouter(prefix="/v1/storage", tags=["storage"])
archive_router = APIRouter(prefix="/v1/models", tags=["versions"])


@router.get("", response_model=StorageUsageOut)
def read_storage_usage(blobs: BlobsDep, _: AdminPrincipal) -> StorageUsageOut:
    """How many blobs the store holds and their total size."""
    return StorageUsageOut(**asdict(storage_usage(blobs)))


@router.post("/gc", response_model=GarbageCollectionOut)
def run_garbage_collection(
    session_factory: SessionFactoryDep,
    blobs: BlobsDep,
    settings: SettingsDep,
    _: AdminPrincipal,
    body: GarbageCollectionRequest | None = None,
) -> GarbageCollectionOut:
    """Delete the blobs no retained row needs (archived versions, deleted eval sets), except
    those stored within the grace period (``VLMC_BLOB_GC_GRACE_S``): a blob just stored for a
    row not yet committed is never collected."""
    grace_s = settings.blob_gc_grace_s
    report = collect_garbage(session_factory, blobs, grace_s, dry_run=bool(body and body.dry_run))
    return GarbageCollectionOut(**asdict(report), grace_s=grace_s)


@archive_router.post(
    "/{model_id}/versions/{version_id}/archive",
    response_model=VersionOut,
)
def archive(
    model_id: ResourceId, version_id: VersionRefPath, session: SessionDep, _: ModelAdmin
) -> VersionOut:
    """Archive a version (by id or number) nothing retained needs: it can no longer be
    activated, rolled back to, pinned or trained from, and its blobs become collectable
    (``POST /v1/storage/gc``)."""
    get_model(session, model_id)
    version = archive_version(session, model_id, version_id)
    session.commit()
    return VersionOut.of(version, versions_repository.active_version_id(session, model_id))
