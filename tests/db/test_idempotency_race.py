"""Two identical submissions with the same Idempotency-Key at the same moment: one job, and
both callers get the same answer (the unique constraint decides, the loser replays)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.corrections.schemas import CorrectionInput, CorrectionOptions, SubmittedExample
from service.corrections.service import Submission, submit_correction
from service.db.session import session_scope
from service.db.tables import Correction, Job, OutboxMessage
from service.settings import Settings
from service.storage.blobs import FilesystemBlobStore
from tests.conftest import to_png
from tests.db.helpers import add_model


def test_concurrent_same_key_submissions_create_one_job(
    session_factory: sessionmaker[Session],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    tiny_model_dir: Path,
) -> None:
    from standin.datasets import load_dataset

    images = load_dataset("fashion-mnist", "test", limit_per_class=1, seed=0)
    request = CorrectionInput(
        options=CorrectionOptions(seed=2),
        examples=[
            SubmittedExample(image=to_png(image), label=images.class_names[label])
            for image, label in zip(images.images, images.labels, strict=True)
        ],
    )
    settings = make_settings()
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    with session_scope(session_factory) as session:
        model_id = add_model(session, base_path=str(tiny_model_dir))[0].id
    barrier = threading.Barrier(4)
    results: list[Submission] = []

    def submit() -> None:
        barrier.wait()
        with session_scope(session_factory) as session:
            results.append(
                submit_correction(session, blobs, settings, model_id, request, "same-key")
            )

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == 4
    assert len({result.accepted.job_id for result in results}) == 1
    assert sorted(result.replayed for result in results) == [False, True, True, True]
    with session_factory() as session:
        for table in (Job, Correction, OutboxMessage):
            assert session.scalar(select(func.count()).select_from(table)) == 1
