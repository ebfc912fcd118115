"""Request and response bodies of ``/v1/storage``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class GarbageCollectionRequest(BaseModel):
    """Body of ``POST /v1/storage/gc`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    # Strict: a destructive call must not run for real on a value that merely reads as false.
    dry_run: StrictBool = Field(
        default=False, description="report what would be deleted, delete none"
    )


class GarbageCollectionOut(BaseModel):
    """What a collection found and did."""

    scanned_blobs: int = Field(description="blobs stored when the collection started")
    referenced_blobs: int = Field(description="of those, blobs a row still needs")
    recent_blobs: int = Field(description="of those, blobs stored within the grace period (kept)")
    deleted_blobs: int = Field(description="blobs deleted (dry run: that would be)")
    freed_bytes: int = Field(description="bytes freed (dry run: that would be)")
    dry_run: bool
    expired_answers: int = Field(
        default=0,
        description="answers kept for the mistakes inbox deleted past their retention "
        "(unflagged, used or dismissed; open items stay); a dry run deletes none",
    )
    grace_s: float = Field(description="the grace period on blob age that applied, seconds")


class StorageUsageOut(BaseModel):
    """Stored blobs (images, version deltas and checkpoints, carried states)."""

    blobs: int
    bytes: int
