"""The worker side of an update job: claim, load, evaluate, train, store, gate.

``workers/tasks.py`` is a thin Celery wrapper around :func:`workers.pipeline.runner.process_job`;
everything here is importable (and tested) without a broker.
"""
