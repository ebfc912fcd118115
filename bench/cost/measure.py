"""Measure the cost of one update with one method, in a fresh process (clean peak memory).

Run as ``python -m bench.cost.measure --method lorsu --model-dir DIR [--device cuda]``; prints
one JSON line, with the peak memory of every phase (model load, the update's phases, the
snapshot) beside the update's. On CPU peak memory is the process's sampled resident memory;
on CUDA it is ``torch.cuda.max_memory_allocated`` over the update (the engine's
``PeakMemory`` resets the allocator's peak when the update starts and at each phase; the
model's weights are allocated by then and count), and every step's time is taken after
``torch.cuda.synchronize``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
from PIL import Image

from service.modelling.examples import ImageExample
from service.modelling.loading import load_dual_encoder
from service.modelling.snapshots import make_delta, serialize_state
from workers.engine.memory import PeakMemory
from workers.engine.precision import MIXED_PRECISION_MODES
from workers.engine.update import run_update


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def device_facts(device: str) -> dict:
    """What the numbers were measured on (recorded with every run)."""
    import transformers

    facts: dict[str, object] = {
        "device": device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": platform.machine(),
    }
    if device.startswith("cuda"):
        facts.update(
            device_name=torch.cuda.get_device_name(device),
            cuda=torch.version.cuda,
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        )
    return facts


def measure(
    model_dir: str,
    method: str,
    batch_size: int,
    steps: int,
    threads: int,
    seed: int,
    device: str = "cpu",
    mixed_precision: str = "off",
) -> dict:
    torch.set_num_threads(threads)
    torch_device = torch.device(device)
    with PeakMemory(torch_device) as load_memory:
        model = load_dual_encoder(model_dir, device=device)
    size = model.preprocessor.height
    rng = np.random.default_rng(seed)
    labels = [f"class {i % 4}" for i in range(batch_size)]
    examples = [
        ImageExample(
            image=Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8)), label=label
        )
        for label in labels
    ]
    parent = model.image_encoder_state()
    step_times: list[float] = []
    _synchronize(device)
    last = [time.perf_counter()]

    def on_progress(step: int, total: int, loss: float) -> None:
        _synchronize(device)
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now

    # One epoch = one step of batch_size examples; the first step also pays warm-up costs.
    started = time.perf_counter()
    outcome = run_update(
        model,
        examples,
        method=method,
        hyperparameters={"epochs": steps, "batch_size": batch_size, "learning_rate": 1e-5},
        seed=seed,
        device=device,
        on_progress=on_progress,
        mixed_precision=mixed_precision,
    )
    _synchronize(device)
    report = outcome.report
    # What the worker does next: the new snapshot, stored as a delta against the parent.
    with PeakMemory(torch_device) as snapshot_memory:
        child = model.image_encoder_state()
        delta = make_delta(parent, child)
        full_snapshot_bytes = len(serialize_state(child))
    steady = step_times[1:] or step_times
    return {
        "method": method,
        "batch_size": batch_size,
        "steps": report.steps,
        "threads": threads,
        "seconds_per_step": statistics.median(steady),
        "step_seconds": step_times,
        "prepare_seconds": report.total_seconds - report.train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "peak_memory_bytes": report.peak_memory_bytes,
        "peak_memory_source": (
            "cuda_max_memory_allocated" if device.startswith("cuda") else "sampled_rss"
        ),
        # What the caching allocator held from the driver at its peak (CUDA only).
        "peak_reserved_bytes": (
            torch.cuda.max_memory_reserved(device) if device.startswith("cuda") else None
        ),
        "added_memory_bytes": report.added_memory_bytes,
        "mixed_precision": report.mixed_precision,
        "image_encoder_dtypes": sorted({str(t.dtype) for t in child.values()}),
        "trainable_parameters": report.trainable_parameters,
        "optimizer_state_bytes": report.optimizer_state_bytes,
        "delta_bytes": len(delta),
        "full_snapshot_bytes": full_snapshot_bytes,
        # Peak memory within each phase (same measure as peak_memory_bytes): model load, the
        # update's phases (setup, anchors, prepare = importance pass and wrappers, training,
        # merge), and the snapshot (the new state and its delta against the parent).
        "peak_memory_by_phase": {
            "load": load_memory.peak_bytes,
            **report.peak_memory_by_phase,
            "snapshot": snapshot_memory.peak_bytes,
        },
        **device_facts(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--mixed-precision", choices=MIXED_PRECISION_MODES, default="off", help="CUDA only"
    )
    args = parser.parse_args()
    result = measure(
        args.model_dir,
        args.method,
        args.batch_size,
        args.steps,
        args.threads,
        args.seed,
        args.device,
        args.mixed_precision,
    )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
