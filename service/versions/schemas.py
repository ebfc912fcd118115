"""Request and response bodies of versions, activation, rollback and deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service.db.tables import Deployment, Version


class VersionOut(BaseModel):
    """A version. ``metrics`` is what the worker measured; by convention it holds ``ti`` and
    ``cc`` (accuracy points), per-set accuracies and cost figures."""

    id: str
    model_id: str
    number: int
    parent_id: str | None
    job_id: str | None
    method: str
    data_hash: str | None
    content_sha256: str
    snapshot_sha256: str | None
    metrics: dict[str, Any]
    status: str
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, version: Version, active_id: str | None) -> VersionOut:
        return cls(
            id=version.id,
            model_id=version.model_id,
            number=version.number,
            parent_id=version.parent_id,
            job_id=version.job_id,
            method=version.method,
            data_hash=version.data_hash,
            content_sha256=version.content_sha256,
            snapshot_sha256=version.snapshot_sha256,
            metrics=version.metrics,
            status=version.status,
            active=version.id == active_id,
            created_at=version.created_at,
        )


class PointerMove(BaseModel):
    """Body of activate and rollback."""

    version_id: str = Field(min_length=1)
    reason: str = Field(default="", max_length=2000)


class DeploymentOut(BaseModel):
    id: int
    model_id: str
    from_version_id: str | None
    to_version_id: str
    action: str
    actor: str
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, deployment: Deployment) -> DeploymentOut:
        return cls.model_validate(deployment, from_attributes=True)
