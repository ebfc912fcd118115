"""The stand-in: demo and test material, off the production paths.

A small base model the service can correct on a machine without a real checkpoint (its image
tower and VLM weights are committed under ``basemodel/release/``), the offline image datasets it
is built and evaluated on (``datasets/``), and builders of tiny random models for tests and
benchmarks (``factory.py``, ``llava_factory.py``). Installed with the ``standin`` extra; the API,
the worker and the migrations run without it on a real checkpoint. It may import ``workers``,
``service`` and ``catalogue``; nothing in them imports it.
"""
