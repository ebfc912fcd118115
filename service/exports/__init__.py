"""Exporting a version as a standard Hugging Face checkpoint (``GET .../export``)."""
