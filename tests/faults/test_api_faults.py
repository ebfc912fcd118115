"""API-side faults over HTTP: two replicas moving the active pointer at once, and a database
outage (503 with a code) that heals without restarting the API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from bench.load.processes import wait_until
from service.runtime import build_runtime
from service.settings import Settings
from tests.api.versions_helpers import train_version
from tests.conftest import ADMIN_KEY, create_postgres_database, drop_postgres_database
from tests.faults.cluster import TcpProxy, api_process, register
from tests.faults.conftest import Cluster
from tests.worker.harness import Shots

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_two_replicas_moving_the_pointer_at_once_keep_one_active_and_a_complete_history(
    cluster: Cluster, shots: Shots
) -> None:
    model_id = register(cluster.api, "replicas", cluster.model_dir)
    runtime = build_runtime(cluster.settings, with_cache=False)
    try:
        images = [image for image, _ in shots.train]
        labels = [label for _, label in shots.train]
        for _ in range(3):
            train_version(runtime, model_id, images, labels)
    finally:
        runtime.close()
    versions = [v["id"] for v in cluster.api.get(f"/v1/models/{model_id}/versions").json()]
    assert len(versions) == 4

    with api_process(cluster.settings, cluster.logs / "api-2.log") as second:
        replicas = [cluster.api, second]

        def move(index: int) -> int:
            replica = replicas[index % 2]
            action = "rollback" if index % 3 == 0 else "activate"
            body = {"version_id": versions[index % 4], "reason": f"request {index}"}
            return replica.post(f"/v1/models/{model_id}/{action}", json=body).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(move, range(48)))
        histories = [r.get(f"/v1/models/{model_id}/deployments").json() for r in replicas]

    assert set(codes) <= {200, 409} and codes.count(200) > 0
    assert histories[0] == histories[1]
    history = histories[0]
    assert len(history) == 1 + codes.count(200)  # every successful move, and only those
    for previous, current in pairwise(history):
        assert current["from_version_id"] == previous["to_version_id"] != current["to_version_id"]
    listed = cluster.api.get(f"/v1/models/{model_id}/versions").json()
    assert [v["id"] for v in listed if v["active"]] == [history[-1]["to_version_id"]]


def test_a_database_outage_answers_503_with_a_code_and_heals_without_a_restart(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    name, url = create_postgres_database()
    proxy = TcpProxy(target_port=5432)
    proxy.start()
    # The API reaches PostgreSQL only through the proxy: closing it is the outage.
    proxied = url.replace(":5432/", f":{proxy.port}/")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=proxied,
        admin_api_key=ADMIN_KEY,
        outbox_interval_s=0.5,
        model_roots=[tiny_model_dir.parent],
    )
    try:
        with api_process(settings, tmp_path / "api.log") as api:
            register(api, "outage", tiny_model_dir)
            assert api.get("/v1/models").status_code == 200
            proxy.stop()
            down = api.get("/v1/models")
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "database_unavailable"
            ready = api.get("/readyz")
            assert ready.status_code == 503 and not ready.json()["checks"]["database"]["ok"]
            proxy.start()
            wait_until(lambda: _lists_models(api), timeout=30, what="the API to recover")
            assert api.get("/readyz").json()["checks"]["database"]["ok"]
    finally:
        proxy.stop()
        drop_postgres_database(name)


def _lists_models(api: httpx.Client) -> bool:
    response = api.get("/v1/models")
    return response.status_code == 200 and [m["name"] for m in response.json()] == ["outage"]
