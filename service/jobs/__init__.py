"""Update jobs: one package owns their whole life.

- ``statuses.py``     the state machine over ``JobStatus`` (``service/db/values.py``)
- ``repository.py``   every query on jobs, job events and worker heartbeats
- ``service.py``      the API's side: create (with the outbox message), read, cancel
- ``lifecycle.py``    the worker's side: claim, lease, progress, evaluate, finish, and the
                      hand-over to the model's next queued job
- ``lease_keeper.py`` the thread that keeps a running job's lease alive in its process
- ``sweeps.py``       recovery: jobs of dead workers, queued jobs whose message was lost
- ``heartbeats.py``   worker liveness (/readyz and the sweep)
- ``constants.py``    the broker contract (task name, queue) and the default lease
- ``router.py`` / ``schemas.py``  the HTTP endpoints and bodies
"""
