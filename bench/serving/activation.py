"""Activation across replicas: how soon replica B answers with a version activated through A.

Two API processes (uvicorn, ``bench/load/processes.py``) share a throwaway PostgreSQL database
and a private Redis. Client threads send classify requests to B back to back; meanwhile each
round makes a new version (seeded noise on the active weights, ``bench/serving/versions.py``),
activates it through A, and later rolls back to version 1 through A. For each move it records
the time from the move call's return to B's first answer by the new version (``visible_s``),
and over the whole run every failed request (any status but 200, or a transport error).
Target: visible within 1 s, zero failures.

    python -m bench.serving.activation [--rounds 3] [--clients 2]

``measure_activation`` returns the numbers (``bench.serving.run`` calls it); run alone, this
prints a markdown summary.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from bench.load.postgres import create_database, drop_database
from bench.load.processes import RedisServer, running_api
from bench.load.traffic import png_base64
from bench.serving.versions import perturbed_version
from service.db.session import create_db_engine, create_session_factory
from service.db.values import ActivationPolicy
from service.settings import Settings
from service.storage.blobs import FilesystemBlobStore
from standin.factory import build_tiny_dual_encoder

ADMIN_KEY = "vlmc_bench_admin_key_0123456789"
VISIBLE_TARGET_S = 1.0
# How long a move may take to show on B before the round counts it as never visible.
GIVE_UP_S = 15.0


@dataclass
class Answer:
    received: float  # time.monotonic() when the response was read
    status: int  # 0: transport error
    version_id: str | None


@dataclass
class Hammer:
    """Client threads sending classify requests to one replica until stopped."""

    url: str
    api_key: str
    model_id: str
    clients: int
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads

    def stop(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        for thread in threads:
            thread.join(timeout=60)

    def first_answer_by(self, version_id: str, after: float) -> float | None:
        with self._lock:
            answers = [a for a in self.answers if a.received >= after]
        return next((a.received for a in answers if a.version_id == version_id), None)

    def _client(self) -> None:
        body = classify_body()
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        ) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"/v1/models/{self.model_id}/classify", json=body)
                    status = response.status_code
                    version = response.json().get("version_id") if status == 200 else None
                except httpx.HTTPError:
                    status, version = 0, None
                with self._lock:
                    self.answers.append(Answer(time.monotonic(), status, version))


def classify_body() -> dict[str, Any]:
    """One 32x32 image (seeded noise) and two labels."""
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return {"images": [png_base64(Image.fromarray(pixels))], "labels": ["cat", "dog"]}


def _move(client: httpx.Client, model_id: str, action: str, version_id: str) -> float:
    response = client.post(f"/v1/models/{model_id}/{action}", json={"version_id": version_id})
    response.raise_for_status()
    return time.monotonic()


def measure_activation(
    settings: Settings, root: Path, model_dir: Path, rounds: int = 3, clients: int = 2
) -> dict[str, Any]:
    """Start replicas A and B on ``settings`` (PostgreSQL, Redis), register ``model_dir``,
    hammer B, move the pointer through A ``2 * rounds`` times; the numbers (module docstring)."""
    engine = create_db_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    blobs = FilesystemBlobStore(settings.blobs_path)
    moves: list[dict[str, Any]] = []
    try:
        with (
            running_api(settings, root / "replica-a.log") as a,
            running_api(settings, root / "replica-b.log") as b,
        ):
            created = a.post(
                "/v1/models",
                json={
                    "name": "switch",
                    "base_path": str(model_dir),
                    "activation_policy": ActivationPolicy.MANUAL.value,
                },
            )
            created.raise_for_status()
            model_id, base_id = created.json()["id"], created.json()["active_version_id"]
            b.post(f"/v1/models/{model_id}/classify", json=classify_body()).raise_for_status()
            assert settings.admin_api_key is not None
            hammer = Hammer(str(b.base_url), settings.admin_api_key, model_id, clients)
            threads = hammer.run()
            try:
                for round_number in range(rounds):
                    new_id = perturbed_version(session_factory, blobs, model_id, seed=round_number)
                    time.sleep(1.0)  # B under steady load before the move
                    for action, target in (("activate", new_id), ("rollback", base_id)):
                        returned = _move(a, model_id, action, target)
                        deadline = returned + GIVE_UP_S
                        seen = None
                        while seen is None and time.monotonic() < deadline:
                            time.sleep(0.02)
                            seen = hammer.first_answer_by(target, returned)
                        moves.append(
                            {
                                "action": action,
                                "round": round_number,
                                "visible_s": None if seen is None else round(seen - returned, 3),
                            }
                        )
                        time.sleep(0.5)
            finally:
                hammer.stop(threads)
    finally:
        engine.dispose()
    answers = hammer.answers
    failures: dict[str, int] = {}
    for answer in answers:
        if answer.status != 200:
            kind = "transport" if answer.status == 0 else f"http_{answer.status}"
            failures[kind] = failures.get(kind, 0) + 1
    span = answers[-1].received - answers[0].received if len(answers) > 1 else 0.0
    return {
        "rounds": rounds,
        "clients": clients,
        "requests": len(answers),
        "requests_per_s": round(len(answers) / span, 1) if span else None,
        "failed_requests": sum(failures.values()),
        "failure_kinds": failures,
        "moves": moves,
        "visible_s": _summary([m["visible_s"] for m in moves]),
        "visible_by_action": {
            action: _summary([m["visible_s"] for m in moves if m["action"] == action])
            for action in ("activate", "rollback")
        },
        "target_visible_s": VISIBLE_TARGET_S,
        "pointer_recheck_s": settings.pointer_recheck_interval,
    }


def _summary(values: list[float | None]) -> dict[str, Any]:
    seen = [v for v in values if v is not None]
    return {
        "moves": len(values),
        "never_visible": len(values) - len(seen),
        "median_s": round(statistics.median(seen), 3) if seen else None,
        "max_s": max(seen) if seen else None,
    }


def run_activation(rounds: int = 3, clients: int = 2) -> dict[str, Any]:
    """``measure_activation`` on a throwaway PostgreSQL database, a private Redis and a tiny
    model; adds the machine and the command."""
    with tempfile.TemporaryDirectory(prefix="vlmc-activation-") as scratch:
        root = Path(scratch)
        model_dir = build_tiny_dual_encoder(root / "model", seed=0)
        database, url = create_database()
        redis = RedisServer(root / "redis")
        redis.start()
        try:
            settings = Settings(
                data_dir=root / "data",
                database_url=url,
                broker_url=redis.url,
                admin_api_key=ADMIN_KEY,
                model_roots=[root],
            )
            result = measure_activation(settings, root, model_dir, rounds, clients)
        finally:
            redis.stop()
            drop_database(database)
    result["command"] = f"python -m bench.serving.activation --rounds {rounds} --clients {clients}"
    result["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }
    return result


def render(result: dict[str, Any]) -> str:
    """The markdown summary."""
    lines = [
        "## Activation across replicas (2 API processes, PostgreSQL + Redis)",
        "",
        f"Command: `{result['command']}`; {result['machine']['cpus']} CPUs shared with the "
        f"client (load after: {result['machine']['load_1min_after']}).",
        "",
        f"{result['requests']} classify requests to replica B ({result['clients']} clients, "
        f"{result['requests_per_s']} req/s), **{result['failed_requests']} failed** "
        f"{result['failure_kinds'] or ''}. Moves made through replica A; `visible` = from the "
        "move call's return to B's first answer by the new version "
        f"(target < {result['target_visible_s']:g} s).",
        "",
        "| move | moves | median visible s | max visible s | never visible |",
        "| --- | --- | --- | --- | --- |",
    ]
    for action, summary in result["visible_by_action"].items():
        what = (
            "activate (new version, loaded beside)"
            if action == "activate"
            else ("rollback (to a loaded version)")
        )
        lines.append(
            f"| {what} | {summary['moves']} | {summary['median_s']} | {summary['max_s']} | "
            f"{summary['never_visible']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="activate + rollback pairs")
    parser.add_argument("--clients", type=int, default=2, help="client threads hammering B")
    args = parser.parse_args(argv)
    print(render(run_activation(args.rounds, args.clients)))


if __name__ == "__main__":
    main()
