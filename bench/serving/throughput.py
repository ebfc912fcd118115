"""Classify throughput of the service over HTTP against the bare model, in one run.

The bare model does a request's work with no service around it: preprocessing, the image
forward pass and the probabilities against the three candidate captions, at batch 1, 4, 16 and
64 (images/s). Like the service, which keeps caption embeddings in a per-model text cache
(``service/serving/text_embeddings.py``), it runs the captions through the text tower once,
before the timed calls: both sides are limited by preprocessing and the image forward pass,
not by re-encoding the same three captions. The service (one uvicorn process on the embedded
default, the stand-in base model registered) answers closed-loop clients - each sends one
image with three labels again as soon as its previous answer arrives - at 1, 4, 16 and 64
clients (requests/s, p50, p99, failures). Client, server and bare model share this machine's
cores; the client is the cheap asyncio one of ``bench/load/traffic.py``. The bare model gets
every core (``--threads``, default 2 torch threads); the API process runs its forward passes on
``--server-threads`` (default 1: on 2 cores, one thread for the model and one core left for
request handling measured best, e.g. 478 against 423 req/s with 2 threads at 16 clients).

    python -m bench.serving.throughput [--seconds 8] [--threads 2] [--server-threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from bench.load.processes import running_api
from bench.load.traffic import Request, png_base64, run_clients
from catalogue.captions import captions_for_labels
from service.modelling.dual_encoder import DualEncoder
from service.modelling.inference import probabilities_from_embeddings
from service.modelling.loading import load_dual_encoder
from service.settings import Settings
from standin.basemodel.release import materialise_release
from standin.datasets import load_dataset

ADMIN_KEY = "vlmc_bench_admin_key_0123456789"
CONCURRENCY = (1, 4, 16, 64)
LABELS = ["cat", "dog", "cow"]


def sample_image() -> Image.Image:
    """A real emoji rendering (Google style), the kind of image the stand-in model knows."""
    data = load_dataset("emoji-google", "test", limit_per_class=1, seed=0)
    return data.images[0]


def bare_model_rates(
    encoder: DualEncoder, image: Image.Image, batch_sizes: tuple[int, ...], seconds: float
) -> list[dict[str, Any]]:
    """Images/s of the bare model classifying ``batch`` copies of ``image`` at a time, against
    the captions' text embeddings computed once beforehand (as the service caches them)."""
    text = encoder.encode_texts(captions_for_labels(LABELS))

    def classify(images: list[Image.Image]) -> list[list[float]]:
        embeddings = encoder.encode_images(images)
        return probabilities_from_embeddings(embeddings, text, encoder.logit_scale).tolist()

    rows = []
    for batch in batch_sizes:
        images = [image] * batch
        classify(images)  # warm-up
        latencies = []
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            started = time.perf_counter()
            classify(images)
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        total = sum(latencies)
        rows.append(
            {
                "batch": batch,
                "images_per_s": round(batch * len(latencies) / total, 1),
                "batch_p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
                "batches": len(latencies),
            }
        )
    return rows


@contextmanager
def running_service(
    root: Path, model_dir: Path, threads: int, processes: int = 1
) -> Iterator[tuple[str, str]]:
    """API processes on the embedded default with the stand-in model registered:
    ``(base_url, model_id)``."""
    settings = Settings(data_dir=root / "data", admin_api_key=ADMIN_KEY, model_roots=[root])
    with running_api(
        settings, root / "api.log", workers=processes, OMP_NUM_THREADS=str(threads)
    ) as client:
        response = client.post("/v1/models", json={"name": "standin", "base_path": str(model_dir)})
        response.raise_for_status()
        yield str(client.base_url), str(response.json()["id"])


def service_rates(
    url: str, model_id: str, image: Image.Image, concurrency: tuple[int, ...], seconds: float
) -> list[dict[str, Any]]:
    body = {"images": [png_base64(image)], "labels": LABELS}
    request = Request("classify", "POST", f"/v1/models/{model_id}/classify", body)
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    run_clients(url, auth, request, clients=4, duration=2.0)  # warm-up: loads the version
    return [run_clients(url, auth, request, clients, seconds) for clients in concurrency]


def measure(
    seconds: float = 8.0,
    threads: int = 2,
    concurrency: tuple[int, ...] = CONCURRENCY,
    server_threads: int = 1,
) -> dict[str, Any]:
    """The bare-model and service rows of one run, and the ratios the targets are about."""
    torch.set_num_threads(threads)
    image = sample_image()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as directory:
        root = Path(directory)
        model_dir = materialise_release(root / "standin")
        bare = bare_model_rates(load_dual_encoder(model_dir), image, concurrency, seconds)
        with running_service(root, model_dir, server_threads) as (url, model_id):
            service = service_rates(url, model_id, image, concurrency, seconds)
    bare_by_batch = {row["batch"]: row["images_per_s"] for row in bare}
    for row in service:
        row["x_bare_same_batch"] = round(row["requests_per_s"] / bare_by_batch[row["clients"]], 3)
    return {
        "threads": threads,
        "server_threads": server_threads,
        "seconds": seconds,
        "bare": bare,
        "service": service,
    }


def markdown(result: dict[str, Any]) -> str:
    bare = {row["batch"]: row for row in result["bare"]}
    lines = [
        "| clients / batch | service req/s | p50 ms | p99 ms | failed | bare images/s "
        "| bare batch p50 ms | service x bare |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["service"]:
        reference = bare[row["clients"]]
        lines.append(
            f"| {row['clients']} | {row['requests_per_s']} | {row['p50_ms']} | {row['p99_ms']} "
            f"| {row['errors']} | {reference['images_per_s']} | {reference['batch_p50_ms']} "
            f"| {row['x_bare_same_batch']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per row")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, bare model")
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads, API")
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.threads, server_threads=args.server_threads)
    print(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
