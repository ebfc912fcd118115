"""Dynamic batching and the shared text tower: concurrent requests share forward passes, answer
exactly what they would answer alone, and loaded versions share one text tower per model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from service.modelling.checkpoints import load_checkpoint
from service.modelling.inference import classify
from service.observability import INFERENCE_BATCH_SIZE
from service.runtime import Runtime
from service.serving.batching import Batcher
from tests.api.versions_helpers import train_version
from tests.conftest import to_png


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _batches_run() -> tuple[float, float]:
    """(batches, items) observed by the batch-size histogram so far."""
    samples = {s.name: s.value for s in INFERENCE_BATCH_SIZE.collect()[0].samples}
    return samples["vlmc_inference_batch_items_count"], samples["vlmc_inference_batch_items_sum"]


# -- the batcher ---------------------------------------------------------------------------
def test_submissions_waiting_behind_a_batch_run_together_and_get_their_own_rows() -> None:
    batcher = Batcher(max_batch_items=8, max_wait_s=0.0)
    calls: list[list[int]] = []
    first_started, release = threading.Event(), threading.Event()

    def double(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            first_started.set()
            release.wait(10)
        return [2 * item for item in items]

    try:
        first = batcher.submit("k", double, [100])
        assert first_started.wait(10)
        # While the first batch runs, five requests queue up: they run as one batch.
        waiting = [batcher.submit("k", double, [i, i + 10]) for i in range(3)]
        waiting += [batcher.submit("k", double, [50 + i]) for i in range(2)]
        release.set()
        assert first.result(10) == [200]
        assert [future.result(10) for future in waiting] == [
            [0, 20],
            [2, 22],
            [4, 24],
            [100],
            [102],
        ]
        assert calls == [[100], [0, 10, 1, 11, 2, 12, 50, 51]]
    finally:
        release.set()
        batcher.close()


def test_batches_respect_keys_and_the_maximum_size() -> None:
    batcher = Batcher(max_batch_items=3, max_wait_s=0.0)
    calls: list[tuple[str, list[int]]] = []
    running, gate = threading.Event(), threading.Event()

    def tagged(tag: str) -> Any:
        def run(items: list[int]) -> list[int]:
            running.set()
            gate.wait(10)
            calls.append((tag, list(items)))
            return items

        return run

    try:
        blocker = batcher.submit("b", tagged("b"), [0])
        assert running.wait(10)  # the batching thread is inside the blocker's batch
        futures = [batcher.submit("a", tagged("a"), [i]) for i in range(4)]
        futures.append(batcher.submit("b", tagged("b"), [9]))
        gate.set()
        assert [f.result(10) for f in futures] == [[0], [1], [2], [3], [9]]
        blocker.result(10)
        assert calls == [("b", [0]), ("a", [0, 1, 2]), ("a", [3]), ("b", [9])]
    finally:
        gate.set()
        batcher.close()


def test_a_failing_batch_fails_each_of_its_requests_and_the_batcher_goes_on() -> None:
    batcher = Batcher(max_batch_items=8, max_wait_s=0.0)

    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("out of memory")

    try:
        with pytest.raises(RuntimeError, match="out of memory"):
            batcher.run("k", broken, [1, 2])
        assert batcher.run("k", lambda items: [i + 1 for i in items], [1, 2]) == [2, 3]
    finally:
        batcher.close()


def test_a_lone_request_does_not_wait_for_company() -> None:
    batcher = Batcher(max_batch_items=64, max_wait_s=5.0)
    try:
        started = time.monotonic()
        assert batcher.run("k", lambda items: items, [1]) == [1]
        # Nothing else was announced (expect), so the 5 s wait never applies.
        assert time.monotonic() - started < 2.0
    finally:
        batcher.close()


class _FormingBatcher(Batcher):
    """A batcher that tells when its thread, forming a batch, waits for announced requests:
    it counts the batch's items then, and only then."""

    def __init__(self, max_batch_items: int, max_wait_s: float) -> None:
        self.waiting_for_company = threading.Event()
        super().__init__(max_batch_items, max_wait_s)

    def _batchable_items(self) -> int:
        self.waiting_for_company.set()
        return super()._batchable_items()


def test_an_announced_request_joins_the_batch_being_formed() -> None:
    batcher = _FormingBatcher(max_batch_items=64, max_wait_s=60.0)
    calls: list[list[int]] = []

    def record(items: list[int]) -> list[int]:
        calls.append(list(items))
        return items

    try:
        with batcher.expect():
            first = batcher.submit("k", record, [1])
            # The batching thread has the first request and waits, while the announced one
            # is still decoding its images.
            assert batcher.waiting_for_company.wait(10)
            assert not first.done()
            second = batcher.submit("k", record, [2])
        assert first.result(10) == [1] and second.result(10) == [2]
        assert calls == [[1, 2]]
    finally:
        batcher.close()


# -- through the API -----------------------------------------------------------------------
def test_concurrent_classify_and_embed_requests_answer_what_they_answer_alone(
    client: TestClient, model: dict[str, Any], fashion: Any, api_model_dir: Path
) -> None:
    labels = fashion.class_names
    images = fashion.images[:24]
    reference = load_checkpoint(api_model_dir, None).encoder
    expected = classify(reference, images, labels)
    expected_embeddings = reference.encode_images(images).tolist()
    batches_before, items_before = _batches_run()

    def classify_one(index: int) -> list[float]:
        response = client.post(
            f"/v1/models/{model['id']}/classify",
            files=[("images", ("i.png", to_png(images[index]), "image/png"))],
            data={"labels": labels},
        )
        assert response.status_code == 200, response.text
        probabilities = response.json()["predictions"][0]["probabilities"]
        return [probabilities[label] for label in labels]

    def embed_one(index: int) -> list[float]:
        response = client.post(
            f"/v1/models/{model['id']}/embed",
            files=[("images", ("i.png", to_png(images[index]), "image/png"))],
        )
        assert response.status_code == 200, response.text
        return list(response.json()["image_embeddings"][0])

    with ThreadPoolExecutor(max_workers=12) as pool:
        got = list(pool.map(classify_one, range(len(images))))
        got_embeddings = list(pool.map(embed_one, range(len(images))))

    torch.testing.assert_close(torch.tensor(got), torch.tensor(expected), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        torch.tensor(got_embeddings), torch.tensor(expected_embeddings), atol=1e-5, rtol=1e-4
    )
    batches, items = _batches_run()
    assert items - items_before == 2 * len(images)  # every image went through the batcher
    # Twelve clients at once: forward passes were shared (fewer batches than images).
    assert batches - batches_before < 2 * len(images)


def test_versions_share_one_text_tower_and_their_text_embeddings(
    client: TestClient, model: dict[str, Any], fashion: Any
) -> None:
    runtime = _runtime(client)
    labels = [fashion.class_names[label] for label in fashion.labels]
    version = train_version(runtime, model["id"], fashion.images, labels)
    base_id = model["active_version_id"]
    for version_id in (base_id, version.id):
        response = client.post(
            f"/v1/models/{model['id']}/classify",
            files=[("images", ("i.png", to_png(fashion.images[0]), "image/png"))],
            data={"labels": fashion.class_names, "version_id": version_id},
        )
        assert response.status_code == 200, response.text
    cache = runtime.cache
    assert cache is not None
    first, second = cache.loaded(model["id"], base_id), cache.loaded(model["id"], version.id)
    assert first is not None and second is not None
    assert first.texts is second.texts and len(first.texts) == len(fashion.class_names)
    one, two = first.encoder.model, second.encoder.model
    assert one.text_model is two.text_model and one.text_projection is two.text_projection
    # The image encoders are separate tensors holding different weights.
    for (name, a), (_, b) in zip(
        one.vision_model.named_parameters(), two.vision_model.named_parameters(), strict=True
    ):
        assert a.data_ptr() != b.data_ptr(), name
    assert any(
        not torch.equal(a, b)
        for a, b in zip(one.vision_model.parameters(), two.vision_model.parameters(), strict=True)
    )
