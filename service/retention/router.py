"""``/v1/storage``: blob store usage and garbage collection (admin keys)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from service.api.deps import AdminPrincipal, RuntimeDep
from service.retention.collection import collect_garbage, storage_usage
from service.retention.schemas import (
    GarbageCollectionOut,
    GarbageCollectionRequest,
    StorageUsageOut,
)

router = APIRouter(prefix="/v1/storage", tags=["storage"])


@router.get("", response_model=StorageUsageOut)
def read_storage_usage(runtime: RuntimeDep, _: AdminPrincipal) -> StorageUsageOut:
    """How many blobs the store holds and their total size."""
    return StorageUsageOut(**asdict(storage_usage(runtime.blobs)))


@router.post("/gc", response_model=GarbageCollectionOut)
def run_garbage_collection(
    runtime: RuntimeDep, _: AdminPrincipal, body: GarbageCollectionRequest | None = None
) -> GarbageCollectionOut:
    """Delete the blobs no retained row needs (archived versions, deleted eval sets), except
    those stored within the grace period (``VLMC_BLOB_GC_GRACE_S``): a blob just stored for a
    row not yet committed is never collected."""
    grace_s = runtime.settings.blob_gc_grace_s
    report = collect_garbage(
        runtime.session_factory, runtime.blobs, grace_s, dry_run=bool(body and body.dry_run)
    )
    return GarbageCollectionOut(**asdict(report), grace_s=grace_s)
