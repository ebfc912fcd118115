"""Real labelled images that install offline (sources, licences: README), behind one loader.

``load_dataset(name, split)`` returns :class:`LabelledImages`; ``DATASET_NAMES`` lists what
exists. Class names are plain words, so captions such as "a photo of a {label}." read well.
"""

from standin.datasets.labelled_images import LabelledImages
from standin.datasets.registry import DATASET_NAMES, DatasetUnavailableError, load_dataset

__all__ = ["DATASET_NAMES", "DatasetUnavailableError", "LabelledImages", "load_dataset"]
