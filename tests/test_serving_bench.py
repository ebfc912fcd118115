"""The serving benchmark's parts on small inputs: memory per loaded version (the image encoder
only, for a dual encoder and for a VLM), the throughput rows against the bare model, and the
report with its target verdicts."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from PIL import Image

from bench.serving import memory, throughput
from bench.serving.run import targets
from catalogue.captions import captions_for_labels
from service.modelling.loading import load_dual_encoder
from standin.llava_factory import build_tiny_llava
from tests.markdown_tables import only_table
from tests.model_fixtures import tiny_model_dir

__all__ = ["tiny_model_dir"]

MIB = 1024 * 1024


def test_each_extra_version_holds_its_image_encoder_and_nothing_else(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    vlm_dir = build_tiny_llava(tmp_path / "vlm", tiny_model_dir)
    results = []
    for name, base, pair in (("dual", tiny_model_dir, None), ("vlm", vlm_dir, tiny_model_dir)):
        result = memory.measure_model(tmp_path, name, base, pair, extra=2)
        first, *extra = result["versions"]
        # Version 1 holds the whole checkpoint; each further version its own image encoder
        # (and its few bytes of non-persistent buffers such as position ids): every other
        # tensor is version 1's.
        size = result["image_encoder_bytes"]
        assert first["tensor_bytes"] > 2 * size, name
        assert all(size <= row["tensor_bytes"] < 1.01 * size for row in extra), extra
        assert result["extra_tensor_x_image_encoder"] == 1.0
        results.append(result)

    # The report's rows are these measurements, in MiB to one decimal.
    table = only_table(memory.markdown(results))
    assert [cells[0] for cells in table.rows] == ["dual", "vlm"]
    for (_, encoder, first_cell, extra_cell, ratios), result in zip(
        table.rows, results, strict=True
    ):
        first, *extra = result["versions"]
        assert float(encoder) == pytest.approx(result["image_encoder_bytes"] / MIB, abs=0.05)
        assert _pair(first_cell) == pytest.approx(
            (first["tensor_bytes"] / MIB, first["resident_bytes"] / MIB), abs=0.05
        )
        medians = (
            statistics.median(row["tensor_bytes"] for row in extra) / MIB,
            statistics.median(row["resident_bytes"] for row in extra) / MIB,
        )
        assert _pair(extra_cell) == pytest.approx(medians, abs=0.05)
        assert _pair(ratios) == (
            result["extra_tensor_x_image_encoder"],
            result["extra_resident_x_image_encoder"],
        )


def _pair(cell: str) -> tuple[float, float]:
    """A "tensors / resident" cell."""
    tensors, resident = cell.split(" / ")
    return float(tensors), float(resident)


def test_throughput_rows_compare_the_service_with_the_bare_model(tmp_path: Path) -> None:
    result = throughput.measure(seconds=1.0, threads=1, concurrency=(1, 4))
    assert [row["batch"] for row in result["bare"]] == [1, 4]
    bare = {row["batch"]: row for row in result["bare"]}
    for row in result["service"]:
        assert row["errors"] == 0 and row["ok"] > 0, row
        assert row["x_bare_same_batch"] == pytest.approx(
            row["requests_per_s"] / bare[row["clients"]]["images_per_s"], abs=1e-3
        )
    # One report row per client count, each holding that row's measurements.
    table = only_table(throughput.markdown(result))
    assert len(table.header) == 8
    assert [cells[0] for cells in table.rows] == ["1", "4"]
    for cells, row in zip(table.rows, result["service"], strict=True):
        reference = bare[row["clients"]]
        assert cells == [
            str(value)
            for value in (
                row["clients"],
                row["requests_per_s"],
                row["p50_ms"],
                row["p99_ms"],
                row["errors"],
                reference["images_per_s"],
                reference["batch_p50_ms"],
                row["x_bare_same_batch"],
            )
        ]


def test_the_bare_model_encodes_the_captions_once_as_the_service_caches_them(
    tiny_model_dir: Path,
) -> None:
    encoder = load_dual_encoder(tiny_model_dir)
    encoded: list[list[str]] = []
    encode_texts = encoder.encode_texts

    def counting(texts: list[str]) -> torch.Tensor:
        encoded.append(list(texts))
        return encode_texts(texts)

    encoder.encode_texts = counting  # type: ignore[method-assign]
    image = Image.new("RGB", (32, 32), "white")
    rows = throughput.bare_model_rates(encoder, image, (1, 2), seconds=0.2)
    assert [row["batch"] for row in rows] == [1, 2]
    assert all(row["batches"] > 0 and row["images_per_s"] > 0 for row in rows), rows
    # Once for the whole measurement, not per call: the timed calls are preprocessing, the
    # image forward pass and the probabilities only.
    assert encoded == [captions_for_labels(throughput.LABELS)]


def test_targets_are_judged_from_the_measured_figures() -> None:
    def service(clients: int, ratio: float, p99: float) -> dict:
        return {"clients": clients, "x_bare_same_batch": ratio, "p99_ms": p99}

    timings = [{"depth": 1, "with_checkpoints_s": 0.1}, {"depth": 200, "with_checkpoints_s": 0.2}]
    result = {
        "throughput": {"service": [service(1, 0.9, 9.0), service(16, 0.4, 50.0)]},
        "load_depth": {"timings": timings},
        "activation": {"moves": [{"visible_s": 0.4}], "failed_requests": 0},
        "memory": [{"extra_resident_x_image_encoder": 1.05}],
    }
    verdicts = [line.rsplit(" - ", 1)[1] for line in targets(result)]
    assert verdicts == ["met", "MISSED", "MISSED", "met", "met"]
    result["activation"] = {"moves": [{"visible_s": None}], "failed_requests": 0}
    assert targets(result)[3].endswith("MISSED")


@pytest.fixture(autouse=True)
def _quiet_threads() -> None:
    import torch

    torch.set_num_threads(1)
