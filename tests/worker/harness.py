"""A service + worker stack without HTTP, for the worker tests (and the fault tests' setup).

``Stack`` holds a migrated database (SQLite or a fresh PostgreSQL database), the blob store,
a registered tiny model and a worker context; ``submit`` records a correction exactly as the
API does (``submit_correction``: examples, held-out split, job, outbox message).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import select

from service.corrections.schemas import CorrectionInput, CorrectionOptions, SubmittedExample
from service.corrections.service import submit_correction
from service.db.migrate import upgrade_head
from service.db.session import session_scope
from service.db.tables import Deployment, Job, JobEvent, OutboxMessage, Version
from service.images import ImageLimits
from service.registration.service import register_model
from service.registry.service import create_eval_set
from service.runtime import Runtime, build_runtime
from service.settings import Settings
from service.versions import repository as versions_repository
from standin.datasets import load_dataset
from workers.pipeline.context import WorkerContext, build_context
from workers.pipeline.settings import WorkerSettings

# Sandal vs ankle boot: the untrained tiny model confuses them; a few steps separate them.
CLASSES = (5, 9)
# Pipeline mechanics, not anchoring (tests/worker/test_replay.py and the engine's anchored
# tests cover that): no anchor terms, so the tiny model learns its few examples quickly.
FAST = {
    "learning_rate": 1e-3,
    "epochs": 15,
    "batch_size": 8,
    "max_steps": None,
    "anchor_distillation": 0.0,
    "anchor_rehearsal": 0.0,
}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Shots:
    """Real Fashion-MNIST images of two classes: train shots and held-out shots."""

    train: list[tuple[Image.Image, str]]
    held_out: list[tuple[Image.Image, str]]
    control: list[tuple[Image.Image, str]]


def fashion_shots(per_class: int = 6, held_out_per_class: int = 6) -> Shots:
    """Train shots from the train split; held-out and control shots from the test split."""
    train = load_dataset("fashion-mnist", "train", limit_per_class=per_class, seed=0)
    test = load_dataset("fashion-mnist", "test", limit_per_class=held_out_per_class, seed=1)
    names = train.class_names

    def pick(data: Any, classes: tuple[int, ...]) -> list[tuple[Image.Image, str]]:
        return [
            (img, names[y]) for img, y in zip(data.images, data.labels, strict=True) if y in classes
        ]

    others = tuple(c for c in range(len(names)) if c not in CLASSES)[:3]
    return Shots(
        train=pick(train, CLASSES), held_out=pick(test, CLASSES), control=pick(test, others)
    )


class Stack:
    """Database + blobs + a registered model + a worker context (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        model_dir: str,
        worker_settings: WorkerSettings,
        activation_policy: str = "always",
    ) -> None:
        self.settings = settings
        settings.ensure_directories()
        upgrade_head(settings.database_url)
        self.runtime: Runtime = build_runtime(settings, with_cache=False)
        self.context: WorkerContext = build_context(settings, worker_settings, worker_id="test:1")
        with session_scope(self.runtime.session_factory) as session:
            model = register_model(
                session,
                settings,
                name="tiny",
                base_path=model_dir,
                actor="test",
                activation_policy=activation_policy,
            )
            self.model_id = model.id

    def close(self) -> None:
        self.context.close()
        self.runtime.close()

    def add_model(self, name: str, model_dir: str, activation_policy: str = "always") -> str:
        with session_scope(self.runtime.session_factory) as session:
            model = register_model(
                session,
                self.settings,
                name=name,
                base_path=model_dir,
                actor="test",
                activation_policy=activation_policy,
            )
            return model.id

    def add_eval_set(self, name: str, kind: str, shots: list[tuple[Image.Image, str]]) -> None:
        with session_scope(self.runtime.session_factory) as session:
            create_eval_set(
                session,
                self.runtime.blobs,
                ImageLimits(self.settings.max_upload_bytes, self.settings.max_image_pixels),
                model_id=self.model_id,
                name=name,
                kind=kind,
                images=[png(image) for image, _ in shots],
                labels=[label for _, label in shots],
                max_label_length=self.settings.max_label_length,
                max_examples=self.settings.max_examples_per_batch,
            )

    def submit(
        self,
        shots: list[tuple[Image.Image, str]],
        eval_shots: list[tuple[Image.Image, str]] = (),  # type: ignore[assignment]
        *,
        model_id: str | None = None,
        method: str = "lorsu",
        hyperparameters: dict[str, Any] | None = None,
        seed: int = 0,
        target_sets: list[str] | None = None,
    ) -> str:
        """Record a correction the way the API does; returns the job id."""
        request = CorrectionInput(
            options=CorrectionOptions(
                method=method,
                hyperparameters=dict(FAST if hyperparameters is None else hyperparameters),
                seed=seed,
                target_sets=target_sets or [],
            ),
            examples=[SubmittedExample(image=png(image), label=label) for image, label in shots],
            eval_examples=[
                SubmittedExample(image=png(image), label=label) for image, label in eval_shots
            ],
        )
        with session_scope(self.runtime.session_factory) as session:
            submission = submit_correction(
                session, self.runtime.blobs, self.settings, model_id or self.model_id, request
            )
            return submission.accepted.job_id

    def job_model_base_path(self, model_id: str | None = None) -> str:
        from service.registry import repository as registry_repository

        with self.runtime.session_factory() as session:
            model = registry_repository.get(session, model_id or self.model_id)
            assert model is not None
            return model.base_path

    # -- reading state -------------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        with self.runtime.session_factory() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job

    def events(self, job_id: str) -> list[JobEvent]:
        with self.runtime.session_factory() as session:
            query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
            return list(session.scalars(query))

    def versions(self, model_id: str | None = None) -> list[Version]:
        with self.runtime.session_factory() as session:
            return versions_repository.list_for_model(session, model_id or self.model_id)

    def active_version_id(self, model_id: str | None = None) -> str | None:
        with self.runtime.session_factory() as session:
            return versions_repository.active_version_id(session, model_id or self.model_id)

    def deployments(self, model_id: str | None = None) -> list[Deployment]:
        with self.runtime.session_factory() as session:
            return versions_repository.list_deployments(session, model_id or self.model_id)

    def pending_outbox(self) -> list[OutboxMessage]:
        with self.runtime.session_factory() as session:
            query = select(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
            return list(session.scalars(query.order_by(OutboxMessage.id)))
