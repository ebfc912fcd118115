"""The OpenAPI document is the contract: requests generated from it (schemathesis), sent over
real HTTP to the app under uvicorn, get no 5xx, only documented status codes, and bodies,
headers and media types that match the document.

Bounded and deterministic: Hypothesis runs derandomized (a fixed seed per test) with a fixed
number of examples per operation, and without its example database.

- Stateless: every operation with generated data (positive and negative), once with generated
  path identifiers (mostly 404/422) and once with the identifiers of real resources (the
  registered model, its base version, a queued job), so the handlers behind the checks run.
- Stateful: sequences that follow the document's links (a created model -> read it, list its
  versions, jobs and eval sets; a correction -> its job; a created key -> revoke it).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete

from service.auth.keys import hash_key
from service.db.base import Base
from service.db.session import session_scope
from service.settings import Settings
from tests.api.conftest import LiveServer, serve_app
from tests.conftest import ADMIN_KEY, to_png

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
# The directory name a generated POST /v1/models registers (relative to the model root).
MODEL_DIR_NAME = "standin-base"
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}
STATEFUL_SCENARIOS = 40


def _settings(max_examples: int) -> Any:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )


class Traffic:
    """What the generated requests got, per operation and status."""

    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.error_codes: Counter[tuple[str, str]] = Counter()

    def record(self, case: Any, response: Any) -> None:
        operation = f"{case.method.upper()} {case.path}"
        self.statuses[(operation, response.status_code)] += 1
        if response.status_code >= 400:
            try:
                self.error_codes[(operation, response.json()["error"]["code"])] += 1
            except (ValueError, KeyError, TypeError):
                self.error_codes[(operation, "?")] += 1

    def summary(self) -> str:
        by_status = Counter[int]()
        for (_operation, status), count in self.statuses.items():
            by_status[status] += count
        codes = Counter[str]()
        for (_operation, code), count in self.error_codes.items():
            codes[code] += count
        return (
            f"statuses {dict(sorted(by_status.items()))}; error codes {dict(codes.most_common())}"
        )

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def seen(self, operation: str, status: int) -> bool:
        return self.statuses[(operation, status)] > 0


@pytest.fixture
def contract_server(
    make_settings: Callable[..., Settings], api_model_dir: Path, tmp_path: Path
) -> Iterator[LiveServer]:
    # Its own model root holding one checkpoint, so generated registrations can succeed.
    root = tmp_path / "models"
    shutil.copytree(api_model_dir, root / MODEL_DIR_NAME)
    with serve_app(make_settings(model_roots=[root])) as server:
        yield server


def _real_resources(server: LiveServer, fashion: Any) -> dict[str, str]:
    session = requests.Session()
    session.headers.update(AUTH)
    model = session.post(
        f"{server.url}/v1/models", json={"name": "tiny", "base_path": MODEL_DIR_NAME}
    )
    assert model.status_code == 201, model.text
    model_id = model.json()["id"]
    files = [
        ("images", (f"{i}.png", to_png(image), "image/png"))
        for i, image in enumerate(fashion.images[:4])
    ]
    labels = [fashion.class_names[label] for label in fashion.labels[:4]]
    job = session.post(
        f"{server.url}/v1/models/{model_id}/corrections", files=files, data={"labels": labels}
    )
    assert job.status_code == 202, job.text
    eval_set = session.post(
        f"{server.url}/v1/models/{model_id}/eval-sets",
        files=files,
        data={"name": "contract", "kind": "control", "labels": labels},
    )
    assert eval_set.status_code == 201, eval_set.text
    return {
        "eval_set_id": eval_set.json()["id"],
        "model_id": model_id,
        "version_id": model.json()["active_version_id"],
        "job_id": job.json()["job_id"],
        "key_id": "00000000-0000-0000-0000-000000000000",
    }


def _reset_database(server: LiveServer) -> None:
    """Every row gone except the admin key (children first)."""
    with session_scope(server.runtime.session_factory) as session:
        for table in reversed(Base.metadata.sorted_tables):
            query = delete(table)
            if table.name == "api_keys":
                query = query.where(table.c.key_sha256 != hash_key(ADMIN_KEY))
            session.execute(query)


def _load_schema(server: LiveServer) -> Any:
    # Fetched over HTTP, as a client would: what /openapi.json serves is what is tested.
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_generated_requests_match_the_contract(contract_server: LiveServer, fashion: Any) -> None:
    server = contract_server
    real = _real_resources(server, fashion)
    schema = _load_schema(server)
    traffic = Traffic()
    http = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        variants: list[dict[str, Any]] = [{}]
        if names:
            variants.append({name: real[name] for name in names})
        for path_parameters in variants:
            for mode, count in EXAMPLES.items():
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=path_parameters or None
                )

                @_settings(count)
                @given(case=strategy)
                def run(case: Any) -> None:
                    response = case.call(base_url=server.url, session=http, headers=AUTH)
                    traffic.record(case, response)
                    case.validate_response(response, checks=CHECKS)

                try:
                    run()
                except Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): positive only.
                    assert mode is GenerationMode.NEGATIVE, operation.label

    print(f"\n{traffic.total} generated requests: {traffic.summary()}")
    assert traffic.total >= 1000
    assert all(status < 500 for _operation, status in traffic.statuses)
    # The real identifiers reached the handlers behind the checks.
    assert traffic.seen("GET /v1/models/{model_id}", 200)
    assert traffic.seen("GET /v1/models/{model_id}/versions/{version_id}", 200)
    assert traffic.seen("GET /v1/jobs/{job_id}/events", 200)
    assert traffic.seen("POST /v1/api-keys", 201)
    for status in (401, 404, 422):
        assert any(seen == status for _operation, seen in traffic.statuses), status


def test_stateful_sequences_follow_the_links(contract_server: LiveServer, fashion: Any) -> None:
    server = contract_server
    _real_resources(server, fashion)
    schema = _load_schema(server)
    traffic = Traffic()
    http = requests.Session()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each scenario starts from the same state, so replaying one (Hypothesis does)
            # gets the same answers: a name taken or a job cancelled by an earlier scenario
            # would otherwise change which links can be followed.
            _reset_database(server)

        def before_call(self, case: Any) -> None:
            # A registration names the one checkpoint of the model root; everything else in
            # the body stays generated.
            if case.method == "POST" and case.path == "/v1/models" and isinstance(case.body, dict):
                case.body["base_path"] = MODEL_DIR_NAME
                # The checkpoint is a dual encoder: a generated pair would only be refused.
                case.body.pop("pair_path", None)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.url, "session": http, "headers": AUTH}

        def after_call(self, response: Any, case: Any) -> None:
            traffic.record(case, response)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Machine.run(settings=_settings(STATEFUL_SCENARIOS))
    print(f"\n{traffic.total} stateful requests: {traffic.summary()}")
    assert all(status < 500 for _operation, status in traffic.statuses)
    # Links were followed from created resources to reads of them.
    assert traffic.seen("POST /v1/models", 201)
    assert traffic.seen("GET /v1/models/{model_id}", 200)
