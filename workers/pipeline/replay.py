"""Replay: a model's earlier corrections, handed to training as anchors.

Every correction a model has had is stored with its images. When a job's hyperparameters ask
for it (``anchor_replay``), the labelled examples that trained the versions on the parent's
chain join the anchors, so the anchor terms keep what earlier corrections taught (without
replay, each new correction wears down the previous ones). Only trained examples are replayed,
never the ones an earlier job held out to measure its TI.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.db.tables import Version
from service.jobs import repository as jobs_repository
from service.modelling.examples import ImageExample
from service.storage.blobs import BlobStore
from service.versions import repository as versions_repository
from workers.pipeline.stored_inputs import correction_examples

# At most this many replayed examples per job, the newest corrections first: the anchor batch
# samples from them every step, so more would only add encoding time.
REPLAY_LIMIT = 256


def replayed_examples(
    session: Session, blobs: BlobStore, parent: Version, limit: int = REPLAY_LIMIT
) -> list[ImageExample]:
    """The labelled trained examples of the corrections behind ``parent``, newest first."""
    replayed: list[ImageExample] = []
    for version in reversed(versions_repository.chain_to_root(session, parent)):
        if version.job_id is None:
            continue
        job = jobs_repository.get(session, version.job_id)
        if job is None:
            continue
        correction = correction_examples(session, blobs, job.correction_id)
        replayed += [example for example in correction.trained if example.label is not None]
        if len(replayed) >= limit:
            return replayed[:limit]
    return replayed
