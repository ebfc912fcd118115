"""Knobs only the worker reads (env prefix ``VLMC_WORKER_``); shared settings stay in
``service.settings.Settings`` (database, broker, blobs, device)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.jobs.constants import DEFAULT_LEASE_SECONDS


class WorkerSettings(BaseSettings):
    """Every field can be set as ``VLMC_WORKER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="VLMC_WORKER_", env_file=None, extra="ignore")

    # A claimed job's lease; the process running the job renews it every third of this
    # through every phase, so it only has to outlast a stall of that process.
    lease_seconds: int = Field(default=DEFAULT_LEASE_SECONDS, ge=1)
    # Heartbeat period (must stay well under Settings.worker_heartbeat_timeout_s, after which
    # the worker counts as dead and its jobs are swept) and the period of that sweep.
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    # Redis puts an unacknowledged message back in the queue after this long (acks_late): the
    # delivery a killed worker held comes back then. The job's lease, not the broker, decides
    # who runs a job, so a running job's message coming back is dropped by whichever idle
    # worker takes it (a few milliseconds); a lost job is sent again by the sweep long before.
    # This only bounds how long a dead worker's deliveries linger in Redis.
    visibility_timeout_s: int = Field(default=1800, ge=60)
    # A queued job that may run and that no worker claimed is sent to the broker again (its
    # message was lost): after ``unclaimed_resend_s`` when a live worker has been idle all
    # that time, after ``stale_queued_s`` otherwise (service/jobs/sweeps.py).
    unclaimed_resend_s: float = Field(default=10.0, gt=0)
    stale_queued_s: float = Field(default=300.0, gt=0)
    # A delivery that met a database outage is re-queued after this delay.
    database_retry_s: float = Field(default=10.0, gt=0)
    # How often the training loop asks the database about a cancel request.
    cancel_poll_s: float = Field(default=0.5, ge=0)
    # Progress events are written at most this often (the last step is always written).
    progress_interval_s: float = Field(default=1.0, ge=0)
    # Prometheus exporter of the worker process (0 = off).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Materialised version states kept in memory per worker process.
    state_cache_size: int = Field(default=2, ge=1)
    # "json" for structured logs (one object per line), "text" for humans.
    log_format: str = "json"
    # Autocast of an update's training forward/backward passes (workers/engine/precision.py):
    # "auto" = bfloat16 on a CUDA device that supports it (VLMC_DEVICE=cuda), float32 on CPU;
    # "bf16" asks for it on CUDA; "off" trains in float32 everywhere. Parameters, optimizer
    # state and the merged weights (what a version stores) are float32 in every mode.
    mixed_precision: Literal["auto", "bf16", "off"] = "auto"


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    """The worker settings read from the environment (cached)."""
    return WorkerSettings()
