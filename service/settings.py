"""All configuration of the service in one pydantic-settings class (env prefix ``VLMC_``).

Every path default hangs off ``data_dir`` so the embedded default needs one directory only:
the SQLite database, the serverless broker, blobs and the base model all live under it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.db.values import ActivationPolicy
from service.validation import MAX_ITEMS_PER_REQUEST, MAX_LABEL_LENGTH

# The embedded default's models: the stand-in dual encoder and the stand-in VLM paired with it.
DEFAULT_MODEL_NAME = "standin-base"
DEFAULT_VLM_NAME = "standin-vlm"


class Settings(BaseSettings):
    """Service settings; every field can be set as ``VLMC_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="VLMC_", env_file=None, extra="ignore")

    data_dir: Path = Path("./var")
    # Empty means "derive from data_dir" (filled in by the validator below).
    database_url: str = ""
    broker_url: str = ""
    blob_dir: Path | None = None
    base_model_path: Path | None = None
    # Directories ``POST /v1/models`` may register checkpoints from (``base_path`` must resolve
    # inside one). VLMC_MODEL_ROOTS is a list separated like PATH (``:`` on Linux). Empty means
    # ``<data_dir>/models`` and the directory holding ``base_model_path``.
    model_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    default_model_name: str = DEFAULT_MODEL_NAME
    default_vlm_name: str = DEFAULT_VLM_NAME
    device: str = "cpu"

    # Upload limits (request-time validation, see service/images.py).
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_request_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    # At most PIL's own decompression-bomb threshold, so this is the one pixel limit in force.
    max_image_pixels: int = Field(default=40_000_000, gt=0, le=Image.MAX_IMAGE_PIXELS or 2**62)
    max_examples_per_batch: int = Field(default=256, gt=0, le=MAX_ITEMS_PER_REQUEST)
    max_labels_per_request: int = Field(default=1000, gt=0, le=MAX_ITEMS_PER_REQUEST)
    max_label_length: int = Field(default=MAX_LABEL_LENGTH, gt=0, le=MAX_LABEL_LENGTH)

    # Activation gate default (points of accuracy) for models that do not set their own.
    activation_threshold: float = Field(default=1.0, ge=0)
    default_activation_policy: ActivationPolicy = ActivationPolicy.AUTO
    default_held_out_fraction: float = Field(default=0.2, ge=0, lt=1)

    # Seeds an admin key at start; ``admin_api_key`` reads VLMC_ADMIN_API_KEY, and the bare
    # ADMIN_API_KEY (the name the README gives) is honoured too.
    admin_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("admin_api_key", "VLMC_ADMIN_API_KEY", "ADMIN_API_KEY"),
    )

    # Workers: a heartbeat older than this means "no live worker" in /readyz, and the sweep
    # then recovers the jobs whose lease that worker holds (it died).
    worker_heartbeat_timeout_s: float = Field(default=60.0, gt=0)
    readyz_requires_worker: bool = False
    # Outbox dispatcher loop in the API process (seconds between sweeps).
    outbox_interval_s: float = Field(default=2.0, gt=0)
    # Version storage (service/versions/state_chain.py): the worker stores a version's full
    # image-encoder state beside its delta whenever loading it would otherwise replay this many
    # deltas (or more delta bytes than the full state), so every load replays fewer.
    checkpoint_every: int = Field(default=10, ge=1)
    # Blob garbage collection (service/retention/collection.py) never deletes a blob written
    # (or re-stored) less than this long ago: it must exceed the longest time between storing
    # a blob and committing the row that refers to it (seconds; a job's store step is seconds).
    blob_gc_grace_s: float = Field(default=3600.0, ge=0)
    # Serving cache: how many (model, version) encoders stay loaded; text embeddings cached
    # per model (every version of a model shares them: updates never change the text tower).
    serving_cache_size: int = Field(default=4, ge=1)
    text_embedding_cache_size: int = Field(default=4096, ge=1)
    # Dynamic batching (service/serving/batching.py): images (or chat prompts) per forward
    # pass, and how long a batch may wait for requests that are on their way (never when
    # none is).
    max_batch_size: int = Field(default=64, ge=1)
    max_batch_wait_s: float = Field(default=0.002, ge=0)
    # Request path (per API process): API keys and model rows are served from memory for this
    # long after they were read. A key revoked through another replica stops working here
    # within this many seconds (at once on the replica that revoked it); 0: read every time.
    lookup_cache_ttl_s: float = Field(default=5.0, ge=0)
    # Active pointers (service/serving/pointer_watch.py): every API process re-reads all of
    # them this often, whatever it was told. Empty: 0.25 s in the embedded default (where a
    # worker's gate activation reaches the API no other way; one small query), 5 s when the
    # database is PostgreSQL (LISTEN/NOTIFY) or the broker is Redis (pub/sub), which announce
    # each move.
    pointer_recheck_s: float | None = Field(default=None, gt=0)
    # Chat completions (generative models): images per request and completion tokens.
    max_chat_images: int = Field(default=1, ge=1)
    chat_max_tokens: int = Field(default=256, ge=1)
    # Admission control (service/serving/admission.py): inference requests in progress per
    # API process (their forward passes are batched), and how long a request may wait for a
    # slot before it is answered 503 server_busy.
    max_concurrent_inference: int = Field(default=64, ge=1)
    inference_wait_s: float = Field(default=1.0, ge=0)
    # Load shedding (service/api/load_shedding.py): requests in flight per API process before
    # new ones are answered 503 server_overloaded (health and metrics are exempt). About
    # capacity x acceptable latency: with batched classify, several hundred req/s x 0.3 s on
    # 2 cores (bench/results/serving.md; before batching ~100 req/s, bench/results/load.md).
    max_in_flight_requests: int = Field(default=128, ge=1)

    @field_validator("model_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [Path(part) for part in value.split(os.pathsep) if part.strip()]
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        data = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{data / 'vlmc.sqlite'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{data / 'broker.sqlite'}"
        if self.blob_dir is None:
            self.blob_dir = data / "blobs"
        if self.base_model_path is None:
            self.base_model_path = data / "models" / "standin-base"
        if not self.model_roots:
            self.model_roots = [data / "models", self.base_model_path.resolve().parent]
        self.model_roots = list(
            dict.fromkeys(root.expanduser().resolve() for root in self.model_roots)
        )
        if self.pointer_recheck_s is None:
            self.pointer_recheck_s = 0.25 if self.pointer_channel == "in_process" else 5.0
        return self

    @property
    def pointer_channel(self) -> Literal["postgres", "redis", "in_process"]:
        """How pointer moves reach the other processes: PostgreSQL LISTEN/NOTIFY when the
        database is PostgreSQL, else Redis pub/sub when the broker is Redis, else only within
        the process that moved it (other processes see it at their next re-check)."""
        if self.database_url.startswith("postgresql"):
            return "postgres"
        if self.broker_url.startswith(("redis://", "rediss://")):
            return "redis"
        return "in_process"

    @property
    def pointer_recheck_interval(self) -> float:
        """Seconds between full re-reads of the active pointers (always set after validation)."""
        assert self.pointer_recheck_s is not None
        return self.pointer_recheck_s

    @property
    def blobs_path(self) -> Path:
        """The blob directory (always set after validation)."""
        assert self.blob_dir is not None
        return self.blob_dir

    @property
    def base_model_dir(self) -> Path:
        """The stand-in base model directory (always set after validation)."""
        assert self.base_model_path is not None
        return self.base_model_path

    @property
    def vlm_model_dir(self) -> Path:
        """The stand-in VLM's directory: beside the base model (so inside a model root)."""
        return self.base_model_dir.parent / DEFAULT_VLM_NAME

    def ensure_directories(self) -> None:
        """Create the data and blob directories (idempotent)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.blobs_path.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings read from the environment (cached)."""
    return Settings()
