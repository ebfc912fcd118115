"""The update engine: few-shot corrections in, merged image-encoder weights and a report out.

Importable without Celery or the API. Entry point: :func:`workers.engine.update.run_update`.
The methods' declarations (names, hyperparameters, defaults) live in the torch-free
``catalogue`` package below both ``service`` and ``workers``.
"""
