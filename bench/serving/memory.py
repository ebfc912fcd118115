"""Memory per loaded version: what each extra version in the serving cache costs.

For the stand-in base model (a dual encoder) and the stand-in VLM (LLaVA paired with it), a
``ModelCache`` loads version 1 and then ``extra`` more versions (seeded noise on every
image-encoder tensor, stored the way the worker stores versions), one at a time. After each
load it records two figures:

- ``tensor_bytes``: bytes of the tensors the new version holds that no earlier loaded version
  shares (exact; storages counted once);
- ``resident_bytes``: the process's resident memory growth (after garbage collection and
  ``malloc_trim``), which also counts allocator and Python overheads.

Both are compared with the image encoder's size (the bytes of the state a version snapshots),
the floor for a version whose image encoder differs from every other version's.

    python -m bench.serving.memory [--extra 4]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.serving.versions import add_version, register_model
from service.db.migrate import upgrade_head
from service.db.session import create_db_engine, create_session_factory
from service.modelling.checkpoints import load_checkpoint
from service.serving.cache import LoadedVersion, ModelCache
from service.storage.blobs import FilesystemBlobStore
from standin.basemodel.release import materialise_release
from standin.basemodel.vlm.release import materialise_vlm_release
from workers.engine.memory import resident_bytes

EXTRA_VERSIONS = 4


def _modules(loaded: LoadedVersion) -> Iterator[nn.Module]:
    yield loaded.encoder.model
    if loaded.generator is not None:
        yield loaded.generator.model


def _storages(loaded: LoadedVersion) -> dict[int, int]:
    """Every tensor storage a loaded version uses: data pointer -> bytes."""
    storages: dict[int, int] = {}
    for module in _modules(loaded):
        for tensor in [*module.parameters(), *module.buffers()]:
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return storages


def _trimmed_resident_bytes() -> int:
    gc.collect()
    # Not glibc: no malloc_trim, and resident memory may keep freed heap pages.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return resident_bytes()


def _noisy(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: tensor + 1e-3 * torch.randn(tensor.shape, generator=generator)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in state.items()
    }


def measure_model(
    root: Path, name: str, base_path: Path, pair_path: Path | None, extra: int
) -> dict[str, Any]:
    """Load version 1 and ``extra`` versions of one model; per-version memory figures."""
    url = f"sqlite:///{root / f'{name}.sqlite'}"
    upgrade_head(url)
    engine = create_db_engine(url)
    blobs = FilesystemBlobStore(root / f"{name}-blobs")
    base_state = load_checkpoint(base_path, pair_path).encoder.image_encoder_state()
    image_encoder_bytes = sum(tensor.nbytes for tensor in base_state.values())
    try:
        with create_session_factory(engine)() as session:
            model, base = register_model(session, name, base_state, base_path, pair_path)
            versions = [base]
            state = base_state
            for seed in range(extra):
                child = _noisy(state, seed)
                versions.append(add_version(session, blobs, versions[-1], state, child, None))
                state = child
            session.commit()
            cache = ModelCache(blobs, "cpu", capacity=extra + 2)
            held: dict[int, int] = {}
            rows = []
            before = _trimmed_resident_bytes()
            for version in versions:
                loaded = cache.pinned(session, model, version)
                storages = _storages(loaded)
                new = {ptr: size for ptr, size in storages.items() if ptr not in held}
                held.update(storages)
                after = _trimmed_resident_bytes()
                rows.append(
                    {
                        "version": version.number,
                        "tensor_bytes": sum(new.values()),
                        "resident_bytes": after - before,
                    }
                )
                before = after
    finally:
        engine.dispose()
    extra_rows = rows[1:]
    return {
        "model": name,
        "image_encoder_bytes": image_encoder_bytes,
        "versions": rows,
        "extra_tensor_x_image_encoder": round(
            statistics.median(r["tensor_bytes"] for r in extra_rows) / image_encoder_bytes, 3
        ),
        "extra_resident_x_image_encoder": round(
            statistics.median(r["resident_bytes"] for r in extra_rows) / image_encoder_bytes, 3
        ),
    }


def measure_memory(extra: int = EXTRA_VERSIONS) -> list[dict[str, Any]]:
    """Per-version memory of the stand-in base model and of the stand-in VLM."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as directory:
        root = Path(directory)
        base_dir = materialise_release(root / "standin-base")
        vlm_dir = materialise_vlm_release(root / "standin-vlm", base_dir)
        return [
            measure_model(root, "standin-base", base_dir, None, extra),
            measure_model(root, "standin-vlm", vlm_dir, base_dir, extra),
        ]


def markdown(results: list[dict[str, Any]]) -> str:
    mib = 1024 * 1024
    lines = [
        "| model | image encoder MiB | version 1 MiB (tensors / resident) "
        "| each extra version MiB, median (tensors / resident) | x image encoder "
        "(tensors / resident) |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        first, extra = result["versions"][0], result["versions"][1:]
        tensors = statistics.median(r["tensor_bytes"] for r in extra)
        resident = statistics.median(r["resident_bytes"] for r in extra)
        lines.append(
            f"| {result['model']} | {result['image_encoder_bytes'] / mib:.1f} "
            f"| {first['tensor_bytes'] / mib:.1f} / {first['resident_bytes'] / mib:.1f} "
            f"| {tensors / mib:.1f} / {resident / mib:.1f} "
            f"| {result['extra_tensor_x_image_encoder']} / "
            f"{result['extra_resident_x_image_encoder']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", type=int, default=EXTRA_VERSIONS)
    args = parser.parse_args(argv)
    results = measure_memory(args.extra)
    print(markdown(results))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
