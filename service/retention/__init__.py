"""Storage lifecycle: blob garbage collection and storage usage (``/v1/storage``)."""
