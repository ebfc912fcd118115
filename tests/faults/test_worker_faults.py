"""Jobs survive faults, against real Redis and PostgreSQL, with the API over HTTP and workers
as separate OS processes: broker outage (outbox), SIGKILL mid-training, order per model with
parallel models, cancel while running, a prefork pool through a slow phase, and the queue of a
model moving on after a worker is killed (idle or busy)."""

from __future__ import annotations

import base64
import itertools
import json
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
import redis
from sqlalchemy import select, update

from bench.load.processes import wait_until
from service.db.tables import Job, OutboxMessage, Version
from service.jobs.constants import UPDATE_QUEUE
from tests.faults.cluster import job, register, submit, wait_for_status
from tests.faults.conftest import WORKER_ENV, Cluster
from tests.worker.harness import Shots
from tests.worker.processes import slow_claim_env, slow_evaluation_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

LEASE_SECONDS = float(WORKER_ENV["VLMC_WORKER_LEASE_SECONDS"])

QUICK = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 8}
# ~60 steps: long enough to kill or cancel mid-way, short enough to finish a retry quickly.
MEDIUM = {"learning_rate": 1e-4, "epochs": 20, "batch_size": 4, "max_steps": None}


def _versions_of_job(cluster: Cluster, job_id: str) -> list[Version]:
    with cluster.session_factory() as session:
        return list(session.scalars(select(Version).where(Version.job_id == job_id)))


def _status_events(cluster: Cluster, job_id: str) -> list[str]:
    events = cluster.api.get(f"/v1/jobs/{job_id}/events").json()
    return [e["data"]["status"] for e in events["events"] if e["type"] == "status"]


def test_corrections_during_a_redis_outage_are_kept_and_sent_exactly_once(
    cluster: Cluster, shots: Shots
) -> None:
    model_id = register(cluster.api, "outbox", cluster.model_dir)
    cluster.redis.stop()
    try:
        jobs = [submit(cluster.api, model_id, shots.train, QUICK, seed=s) for s in range(3)]
        ready = cluster.api.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["checks"]["broker"]["ok"]

        def pending() -> list[OutboxMessage]:
            with cluster.session_factory() as session:
                return list(
                    session.scalars(
                        select(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
                    )
                )

        assert sorted(m.args[0] for m in pending()) == sorted(jobs)
        # The sweep runs on the outbox thread, after the request returned: wait for its attempt.
        wait_until(lambda: any(m.last_error for m in pending()), timeout=30, what="a failed sweep")
        assert sorted(m.args[0] for m in pending()) == sorted(jobs)  # still kept, none sent
    finally:
        cluster.redis.start()
    broker = redis.Redis.from_url(cluster.redis.url)
    # The API's outbox loop sends them once Redis answers: three messages, not more.
    wait_until(lambda: broker.llen(UPDATE_QUEUE) == 3, timeout=30, what="3 queued messages")
    # The loop marks a message dispatched just after sending it: wait for the marks, then
    # check that nothing was sent twice meanwhile.
    wait_until(lambda: not pending(), timeout=30, what="the 3 messages marked dispatched")
    assert broker.llen(UPDATE_QUEUE) == 3
    assert cluster.api.get("/readyz").status_code == 200
    with cluster.worker("outbox") as worker:
        for job_id in jobs:
            done = wait_for_status(cluster.api, job_id, {"succeeded"}, 120, (worker,))
            assert done["attempts"] == 1
            assert _status_events(cluster, job_id) == [
                "queued",
                "running",
                "evaluating",
                "succeeded",
            ]
    assert all(len(_versions_of_job(cluster, job_id)) == 1 for job_id in jobs)
    assert broker.llen(UPDATE_QUEUE) == 0


@contextmanager
def _active_pointer_watch(cluster: Cluster, model_id: str) -> Iterator[list[str]]:
    """Samples the active version's status every 0.2 s while the block runs."""
    seen: list[str] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for version in cluster.api.get(f"/v1/models/{model_id}/versions").json():
                if version["active"]:
                    seen.append(version["status"])
            stop.wait(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def test_a_worker_killed_mid_training_is_replaced_and_the_job_restarts_cleanly(
    cluster: Cluster, shots: Shots
) -> None:
    model_id = register(cluster.api, "sigkill", cluster.model_dir)
    job_id = submit(cluster.api, model_id, shots.train, MEDIUM)
    with _active_pointer_watch(cluster, model_id) as seen:
        with cluster.worker("doomed") as doomed:
            wait_until(
                lambda: job(cluster.api, job_id)["progress"]["step"] >= 3,
                timeout=120,
                what="training to be under way",
                processes=(doomed,),
            )
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
        killed_at = job(cluster.api, job_id)
        assert killed_at["status"] == "running" and killed_at["attempts"] == 1
        with cluster.worker("rescuer") as rescuer:
            done = wait_for_status(cluster.api, job_id, {"succeeded", "failed"}, 180, (rescuer,))
    assert done["status"] == "succeeded" and done["attempts"] == 2
    [version] = _versions_of_job(cluster, job_id)
    assert version.status == "ready" and done["result_version_id"] == version.id
    statuses = _status_events(cluster, job_id)
    assert statuses == ["queued", "running", "queued", "running", "evaluating", "succeeded"]
    assert seen and set(seen) == {"ready"}


def test_a_job_whose_worker_dies_on_its_last_attempt_fails_with_a_clear_error(
    cluster: Cluster, shots: Shots
) -> None:
    model_id = register(cluster.api, "last-attempt", cluster.model_dir)
    job_id = submit(cluster.api, model_id, shots.train, MEDIUM)
    with cluster.session_factory() as session:
        session.execute(update(Job).where(Job.id == job_id).values(max_attempts=1))
        session.commit()
    with cluster.worker("doomed-2") as doomed:
        wait_until(
            lambda: job(cluster.api, job_id)["progress"]["step"] >= 3,
            timeout=120,
            what="training to be under way",
            processes=(doomed,),
        )
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    with cluster.worker("sweeper") as sweeper:
        done = wait_for_status(cluster.api, job_id, {"failed", "succeeded"}, 60, (sweeper,))
    assert done["status"] == "failed" and done["error"]["code"] == "too_many_attempts"
    assert "1 attempts" in done["error"]["message"]
    assert _versions_of_job(cluster, job_id) == []
    versions = cluster.api.get(f"/v1/models/{model_id}/versions").json()
    assert [(v["number"], v["active"]) for v in versions] == [(1, True)]


def _interval(job_body: dict[str, str]) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(job_body["started_at"]),
        datetime.fromisoformat(job_body["finished_at"]),
    )


def test_jobs_of_one_model_run_one_after_the_other_while_another_model_runs_beside(
    cluster: Cluster, shots: Shots
) -> None:
    first_model = register(cluster.api, "serial", cluster.model_dir)
    second_model = register(cluster.api, "parallel", cluster.model_dir)
    work = {"learning_rate": 1e-4, "epochs": 10, "batch_size": 4, "max_steps": None}
    with cluster.worker("w1") as w1, cluster.worker("w2") as w2:
        ids = {f"{socket.gethostname()}:{w.pid}" for w in (w1, w2)}
        wait_until(
            lambda: ids <= set(cluster.api.get("/readyz").json()["checks"]["worker"]["live"]),
            timeout=60,
            what="both workers' heartbeats",
            processes=(w1, w2),
        )
        a1 = submit(cluster.api, first_model, shots.train, work, seed=1)
        a2 = submit(cluster.api, first_model, shots.train, work, seed=2)
        b1 = submit(cluster.api, second_model, shots.train, work, seed=3)
        done = {
            job_id: wait_for_status(cluster.api, job_id, {"succeeded", "failed"}, 180, (w1, w2))
            for job_id in (a1, a2, b1)
        }
    assert {body["status"] for body in done.values()} == {"succeeded"}
    a1_start, a1_end = _interval(done[a1])
    a2_start, _ = _interval(done[a2])
    b1_start, b1_end = _interval(done[b1])
    assert a2_start >= a1_end  # same model: strictly one after the other, in order
    assert done[a2]["parent_version_id"] == done[a1]["result_version_id"]
    assert b1_start < a1_end and a1_start < b1_end  # other model: ran at the same time


def test_cancel_while_running_stops_the_job_and_leaves_no_version(
    cluster: Cluster, shots: Shots
) -> None:
    model_id = register(cluster.api, "cancel", cluster.model_dir)
    long = {"learning_rate": 1e-6, "epochs": 300, "batch_size": 4, "max_steps": None}
    job_id = submit(cluster.api, model_id, shots.train, long)
    with cluster.worker("canceller") as worker:
        wait_until(
            lambda: job(cluster.api, job_id)["progress"]["step"] >= 2,
            timeout=120,
            what="training to be under way",
            processes=(worker,),
        )
        response = cluster.api.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 200 and response.json()["cancel_requested"]
        done = wait_for_status(cluster.api, job_id, {"cancelled", "succeeded", "failed"}, 30)
    assert done["status"] == "cancelled" and done["result_version_id"] is None
    assert done["progress"]["step"] < done["progress"]["total"]
    assert _versions_of_job(cluster, job_id) == []


def _worker_ids(*workers: Popen[bytes]) -> list[str]:
    return [f"{socket.gethostname()}:{worker.pid}" for worker in workers]


def _wait_for_heartbeats(cluster: Cluster, *workers: Popen[bytes]) -> None:
    ids = set(_worker_ids(*workers))
    wait_until(
        lambda: ids <= set(cluster.api.get("/readyz").json()["checks"]["worker"]["live"]),
        timeout=60,
        what="the workers' heartbeats",
        processes=workers,
    )


def _status_event_times(cluster: Cluster, job_id: str, status: str) -> list[datetime]:
    events = cluster.api.get(f"/v1/jobs/{job_id}/events").json()["events"]
    return [
        datetime.fromisoformat(e["created_at"])
        for e in events
        if e["type"] == "status" and e["data"]["status"] == status
    ]


def test_a_prefork_worker_keeps_the_leases_of_its_jobs_through_a_slow_phase(
    cluster: Cluster, shots: Shots
) -> None:
    # Two jobs at once in a prefork pool of two processes; each evaluates twice (before and
    # after training) for three lease periods with no training step in between.
    lease_s = 2
    slow_phase_s = 3 * lease_s
    models = [register(cluster.api, f"slow-phase-{i}", cluster.model_dir) for i in range(2)]
    env = {
        "VLMC_WORKER_CONCURRENCY": "2",
        "VLMC_WORKER_LEASE_SECONDS": str(lease_s),
        **slow_evaluation_env(slow_phase_s),
    }
    with cluster.worker("prefork", **env) as worker:
        jobs = [submit(cluster.api, model_id, shots.train, QUICK) for model_id in models]
        done = [
            wait_for_status(cluster.api, j, {"succeeded", "failed"}, 180, (worker,)) for j in jobs
        ]
    for job_id, body in zip(jobs, done, strict=True):
        assert (body["status"], body["attempts"]) == ("succeeded", 1), body
        assert _status_events(cluster, job_id) == ["queued", "running", "evaluating", "succeeded"]
        [version] = _versions_of_job(cluster, job_id)
        assert version.id == body["result_version_id"]
        started, finished = _interval(body)
        assert (finished - started).total_seconds() >= 2 * slow_phase_s  # the slow phases ran
    (first_start, first_end), (second_start, second_end) = (_interval(body) for body in done)
    assert first_start < second_end and second_start < first_end  # in two pool processes at once


def test_killing_an_idle_worker_strands_none_of_the_queued_jobs_of_a_model(
    cluster: Cluster, shots: Shots
) -> None:
    model_id = register(cluster.api, "idle-kill", cluster.model_dir)
    broker = redis.Redis.from_url(cluster.redis.url)
    with cluster.worker("busy-or-idle-1") as w1, cluster.worker("busy-or-idle-2") as w2:
        _wait_for_heartbeats(cluster, w1, w2)
        first = submit(cluster.api, model_id, shots.train, MEDIUM)
        wait_for_status(cluster.api, first, {"running"}, 60, (w1, w2))
        later = [submit(cluster.api, model_id, shots.train, QUICK, seed=s) for s in (1, 2, 3)]
        # Every message has been delivered and none of the later jobs' is unacknowledged:
        # their deliveries were dropped, none is held back in a worker.
        wait_until(
            lambda: broker.llen(UPDATE_QUEUE) == 0 and not set(later) & _unacked_job_ids(broker),
            timeout=60,
            what="the later jobs' deliveries to be dropped",
            processes=(w1, w2),
        )
        assert {job(cluster.api, j)["status"] for j in later} == {"queued"}
        busy, idle = _busy_and_idle(cluster, first, w1, w2)
        idle.send_signal(signal.SIGKILL)
        idle.wait()
        done = {
            j: wait_for_status(cluster.api, j, {"succeeded", "failed"}, 120, (busy,))
            for j in [first, *later]
        }
    ordered = [done[j] for j in [first, *later]]
    for body in ordered:
        assert (body["status"], body["attempts"]) == ("succeeded", 1), body
    _assert_ran_in_order_one_version_each(cluster, ordered)


def test_a_hand_off_lost_with_the_worker_that_received_it_reaches_an_idle_worker_at_once(
    cluster: Cluster, shots: Shots, tmp_path: Path
) -> None:
    # The model's next job is handed to the broker when the previous one ends; the worker that
    # receives that message is killed before it claims the job (the window held open by the
    # slow-claim hook). The message is gone with it; the other worker is idle.
    armed = tmp_path / "slow-claim"
    resend_s = 2.0
    env = {**slow_claim_env(armed, seconds=600), "VLMC_WORKER_UNCLAIMED_RESEND_S": str(resend_s)}
    model_id = register(cluster.api, "hand-off", cluster.model_dir)
    broker = redis.Redis.from_url(cluster.redis.url)
    with cluster.worker("hand-off-1", **env) as w1, cluster.worker("hand-off-2", **env) as w2:
        _wait_for_heartbeats(cluster, w1, w2)
        first = submit(cluster.api, model_id, shots.train, MEDIUM)
        wait_for_status(cluster.api, first, {"running"}, 60, (w1, w2))
        second = submit(cluster.api, model_id, shots.train, QUICK, seed=1)
        wait_until(
            lambda: (
                _dispatched(cluster, second)
                and broker.llen(UPDATE_QUEUE) == 0
                and second not in _unacked_job_ids(broker)
            ),
            timeout=60,
            what="the second job's first delivery to be dropped (it had to wait)",
            processes=(w1, w2),
        )
        armed.touch()  # from now on a claim stalls for 600 s
        wait_until(
            lambda: any(tmp_path.glob("slow-claim.*")),
            timeout=120,
            what="the hand-off to reach a worker",
            processes=(w1, w2),
        )
        [marker] = tmp_path.glob("slow-claim.*")
        assert marker.read_text() == second
        [victim] = [w for w in (w1, w2) if w.pid == int(marker.suffix[1:])]
        [survivor] = [w for w in (w1, w2) if w is not victim]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        armed.unlink()
        assert job(cluster.api, second)["status"] == "queued"
        done = wait_for_status(cluster.api, second, {"succeeded", "failed"}, 120, (survivor,))
    assert (done["status"], done["attempts"]) == ("succeeded", 1), done
    [running] = [
        e
        for e in cluster.api.get(f"/v1/jobs/{second}/events").json()["events"]
        if e["type"] == "status" and e["data"]["status"] == "running"
    ]
    assert running["data"]["worker"] == _worker_ids(survivor)[0]
    handed_off_at = _interval(job(cluster.api, first))[1]
    waited = (datetime.fromisoformat(done["started_at"]) - handed_off_at).total_seconds()
    # Re-sent once a live worker had been idle for ``resend_s`` (checked every 0.5 s
    # heartbeat), not after the 300 s stale-queued period: within one heartbeat interval
    # plus one lease.
    assert resend_s - 0.1 <= waited < resend_s + LEASE_SECONDS, waited
    _assert_ran_in_order_one_version_each(cluster, [job(cluster.api, first), done])


def _dispatched(cluster: Cluster, job_id: str) -> bool:
    """Whether the outbox has sent every message it holds for ``job_id``."""
    with cluster.session_factory() as session:
        messages = session.scalars(select(OutboxMessage)).all()
    mine = [m for m in messages if m.args and m.args[0] == job_id]
    return bool(mine) and all(m.dispatched_at is not None for m in mine)


def _unacked_job_ids(broker: redis.Redis) -> set[str]:
    """The jobs of the messages Redis holds as delivered but unacknowledged (kombu's
    ``unacked`` hash: ``[message, exchange, routing key]`` with a base64 JSON body)."""
    job_ids = set()
    for raw in broker.hvals("unacked"):
        message = json.loads(raw)[0]
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        job_ids.add(args[0])
    return job_ids


def _busy_and_idle(
    cluster: Cluster, running_job_id: str, *workers: Popen[bytes]
) -> tuple[Popen[bytes], Popen[bytes]]:
    """(the worker holding the running job's lease, the other one)."""
    with cluster.session_factory() as session:
        running = session.get(Job, running_job_id)
        assert running is not None and running.lease_owner is not None
        owner = running.lease_owner
    [busy] = [w for w, wid in zip(workers, _worker_ids(*workers), strict=True) if wid == owner]
    [idle] = [w for w in workers if w is not busy]
    return busy, idle


def _assert_ran_in_order_one_version_each(cluster: Cluster, ordered: list[dict[str, Any]]) -> None:
    for body in ordered:
        assert body["status"] == "succeeded", body
        [version] = _versions_of_job(cluster, body["id"])
        assert version.id == body["result_version_id"]
    for before, after in itertools.pairwise(ordered):
        assert after["parent_version_id"] == before["result_version_id"]
        # The next job starts as soon as the previous one finished (its finish sent it), not
        # when the stale-queued re-send would have (minutes).
        gap = (_interval(after)[0] - _interval(before)[1]).total_seconds()
        assert 0 <= gap < LEASE_SECONDS, (before["id"], after["id"], gap)


def test_a_killed_worker_is_noticed_by_its_heartbeat_and_its_queue_keeps_moving(
    cluster: Cluster, shots: Shots
) -> None:
    # A lease far longer than the heartbeat timeout: recovery within seconds can only come
    # from the dead worker's missing heartbeats.
    env = {"VLMC_WORKER_LEASE_SECONDS": "120", "VLMC_WORKER_HEARTBEAT_TIMEOUT_S": "4"}
    model_id = register(cluster.api, "busy-kill", cluster.model_dir)
    with cluster.worker("victim-1", **env) as w1, cluster.worker("victim-2", **env) as w2:
        _wait_for_heartbeats(cluster, w1, w2)
        first = submit(cluster.api, model_id, shots.train, MEDIUM)
        later = [submit(cluster.api, model_id, shots.train, QUICK, seed=s) for s in (1, 2)]
        wait_until(
            lambda: job(cluster.api, first)["progress"]["step"] >= 3,
            timeout=120,
            what="training to be under way",
            processes=(w1, w2),
        )
        busy, survivor = _busy_and_idle(cluster, first, w1, w2)
        busy.send_signal(signal.SIGKILL)
        busy.wait()
        killed_at = datetime.now(UTC)
        done = {
            j: wait_for_status(cluster.api, j, {"succeeded", "failed"}, 180, (survivor,))
            for j in [first, *later]
        }
    [_, requeued_at] = _status_event_times(cluster, first, "queued")
    assert (requeued_at - killed_at).total_seconds() < 12  # heartbeat timeout 4 s, not lease 120 s
    assert [done[j]["attempts"] for j in [first, *later]] == [2, 1, 1]
    assert _status_events(cluster, first) == [
        *("queued", "running", "queued", "running", "evaluating", "succeeded")
    ]
    _assert_ran_in_order_one_version_each(cluster, [done[j] for j in [first, *later]])
