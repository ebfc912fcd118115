"""Every value set the database stores, each one ``StrEnum`` (``str``-valued: compares equal
to its value), beside the tables that store them.

``service/db/tables.py`` derives each column's CHECK constraint from these; the API schemas
(so the OpenAPI document lists the values), the rules, the queries and the worker use the
members, never the bare strings. This module imports nothing but ``enum``, so every domain may
import it.
"""

from __future__ import annotations

import enum


# -- jobs -------------------------------------------------------------------------------------
class JobStatus(enum.StrEnum):
    """Where a job is in its life::

        queued -> running -> evaluating -> succeeded
           |         |            |
           +---------+------------+-----> failed | cancelled
        running/evaluating -> queued      (the worker died: the sweep re-queues the job)

    The transitions are ``service/jobs/statuses.py``'s.
    """

    QUEUED = "queued"
    RUNNING = "running"
    EVALUATING = "evaluating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobEventType(enum.StrEnum):
    """The kinds of entry in a job's append-only event history."""

    PROGRESS = "progress"  # step/total (and the loss)
    METRICS = "metrics"  # evaluation results before / after the update
    LOG = "log"  # a human-readable note (re-queued, cancel requested, ...)
    STATUS = "status"  # a state change; ``data.status`` is the new JobStatus
    PHASE = "phase"  # the job entered a phase; ``data.phase`` is the new JobPhase


class JobPhase(enum.StrEnum):
    """What a job is doing now, finer than its status (shown as ``progress.phase``)::

        queued -> loading -> evaluating_before -> training -> evaluating_after -> storing
          -> done

    ``loading`` reads the parent's weights, the examples and the evaluation sets; ``training``
    counts steps (``progress.step`` of ``progress.total``); ``storing`` writes the snapshot
    and the version (and applies the gate). A job that ends, however it ends, is ``done``; one
    the sweep re-queues is ``queued`` again. The worker moves it (``service/jobs/lifecycle.py``).
    """

    QUEUED = "queued"
    LOADING = "loading"
    EVALUATING_BEFORE = "evaluating_before"
    TRAINING = "training"
    EVALUATING_AFTER = "evaluating_after"
    STORING = "storing"
    DONE = "done"


# -- models and evaluation sets ----------------------------------------------------------------
class ModelFamily(enum.StrEnum):
    """Dual encoders (CLIP-style image and text towers) and LLaVA-style VLMs."""

    CLIP = "clip"
    VISION_TEXT_DUAL_ENCODER = "vision-text-dual-encoder"
    SIGLIP = "siglip"
    LLAVA = "llava"


DUAL_ENCODER_FAMILIES = (
    ModelFamily.CLIP,
    ModelFamily.VISION_TEXT_DUAL_ENCODER,
    ModelFamily.SIGLIP,
)


class ActivationPolicy(enum.StrEnum):
    """What the activation gate does with a model's new ready version."""

    AUTO = "auto"  # activate when TI > 0 and CC >= -threshold (and no set over its max_drop)
    MANUAL = "manual"  # never automatically: versions are activated by hand
    ALWAYS = "always"  # activate every ready version


class EvalSetKind(enum.StrEnum):
    """What an evaluation set of a model measures."""

    CONTROL = "control"  # must not regress: gives CC
    TARGET = "target"  # should improve: gives TI when a correction holds nothing out


# -- versions and deployments ----------------------------------------------------------------
class VersionStatus(enum.StrEnum):
    """Whether a version can serve."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DeploymentAction(enum.StrEnum):
    """Why the active pointer moved (one row of the deployment history)."""

    INITIAL = "initial"  # version 1 of a newly registered model
    ACTIVATE = "activate"  # by hand (POST .../activate)
    ROLLBACK = "rollback"  # by hand, back to an earlier version (POST .../rollback)
    GATE = "gate"  # the activation gate, after a job made the version


class TISource(enum.StrEnum):
    """What TI is measured on.

    A correction decides it at submission: the request's evaluation examples; a share of its
    examples held out of training; the model's target sets (every example trains); or nothing
    (every example trains and the model has no target sets). A version records where its TI
    came from, one of ``VERSION_TI_SOURCES``: the worker measures evaluation examples as the
    held-out examples they are stored as.
    """

    EVAL_EXAMPLES = "eval_examples"
    HELD_OUT = "held_out"
    TARGET_SETS = "target_sets"
    NONE = "none"


VERSION_TI_SOURCES = (TISource.HELD_OUT, TISource.TARGET_SETS, TISource.NONE)


class StopReason(enum.StrEnum):
    """Why an update's training ended."""

    PLANNED_STEPS = "planned_steps"  # the planned steps (epochs, the max_steps cap)
    LEARNED = "learned"  # the correction's examples were fitted (stop_margin)
    DRIFT_BUDGET = "drift_budget"  # the anchors drifted as far as allowed


# -- API keys ---------------------------------------------------------------------------------
class Scope(enum.StrEnum):
    """What a key may do; ``admin`` implies every other scope."""

    INFERENCE = "inference"
    CORRECTIONS = "corrections"
    ADMIN = "admin"


# -- served answers and the mistakes inbox -----------------------------------------------------
class AnswerKind(enum.StrEnum):
    """Which endpoint served a kept answer, so which kind of correction example it makes."""

    CLASSIFY = "classify"  # a label among the request's candidates: a label example
    CHAT = "chat"  # an answer to a question: a question/answer example


class InboxStatus(enum.StrEnum):
    """Where a flagged answer is in the mistakes inbox (NULL: the answer is not flagged)."""

    OPEN = "open"  # flagged with the right answer, waiting to be used or dismissed
    USED = "used"  # turned into a correction (the row names it)
    DISMISSED = "dismissed"  # set aside by hand
