"""Archiving a version: retiring it from serving and training so its blobs become collectable
(``POST /v1/storage/gc``), once nothing retained needs it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import Version
from service.errors import Conflict
from service.jobs import repository as jobs_repository
from service.versions import repository as versions_repository
from service.versions.service import VersionRef, get_version, refuse_archived


def archive_version(session: Session, model_id: str, ref: VersionRef) -> Version:
    """Archive the version ``ref`` names (id or number) if nothing retained needs it (in the
    caller's transaction).

    409 ``version_archived`` (already), ``version_active`` (the one serving),
    ``version_needed`` (a retained version is rebuilt through it: it lies on that version's
    path from its nearest checkpoint, see ``state_chain``), ``version_in_use`` (an unfinished
    job trains from it).
    """
    versions_repository.lock_active(session, model_id)
    version = get_version(session, model_id, ref)
    refuse_archived(version)
    if versions_repository.active_version_id(session, model_id) == version.id:
        raise Conflict("version_active", f"version {version.number} is the active version")
    dependants = sorted(
        other.number
        for other in versions_repository.list_for_model(session, model_id)
        if other.id != version.id
        and other.archived_at is None
        and version in versions_repository.rebuild_path(session, other)
    )
    if dependants:
        raise Conflict(
            "version_needed",
            f"version {version.number} is needed to rebuild version(s) "
            + ", ".join(str(number) for number in dependants)
            + ": archive those first",
            details={"needed_by": dependants},
        )
    if jobs_repository.unfinished_with_parent(session, version.id):
        raise Conflict("version_in_use", f"a running job trains from version {version.number}")
    version.archived_at = utcnow()
    session.flush()
    return version
