"""The broker contract between the API (producer) and the worker (consumer).

The API never imports task code: the outbox dispatcher sends ``UPDATE_TASK_NAME`` by name with
``args=[job_id]`` on ``UPDATE_QUEUE``; ``workers/tasks.py`` registers its task under exactly
this name and the worker consumes this queue.
"""

UPDATE_TASK_NAME = "vlmc.run_update_job"
UPDATE_QUEUE = "updates"
# How long a claimed job's lease lasts before another worker may take it over. The process
# running the job renews it every third of that, whatever the job is doing
# (service/jobs/lease_keeper.py), so it only has to outlast a stall of that process.
DEFAULT_LEASE_SECONDS = 60
