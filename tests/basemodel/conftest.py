"""The committed base model and stand-in VLM, assembled once for these tests; the tiny random
dual encoder lives in tests/model_fixtures.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from standin.basemodel.release import materialise_release
from standin.basemodel.vlm.release import materialise_vlm_release
from tests.model_fixtures import tiny_model_dir

__all__ = ["tiny_model_dir"]


@pytest.fixture(scope="package", autouse=True)
def one_thread() -> Iterator[None]:
    # These models are too small to gain from a second thread on a busy CI core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise_release(tmp_path_factory.mktemp("vlm-base") / "standin-base")


@pytest.fixture(scope="package")
def vlm_dir(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialise_vlm_release(tmp_path_factory.mktemp("vlm") / "standin-vlm", base_dir)
