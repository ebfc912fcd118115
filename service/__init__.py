"""The service: API, persistence, serving. Never imports training code (``workers.engine``).

Layout, one package per domain (router = HTTP, service = rules, repository = queries,
schemas = bodies):

- ``registry/``     models (version 1 = the base checkpoint) and evaluation sets
- ``corrections/``  few-shot batches -> a queued job (multipart or JSON, Idempotency-Key)
- ``jobs/``         a job's whole life: states (``statuses.py``), create/read/cancel
                    (``service.py``), the worker protocol (``lifecycle.py``: claim, lease,
                    progress, finish), sweeps, worker heartbeats, and the broker contract
                    (``constants.py``: task ``vlmc.run_update_job``, args ``[job_id]``, queue
                    ``updates``)
- ``versions/``     immutable versions, active pointer, deployments, activation gate, and the
                    base + delta chain that rebuilds a version's weights (``state_chain.py``)
- ``serving/``      classify / embed from the active or a pinned version (hot-swapping cache)
- ``chat/``         ``/v1/chat/completions``: OpenAI-compatible answers from a generative model
- ``outbox/``       broker messages written with the job, sent after commit (``dispatcher``)
- ``retention/``    storage lifecycle: blob garbage collection safe against concurrent
                    writers, storage usage (``/v1/storage``; archiving is in ``versions/``)
- ``health/``       /healthz, /readyz (database, broker, worker heartbeats), /metrics
- ``auth/``         API keys with scopes, optionally restricted to models and expiring,
                    stored hashed
- ``api/``          what every router shares: dependencies (the key, its scope, its models),
                    the error body, body parsing, the OpenAPI contract (``openapi.py``)
- ``db/``           tables, sessions, migrations; ``storage/`` the content-addressed blobs;
  ``images.py`` upload validation; ``validation.py`` text bounds and characters;
  ``modelling/`` model loading and inference math
- ``app.py`` the FastAPI factory, ``cli/`` the ``vlmc`` command, ``settings.py`` all
  configuration (env prefix ``VLMC_``).
"""
