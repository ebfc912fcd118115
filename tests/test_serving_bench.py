"""The serving benchmark's parts on small inputs: memory per loaded version (the image encoder
only, for a dual encoder and for a VLM), the throughput rows against the bare model, and the
report with its target verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.serving import memory, throughput
from bench.serving.run import targets
from standin.llava_factory import build_tiny_llava
from tests.model_fixtures import tiny_model_dir

__all__ = ["tiny_model_dir"]


def test_each_extra_version_holds_its_image_encoder_and_nothing_else(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    vlm_dir = build_tiny_llava(tmp_path / "vlm", tiny_model_dir)
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
    assert "| vlm |" in memory.markdown([result])


def test_throughput_rows_compare_the_service_with_the_bare_model(tmp_path: Path) -> None:
    result = throughput.measure(seconds=1.0, threads=1, concurrency=(1, 4))
    assert [row["batch"] for row in result["bare"]] == [1, 4]
    for row in result["service"]:
        assert row["errors"] == 0 and row["ok"] > 0, row
        assert row["x_bare_same_batch"] > 0
    assert "| 4 |" in throughput.markdown(result)


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
