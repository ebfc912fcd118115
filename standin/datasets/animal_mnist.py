"""Animal MNIST (animal silhouettes, 28x28 gray) from the ``animal-mnist`` PyPI package's files.

The package's own loader imports TensorFlow, so its data files are read here directly. They
are gzip-compressed pickles of NumPy arrays; a restricted unpickler admits only the globals
needed to rebuild a plain ndarray, so a tampered file cannot run code. (Pickle is accepted for
this data file only; model weights are always safetensors.)
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
from pathlib import Path

import numpy as np

from standin.datasets.errors import DatasetUnavailableError
from standin.datasets.labelled_images import ArrayDataset, stratified_split

# Order from the package description (labels 0..9); images confirm it (0 = bear silhouettes).
CLASS_NAMES = [
    "bear",
    "bird",
    "cat",
    "cow",
    "dog",
    "elephant",
    "giraffe",
    "horse",
    "sheep",
    "zebra",
]
TEST_FRACTION = 0.2
_DATA_FILE = "animal_data_version_3.gz"
_LABEL_FILE = "animal_label_version_3.gz"


class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild ndarrays and dtypes and nothing else."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        if name == "_reconstruct":
            # numpy 2 renamed numpy.core to numpy._core; resolve directly to avoid the shim.
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def read_pickled_array(path: Path) -> np.ndarray:
    """Read one gzip+pickle file that must contain a single ndarray."""
    with gzip.open(path, "rb") as handle:
        array = _NumpyArrayUnpickler(io.BytesIO(handle.read())).load()
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} does not hold a NumPy array")
    return array


def animal_mnist_directory() -> Path:
    """The data folder of the installed ``animal-mnist`` package (without importing it)."""
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailableError(
            "Animal MNIST not installed: `pip install --no-deps animal-mnist` "
            "(--no-deps: its declared dependencies pull TensorFlow)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"


def load_animal_mnist(split: str) -> ArrayDataset:
    """A fixed stratified 80/20 split of the 9,716 distinct images (the package has none)."""
    directory = animal_mnist_directory()
    if not (directory / _DATA_FILE).is_file():
        raise DatasetUnavailableError(
            f"Animal MNIST data files missing in {directory}: reinstall with "
            "`pip install --no-deps --force-reinstall animal-mnist`"
        )
    pixels = read_pickled_array(directory / _DATA_FILE).astype(np.uint8)
    labels = read_pickled_array(directory / _LABEL_FILE).astype(np.int64)
    # About 3% of the images are exact copies of another one (same label); keep the first
    # copy only, so no test image also sits in the train split.
    _, first_copies = np.unique(pixels.reshape(len(pixels), -1), axis=0, return_index=True)
    unique = np.sort(first_copies)
    pixels, labels = pixels[unique], labels[unique]
    chosen = stratified_split(labels, TEST_FRACTION, split)
    return ArrayDataset(pixels=pixels[chosen], labels=labels[chosen], class_names=CLASS_NAMES)
