"""Errors of the dataset loaders."""


class DatasetUnavailableError(FileNotFoundError):
    """A dataset's files are not installed; the message says how to install them."""
