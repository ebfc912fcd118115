"""Version rules shared by the API and the worker.

- ``resolve_version``: the one reading of a version reference, wherever a version is named
  (a path segment, an activate/rollback body, a request's pin, archiving): its id or its
  number within the model, so both lead to the same row and to the same answers.
- ``register_base_version``: version 1 of a new model = its base checkpoint, made active.
- ``create_version``: a new immutable version row (the worker calls it after the snapshot
  blob is written).
- ``activate_version`` / ``rollback``: move the active pointer and append a deployment, in the
  caller's transaction; the pointer row is locked first so concurrent moves serialise and the
  history chain stays exact (each move's ``from`` is the previous move's ``to``). Every move
  (version 1's pointer too) is announced to the API processes once it commits
  (``service/versions/announcements.py``).
- Archived versions (``service/retention/archive.py``) cannot be activated, rolled back to,
  pinned or trained from (``refuse_archived``). ``create_version`` and the pointer moves lock
  the pointer row first, as archiving does, so an archive never races a new child of the
  version it archives.
- ``gate_verdict``: the activation gate; ``apply_activation_gate`` applies a model's policy
  to a new version and records its decision with the reasons (the worker's last step).

None of these commit: the caller's unit of work does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.tables import (
    ActiveVersion,
    CarriedState,
    Deployment,
    GateDecision,
    Model,
    Version,
    VersionCost,
    VersionEvaluation,
    VersionSetAccuracy,
)
from service.db.values import ActivationPolicy, DeploymentAction, EvalSetKind, VersionStatus
from service.errors import Conflict, InvalidInput, NotFound
from service.registry import repository as registry_repository
from service.validation import INTEGER_TEXT, MAX_VERSION_NUMBER, check_identifier
from service.versions import repository
from service.versions.announcements import announce_pointer_move

BASE_METHOD = "base"


@dataclass
class VersionRecords:
    """What the worker measured for a new version (none of it for the base version)."""

    evaluation: VersionEvaluation | None = None
    set_accuracies: list[VersionSetAccuracy] = field(default_factory=list)
    cost: VersionCost | None = None
    # method -> blob of the state it carries forward (the parent's, updated by this job).
    carried_states: dict[str, str] = field(default_factory=dict)


# What names a version: its id, or its number within its model (an ``int``, or the number
# in decimal where the reference arrives as text: a path segment, a multipart field).
VersionRef = int | str


def resolve_version(session: Session, model_id: str, ref: VersionRef) -> Version | None:
    """The version ``ref`` names: by number, ``model_id``'s version with that number; by id,
    the version with that id, whichever model it belongs to (callers decide what another
    model's version means: 404 to read it, 409 ``version_foreign`` to activate it). None when
    there is none.

    422 ``invalid_version_number`` for a number outside 1 to ``MAX_VERSION_NUMBER`` (0, a
    negative one, one written with leading zeros), ``invalid_identifier`` for text that is
    neither a number nor an identifier (an empty multipart field).
    """
    if isinstance(ref, str) and INTEGER_TEXT.fullmatch(ref):
        number = int(ref)
        if ref != str(number):
            raise InvalidInput(
                "invalid_version_number",
                f"version_id: write the version number {number} without sign or leading zeros",
            )
        ref = number
    if isinstance(ref, int):
        if not 1 <= ref <= MAX_VERSION_NUMBER:
            raise InvalidInput(
                "invalid_version_number",
                f"version_id: {ref} is not a version number (1 to {MAX_VERSION_NUMBER})",
            )
        return repository.get_by_number(session, model_id, ref)
    return repository.get(session, check_identifier(ref, "version_id"))


def get_version(session: Session, model_id: str, ref: VersionRef) -> Version:
    """The version ``ref`` names (``resolve_version``), or 404 when it does not exist or
    belongs to another model."""
    version = resolve_version(session, model_id, ref)
    if version is None or version.model_id != model_id:
        raise NotFound("version_not_found", f"model {model_id} has no version {ref}")
    return version


def servable_version(session: Session, model_id: str, ref: VersionRef) -> Version:
    """The version a request pins: 404 as ``get_version``, 409 ``version_archived``."""
    version = get_version(session, model_id, ref)
    refuse_archived(version)
    return version


def refuse_archived(version: Version) -> None:
    """409 ``version_archived`` for an archived version."""
    if version.archived_at is not None:
        raise Conflict(
            "version_archived",
            f"version {version.number} is archived: it no longer serves and cannot be restored",
        )


def register_base_version(
    session: Session, model: Model, content_sha256: str, actor: str
) -> Version:
    """Version 1 (the base checkpoint, ready), the active pointer and the first deployment."""
    version = repository.add(
        session,
        Version(
            model_id=model.id,
            number=1,
            parent_id=None,
            job_id=None,
            method=BASE_METHOD,
            data_hash=None,
            content_sha256=content_sha256,
            snapshot_sha256=None,
            status=VersionStatus.READY,
        ),
    )
    repository.add_active(session, ActiveVersion(model_id=model.id, version_id=version.id))
    announce_pointer_move(session, model.id)
    repository.add_deployment(
        session,
        Deployment(
            model_id=model.id,
            from_version_id=None,
            to_version_id=version.id,
            action=DeploymentAction.INITIAL,
            actor=actor,
            reason="base checkpoint registered",
        ),
    )
    return version


def create_version(
    session: Session,
    *,
    model_id: str,
    parent_id: str,
    job_id: str | None,
    method: str,
    data_hash: str | None,
    content_sha256: str,
    snapshot_sha256: str,
    checkpoint_sha256: str | None = None,
    records: VersionRecords | None = None,
    status: VersionStatus = VersionStatus.READY,
) -> Version:
    """A new version numbered after the model's last one, with what the worker measured.

    ``snapshot_sha256`` is the blob holding the exact delta from ``parent_id``'s state,
    ``checkpoint_sha256`` (when due) the full state's blob, ``content_sha256`` the full state's
    hash (``service/versions/state_chain.py: store_version_state``). 409 ``parent_archived``
    when the parent was archived meanwhile (its blobs may be gone).
    """
    records = records or VersionRecords()
    repository.lock_active(session, model_id)
    parent = get_version(session, model_id, parent_id)
    if parent.archived_at is not None:
        raise Conflict("parent_archived", f"parent version {parent.number} was archived")
    if parent.status != VersionStatus.READY:
        raise Conflict("parent_not_ready", f"parent version {parent_id} is {parent.status}")
    return repository.add(
        session,
        Version(
            model_id=model_id,
            number=repository.next_number(session, model_id),
            parent_id=parent_id,
            job_id=job_id,
            method=method,
            data_hash=data_hash,
            content_sha256=content_sha256,
            snapshot_sha256=snapshot_sha256,
            checkpoint_sha256=checkpoint_sha256,
            status=status,
            evaluation=records.evaluation,
            set_accuracies=list(records.set_accuracies),
            cost=records.cost,
            carried_states=[
                CarriedState(method=method, blob_sha256=blob)
                for method, blob in sorted(records.carried_states.items())
            ],
        ),
    )


def activate_version(
    session: Session,
    model_id: str,
    ref: VersionRef,
    actor: str,
    reason: str,
    action: DeploymentAction = DeploymentAction.ACTIVATE,
) -> Deployment:
    """Point the model at the version ``ref`` names (id or number) and record the move.

    Raises 404 ``version_not_found`` for an unknown version, 409 ``version_foreign`` for a
    version of another model, 409 ``version_not_ready`` (pending) / ``version_failed``
    (failed), 409 ``version_archived``, and 409 ``version_already_active`` when it is already
    the active version (and ``resolve_version``'s 422s).
    """
    pointer = repository.lock_active(session, model_id)
    if pointer is None:
        raise NotFound("model_not_found", f"model {model_id} has no active pointer")
    version = resolve_version(session, model_id, ref)
    if version is None:
        raise NotFound("version_not_found", f"model {model_id} has no version {ref}")
    if version.model_id != model_id:
        raise Conflict("version_foreign", f"version {ref} belongs to another model")
    refuse_archived(version)
    if version.status == VersionStatus.FAILED:
        raise Conflict("version_failed", f"version {version.number} failed and cannot serve")
    if version.status != VersionStatus.READY:
        raise Conflict("version_not_ready", f"version {version.number} is {version.status}")
    if pointer.version_id == version.id:
        raise Conflict("version_already_active", f"version {version.number} is already active")
    previous = pointer.version_id
    pointer.version_id = version.id
    pointer.updated_at = utcnow()
    announce_pointer_move(session, model_id)
    return repository.add_deployment(
        session,
        Deployment(
            model_id=model_id,
            from_version_id=previous,
            to_version_id=version.id,
            action=action,
            actor=actor,
            reason=reason,
        ),
    )


def rollback(
    session: Session, model_id: str, ref: VersionRef, actor: str, reason: str
) -> Deployment:
    """Re-activate an earlier (ready) version; the same rules as ``activate_version``."""
    return activate_version(session, model_id, ref, actor, reason, action=DeploymentAction.ROLLBACK)


@dataclass(frozen=True)
class GateVerdict:
    activated: bool
    reasons: list[str]


@dataclass(frozen=True)
class ControlResult:
    """One control set's accuracy (percent) before and after an update."""

    name: str
    before: float
    after: float
    # Points this set may lose before the auto gate holds (None: no limit of its own).
    max_drop: float | None = None


def gate_verdict(
    policy: ActivationPolicy,
    ti: float | None,
    cc: float | None,
    threshold: float,
    controls: Sequence[ControlResult] = (),
) -> GateVerdict:
    """The activation gate (TI and CC in accuracy points), with the reasons for its answer.

    ``always``: yes; ``manual``: never automatically; ``auto``: only when TI > 0 and
    CC >= -threshold (no control sets means CC is None, which passes). Every control set
    that lost accuracy is named in the reasons with its drop, whatever the policy.
    """
    regressions = [
        f"control set {c.name!r} fell {c.before - c.after:.2f} points "
        f"({c.before:.1f} -> {c.after:.1f})"
        + (f", more than its max_drop {c.max_drop:g}" if _over_own_limit(c) else "")
        for c in sorted(controls, key=lambda c: c.after - c.before)
        if c.after < c.before
    ]
    verdict = _policy_verdict(policy, ti, cc, threshold)
    activated = verdict.activated
    if policy == ActivationPolicy.AUTO and any(_over_own_limit(c) for c in controls):
        activated = False
    return GateVerdict(activated, verdict.reasons + regressions)


def _over_own_limit(control: ControlResult) -> bool:
    return control.max_drop is not None and control.before - control.after > control.max_drop


def _policy_verdict(
    policy: ActivationPolicy, ti: float | None, cc: float | None, threshold: float
) -> GateVerdict:
    if policy == ActivationPolicy.ALWAYS:
        return GateVerdict(True, ["policy always: every ready version is activated"])
    if policy == ActivationPolicy.MANUAL:
        return GateVerdict(False, ["policy manual: versions are activated by hand"])
    reasons = []
    if ti is None:
        reasons.append("TI unknown: no held-out examples and no target sets to measure it on")
    elif ti <= 0:
        reasons.append(f"TI {ti:+.2f} points: the correction did not improve its target")
    if cc is not None and cc < -threshold:
        reasons.append(f"CC {cc:+.2f} points is below -{threshold:g}: the control sets regressed")
    if reasons:
        return GateVerdict(False, reasons)
    control = "no control sets" if cc is None else f"CC {cc:+.2f} >= -{threshold:g}"
    return GateVerdict(True, [f"TI {ti:+.2f} > 0 and {control}"])


GATE_ACTOR = "gate"


def _before_after(result: VersionSetAccuracy, by_answers: bool) -> tuple[float, float]:
    if by_answers and result.answer_accuracy_before is not None:
        return result.answer_accuracy_before, result.answer_accuracy_after or 0.0
    return result.accuracy_before, result.accuracy_after


def apply_activation_gate(session: Session, model: Model, version: Version) -> Deployment | None:
    """Apply the model's policy to a freshly created ready version and record the decision.

    The gate reads the version's TI and CC; for a generative (llava) model, those of its
    generated answers (what its users see), per control set too.

    Returns the deployment when the pointer moved, None when the gate held the version back
    (it stays visible and can be activated by hand). The worker calls this after
    ``create_version``, in the same transaction.
    """
    if version.status != VersionStatus.READY:
        return None
    limits = {
        eval_set.name: eval_set.max_drop
        for eval_set in registry_repository.list_eval_sets(session, model.id, EvalSetKind.CONTROL)
    }
    evaluation = version.evaluation
    by_answers = model.pair_path is not None and evaluation is not None
    if by_answers:
        assert evaluation is not None
        ti, cc = evaluation.answer_ti, evaluation.answer_cc
    else:
        ti = evaluation.ti if evaluation else None
        cc = evaluation.cc if evaluation else None
    controls = [
        ControlResult(
            result.set_name,
            *_before_after(result, by_answers),
            limits.get(result.set_name),
        )
        for result in version.set_accuracies
        if result.kind == EvalSetKind.CONTROL
    ]
    verdict = gate_verdict(model.activation_policy, ti, cc, model.activation_threshold, controls)
    version.gate_decision = GateDecision(
        policy=model.activation_policy,
        threshold=model.activation_threshold,
        activated=verdict.activated,
        reasons=verdict.reasons,
    )
    session.flush()
    if not verdict.activated:
        return None
    reason = f"gate {model.activation_policy}: " + "; ".join(verdict.reasons)
    return activate_version(
        session, model.id, version.id, GATE_ACTOR, reason, action=DeploymentAction.GATE
    )
