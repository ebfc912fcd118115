"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files, gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from standin.datasets.errors import DatasetUnavailableError
from standin.datasets.labelled_images import ArrayDataset

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip IDX file (the MNIST format) of unsigned bytes into an array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split: str, directory: Path = FASHION_MNIST_DIR) -> ArrayDataset:
    """The official 60k/10k split; 28x28 grayscale."""
    image_file, label_file = _FILES[split]
    if not (directory / image_file).is_file():
        raise DatasetUnavailableError(
            f"Fashion-MNIST not found in {directory}: install it with "
            "`apt-get install dataset-fashion-mnist`"
        )
    pixels = read_idx(directory / image_file)
    labels = read_idx(directory / label_file).astype(np.int64)
    return ArrayDataset(pixels=pixels, labels=labels, class_names=CLASS_NAMES)
