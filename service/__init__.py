"""The service: API, persistence, serving. Never imports training or demo code (``workers``,
``standin``); the method catalogue it validates with is the ``catalogue`` package below it.

One package per domain (router = HTTP, forms = a body read from multipart or JSON, service =
rules, repository = queries, schemas = bodies, dependencies = what a route reads from the
running process), ordered: a package imports only those listed after it
(``pyproject.toml``, ``[tool.importlinter]``):

- ``cli/``          the ``vlmc`` command: server commands, client commands, rendering, client
- ``app.py``        the FastAPI factory; ``runtime.py`` the composition root (every
                    long-lived resource of an API process)
- ``chat/``         ``/v1/chat/completions``: OpenAI-compatible answers from a generative model
- ``health/``       /healthz, /readyz (database, broker, worker heartbeats), /metrics
- ``corrections/``  few-shot batches -> a queued job (multipart or JSON, Idempotency-Key)
- ``serving/``      classify / embed from the active or a pinned version (hot-swapping cache,
                    batching, admission)
- ``registration/`` the ``/v1/models`` routes: registering a model (with version 1, the base
                    checkpoint) and its evaluation sets
- ``retention/``    storage lifecycle: archiving a version, blob garbage collection safe
                    against concurrent writers, storage usage (``/v1/storage``)
- ``jobs/``         a job's whole life: the state machine (``statuses.py``),
                    create/read/cancel (``service.py``), the worker protocol
                    (``lifecycle.py``: claim, lease, progress, finish), sweeps, worker
                    heartbeats, and the broker contract (``constants.py``)
- ``versions/``     immutable versions, active pointer, deployments, activation gate, and the
                    base + delta chain that rebuilds a version's weights (``state_chain.py``)
- ``auth/``         API keys with scopes, optionally restricted to models and expiring,
                    stored hashed; the route dependencies that check them
- ``registry/``     model and evaluation-set records, checkpoint facts, the model lookup cache
- ``outbox/``       broker messages written with their rows, sent after commit
- ``api/``          what every router shares: the session, settings and blob dependencies,
                    the error body, body reading, the OpenAPI contract (``openapi.py``)
- ``images.py`` upload validation; ``settings.py`` all configuration (env prefix ``VLMC_``);
  ``modelling/`` model loading, preprocessing and inference math; ``db/`` tables, sessions,
  the stored value sets (``values.py``) and the migration step; ``storage/`` the
  content-addressed blobs; ``validation.py`` text bounds; ``errors.py`` the error types.
"""
