"""The serving benchmark, in one command: throughput against the bare model, version load time
against chain depth, activation across replicas, memory per loaded version.

Each part measures its ratios within this run (the machine is shared and noisy) and is checked
against the serving targets; the report and the raw numbers go to
``bench/results/serving.{md,json}``.

    python -m bench.serving.run [--seconds 8] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import transformers

from bench.serving import activation, memory, throughput
from bench.serving.load_depth import TARGET_RATIO, measure_load_depth

RESULTS = Path(__file__).resolve().parents[1] / "results"
# Targets: sequential >= 0.8x the bare model at batch 1; 16 clients >= 0.5x the bare model at
# batch 16 with p99 < 100 ms; extra loaded version <= 1.2x the image encoder.
SEQUENTIAL_TARGET = 0.8
SIXTEEN_CLIENTS_TARGET = 0.5
SIXTEEN_CLIENTS_P99_MS = 100.0
VERSION_MEMORY_TARGET = 1.2


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def targets(result: dict[str, Any]) -> list[str]:
    """One line per target: the figure, the target and whether it is met."""
    rows = {row["clients"]: row for row in result["throughput"]["service"]}
    one, sixteen = rows[1], rows[16]
    depth = result["load_depth"]
    first, last = depth["timings"][0], depth["timings"][-1]
    depth_ratio = last["with_checkpoints_s"] / first["with_checkpoints_s"]
    moves = result["activation"]
    visible = [m["visible_s"] for m in moves["moves"]]
    worst_visible = max((v for v in visible if v is not None), default=None)
    memory_ratio = max(m["extra_resident_x_image_encoder"] for m in result["memory"])
    return [
        f"- Sequential requests: {one['x_bare_same_batch']:.2f}x the bare model at batch 1 "
        f"(target >= {SEQUENTIAL_TARGET}x) - "
        f"{_verdict(one['x_bare_same_batch'] >= SEQUENTIAL_TARGET)}",
        f"- 16 clients: {sixteen['x_bare_same_batch']:.2f}x the bare model at batch 16 "
        f"(target >= {SIXTEEN_CLIENTS_TARGET}x), p99 {sixteen['p99_ms']} ms "
        f"(target < {SIXTEEN_CLIENTS_P99_MS:.0f} ms) - "
        + _verdict(
            sixteen["x_bare_same_batch"] >= SIXTEEN_CLIENTS_TARGET
            and (sixteen["p99_ms"] or 1e9) < SIXTEEN_CLIENTS_P99_MS
        ),
        f"- Load time at chain depth {last['depth']}: {depth_ratio:.2f}x depth {first['depth']} "
        f"(target <= {TARGET_RATIO}x) - {_verdict(depth_ratio <= TARGET_RATIO)}",
        f"- Activation on another replica: slowest move visible after {worst_visible} s, "
        f"{moves['failed_requests']} failed requests (target < 1 s, zero failures) - "
        + _verdict(
            worst_visible is not None
            and None not in visible
            and worst_visible < 1.0
            and moves["failed_requests"] == 0
        ),
        f"- Each extra loaded version: {memory_ratio:.2f}x the image encoder's size, resident "
        f"(target <= {VERSION_MEMORY_TARGET}x) - "
        f"{_verdict(memory_ratio <= VERSION_MEMORY_TARGET)}",
    ]


def report(result: dict[str, Any], command: str) -> str:
    depth = result["load_depth_markdown"]
    return "\n".join(
        [
            "# Serving benchmark (stand-in base model, one API process unless stated)",
            "",
            f"Command: `{command}`  ",
            f"Machine: {result['machine']}; benchmark wall time {result['wall_minutes']} min.",
            "",
            "## Targets",
            "",
            *targets(result),
            "",
            "## Throughput: service over HTTP against the bare model",
            "",
            "Closed-loop clients, one image + three labels per request (JSON, base64 PNG); the "
            "bare model classifies the same image at batch = clients (preprocessing, image "
            "forward, probabilities against the three captions' text embeddings, computed "
            "once beforehand as the service's text cache holds them) in this process. "
            f"{result['throughput']['seconds']} s per row; the bare model runs on "
            f"{result['throughput']['threads']} torch threads, the API process on "
            f"{result['throughput']['server_threads']} (`OMP_NUM_THREADS`); client, server and "
            "bare model share the cores.",
            "",
            throughput.markdown(result["throughput"]),
            "",
            "## Version load time against chain depth",
            "",
            depth,
            "",
            activation.render(result["activation"]),
            "",
            "## Memory per loaded version",
            "",
            memory.markdown(result["memory"]),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per throughput row")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, bare model")
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads, API")
    parser.add_argument("--rounds", type=int, default=3, help="activation rounds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    arguments = shlex.join(argv if argv is not None else sys.argv[1:])
    command = f"python -m bench.serving.run {arguments}".strip()
    started = time.perf_counter()
    result: dict[str, Any] = {}
    print("throughput ...", flush=True)
    result["throughput"] = throughput.measure(
        args.seconds, args.threads, server_threads=args.server_threads
    )
    print("load time against chain depth ...", flush=True)
    depth = measure_load_depth()
    result["load_depth"] = asdict(depth)
    result["load_depth_markdown"] = depth.markdown()
    print("activation across replicas ...", flush=True)
    result["activation"] = activation.run_activation(rounds=args.rounds)
    print("memory per loaded version ...", flush=True)
    result["memory"] = memory.measure_memory()
    result["wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
    result["machine"] = (
        f"{platform.machine()}, {torch.get_num_threads()} torch threads available, CPU; "
        f"torch {torch.__version__}, transformers {transformers.__version__}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result, command)
    (args.out / "serving.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
