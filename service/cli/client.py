"""The HTTP client of the ``vlmc`` commands: one method per API call, typed results.

Each method returns the API's own response schema, parsed from the body, or raises
``ApiError`` with the code and message of the one error body every status answers with
(``{"error": {"code", "message", "details"?}}``).
"""

from __future__ import annotations

import base64
import io
import json
import mimetypes
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from service.api.openapi import ErrorResponse
from service.auth.schemas import ApiKeyCreated, ApiKeyOut
from service.chat.schemas import ChatCompletion, ChatCompletionChunk
from service.corrections.schemas import CorrectionAccepted
from service.jobs.schemas import JobEventOut, JobOut
from service.registration.schemas import EvalSetOut, ModelDeleted, ModelOut
from service.retention.schemas import GarbageCollectionOut, StorageUsageOut
from service.serving.schemas import ClassifyOut
from service.versions.schemas import DeploymentOut, VersionOut

Record = TypeVar("Record", bound=BaseModel)
# A version as the API takes it wherever it names one: its number, or its id.
VersionRef = int | str


def version_reference(text: str) -> VersionRef:
    """A version typed on the command line: digits are its number (sent as a JSON integer;
    the API checks the range), anything else its id."""
    return int(text) if re.fullmatch(r"-?[0-9]+", text.strip()) else text


# Corrections upload images and wait for the database; classify may load a version first.
DEFAULT_TIMEOUT_S = 120.0


class ApiError(Exception):
    """An error answer of the API: its HTTP status and the error body's code and message."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        """The error a response carries; a body that is not the error body (a proxy's page,
        say) keeps its text as the message, with ``http_<status>`` as the code."""
        try:
            error = ErrorResponse.model_validate_json(response.content).error
        except ValidationError:
            return cls(response.status_code, f"http_{response.status_code}", response.text)
        return cls(response.status_code, error.code, error.message, error.details)


class ServiceClient:
    """The service's API over an ``httpx.Client`` whose base URL and ``Authorization`` header
    are set (``connect`` builds one; any ``httpx.Client``, e.g. a test client, serves)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @classmethod
    def connect(cls, url: str, api_key: str, timeout: float = DEFAULT_TIMEOUT_S) -> ServiceClient:
        """A client of the service at ``url`` authenticated with ``api_key``."""
        return cls(
            httpx.Client(
                base_url=url.rstrip("/"),
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=timeout,
            )
        )

    def close(self) -> None:
        self.http.close()

    # -- models and eval sets ---------------------------------------------------------------
    def list_models(self) -> list[ModelOut]:
        return _records(self.http.get("/v1/models"), ModelOut)

    def delete_model(self, model_id: str) -> ModelDeleted:
        return _record(self.http.delete(f"/v1/models/{model_id}"), ModelDeleted)

    def list_eval_sets(self, model_id: str) -> list[EvalSetOut]:
        return _records(self.http.get(f"/v1/models/{model_id}/eval-sets"), EvalSetOut)

    def delete_eval_set(self, model_id: str, eval_set_id: str) -> None:
        _checked(self.http.delete(f"/v1/models/{model_id}/eval-sets/{eval_set_id}"))

    # -- versions and the active pointer ------------------------------------------------------
    def list_versions(self, model_id: str) -> list[VersionOut]:
        return _records(self.http.get(f"/v1/models/{model_id}/versions"), VersionOut)

    def get_version(self, model_id: str, version: VersionRef) -> VersionOut:
        response = self.http.get(f"/v1/models/{model_id}/versions/{version}")
        return _record(response, VersionOut)

    def activate(self, model_id: str, version: VersionRef, reason: str) -> DeploymentOut:
        body = {"version_id": version, "reason": reason}
        response = self.http.post(f"/v1/models/{model_id}/activate", json=body)
        return _record(response, DeploymentOut)

    def rollback(self, model_id: str, version: VersionRef, reason: str) -> DeploymentOut:
        body = {"version_id": version, "reason": reason}
        response = self.http.post(f"/v1/models/{model_id}/rollback", json=body)
        return _record(response, DeploymentOut)

    def archive_version(self, model_id: str, version: VersionRef) -> VersionOut:
        response = self.http.post(f"/v1/models/{model_id}/versions/{version}/archive")
        return _record(response, VersionOut)

    def list_deployments(self, model_id: str) -> list[DeploymentOut]:
        return _records(self.http.get(f"/v1/models/{model_id}/deployments"), DeploymentOut)

    def download_export(
        self,
        model_id: str,
        version_id: str,
        into: Path,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Download a version's checkpoint archive and unpack it under ``into`` as it
        arrives (nothing held in memory); returns the checkpoint folder. ``progress`` is
        called with the bytes received so far and the total (None when not announced)."""
        url = f"/v1/models/{model_id}/versions/{version_id}/export"
        with self.http.stream("GET", url) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError.of(response)
            length = response.headers.get("content-length")
            reader = _ChunkReader(
                response.iter_bytes(), int(length) if length is not None else None, progress
            )
            stream = io.BufferedReader(reader, buffer_size=1 << 20)
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                roots = set()
                for member in archive:
                    roots.add(Path(member.name).parts[0])
                    if len(roots) > 1 or not (member.isfile() or member.isdir()):
                        raise ValueError(f"unexpected member in the export: {member.name}")
                    # "data": nothing outside ``into``, no links, no special files or modes.
                    archive.extract(member, into, filter="data")
        if len(roots) != 1:
            raise ValueError("the export archive is empty")
        return into / roots.pop()

    # -- inference ------------------------------------------------------------------------------
    def classify(
        self,
        model_id: str,
        images: Sequence[Path],
        labels: Sequence[str],
        version: VersionRef | None = None,
    ) -> ClassifyOut:
        data: dict[str, Any] = {"labels": list(labels)}
        if version is not None:
            data["version_id"] = str(version)
        files = [("images", (path.name, path.read_bytes())) for path in images]
        response = self.http.post(f"/v1/models/{model_id}/classify", files=files, data=data)
        return _record(response, ClassifyOut)

    def complete_chat(
        self,
        model_name: str,
        image: Path,
        question: str,
        max_tokens: int,
        version: VersionRef | None = None,
    ) -> ChatCompletion:
        body = _chat_body(model_name, image, question, max_tokens, version, stream=False)
        return _record(self.http.post("/v1/chat/completions", json=body), ChatCompletion)

    def stream_chat(
        self,
        model_name: str,
        image: Path,
        question: str,
        max_tokens: int,
        version: VersionRef | None = None,
    ) -> Iterator[ChatCompletionChunk]:
        """The answer's chunks as the server sends them (server-sent events)."""
        body = _chat_body(model_name, image, question, max_tokens, version, stream=True)
        with self.http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError.of(response)
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield ChatCompletionChunk.model_validate_json(line.removeprefix("data: "))

    # -- corrections and jobs -------------------------------------------------------------------
    def submit_correction(
        self,
        model_id: str,
        examples: Sequence[tuple[Path, str]],
        method: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        seed: int | None = None,
        target_sets: Sequence[str] = (),
    ) -> CorrectionAccepted:
        """Labelled images (multipart); options left ``None`` take the service's defaults."""
        data: dict[str, Any] = {"labels": [label for _path, label in examples]}
        if target_sets:
            data["target_sets"] = list(target_sets)
        if method is not None:
            data["method"] = method
        if hyperparameters is not None:
            data["hyperparameters"] = json.dumps(hyperparameters)
        if seed is not None:
            data["seed"] = str(seed)
        files = [("images", (path.name, path.read_bytes())) for path, _label in examples]
        response = self.http.post(f"/v1/models/{model_id}/corrections", files=files, data=data)
        return _record(response, CorrectionAccepted)

    def get_job(self, job_id: str) -> JobOut:
        return _record(self.http.get(f"/v1/jobs/{job_id}"), JobOut)

    def job_events(
        self, job_id: str, after: int = 0, retries: int = 5, retry_wait_s: float = 1.0
    ) -> Iterator[JobEventOut]:
        """The job's events after ``after`` as the server writes them (server-sent events),
        until its terminal status event. A dropped connection is resumed with
        ``Last-Event-ID`` (after ``retry_wait_s``; ``retries`` drops in a row at most)."""
        failures = 0
        while True:
            try:
                for event in self._event_stream(job_id, after):
                    failures = 0
                    after = event.id
                    yield event
                    if event.ends_job():
                        return
                return  # the server ended the stream: the job had ended before ``after``
            except httpx.TransportError:
                failures += 1
                if failures > retries:
                    raise
                time.sleep(retry_wait_s)

    def _event_stream(self, job_id: str, after: int) -> Iterator[JobEventOut]:
        headers = {"Last-Event-ID": str(after), "Accept": "text/event-stream"}
        with self.http.stream("GET", f"/v1/jobs/{job_id}/events/stream", headers=headers) as r:
            if r.status_code >= 400:
                r.read()
                raise ApiError.of(r)
            data: list[str] = []
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data.append(line.removeprefix("data:").removeprefix(" "))
                elif not line and data:  # a blank line ends an event (comments have no data)
                    yield JobEventOut.model_validate_json("\n".join(data))
                    data = []

    def list_jobs(self, model_id: str, limit: int) -> list[JobOut]:
        response = self.http.get(f"/v1/models/{model_id}/jobs", params={"limit": limit})
        return _records(response, JobOut)

    # -- storage ----------------------------------------------------------------------------
    def storage_usage(self) -> StorageUsageOut:
        return _record(self.http.get("/v1/storage"), StorageUsageOut)

    def collect_garbage(self, dry_run: bool) -> GarbageCollectionOut:
        response = self.http.post("/v1/storage/gc", json={"dry_run": dry_run})
        return _record(response, GarbageCollectionOut)

    # -- API keys ---------------------------------------------------------------------------
    def create_api_key(
        self,
        name: str,
        scopes: Sequence[str],
        model_ids: Sequence[str] | None = None,
        expires_at: datetime | None = None,
    ) -> ApiKeyCreated:
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if model_ids:
            body["model_ids"] = list(model_ids)
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        return _record(self.http.post("/v1/api-keys", json=body), ApiKeyCreated)

    def list_api_keys(self) -> list[ApiKeyOut]:
        return _records(self.http.get("/v1/api-keys"), ApiKeyOut)

    def revoke_api_key(self, key_id: str) -> ApiKeyOut:
        return _record(self.http.delete(f"/v1/api-keys/{key_id}"), ApiKeyOut)


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (what a streamed tar reads; no chunk
    is copied more than once), reporting the bytes read."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        total: int | None,
        progress: Callable[[int, int | None], None] | None,
    ) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._read = 0
        self._total = total
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self._read += count
        if self._progress is not None:
            self._progress(self._read, self._total)
        return count


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise ApiError.of(response)
    return response


def _record(response: httpx.Response, schema: type[Record]) -> Record:
    return schema.model_validate_json(_checked(response).content)


def _records(response: httpx.Response, schema: type[Record]) -> list[Record]:
    return TypeAdapter(list[schema]).validate_json(_checked(response).content)  # type: ignore[valid-type]


def _chat_body(
    model_name: str,
    image: Path,
    question: str,
    max_tokens: int,
    version: VersionRef | None,
    stream: bool,
) -> dict[str, Any]:
    """One user turn: the image as a data URL, then the question."""
    mime = mimetypes.guess_type(image.name)[0] or "image/png"
    picture = f"data:{mime};base64," + base64.b64encode(image.read_bytes()).decode()
    body: dict[str, Any] = {
        "model": model_name,
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": picture}},
                    {"type": "text", "text": question},
                ],
            }
        ],
    }
    if version is not None:
        body["version_id"] = version
    return body
