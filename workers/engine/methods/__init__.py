"""Update methods: one package each (``declaration.py`` + ``implementation.py``), found by
:mod:`workers.engine.methods.catalogue`. This package imports nothing, so the API can read the
declarations without torch."""
