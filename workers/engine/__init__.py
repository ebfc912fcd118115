"""The update engine: few-shot corrections in, merged image-encoder weights and a report out.

Importable without Celery or the API. Entry point: :func:`workers.engine.update.run_update`.
This package file imports nothing, so that the method declarations under ``methods/`` can be
read without torch.
"""
