"""Exporting a version: check it can be exported, load it as serving does (hash-verified),
write its checkpoint directory and model card, and hand it out as a tar stream.

The directory is written to a temporary folder under the data directory (a model can be far
larger than memory should hold) and streamed from there; the folder is removed once the
stream ends, completed or not.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from service.exports.archive import TarStream
from service.exports.card import CardFacts, model_card
from service.exports.checkpoint import write_checkpoint
from service.registry.service import get_model
from service.serving.cache import ModelCache
from service.settings import Settings
from service.versions import repository as versions_repository
from service.versions.service import VersionRef, servable_version

CARD_FILE = "README.md"
EXPORTS_FOLDER = "exports"


@dataclass(frozen=True)
class Export:
    """A written checkpoint directory (``<folder>/<name>``) and its archive, ``<name>.tar``."""

    name: str
    # The temporary folder holding the directory: removed by ``remove``.
    folder: Path
    archive: TarStream

    @property
    def file_name(self) -> str:
        return f"{self.name}.tar"

    def chunks(self) -> Iterator[bytes]:
        """The archive's bytes; the folder goes when the stream ends or is abandoned."""
        try:
            yield from self.archive
        finally:
            self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def export_version(
    session: Session,
    cache: ModelCache,
    settings: Settings,
    model_id: str,
    version_id: VersionRef,
) -> Export:
    """Write the checkpoint directory of the version ``version_id`` names (its id or number;
    404 ``version_not_found``; 409
    ``version_archived``, ``version_failed``, ``version_not_ready``: only a ready, retained
    version has weights to export; 503 ``version_unavailable`` when its snapshot cannot be
    rebuilt or does not match its hash)."""
    model = get_model(session, model_id)
    version = servable_version(session, model_id, version_id)
    # The serving cache's load: the version's state rebuilt from its snapshots and checked
    # against its content hash (safetensors only), sharing the model's loaded base.
    loaded = cache.pinned(session, model, version)
    parent = (
        versions_repository.get(session, version.parent_id)
        if version.parent_id is not None
        else None
    )
    facts = CardFacts(
        model=model,
        version=version,
        parent=parent,
        active=versions_repository.active_version_id(session, model_id) == version.id,
        base_dir=Path(model.base_path),
    )
    card = model_card(facts)
    name = f"{_file_safe(model.name)}-v{version.number}"
    root = settings.data_dir / EXPORTS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    try:
        write_checkpoint(loaded, Path(model.base_path), folder / name)
        (folder / name / CARD_FILE).write_text(card)
        return Export(name=name, folder=folder, archive=TarStream(folder / name, name))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _file_safe(name: str) -> str:
    """``name`` with every character a file name or a header could trip on replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "model"
